-- The single-item functions come back as they were; the batch functions
-- go (migrate/migrate up applies their files again).
DROP FUNCTION IF EXISTS bd_ctl(text, jsonb);
DROP FUNCTION IF EXISTS bd_ctl(text, jsonb, boolean);
DROP FUNCTION IF EXISTS bd_ctl_item(text, jsonb);
DROP FUNCTION IF EXISTS bd_presence_taken(text, bigint, bigint, text);

CREATE OR REPLACE FUNCTION bd_presence_add(p_instance text, p_session bigint, p_nick text)
 RETURNS void
 LANGUAGE sql
AS $function$
	INSERT INTO presence (instance_id, session_id, nickname)
	VALUES (p_instance, p_session, p_nick);
$function$
;

CREATE OR REPLACE FUNCTION bd_create(p_user bigint, p_nick text, p_room text, p_max bigint, OUT user_id bigint, OUT room_id bigint, OUT room_name text)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
	IF p_max > 0 THEN
		PERFORM pg_advisory_xact_lock(4242013);	-- this migration's
		IF NOT EXISTS (SELECT 1 FROM rooms r WHERE r.name = p_room)
		   AND (SELECT count(*) FROM rooms) >= p_max THEN
			RAISE EXCEPTION 'too many rooms (max %)', p_max
				USING ERRCODE = 'BD001';
		END IF;
	END IF;
	SELECT c.user_id, c.room_id, c.room_name
	INTO user_id, room_id, room_name
	FROM bd_create(p_user, p_nick, p_room) c;
END $function$
;
