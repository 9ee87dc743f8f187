-- Control operations (presence rows, /nick, /join, /create, /leave and the
-- HTTP sessions' open, resume and end) are batched into one bd_ctl() call
-- per statement (db/functions/bd_ctl.sql), each item's expected refusal
-- decided by a look-up instead of an exception. Two single-item functions
-- lose their last caller: bd_presence_add (bd_ctl_item inserts the row
-- itself, ON CONFLICT DO NOTHING), and bd_create's 4-argument form with
-- its room cap (bd_ctl counts the rooms once per batch, under the same
-- advisory lock). IF EXISTS: a database built from scratch has not had
-- the function files applied yet when this runs (and needs no notice).
SET LOCAL client_min_messages = warning;
DROP FUNCTION IF EXISTS bd_presence_add(text, bigint, text);
DROP FUNCTION IF EXISTS bd_create(bigint, text, text, bigint);
