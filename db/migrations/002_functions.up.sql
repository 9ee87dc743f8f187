-- Server-side functions. Each one is a single statement from the server's
-- point of view, so a command is one round trip and one transaction, and
-- every room event is NOTIFYed on the room's channel in the same transaction
-- that changed the data. Channel names come from room ids: room_<id>.

-- The id of the session's user, creating the row on first use.
CREATE FUNCTION bd_user(p_user bigint, p_nick text) RETURNS bigint
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

CREATE FUNCTION bd_notify(p_room bigint, p_event jsonb) RETURNS void
LANGUAGE sql AS $$
	SELECT pg_notify('room_' || p_room, p_event::text);
$$;

-- The rooms a user is a member of, as a JSON array of {id, name, seq}.
CREATE FUNCTION bd_user_rooms(p_user bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name)
				  ORDER BY r.name), '[]'::jsonb)
	FROM room_members m JOIN rooms r ON r.id = m.room_id
	WHERE m.user_id = p_user;
$$;

-- /nick: rename the session's user, or take over an existing user of that
-- name (its memberships come back; the old user's move over to it).
-- Returns the user the session now is, its stored nickname and its rooms.
CREATE FUNCTION bd_nick(p_user bigint, p_old text, p_nick text,
			OUT user_id bigint, OUT nickname text, OUT rooms jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	existing bigint;
	r bigint;
BEGIN
	SELECT id INTO existing FROM users WHERE lower(users.nickname) = lower(p_nick);
	IF p_user IS NULL OR p_user <= 0 THEN
		user_id := bd_user(NULL, p_nick);
	ELSIF existing IS NULL OR existing = p_user THEN
		UPDATE users SET nickname = p_nick WHERE id = p_user;
		user_id := p_user;
	ELSE
		INSERT INTO room_members (room_id, user_id)
		SELECT m.room_id, existing FROM room_members m
		WHERE m.user_id = p_user
		ON CONFLICT DO NOTHING;
		user_id := existing;
	END IF;
	IF p_user IS NOT NULL AND p_user > 0 THEN
		FOR r IN SELECT m.room_id FROM room_members m
			 WHERE m.user_id = p_user ORDER BY m.room_id LOOP
			PERFORM bd_notify(r, jsonb_build_object('k', 'n',
				'r', r, 'uid', p_user, 'u', p_old, 'to', p_nick));
		END LOOP;
		IF user_id <> p_user THEN
			DELETE FROM room_members m WHERE m.user_id = p_user;
		END IF;
	END IF;
	SELECT u.nickname INTO nickname FROM users u WHERE u.id = user_id;
	rooms := bd_user_rooms(user_id);
END $$;

-- /join: add the membership (NOTIFYing the room when it is new).
-- room_id is NULL when there is no such room.
CREATE FUNCTION bd_join(p_user bigint, p_nick text, p_room text,
			OUT user_id bigint, OUT room_id bigint, OUT room_name text)
LANGUAGE plpgsql AS $$
BEGIN
	user_id := bd_user(p_user, p_nick);
	SELECT id, name INTO room_id, room_name FROM rooms WHERE name = p_room;
	IF room_id IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO room_members (room_id, user_id) VALUES (room_id, user_id)
	ON CONFLICT DO NOTHING;
	IF FOUND THEN
		PERFORM bd_notify(room_id, jsonb_build_object('k', 'j',
			'r', room_id, 'uid', user_id, 'u', p_nick));
	END IF;
END $$;

-- /create: create the room and join it. room_id is NULL when the name is
-- taken; a concurrent create of the same name loses on the unique index.
CREATE FUNCTION bd_create(p_user bigint, p_nick text, p_room text,
			  OUT user_id bigint, OUT room_id bigint, OUT room_name text)
LANGUAGE plpgsql AS $$
BEGIN
	user_id := bd_user(p_user, p_nick);
	INSERT INTO rooms (name, created_by) VALUES (p_room, user_id)
	ON CONFLICT (name) DO NOTHING
	RETURNING id, name INTO room_id, room_name;
	IF room_id IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO room_members (room_id, user_id) VALUES (room_id, user_id);
END $$;

-- /leave: drop the membership, NOTIFYing the room. False when there was none.
CREATE FUNCTION bd_leave(p_user bigint, p_nick text, p_room bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM room_members WHERE room_id = p_room AND user_id = p_user;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM bd_notify(p_room, jsonb_build_object('k', 'l',
		'r', p_room, 'uid', p_user, 'u', p_nick));
	RETURN true;
END $$;

-- Post a batch of messages in one transaction: p_batch is a JSON array of
-- {"r": room, "u": user, "n": nick, "c": content}. Rooms are locked in id
-- order (no deadlock between concurrent batches), then each message takes
-- its room's next seq and is NOTIFYed. A row whose room is gone comes back
-- with NULL id and seq. Rows come back in batch order (idx from 1).
CREATE FUNCTION bd_post(p_batch jsonb)
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

-- Messages of a room after seq p_after, oldest first; at most p_limit,
-- the newest ones when there are more.
CREATE FUNCTION bd_history(p_room bigint, p_after bigint, p_limit int)
RETURNS TABLE (seq bigint, id bigint, nickname text, content text, t bigint)
LANGUAGE sql STABLE AS $$
	SELECT * FROM (
		SELECT m.seq, m.id, m.nickname, m.content,
		       floor(extract(epoch FROM m.created_at) * 1000)::bigint
		FROM messages m
		WHERE m.room_id = p_room AND m.seq > p_after
		ORDER BY m.seq DESC LIMIT p_limit) x
	ORDER BY 1;
$$;

-- Every room with its member count and how many of its members are in
-- p_online (the users connected now).
CREATE FUNCTION bd_rooms(p_online bigint[])
RETURNS TABLE (name text, members bigint, online bigint)
LANGUAGE sql STABLE AS $$
	SELECT r.name, count(m.user_id),
	       count(m.user_id) FILTER (WHERE m.user_id = ANY (p_online))
	FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id
	GROUP BY r.id, r.name ORDER BY r.name;
$$;

-- Retention: keep the newest p_keep messages of every room. Returns how
-- many rows were deleted.
CREATE FUNCTION bd_cleanup(p_keep int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	DELETE FROM messages m
	USING (SELECT x.id FROM (
		SELECT messages.id, row_number() OVER (
			PARTITION BY messages.room_id ORDER BY messages.seq DESC) AS rn
		FROM messages) x
	       WHERE x.rn > p_keep) old
	WHERE m.id = old.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;
