DROP FUNCTION IF EXISTS bd_instances_reap(text, integer);
DROP FUNCTION IF EXISTS bd_presence_reap_for(text, text);
ALTER TABLE instances
	DROP COLUMN backend_pid,
	DROP COLUMN backend_start;
