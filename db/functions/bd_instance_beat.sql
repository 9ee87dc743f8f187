-- bd_instance_beat: an instance's heartbeat: marks it alive and removes, with their presence, instances silent for p_stale_s or whose backend is gone.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- Commits without waiting for its WAL flush (synchronous_commit off for
-- its transaction): a heartbeat lost in a crash is sent again a third of
-- presence_timeout_s later.

CREATE OR REPLACE FUNCTION bd_instance_beat(p_instance text, p_stale_s integer)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE
	known boolean;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	UPDATE instances SET last_seen = now() WHERE id = p_instance;
	known := FOUND;
	PERFORM bd_instances_reap(p_instance, p_stale_s);
	RETURN known;
END $function$
;
