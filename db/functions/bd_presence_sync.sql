-- bd_presence_sync: an instance registers all its sessions again (after a reconnect), with the backend it registers from.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- Commits without waiting for its WAL flush (synchronous_commit off for
-- its transaction): presence is what an instance registers again whenever
-- its connection comes back, so a crash loses nothing it would not
-- rebuild.

CREATE OR REPLACE FUNCTION bd_presence_sync(p_instance text, p_sessions jsonb)
 RETURNS SETOF bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	x record;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	DELETE FROM instances WHERE id = p_instance;
	INSERT INTO instances (id, backend_pid, backend_start)
	VALUES (p_instance, pg_backend_pid(),
		(SELECT a.backend_start FROM pg_stat_activity a
		 WHERE a.pid = pg_backend_pid()));
	FOR x IN SELECT * FROM jsonb_to_recordset(p_sessions)
		 AS t(s bigint, n text, u bigint, r text) LOOP
		INSERT INTO presence (instance_id, session_id, nickname,
				      user_id, room)
		VALUES (p_instance, x.s, x.n,
			(SELECT id FROM users WHERE id = x.u), x.r)
		ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			RETURN NEXT x.s;
		END IF;
	END LOOP;
END $function$
;
