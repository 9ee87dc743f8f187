-- bd_cleanup_guests: retention: removes guests (guest-NNNNNN) no longer connected, with their memberships.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_cleanup_guests()
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	n bigint;
BEGIN
	DELETE FROM users u
	WHERE u.nickname ~ '^guest-[0-9]{6}$'
	  AND NOT EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $function$
;
