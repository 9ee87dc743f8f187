DROP FUNCTION bd_create(bigint, text, text, bigint);
