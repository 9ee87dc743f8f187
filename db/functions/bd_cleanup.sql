-- bd_cleanup: retention: deletes all but the newest p_keep messages of every room.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_cleanup(p_keep integer)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
	n bigint;
BEGIN
	DELETE FROM messages m
	USING (SELECT x.id FROM (
		SELECT messages.id, row_number() OVER (
			PARTITION BY messages.room_id ORDER BY messages.seq DESC) AS rn
		FROM messages) x
	       WHERE x.rn > p_keep) old
	WHERE m.id = old.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $function$
;
