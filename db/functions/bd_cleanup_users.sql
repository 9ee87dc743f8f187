-- bd_cleanup_users: retention: removes users of any name with no presence, membership or message, unused for p_idle.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_cleanup_users(p_idle interval DEFAULT '7 days'::interval)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	n bigint;
BEGIN
	DELETE FROM users u
	WHERE u.last_seen < now() - p_idle
	  AND NOT EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id)
	  AND NOT EXISTS (SELECT 1 FROM room_members m WHERE m.user_id = u.id)
	  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.user_id = u.id);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $function$
;
