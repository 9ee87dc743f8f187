CREATE OR REPLACE FUNCTION bd_list()
RETURNS TABLE (nickname text, room text)
LANGUAGE sql STABLE AS $$
	SELECT p.nickname, p.room FROM presence p
	ORDER BY p.connected_at, p.instance_id, p.session_id;
$$;
DROP FUNCTION bd_presence_set(text, bigint, bigint, text, bigint, text);
CREATE FUNCTION bd_presence_set(p_instance text, p_session bigint,
				p_nick text, p_user bigint, p_room text)
RETURNS void LANGUAGE sql AS $$
	UPDATE presence SET nickname = p_nick, user_id = p_user, room = p_room
	WHERE instance_id = p_instance AND session_id = p_session;
$$;
DROP FUNCTION bd_session_tick(bigint[], float8);
DROP FUNCTION bd_session_end(bigint);
DROP FUNCTION bd_session_resume(text, float8);
DROP FUNCTION bd_session_open(text, text);
DELETE FROM presence WHERE api_session IS NOT NULL;
DROP INDEX presence_local;
ALTER TABLE presence
	DROP CONSTRAINT presence_owner,
	DROP COLUMN api_session,
	ALTER COLUMN instance_id SET NOT NULL,
	ALTER COLUMN session_id SET NOT NULL,
	ADD PRIMARY KEY (instance_id, session_id);
DROP TABLE api_sessions;
