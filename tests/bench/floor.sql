-- The commit floor for make bench-peers (tests/bench/peers.sh): what one
-- message costs PostgreSQL alone, as bd_post() stores it: the room's seq
-- taken under its row lock, one message row, one NOTIFY of about the same
-- payload, one durable commit. pgbench runs it paced (-R) against the
-- same cluster as the server; :r is a room of its own (-D r=ID) and the
-- channel has no listener, so no server sees it.
BEGIN;
WITH s AS (
	UPDATE rooms SET last_seq = last_seq + 1 WHERE id = :r
	RETURNING last_seq
)
INSERT INTO messages (room_id, seq, user_id, nickname, content)
SELECT :r, last_seq, NULL, 'pgbench', 'b 0 0 0000000000000000' FROM s;
SELECT pg_notify('bench_floor', '{"k":"m","r":0,"s":0,"i":0,"u":"pgbench","c":"b 0 0 0000000000000000","t":0}');
COMMIT;
