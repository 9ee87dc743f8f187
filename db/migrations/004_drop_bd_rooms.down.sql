CREATE FUNCTION bd_rooms(p_online bigint[])
RETURNS TABLE (name text, members bigint, online bigint)
LANGUAGE sql STABLE AS $$
	SELECT r.name, count(m.user_id),
	       count(m.user_id) FILTER (WHERE m.user_id = ANY (p_online))
	FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id
	GROUP BY r.id, r.name ORDER BY r.name;
$$;
