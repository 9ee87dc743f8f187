-- bd_presence_taken: whether setting a session's presence to p_nick would break the unique nickname (the session has a row and another row holds the name).
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- bd_ctl's pre-check for bd_presence_set: true exactly when that UPDATE
-- would raise unique_violation, so that a batch decides the item's outcome
-- without raising. The session's row is (p_instance, p_session), or the API
-- session p_api's when that is not NULL. Each look-up is one index probe;
-- the usual case (the name is the session's own) needs only the first.

CREATE OR REPLACE FUNCTION bd_presence_taken(p_instance text, p_session bigint, p_api bigint, p_nick text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
	h_instance text;
	h_session bigint;
	h_api bigint;
BEGIN
	SELECT o.instance_id, o.session_id, o.api_session
	INTO h_instance, h_session, h_api
	FROM presence o WHERE lower(o.nickname) = lower(p_nick);
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	IF p_api IS NULL THEN
		IF h_instance = p_instance AND h_session = p_session THEN
			RETURN false;
		END IF;
		RETURN EXISTS (SELECT 1 FROM presence m
			       WHERE m.instance_id = p_instance
				 AND m.session_id = p_session);
	END IF;
	IF h_api = p_api THEN
		RETURN false;
	END IF;
	RETURN EXISTS (SELECT 1 FROM presence m WHERE m.api_session = p_api);
END $function$
;
