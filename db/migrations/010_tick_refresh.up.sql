-- bd_session_tick (005) only said which of the sessions an instance
-- streams to had ended. It now also returns the others' state, as
-- bd_session_resume does, so that an instance that missed a notification
-- (its LISTEN connection was down when the session left a room through
-- another instance) brings its copy up to date, and closes the stream,
-- within a tick. gone is true for sessions that no longer exist.
DROP FUNCTION bd_session_tick(bigint[], float8);
CREATE FUNCTION bd_session_tick(p_keep bigint[], p_idle_s float8)
RETURNS TABLE (session bigint, gone boolean, user_id bigint, nickname text,
	       room text, rooms jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	ended bigint;
BEGIN
	UPDATE api_sessions SET last_active = now() WHERE id = ANY (p_keep);
	FOR ended IN DELETE FROM api_sessions
		     WHERE last_active < now() - make_interval(secs => p_idle_s)
		     RETURNING id LOOP
		PERFORM pg_notify('session_end', ended::text);
	END LOOP;
	RETURN QUERY
		SELECT k, p.api_session IS NULL, p.user_id, p.nickname, p.room,
		       CASE WHEN p.api_session IS NULL THEN NULL
			    ELSE bd_user_rooms(p.user_id) END
		FROM unnest(p_keep) k
		LEFT JOIN presence p ON p.api_session = k;
END $$;
