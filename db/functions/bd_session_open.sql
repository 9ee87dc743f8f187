-- bd_session_open: a new stored HTTP session for a nickname.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_session_open(p_secret text, p_nick text, OUT session bigint, OUT user_id bigint, OUT nickname text, OUT rooms jsonb)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
	user_id := bd_user(NULL, p_nick);
	SELECT u.nickname INTO nickname FROM users u WHERE u.id = user_id;
	INSERT INTO api_sessions (token_hash)
	VALUES (sha256(decode(p_secret, 'hex')))
	RETURNING id INTO session;
	INSERT INTO presence (api_session, nickname, user_id)
	VALUES (session, nickname, user_id);
	rooms := bd_user_rooms(user_id);
END $function$
;
