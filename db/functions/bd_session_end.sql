-- bd_session_end: ends a stored HTTP session (NOTIFY session_end).
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_session_end(p_session bigint)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
BEGIN
	DELETE FROM api_sessions WHERE id = p_session;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM pg_notify('session_end', p_session::text);
	RETURN true;
END $function$
;
