-- The definitions from before 007: bd_user and bd_post (002),
-- bd_presence_sync (003), bd_presence_set (005).
DROP FUNCTION bd_cleanup_guests();

CREATE OR REPLACE FUNCTION bd_user(p_user bigint, p_nick text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	uid bigint;
BEGIN
	IF p_user IS NOT NULL AND p_user > 0 THEN
		RETURN p_user;
	END IF;
	INSERT INTO users (nickname) VALUES (p_nick)
	ON CONFLICT (lower(nickname)) DO UPDATE SET nickname = users.nickname
	RETURNING id INTO uid;
	RETURN uid;
END $$;

CREATE OR REPLACE FUNCTION bd_presence_sync(p_instance text, p_sessions jsonb)
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

CREATE OR REPLACE FUNCTION bd_presence_set(p_instance text, p_session bigint,
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

CREATE OR REPLACE FUNCTION bd_post(p_batch jsonb)
RETURNS TABLE (idx bigint, id bigint, seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
	m record;
	t bigint := floor(extract(epoch FROM now()) * 1000);
BEGIN
	PERFORM 1 FROM rooms
	WHERE rooms.id IN (SELECT (e ->> 'r')::bigint
			   FROM jsonb_array_elements(p_batch) e)
	ORDER BY rooms.id FOR UPDATE;
	idx := 0;
	FOR m IN SELECT * FROM jsonb_to_recordset(p_batch)
		 AS x(r bigint, u bigint, n text, c text) LOOP
		idx := idx + 1;
		UPDATE rooms SET last_seq = last_seq + 1 WHERE rooms.id = m.r
		RETURNING last_seq INTO seq;
		IF seq IS NULL THEN
			id := NULL;
			RETURN NEXT;
			CONTINUE;
		END IF;
		INSERT INTO messages (room_id, seq, user_id, nickname, content)
		VALUES (m.r, seq, m.u, m.n, m.c)
		RETURNING messages.id INTO id;
		PERFORM bd_notify(m.r, jsonb_build_object('k', 'm', 'r', m.r,
			's', seq, 'i', id, 'u', m.n, 'c', m.c, 't', t));
		RETURN NEXT;
	END LOOP;
END $$;
