-- bd_notify: pg_notify on a room's channel.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_notify(p_room bigint, p_event jsonb)
 RETURNS void
 LANGUAGE sql
AS $function$
	SELECT pg_notify('room_' || p_room, p_event::text);
$function$
;
