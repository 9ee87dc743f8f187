-- bd_session_tick: keeps the streamed sessions alive, ends idle ones, returns the streamed sessions' state.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- Commits without waiting for its WAL flush (synchronous_commit off for
-- its transaction): a crash may lose the last tick's last_active stamps
-- (the next tick sets them again) or bring back sessions it ended (they
-- are still idle: the next tick ends them again).

CREATE OR REPLACE FUNCTION bd_session_tick(p_keep bigint[], p_idle_s double precision)
 RETURNS TABLE(session bigint, gone boolean, user_id bigint, nickname text, room text, rooms jsonb)
 LANGUAGE plpgsql
AS $function$
DECLARE
	ended bigint;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
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
