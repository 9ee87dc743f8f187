-- bd_presence_taken: whether setting a session's presence to p_nick would break the unique nickname (the session has a row and another row holds the name).
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- bd_ctl's pre-check for bd_presence_set: true exactly when that UPDATE
-- would raise unique_violation, so that a batch decides the item's outcome
-- without raising. The session's row is (p_instance, p_session), or the API
-- session p_api's when that is not NULL.

CREATE OR REPLACE FUNCTION bd_presence_taken(p_instance text, p_session bigint, p_api bigint, p_nick text)
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
	SELECT EXISTS (
		SELECT 1 FROM presence o
		WHERE lower(o.nickname) = lower(p_nick)
		  AND NOT coalesce(CASE WHEN p_api IS NULL
				   THEN o.instance_id = p_instance
					AND o.session_id = p_session
				   ELSE o.api_session = p_api END, false))
	   AND EXISTS (
		SELECT 1 FROM presence m
		WHERE CASE WHEN p_api IS NULL
			   THEN m.instance_id = p_instance
				AND m.session_id = p_session
			   ELSE m.api_session = p_api END);
$function$
;
