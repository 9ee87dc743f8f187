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

-- Like bd_session_resume(text, float8), plus the memberships' version;
-- rooms is NULL when that version is p_known (the caller has the list).
CREATE FUNCTION bd_session_resume(p_secret text, p_idle_s float8,
				  p_known bigint)
RETURNS TABLE (session bigint, user_id bigint, nickname text, room text,
	       rooms jsonb, rooms_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
	s bigint;
	seen timestamptz;
BEGIN
	SELECT a.id, a.last_active INTO s, seen FROM api_sessions a
	WHERE a.token_hash = sha256(decode(p_secret, 'hex'));
	IF s IS NULL OR seen < now() - make_interval(secs => p_idle_s) THEN
		RETURN;
	END IF;
	IF seen < now() - least(interval '1 second',
				  make_interval(secs => p_idle_s / 10)) THEN
		UPDATE api_sessions SET last_active = now() WHERE id = s;
	END IF;
	RETURN QUERY SELECT s, p.user_id, p.nickname, p.room,
			    CASE WHEN u.rooms_version = p_known THEN NULL
				 ELSE bd_user_rooms(p.user_id) END,
			    u.rooms_version
		     FROM presence p LEFT JOIN users u ON u.id = p.user_id
		     WHERE p.api_session = s;
END $$;
