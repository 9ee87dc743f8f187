-- Back to 010: users are never removed but guests (bd_cleanup_guests).
DROP FUNCTION IF EXISTS bd_cleanup_users(interval);
DROP TRIGGER presence_left ON presence;
DROP FUNCTION bd_presence_left();
DROP INDEX messages_user;
ALTER TABLE users DROP COLUMN last_seen;
