-- HTTP API sessions live here, so any instance serves any request or event
-- stream of a session. The session id the client holds is a secret: only
-- its SHA-256 is stored. A session's nickname, user and current room are
-- its presence row (one per session, whichever instances serve it), so
-- nicknames stay unique across TCP and HTTP users. Ending a session
-- (disconnect, /quit, expiry) NOTIFYs channel session_end with its id:
-- instances drop their copies and close its streams.

CREATE TABLE api_sessions (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_hash  bytea NOT NULL UNIQUE,
	created_at  timestamptz NOT NULL DEFAULT now(),
	last_active timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_sessions_last_active ON api_sessions (last_active);

-- A presence row belongs to an instance's session (TCP; reaped with the
-- instance) or to an API session (removed with it).
ALTER TABLE presence DROP CONSTRAINT presence_pkey;
ALTER TABLE presence
	ALTER COLUMN instance_id DROP NOT NULL,
	ALTER COLUMN session_id DROP NOT NULL,
	ADD COLUMN api_session bigint UNIQUE
		REFERENCES api_sessions (id) ON DELETE CASCADE,
	ADD CONSTRAINT presence_owner CHECK (
		(api_session IS NULL AND instance_id IS NOT NULL
		 AND session_id IS NOT NULL) OR
		(api_session IS NOT NULL AND instance_id IS NULL
		 AND session_id IS NULL));
CREATE UNIQUE INDEX presence_local ON presence (instance_id, session_id);

-- /api/connect: a new session as p_nick (an existing user of that name is
-- taken over, as /nick does). unique_violation when a connected session
-- has the nickname.
CREATE FUNCTION bd_session_open(p_secret text, p_nick text,
				OUT session bigint, OUT user_id bigint,
				OUT nickname text, OUT rooms jsonb)
LANGUAGE plpgsql AS $$
BEGIN
	user_id := bd_user(NULL, p_nick);
	SELECT u.nickname INTO nickname FROM users u WHERE u.id = user_id;
	INSERT INTO api_sessions (token_hash)
	VALUES (sha256(decode(p_secret, 'hex')))
	RETURNING id INTO session;
	INSERT INTO presence (api_session, nickname, user_id)
	VALUES (session, nickname, user_id);
	rooms := bd_user_rooms(user_id);
END $$;

-- Every request: the session's state now, unless it ended or has been idle
-- for p_idle_s seconds (then no row). Marks it active.
CREATE FUNCTION bd_session_resume(p_secret text, p_idle_s float8)
RETURNS TABLE (session bigint, user_id bigint, nickname text, room text,
	       rooms jsonb)
LANGUAGE sql AS $$
	UPDATE api_sessions a SET last_active = now()
	FROM presence p
	WHERE a.token_hash = sha256(decode(p_secret, 'hex'))
	  AND a.last_active >= now() - make_interval(secs => p_idle_s)
	  AND p.api_session = a.id
	RETURNING a.id, p.user_id, p.nickname, p.room,
		  bd_user_rooms(p.user_id);
$$;

-- /api/disconnect and /quit.
CREATE FUNCTION bd_session_end(p_session bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM api_sessions WHERE id = p_session;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM pg_notify('session_end', p_session::text);
	RETURN true;
END $$;

-- Run by every instance a few times per idle period: keeps the sessions in
-- p_keep alive (the instance streams to them), ends sessions idle for
-- p_idle_s seconds, and returns those of p_keep that no longer exist.
CREATE FUNCTION bd_session_tick(p_keep bigint[], p_idle_s float8)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
	gone bigint;
BEGIN
	UPDATE api_sessions SET last_active = now() WHERE id = ANY (p_keep);
	FOR gone IN DELETE FROM api_sessions
		    WHERE last_active < now() - make_interval(secs => p_idle_s)
		    RETURNING id LOOP
		PERFORM pg_notify('session_end', gone::text);
	END LOOP;
	RETURN QUERY SELECT k FROM unnest(p_keep) k
		     WHERE NOT EXISTS (SELECT 1 FROM api_sessions a
				       WHERE a.id = k);
END $$;

-- A session's nickname, user and current room changed: by the instance's
-- session number, or by the API session when p_api is not NULL.
DROP FUNCTION bd_presence_set(text, bigint, text, bigint, text);
CREATE FUNCTION bd_presence_set(p_instance text, p_session bigint,
				p_api bigint, p_nick text, p_user bigint,
				p_room text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF p_api IS NULL THEN
		UPDATE presence SET nickname = p_nick, user_id = p_user,
				    room = p_room
		WHERE instance_id = p_instance AND session_id = p_session;
	ELSE
		UPDATE presence SET nickname = p_nick, user_id = p_user,
				    room = p_room
		WHERE api_session = p_api;
	END IF;
END $$;

-- /list: connected sessions of every instance and API sessions, oldest
-- first.
CREATE OR REPLACE FUNCTION bd_list()
RETURNS TABLE (nickname text, room text)
LANGUAGE sql STABLE AS $$
	SELECT p.nickname, p.room FROM presence p
	ORDER BY p.connected_at, p.instance_id, p.session_id, p.api_session;
$$;
