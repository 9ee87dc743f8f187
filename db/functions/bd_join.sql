-- bd_join: /join: adds the membership and NOTIFYs the room.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_join(p_user bigint, p_nick text, p_room text, OUT user_id bigint, OUT room_id bigint, OUT room_name text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
END $function$
;
