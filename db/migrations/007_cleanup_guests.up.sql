-- Guests (users named guest-NNNNNN, the name a connection gets until it
-- picks one) that are not connected any more: their users rows, and so
-- their memberships, go with the retention job. Their messages stay, under
-- the nickname they were sent with (messages.user_id becomes NULL).
-- Returns how many users were deleted.
--
-- A session may still hold the id of a user deleted so (its instance was
-- reaped from presence while it lived, say, or the row was removed by
-- hand): the functions below then treat that id as unknown instead of
-- failing on the foreign keys (bd_user makes the user again by nickname;
-- presence and messages get no user id).
CREATE FUNCTION bd_cleanup_guests() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	DELETE FROM users u
	WHERE u.nickname ~ '^guest-[0-9]{6}$'
	  AND NOT EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

CREATE OR REPLACE FUNCTION bd_user(p_user bigint, p_nick text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	uid bigint;
BEGIN
	IF p_user IS NOT NULL AND p_user > 0 AND
	   EXISTS (SELECT 1 FROM users WHERE id = p_user) THEN
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
		VALUES (p_instance, x.s, x.n,
			(SELECT id FROM users WHERE id = x.u), x.r)
		ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			RETURN NEXT x.s;
		END IF;
	END LOOP;
END $$;

CREATE OR REPLACE FUNCTION bd_presence_set(p_instance text, p_session bigint,
					   p_api bigint, p_nick text,
					   p_user bigint, p_room text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	uid bigint := (SELECT id FROM users WHERE id = p_user);
BEGIN
	IF p_api IS NULL THEN
		UPDATE presence SET nickname = p_nick, user_id = uid,
				    room = p_room
		WHERE instance_id = p_instance AND session_id = p_session;
	ELSE
		UPDATE presence SET nickname = p_nick, user_id = uid,
				    room = p_room
		WHERE api_session = p_api;
	END IF;
END $$;

-- As in 002, but a sender whose user row is gone is stored with no user.
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
		VALUES (m.r, seq, (SELECT users.id FROM users
				   WHERE users.id = m.u), m.n, m.c)
		RETURNING messages.id INTO id;
		PERFORM bd_notify(m.r, jsonb_build_object('k', 'm', 'r', m.r,
			's', seq, 'i', id, 'u', m.n, 'c', m.c, 't', t));
		RETURN NEXT;
	END LOOP;
END $$;
