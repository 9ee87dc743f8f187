-- bd_create: /create: makes the room and joins it; a taken name comes back with room_id NULL.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- The cap on rooms (config max_rooms) is bd_ctl's, which calls this.

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
