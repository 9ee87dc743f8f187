-- The foreign keys of messages were checked row by row at every insert:
-- about 8 of the 19 µs a message costs in a set-based bd_post()
-- (BENCHMARKS.md, "Durable throughput"). They go; what they guaranteed
-- stays true by other means:
-- - bd_post() locks every room of a batch (FOR NO KEY UPDATE, as before)
--   and every sender's users row (FOR KEY SHARE, the lock the foreign key
--   took for each row) once per batch, so neither is deleted under it; a
--   sender whose user row is gone is stored without a user, as before;
-- - deleting rooms deletes their messages and deleting users clears
--   messages.user_id (what ON DELETE CASCADE and SET NULL did), in the
--   statement triggers below.
-- migrate/replay puts archived messages back only into a room it looked
-- up and with user ids it looked up, in one transaction.
ALTER TABLE messages
	DROP CONSTRAINT messages_room_id_fkey,
	DROP CONSTRAINT messages_user_id_fkey;

CREATE FUNCTION bd_rooms_deleted() RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	DELETE FROM messages m USING gone g WHERE m.room_id = g.id;
	RETURN NULL;
END $function$;

CREATE TRIGGER rooms_deleted AFTER DELETE ON rooms
	REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION bd_rooms_deleted();

CREATE FUNCTION bd_users_deleted() RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
	UPDATE messages m SET user_id = NULL FROM gone g
	WHERE m.user_id = g.id;
	RETURN NULL;
END $function$;

CREATE TRIGGER users_deleted AFTER DELETE ON users
	REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION bd_users_deleted();
