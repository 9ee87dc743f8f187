-- bd_ctl: a batch of control operations (bd_ctl_item's kinds) in one transaction, in order, one outcome row per item; one failing item fails only itself.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- The store sends every control operation that arrives while a statement
-- runs as one call, so a burst of arrivals costs one round trip and one
-- WAL flush instead of one each. Items run in array order, each seeing the
-- ones before it (a nickname taken by item 3 is taken for item 7).
--
-- bd_ctl(instance, batch): rows (i, err, msg, user_id, room_id, name, room,
-- rooms, session, version) in item order, i counting from 1; err is NULL
-- or the SQLSTATE that operation's own statement would have failed with
-- (23505: nickname taken; BD001: /create over the room cap), msg its text.
-- Items decide their expected refusals by look-ups first (bd_ctl_item), so
-- the usual batch runs without a subtransaction per item. Only when
-- something raises anyway (a race with another instance's transaction on
-- the same nickname, a deadlock, a bug) is the work undone and the batch
-- run again with each item in a subtransaction of its own, which then
-- fails alone with its SQLSTATE: the outcomes are those of one statement
-- per item either way. A batch of one item needs no such guard: its error
-- is the statement's.
--
-- A batch of nothing but presence rows and session look-ups (pa, pd, sr)
-- commits without waiting for its WAL flush (synchronous_commit off):
-- presence is rebuilt by every instance when it (re)connects and a
-- session's last_active is only a stamp, so a crash may lose the last
-- moments of them and nothing else. Any other item makes the batch
-- durable, and with it every earlier commit of the connection.
--
-- /create with a cap (m > 0, the config's max_rooms): as bd_create had it,
-- creates are serialized by transaction advisory lock 4242013 and refused
-- with BD001 when the name is free and the database holds m rooms; the
-- batch counts the rooms once, under the lock, and adds those it makes.

CREATE OR REPLACE FUNCTION bd_ctl(p_instance text, p_batch jsonb)
 RETURNS TABLE(i integer, err text, msg text, user_id bigint, room_id bigint, name text, room text, rooms jsonb, session bigint, version bigint)
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_batch) e
		       WHERE e ->> 'k' NOT IN ('pa', 'pd', 'sr')) THEN
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;
	IF jsonb_array_length(p_batch) < 2 THEN
		-- Alone, an item's error may be the statement's, as it was
		-- when each was a statement of its own (the store maps its
		-- SQLSTATE the same way), and it saves the subtransaction.
		RETURN QUERY SELECT * FROM bd_ctl(p_instance, p_batch, false);
		RETURN;
	END IF;
	BEGIN
		RETURN QUERY SELECT * FROM bd_ctl(p_instance, p_batch, false);
	EXCEPTION WHEN OTHERS THEN
		RETURN QUERY SELECT * FROM bd_ctl(p_instance, p_batch, true);
	END;
END $function$
;

-- The batch's items in order; p_safe: each in a subtransaction.
CREATE OR REPLACE FUNCTION bd_ctl(p_instance text, p_batch jsonb, p_safe boolean)
 RETURNS TABLE(i integer, err text, msg text, user_id bigint, room_id bigint, name text, room text, rooms jsonb, session bigint, version bigint)
 LANGUAGE plpgsql
AS $function$
DECLARE
	x jsonb;
	cap bigint;
	nrooms bigint;	-- rooms in the database, counted under the lock
BEGIN
	i := 0;
	FOR x IN SELECT e FROM jsonb_array_elements(p_batch) e LOOP
		i := i + 1;
		err := NULL;
		msg := NULL;
		user_id := NULL;
		room_id := NULL;
		name := NULL;
		room := NULL;
		rooms := NULL;
		session := NULL;
		version := NULL;
		cap := (x ->> 'm')::bigint;
		IF x ->> 'k' = 'c' AND cap > 0 THEN
			IF nrooms IS NULL THEN
				PERFORM pg_advisory_xact_lock(4242013);
				SELECT count(*) INTO nrooms FROM rooms;
			END IF;
			IF nrooms >= cap AND NOT EXISTS (
				SELECT 1 FROM rooms r WHERE r.name = x ->> 'r') THEN
				err := 'BD001';
				msg := format('too many rooms (max %s)', cap);
				RETURN NEXT;
				CONTINUE;
			END IF;
		END IF;
		IF p_safe THEN
			BEGIN
				SELECT t.err, t.user_id, t.room_id, t.name,
				       t.room, t.rooms, t.session, t.version
				INTO err, user_id, room_id, name, room, rooms,
				     session, version
				FROM bd_ctl_item(p_instance, x) t;
			EXCEPTION WHEN OTHERS THEN
				err := SQLSTATE;
				msg := SQLERRM;
			END;
		ELSE
			SELECT t.err, t.user_id, t.room_id, t.name, t.room,
			       t.rooms, t.session, t.version
			INTO err, user_id, room_id, name, room, rooms, session,
			     version
			FROM bd_ctl_item(p_instance, x) t;
		END IF;
		IF x ->> 'k' = 'c' AND room_id IS NOT NULL AND
		   nrooms IS NOT NULL THEN
			nrooms := nrooms + 1;
		END IF;
		RETURN NEXT;
	END LOOP;
END $function$
;
