-- bd_user: the user of a nickname, made when missing.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_user(p_user bigint, p_nick text)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	uid bigint;
BEGIN
	IF p_user IS NOT NULL AND p_user > 0 AND
	   EXISTS (SELECT 1 FROM users WHERE id = p_user) THEN
		RETURN p_user;
	END IF;
	INSERT INTO users (nickname) VALUES (p_nick)
	ON CONFLICT (lower(nickname)) DO UPDATE SET nickname = users.nickname
	RETURNING id INTO uid;
	RETURN uid;
END $function$
;
