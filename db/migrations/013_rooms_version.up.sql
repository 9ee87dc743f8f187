-- A version of each user's memberships, bumped by every membership added
-- or removed, so that resuming an HTTP session sends the room list only
-- when it changed since the version the instance already has (issue 8:
-- a session in thousands of rooms cost milliseconds per request).
ALTER TABLE users ADD COLUMN rooms_version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION bd_rooms_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
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
END $$;

CREATE TRIGGER room_members_version
AFTER INSERT OR UPDATE OR DELETE ON room_members
FOR EACH ROW EXECUTE FUNCTION bd_rooms_version_bump();

-- bd_session_resume(secret, idle, known_version), which sends the
-- memberships only when their version is not known_version, is in
-- db/functions/bd_session_resume.sql (applied after the migrations).
