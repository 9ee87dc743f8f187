-- bd_rooms_version_bump: trigger: a membership was added or removed; bumps users.rooms_version.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_rooms_version_bump()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF TG_OP IN ('DELETE', 'UPDATE') THEN
		UPDATE users SET rooms_version = rooms_version + 1
		WHERE id = OLD.user_id;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		UPDATE users SET rooms_version = rooms_version + 1
		WHERE id = NEW.user_id;
	END IF;
	RETURN NULL;
END $function$
;
