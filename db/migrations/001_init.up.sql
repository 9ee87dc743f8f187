-- Baby Discord schema: users, rooms, memberships, messages.
-- Messages carry a per-room sequence number assigned under the room's row
-- lock (rooms.last_seq), so within a room seq order equals commit order and
-- "everything after seq N" is a safe catch-up query.

CREATE TABLE users (
	id         bigserial PRIMARY KEY,
	nickname   text NOT NULL CHECK (nickname ~ '^[A-Za-z0-9_-]{1,32}$'),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_nickname_lower ON users (lower(nickname));

CREATE TABLE rooms (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9_-]{1,50}$'),
	created_by bigint REFERENCES users (id) ON DELETE SET NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_seq   bigint NOT NULL DEFAULT 0
);

CREATE TABLE room_members (
	room_id   bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	joined_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

CREATE TABLE messages (
	id         bigserial PRIMARY KEY,
	room_id    bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
	seq        bigint NOT NULL,
	user_id    bigint REFERENCES users (id) ON DELETE SET NULL,
	nickname   text NOT NULL,	-- the sender's nickname when it was sent
	content    text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (room_id, seq)		-- also "newest messages of a room"
);
