-- bd_post: commits a batch of messages: per-room seq under the room row lock, then NOTIFY, in one transaction.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_post(p_batch jsonb)
 RETURNS TABLE(idx bigint, id bigint, seq bigint)
 LANGUAGE plpgsql
AS $function$
DECLARE
	m record;
	t bigint := floor(extract(epoch FROM now()) * 1000);
BEGIN
	-- NO KEY UPDATE, the lock the last_seq update takes anyway: posts
	-- to a room still queue on it, but memberships (their foreign key's
	-- KEY SHARE lock on the room) do not, so a bd_ctl batch joining
	-- several rooms never waits for a post, nor deadlocks with one.
	PERFORM 1 FROM rooms
	WHERE rooms.id IN (SELECT (e ->> 'r')::bigint
			   FROM jsonb_array_elements(p_batch) e)
	ORDER BY rooms.id FOR NO KEY UPDATE;
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
END $function$
;
