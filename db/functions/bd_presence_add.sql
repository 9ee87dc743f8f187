-- bd_presence_add: registers a connected line session of an instance.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_presence_add(p_instance text, p_session bigint, p_nick text)
 RETURNS void
 LANGUAGE sql
AS $function$
	INSERT INTO presence (instance_id, session_id, nickname)
	VALUES (p_instance, p_session, p_nick);
$function$
;
