-- bd_session_tick as in 005.
DROP FUNCTION bd_session_tick(bigint[], float8);
-- Run by every instance a few times per idle period: keeps the sessions in
-- p_keep alive (the instance streams to them), ends sessions idle for
-- p_idle_s seconds, and returns those of p_keep that no longer exist.
CREATE FUNCTION bd_session_tick(p_keep bigint[], p_idle_s float8)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
	gone bigint;
BEGIN
	UPDATE api_sessions SET last_active = now() WHERE id = ANY (p_keep);
	FOR gone IN DELETE FROM api_sessions
		    WHERE last_active < now() - make_interval(secs => p_idle_s)
		    RETURNING id LOOP
		PERFORM pg_notify('session_end', gone::text);
	END LOOP;
	RETURN QUERY SELECT k FROM unnest(p_keep) k
		     WHERE NOT EXISTS (SELECT 1 FROM api_sessions a
				       WHERE a.id = k);
END $$;
