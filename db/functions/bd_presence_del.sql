-- bd_presence_del: a line session of an instance is gone.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_presence_del(p_instance text, p_session bigint)
 RETURNS void
 LANGUAGE sql
AS $function$
	DELETE FROM presence
	WHERE instance_id = p_instance AND session_id = p_session;
$function$
;
