DROP FUNCTION bd_rooms_online();
DROP FUNCTION bd_list();
DROP FUNCTION bd_presence_set(text, bigint, text, bigint, text);
DROP FUNCTION bd_presence_del(text, bigint);
DROP FUNCTION bd_presence_add(text, bigint, text);
DROP FUNCTION bd_presence_sync(text, jsonb);
DROP FUNCTION bd_instance_beat(text, int);
DROP TABLE presence;
DROP TABLE instances;
