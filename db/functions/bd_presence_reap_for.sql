-- bd_presence_reap_for: before p_nick is taken, reaps the dead instances when a session of another instance than p_instance holds it (it may be a dead one's).
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_presence_reap_for(p_nick text, p_instance text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF EXISTS (SELECT 1 FROM presence p
		   WHERE lower(p.nickname) = lower(p_nick)
		     AND p.instance_id IS DISTINCT FROM p_instance
		     AND p.instance_id IS NOT NULL) THEN
		PERFORM bd_instances_reap(p_instance, NULL);
	END IF;
END $function$
;
