-- Back to the foreign keys of messages (rows whose room or user went
-- meanwhile lose the row, or the user, as the keys would have done).
DROP TRIGGER users_deleted ON users;
DROP TRIGGER rooms_deleted ON rooms;
DROP FUNCTION bd_users_deleted();
DROP FUNCTION bd_rooms_deleted();
DELETE FROM messages m
WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = m.room_id);
UPDATE messages m SET user_id = NULL
WHERE m.user_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id);
ALTER TABLE messages
	ADD CONSTRAINT messages_room_id_fkey FOREIGN KEY (room_id)
		REFERENCES rooms (id) ON DELETE CASCADE,
	ADD CONSTRAINT messages_user_id_fkey FOREIGN KEY (user_id)
		REFERENCES users (id) ON DELETE SET NULL;
