-- bd_session_tick: keeps the streamed sessions alive, ends idle ones, returns the streamed sessions' state.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_session_tick(p_keep bigint[], p_idle_s double precision)
 RETURNS TABLE(session bigint, gone boolean, user_id bigint, nickname text, room text, rooms jsonb)
 LANGUAGE plpgsql
AS $function$
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
END $function$
;
