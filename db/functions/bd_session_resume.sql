-- bd_session_resume: a stored HTTP session now, marked active at most once a second; the memberships only when their version is not p_known.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_session_resume(p_secret text, p_idle_s double precision, p_known bigint)
 RETURNS TABLE(session bigint, user_id bigint, nickname text, room text, rooms jsonb, rooms_version bigint)
 LANGUAGE plpgsql
AS $function$
DECLARE
	s bigint;
	seen timestamptz;
BEGIN
	SELECT a.id, a.last_active INTO s, seen FROM api_sessions a
	WHERE a.token_hash = sha256(decode(p_secret, 'hex'));
	IF s IS NULL OR seen < now() - make_interval(secs => p_idle_s) THEN
		RETURN;
	END IF;
	IF seen < now() - least(interval '1 second',
				  make_interval(secs => p_idle_s / 10)) THEN
		UPDATE api_sessions SET last_active = now() WHERE id = s;
	END IF;
	RETURN QUERY SELECT s, p.user_id, p.nickname, p.room,
			    CASE WHEN u.rooms_version = p_known THEN NULL
				 ELSE bd_user_rooms(p.user_id) END,
			    u.rooms_version
		     FROM presence p LEFT JOIN users u ON u.id = p.user_id
		     WHERE p.api_session = s;
END $function$
;
