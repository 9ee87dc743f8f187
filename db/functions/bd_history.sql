-- bd_history: the newest p_limit messages of a room after seq p_after, oldest first.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_history(p_room bigint, p_after bigint, p_limit integer)
 RETURNS TABLE(seq bigint, id bigint, nickname text, content text, t bigint)
 LANGUAGE sql
 STABLE
AS $function$
	SELECT * FROM (
		SELECT m.seq, m.id, m.nickname, m.content,
		       floor(extract(epoch FROM m.created_at) * 1000)::bigint
		FROM messages m
		WHERE m.room_id = p_room AND m.seq > p_after
		ORDER BY m.seq DESC LIMIT p_limit) x
	ORDER BY 1;
$function$
;
