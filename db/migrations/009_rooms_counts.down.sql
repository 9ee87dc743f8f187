-- bd_rooms_online() as in 003.
-- /rooms: members, and how many of them are connected anywhere.
CREATE OR REPLACE FUNCTION bd_rooms_online()
RETURNS TABLE (name text, members bigint, online bigint)
LANGUAGE sql STABLE AS $$
	SELECT r.name, count(m.user_id),
	       count(m.user_id) FILTER (WHERE EXISTS (
			SELECT 1 FROM presence p WHERE p.user_id = m.user_id))
	FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id
	GROUP BY r.id, r.name ORDER BY r.name;
$$;
