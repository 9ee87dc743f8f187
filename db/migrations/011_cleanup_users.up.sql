-- Users that nothing refers to any more go with the retention job too,
-- whatever their name: every nickname ever used (/nick, /api/connect) left
-- a users row for good, and bd_cleanup_guests (007) only removes guests.
--
-- A user is removed once it has had no connected session for the retention
-- period (bd_cleanup_users' p_idle, 7 days unless given) and has no
-- membership and no stored message. Connected sessions are presence rows:
-- a TCP session's (instance_id, session_id) or an HTTP API session's
-- (api_session), so a live API session keeps its user as a live TCP
-- session does. Guests keep 007's rule (gone as soon as not connected,
-- memberships and all).
--
-- users.last_seen is when the user last stopped being a connected session's
-- user (its presence row deleted, or moved to another user by a rename),
-- or when the row was made. Existing rows start at their created_at.
ALTER TABLE users ADD COLUMN last_seen timestamptz NOT NULL DEFAULT now();
UPDATE users SET last_seen = created_at;

-- "Has a stored message" without a scan of messages per user (the
-- ON DELETE SET NULL of messages.user_id needs it too).
CREATE INDEX messages_user ON messages (user_id);

-- A session stopped being the user's. SKIP LOCKED: a user row locked by
-- another transaction is in use right now (a /nick or a connect taking it
-- over), so it needs no bump, and waiting for it could deadlock with that
-- transaction's own presence update.
CREATE FUNCTION bd_presence_left() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.user_id IS NOT DISTINCT FROM OLD.user_id THEN
		RETURN NULL;
	END IF;
	UPDATE users SET last_seen = now()
	WHERE id = (SELECT u.id FROM users u WHERE u.id = OLD.user_id
		    FOR UPDATE SKIP LOCKED);
	RETURN NULL;
END $$;

CREATE TRIGGER presence_left AFTER DELETE OR UPDATE OF user_id ON presence
FOR EACH ROW WHEN (OLD.user_id IS NOT NULL)
EXECUTE FUNCTION bd_presence_left();

-- bd_cleanup_users(p_idle), which removes users unused for p_idle (see
-- above), is in db/functions/bd_cleanup_users.sql (applied after the
-- migrations).
