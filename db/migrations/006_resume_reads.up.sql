-- bd_session_resume (005) wrote last_active on every API request: a write
-- transaction, and so a WAL flush, per request. Now it writes only when
-- last_active is older than a second (a tenth of the idle timeout when that
-- is shorter); the other requests only read. last_active then lags by at
-- most that much, so an idle session expires after 59 to 60 s of the
-- default 60 s (0.9 to 1 of the timeout at worst).
CREATE OR REPLACE FUNCTION bd_session_resume(p_secret text, p_idle_s float8)
RETURNS TABLE (session bigint, user_id bigint, nickname text, room text,
	       rooms jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	s bigint;
	seen timestamptz;
BEGIN
	SELECT a.id, a.last_active INTO s, seen FROM api_sessions a
	WHERE a.token_hash = sha256(decode(p_secret, 'hex'));
	IF s IS NULL OR seen < now() - make_interval(secs => p_idle_s) THEN
		RETURN;
	END IF;
	IF seen < now() - least(interval '1 second',
				  make_interval(secs => p_idle_s / 10)) THEN
		UPDATE api_sessions SET last_active = now() WHERE id = s;
	END IF;
	RETURN QUERY SELECT s, p.user_id, p.nickname, p.room,
			    bd_user_rooms(p.user_id)
		     FROM presence p WHERE p.api_session = s;
END $$;
