DROP FUNCTION bd_session_resume(text, float8);
CREATE FUNCTION bd_session_resume(p_secret text, p_idle_s float8)
RETURNS TABLE (session bigint, user_id bigint, nickname text, room text,
	       rooms jsonb)
LANGUAGE sql AS $$
	UPDATE api_sessions a SET last_active = now()
	FROM presence p
	WHERE a.token_hash = sha256(decode(p_secret, 'hex'))
	  AND a.last_active >= now() - make_interval(secs => p_idle_s)
	  AND p.api_session = a.id
	RETURNING a.id, p.user_id, p.nickname, p.room,
		  bd_user_rooms(p.user_id);
$$;
