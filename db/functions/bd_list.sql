-- bd_list: /list: every connected session of every instance with its current room.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_list()
 RETURNS TABLE(nickname text, room text)
 LANGUAGE sql
 STABLE
AS $function$
	SELECT p.nickname, p.room FROM presence p
	ORDER BY p.connected_at, p.instance_id, p.session_id, p.api_session;
$function$
;
