-- bd_presence_left: trigger: a user's presence ended; stamps users.last_seen.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_presence_left()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.user_id IS NOT DISTINCT FROM OLD.user_id THEN
		RETURN NULL;
	END IF;
	UPDATE users SET last_seen = now()
	WHERE id = (SELECT u.id FROM users u WHERE u.id = OLD.user_id
		    FOR UPDATE SKIP LOCKED);
	RETURN NULL;
END $function$
;
