-- bd_create: /create: makes the room (refused past p_max rooms: SQLSTATE BD001) and joins it; the 3-argument form has no cap.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- The 4-argument form: /create under the config key max_rooms. Creates are
-- serialized by a transaction advisory lock, so the count and the insert
-- are atomic across instances (no two creates pass the cap together). A
-- free name over the cap raises SQLSTATE BD001 (store.c: BD_EROOMSFULL); a
-- taken name comes back as in the 3-argument form (room_id NULL), cap or
-- not. p_max NULL or <= 0: no cap.

CREATE OR REPLACE FUNCTION bd_create(p_user bigint, p_nick text, p_room text, OUT user_id bigint, OUT room_id bigint, OUT room_name text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
	user_id := bd_user(p_user, p_nick);
	INSERT INTO rooms (name, created_by) VALUES (p_room, user_id)
	ON CONFLICT (name) DO NOTHING
	RETURNING id, name INTO room_id, room_name;
	IF room_id IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO room_members (room_id, user_id) VALUES (room_id, user_id);
END $function$
;

CREATE OR REPLACE FUNCTION bd_create(p_user bigint, p_nick text, p_room text, p_max bigint, OUT user_id bigint, OUT room_id bigint, OUT room_name text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF p_max > 0 THEN
		PERFORM pg_advisory_xact_lock(4242013);	-- this migration's
		IF NOT EXISTS (SELECT 1 FROM rooms r WHERE r.name = p_room)
		   AND (SELECT count(*) FROM rooms) >= p_max THEN
			RAISE EXCEPTION 'too many rooms (max %)', p_max
				USING ERRCODE = 'BD001';
		END IF;
	END IF;
	SELECT c.user_id, c.room_id, c.room_name
	INTO user_id, room_id, room_name
	FROM bd_create(p_user, p_nick, p_room) c;
END $function$
;
