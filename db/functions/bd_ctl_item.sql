-- bd_ctl_item: one item of a bd_ctl batch (presence, /nick, /join, /create, /leave, HTTP session open/resume/end); an expected refusal is an outcome, not an exception.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.
--
-- x is {"k": kind, ...}; the kinds and their members:
--   pa  a line session connected: s (session), n (nickname)
--   pd  a line session is gone: s
--   n   /nick: s, a (API session or absent), u (user or absent), o (old
--       nickname), n (new), c (current room or absent)
--   j   /join, c /create: s, a, u, n (nickname), r (room), c (current room)
--       (/create's room cap is bd_ctl's: it needs the batch's count)
--   l   /leave: s, a, u, n, i (room id)
--   so  HTTP session open: t (secret), n (nickname)
--   sr  HTTP session resume: t, d (idle seconds), v (known rooms_version)
--   se  HTTP session end: e (its id)
-- err is NULL, or the SQLSTATE the single statement of that operation
-- would have failed with: 23505 when a connected session holds the
-- nickname (decided by a look-up first, so nothing is undone). Anything
-- else unexpected raises; bd_ctl then runs the batch item by item in
-- subtransactions. The other columns are the operation's outcome:
--   n   user_id, name (the nickname), rooms
--   j c user_id, room_id and name (the room's; NULL: no such room, or
--       /create of a name that exists)
--   so  session, user_id, name, rooms
--   sr  session (NULL: ended or idle), user_id, name, room, rooms (NULL:
--       the version is v), version
--   se  session (NULL: it was gone already)

CREATE OR REPLACE FUNCTION bd_ctl_item(p_instance text, x jsonb, OUT err text, OUT user_id bigint, OUT room_id bigint, OUT name text, OUT room text, OUT rooms jsonb, OUT session bigint, OUT version bigint)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
DECLARE
	k text := x ->> 'k';
	s bigint := (x ->> 's')::bigint;
	a bigint := (x ->> 'a')::bigint;
	u bigint := (x ->> 'u')::bigint;
	n text := x ->> 'n';
BEGIN
	CASE k
	WHEN 'pa' THEN
		INSERT INTO presence (instance_id, session_id, nickname)
		VALUES (p_instance, s, n)
		ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			err := '23505';
		END IF;
	WHEN 'pd' THEN
		PERFORM bd_presence_del(p_instance, s);
	WHEN 'n' THEN
		PERFORM bd_presence_reap_for(n, p_instance);
		IF bd_presence_taken(p_instance, s, a, n) THEN
			err := '23505';
			RETURN;
		END IF;
		SELECT b.user_id, b.nickname, b.rooms INTO user_id, name, rooms
		FROM bd_nick(u, x ->> 'o', n) b;
		PERFORM bd_presence_set(p_instance, s, a, name, user_id,
					x ->> 'c');
	WHEN 'j', 'c' THEN
		IF bd_presence_taken(p_instance, s, a, n) THEN
			err := '23505';
			RETURN;
		END IF;
		IF k = 'j' THEN
			SELECT b.user_id, b.room_id, b.room_name
			INTO user_id, room_id, name
			FROM bd_join(u, n, x ->> 'r') b;
		ELSE
			SELECT b.user_id, b.room_id, b.room_name
			INTO user_id, room_id, name
			FROM bd_create(u, n, x ->> 'r') b;
		END IF;
		PERFORM bd_presence_set(p_instance, s, a, n, user_id,
					coalesce(name, x ->> 'c'));
	WHEN 'l' THEN
		IF bd_presence_taken(p_instance, s, a, n) THEN
			err := '23505';
			RETURN;
		END IF;
		PERFORM bd_leave(u, n, (x ->> 'i')::bigint);
		PERFORM bd_presence_set(p_instance, s, a, n, u, NULL);
	WHEN 'so' THEN
		PERFORM bd_presence_reap_for(n, NULL);
		IF EXISTS (SELECT 1 FROM presence p
			   WHERE lower(p.nickname) = lower(n)) THEN
			err := '23505';
			RETURN;
		END IF;
		SELECT o.session, o.user_id, o.nickname, o.rooms
		INTO session, user_id, name, rooms
		FROM bd_session_open(x ->> 't', n) o;
	WHEN 'sr' THEN
		SELECT r.session, r.user_id, r.nickname, r.room, r.rooms,
		       r.rooms_version
		INTO session, user_id, name, room, rooms, version
		FROM bd_session_resume(x ->> 't', (x ->> 'd')::double precision,
				       (x ->> 'v')::bigint) r;
	WHEN 'se' THEN
		IF bd_session_end((x ->> 'e')::bigint) THEN
			session := (x ->> 'e')::bigint;
		END IF;
	END CASE;
END $function$
;
