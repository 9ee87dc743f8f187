-- Room "system" is reserved (name_is_reserved_room() in src/core/names.c):
-- its lines, "[system] nick: text", would pass for server notices. A room
-- of that name made before this migration is renamed to system-<id> (with
-- '_' appended while that is taken); members, messages and its channel
-- keep the room id. Then a CHECK keeps the name free.
DO $$
DECLARE
	r bigint;
	n text;
BEGIN
	SELECT id INTO r FROM rooms WHERE name = 'system';
	IF r IS NULL THEN
		RETURN;
	END IF;
	n := 'system-' || r;
	WHILE EXISTS (SELECT 1 FROM rooms WHERE name = n) LOOP
		n := n || '_';
	END LOOP;
	UPDATE rooms SET name = n WHERE id = r;
	UPDATE presence SET room = n WHERE room = 'system';
END $$;

ALTER TABLE rooms ADD CONSTRAINT rooms_name_not_reserved
	CHECK (name <> 'system');
