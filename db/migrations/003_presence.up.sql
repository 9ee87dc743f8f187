-- Cluster-wide presence: every instance registers itself and its connected
-- sessions; nicknames of connected sessions are unique across the cluster
-- (enforced here, not by a check-then-act between instances). An instance
-- that stops heartbeating is reaped with its sessions (ON DELETE CASCADE).

CREATE TABLE instances (
	id         text PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT now(),
	last_seen  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE presence (
	instance_id  text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
	session_id   bigint NOT NULL,	-- the instance's own session number
	nickname     text NOT NULL,
	user_id      bigint REFERENCES users (id) ON DELETE SET NULL,
	room         text,		-- current room, for /list
	connected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (instance_id, session_id)
);
CREATE UNIQUE INDEX presence_nickname ON presence (lower(nickname));
CREATE INDEX presence_user ON presence (user_id);

-- Heartbeat: this instance is alive; instances silent for p_stale_s seconds
-- are removed with their sessions. Returns false when this instance's row
-- was missing (it had been reaped): the caller then registers again.
CREATE FUNCTION bd_instance_beat(p_instance text, p_stale_s int)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	known boolean;
BEGIN
	UPDATE instances SET last_seen = now() WHERE id = p_instance;
	known := FOUND;
	DELETE FROM instances
	WHERE last_seen < now() - make_interval(secs => p_stale_s)
	  AND id <> p_instance;
	RETURN known;
END $$;

-- (Re)registers this instance with the sessions it has now, a JSON array of
-- {"s": session, "n": nickname, "u": user id or null, "r": room or null}.
-- Sessions whose nickname another instance holds meanwhile are left out;
-- their session numbers come back.
CREATE FUNCTION bd_presence_sync(p_instance text, p_sessions jsonb)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
	x record;
BEGIN
	DELETE FROM instances WHERE id = p_instance;
	INSERT INTO instances (id) VALUES (p_instance);
	FOR x IN SELECT * FROM jsonb_to_recordset(p_sessions)
		 AS t(s bigint, n text, u bigint, r text) LOOP
		INSERT INTO presence (instance_id, session_id, nickname,
				      user_id, room)
		VALUES (p_instance, x.s, x.n, x.u, x.r)
		ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			RETURN NEXT x.s;
		END IF;
	END LOOP;
END $$;

-- A session connected (unique_violation when its nickname is in use).
CREATE FUNCTION bd_presence_add(p_instance text, p_session bigint,
				p_nick text)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO presence (instance_id, session_id, nickname)
	VALUES (p_instance, p_session, p_nick);
$$;

CREATE FUNCTION bd_presence_del(p_instance text, p_session bigint)
RETURNS void LANGUAGE sql AS $$
	DELETE FROM presence
	WHERE instance_id = p_instance AND session_id = p_session;
$$;

-- A session's nickname, user and current room changed.
CREATE FUNCTION bd_presence_set(p_instance text, p_session bigint,
				p_nick text, p_user bigint, p_room text)
RETURNS void LANGUAGE sql AS $$
	UPDATE presence SET nickname = p_nick, user_id = p_user, room = p_room
	WHERE instance_id = p_instance AND session_id = p_session;
$$;

-- /list: connected sessions of every instance, oldest first.
CREATE FUNCTION bd_list()
RETURNS TABLE (nickname text, room text)
LANGUAGE sql STABLE AS $$
	SELECT p.nickname, p.room FROM presence p
	ORDER BY p.connected_at, p.instance_id, p.session_id;
$$;

-- /rooms: members, and how many of them are connected anywhere.
CREATE FUNCTION bd_rooms_online()
RETURNS TABLE (name text, members bigint, online bigint)
LANGUAGE sql STABLE AS $$
	SELECT r.name, count(m.user_id),
	       count(m.user_id) FILTER (WHERE EXISTS (
			SELECT 1 FROM presence p WHERE p.user_id = m.user_id))
	FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id
	GROUP BY r.id, r.name ORDER BY r.name;
$$;
