-- bd_notify_batch: pg_notify on a room's channel of several of its messages, {"k":"b","r":room,"t":ms,"m":[items]}; p_items are [seq,id,nick,content] JSON arrays joined by commas, in seq order.
-- Repeatable: migrate/migrate up re-applies this file whenever it changes.

CREATE OR REPLACE FUNCTION bd_notify_batch(p_room bigint, p_t bigint,
					   p_items text)
 RETURNS void
 LANGUAGE sql
AS $function$
	SELECT pg_notify('room_' || p_room,
		'{"k":"b","r":' || p_room || ',"t":' || p_t || ',"m":[' ||
		p_items || ']}');
$function$
;
