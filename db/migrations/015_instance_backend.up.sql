-- The database backend an instance registered from (its query connection),
-- so that the other instances see at once that it died: a killed process's
-- connections end and PostgreSQL forgets their backends. Before this, its
-- users' nicknames stayed taken until presence_timeout_s had passed, and a
-- crowd reconnecting to the other instances was refused meanwhile. The
-- reaping itself is db/functions/bd_instances_reap.sql.
ALTER TABLE instances
	ADD COLUMN backend_pid integer,
	ADD COLUMN backend_start timestamptz;
