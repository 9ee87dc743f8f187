-- bd_rooms(online[]) counted online users from a list the instance passed;
-- presence (003) replaced it with bd_rooms_online().
DROP FUNCTION bd_rooms(bigint[]);
