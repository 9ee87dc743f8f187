-- bd_leave: /leave: removes the membership and NOTIFYs the room.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_leave(p_user bigint, p_nick text, p_room bigint)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
BEGIN
	DELETE FROM room_members WHERE room_id = p_room AND user_id = p_user;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM bd_notify(p_room, jsonb_build_object('k', 'l',
		'r', p_room, 'uid', p_user, 'u', p_nick));
	RETURN true;
END $function$
;
