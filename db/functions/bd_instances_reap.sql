-- bd_instances_reap: removes, with their presence, the instances other than p_instance that are silent for p_stale_s seconds (NULL: never mind) or whose registering backend is gone.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

-- A backend is gone when no backend has its pid, or one has it but started
-- at another time (the pid was reused). A backend this role may not see
-- (backend_start NULL) counts as alive: only the heartbeat reaps then.
CREATE OR REPLACE FUNCTION bd_instances_reap(p_instance text, p_stale_s integer)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
	n integer;
BEGIN
	DELETE FROM instances i
	WHERE i.id IS DISTINCT FROM p_instance
	  AND (i.last_seen < now() - make_interval(secs => p_stale_s)
	       OR (i.backend_pid IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM pg_stat_activity a
			WHERE a.pid = i.backend_pid
			  AND (a.backend_start IS NULL
			       OR a.backend_start = i.backend_start))));
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $function$
;
