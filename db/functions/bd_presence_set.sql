-- bd_presence_set: sets a session's presence (nickname, user, current room); the unique nickname index refuses a taken name.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_presence_set(p_instance text, p_session bigint, p_api bigint, p_nick text, p_user bigint, p_room text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
END $function$
;
