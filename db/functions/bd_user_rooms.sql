-- bd_user_rooms: a user's memberships as a JSON array of {id, name}.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_user_rooms(p_user bigint)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name)
				  ORDER BY r.name), '[]'::jsonb)
	FROM room_members m JOIN rooms r ON r.id = m.room_id
	WHERE m.user_id = p_user;
$function$
;
