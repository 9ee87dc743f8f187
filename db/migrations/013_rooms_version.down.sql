DROP FUNCTION IF EXISTS bd_session_resume(text, float8, bigint);
DROP TRIGGER room_members_version ON room_members;
DROP FUNCTION bd_rooms_version_bump();
ALTER TABLE users DROP COLUMN rooms_version;
