-- bd_nick: /nick: renames (or takes over) a user and NOTIFYs each of its rooms once per rename.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_nick(p_user bigint, p_old text, p_nick text, OUT user_id bigint, OUT nickname text, OUT rooms jsonb)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
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
				'r', r, 'uid', p_user, 'u', p_old, 'to', p_nick,
				'x', txid_current()));
		END LOOP;
		IF user_id <> p_user THEN
			DELETE FROM room_members m WHERE m.user_id = p_user;
		END IF;
	END IF;
	SELECT u.nickname INTO nickname FROM users u WHERE u.id = user_id;
	rooms := bd_user_rooms(user_id);
END $function$
;
