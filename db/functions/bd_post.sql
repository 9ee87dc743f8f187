-- bd_post: commits a batch of messages set-based: per-room seq ranges under the room row locks, one INSERT, and one NOTIFY per room per batch (several messages each, under 8000 bytes), in one transaction.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_post(p_batch jsonb)
 RETURNS TABLE(idx bigint, id bigint, seq bigint)
 LANGUAGE plpgsql
 -- Planned once per connection: a custom plan for every call cost about
 -- 0.2 ms of planning, more than a one-message batch's work.
 SET plan_cache_mode = force_generic_plan
AS $function$
DECLARE
	t bigint := floor(extract(epoch FROM now()) * 1000);
	b_r bigint[];
	b_u bigint[];
	b_n text[];
	b_c text[];
	b_tail text[];
	v_idx bigint[];
	v_id bigint[];
	v_seq bigint[];
	v_room bigint[];
	v_elem text[];
	buf text;
	room bigint;
	e text;
	m record;
BEGIN
	-- One message (what a quiet room sends): the same rows, locks and
	-- notification with a handful of simple statements.
	IF jsonb_array_length(p_batch) = 1 THEN
		SELECT x.r, x.u, x.n, x.c INTO m
		FROM jsonb_to_record(p_batch -> 0)
		     AS x(r bigint, u bigint, n text, c text);
		PERFORM 1 FROM users WHERE users.id = m.u FOR KEY SHARE;
		idx := 1;
		UPDATE rooms SET last_seq = rooms.last_seq + 1
		WHERE rooms.id = m.r RETURNING rooms.last_seq INTO seq;
		IF seq IS NULL THEN
			RETURN NEXT;
			RETURN;
		END IF;
		INSERT INTO messages (room_id, seq, user_id, nickname, content)
		VALUES (m.r, seq, (SELECT users.id FROM users
				   WHERE users.id = m.u), m.n, m.c)
		RETURNING messages.id INTO id;
		PERFORM bd_notify_batch(m.r, t, '[' || seq || ',' || id ||
			',' || to_json(m.n)::text || ',' ||
			to_json(m.c)::text || ']');
		RETURN NEXT;
		RETURN;
	END IF;
	-- Everything that needs no lock first: the batch decoded, each
	-- message's notification text past its seq and id, the senders'
	-- users rows (KEY SHARE, what a foreign key would take: not deleted
	-- under the batch, and posts do not wait for each other on it;
	-- messages has no foreign keys, migration 017).
	SELECT array_agg(x.r ORDER BY x.ord), array_agg(x.u ORDER BY x.ord),
	       array_agg(x.n ORDER BY x.ord), array_agg(x.c ORDER BY x.ord),
	       array_agg(',' || to_json(x.n)::text || ',' ||
			 to_json(x.c)::text || ']' ORDER BY x.ord)
	INTO b_r, b_u, b_n, b_c, b_tail
	FROM ROWS FROM (jsonb_to_recordset(p_batch)
			AS (r bigint, u bigint, n text, c text))
	     WITH ORDINALITY AS x(r, u, n, c, ord);
	PERFORM 1 FROM users WHERE users.id = ANY (b_u)
	ORDER BY users.id FOR KEY SHARE;
	-- NO KEY UPDATE, the lock the last_seq update takes anyway: posts
	-- to a room queue on it from here to their commit (so seq order is
	-- commit order), but memberships (their foreign key's KEY SHARE
	-- lock on the room) do not, so a bd_ctl batch joining several rooms
	-- never waits for a post, nor deadlocks with one.
	PERFORM 1 FROM rooms WHERE rooms.id = ANY (b_r)
	ORDER BY rooms.id FOR NO KEY UPDATE;
	-- Each room's seq range in one UPDATE, the messages in one INSERT;
	-- k numbers a room's messages in batch order.
	WITH b AS (
		SELECT x.ord, x.r, x.u, x.n, x.c, x.tail,
		       row_number() OVER (PARTITION BY x.r ORDER BY x.ord) AS k
		FROM unnest(b_r, b_u, b_n, b_c, b_tail)
		     WITH ORDINALITY AS x(r, u, n, c, tail, ord)
	), cnt AS (
		SELECT b.r, count(*) AS n FROM b GROUP BY b.r
	), up AS (
		UPDATE rooms SET last_seq = rooms.last_seq + cnt.n FROM cnt
		WHERE rooms.id = cnt.r
		RETURNING rooms.id AS r, rooms.last_seq - cnt.n AS base
	), ins AS (
		INSERT INTO messages (room_id, seq, user_id, nickname, content)
		SELECT b.r, up.base + b.k, users.id, b.n, b.c
		FROM b JOIN up ON up.r = b.r
		LEFT JOIN users ON users.id = b.u
		ORDER BY b.r, b.k
		RETURNING messages.id, messages.room_id, messages.seq
	)
	SELECT array_agg(b.ord ORDER BY b.r, b.k),
	       array_agg(ins.id ORDER BY b.r, b.k),
	       array_agg(ins.seq ORDER BY b.r, b.k),
	       array_agg(b.r ORDER BY b.r, b.k),
	       array_agg('[' || ins.seq || ',' || ins.id || b.tail
			 ORDER BY b.r, b.k)
	INTO v_idx, v_id, v_seq, v_room, v_elem
	FROM b LEFT JOIN up ON up.r = b.r
	LEFT JOIN ins ON ins.room_id = b.r AND ins.seq = up.base + b.k;
	-- One row per message (id and seq NULL: no such room), and the
	-- notifications (bd_notify_batch()): a room's messages in seq
	-- order, a new payload whenever the room changes or the next would
	-- pass 7,800 bytes.
	FOR i IN 1 .. coalesce(array_length(v_idx, 1), 0) LOOP
		idx := v_idx[i];
		id := v_id[i];
		seq := v_seq[i];
		RETURN NEXT;
		e := v_elem[i];
		CONTINUE WHEN e IS NULL;
		IF buf IS NOT NULL AND
		   (v_room[i] <> room OR
		    octet_length(buf) + octet_length(e) > 7800) THEN
			PERFORM bd_notify_batch(room, t, buf);
			buf := NULL;
		END IF;
		room := v_room[i];
		buf := CASE WHEN buf IS NULL THEN e ELSE buf || ',' || e END;
	END LOOP;
	IF buf IS NOT NULL THEN
		PERFORM bd_notify_batch(room, t, buf);
	END IF;
END $function$
;
