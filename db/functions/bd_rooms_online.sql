-- bd_rooms_online: /rooms and GET /api/rooms: each room with its members and how many are online.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_rooms_online()
 RETURNS TABLE(name text, members bigint, online bigint)
 LANGUAGE sql
 STABLE
AS $function$
	SELECT r.name, coalesce(m.n, 0), coalesce(o.n, 0)
	FROM rooms r
	LEFT JOIN (SELECT room_id, count(*) AS n FROM room_members
		   GROUP BY room_id) m ON m.room_id = r.id
	LEFT JOIN (SELECT rm.room_id, count(*) AS n FROM room_members rm
		   WHERE rm.user_id IN (SELECT p.user_id FROM presence p
					WHERE p.user_id IS NOT NULL)
		   GROUP BY rm.room_id) o ON o.room_id = r.id
	ORDER BY r.name;
$function$
;
