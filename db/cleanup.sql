-- Retention job, run by `make cleanup` (migrate/cleanup) through psql:
-- keep the newest :keep messages of every room, remove guests that are
-- gone (bd_cleanup_guests), then users left with nothing for the retention
-- period (bd_cleanup_users). Prints the three counts, separated by spaces.
\set ON_ERROR_STOP on
SELECT bd_cleanup(:keep) || ' ' || bd_cleanup_guests() || ' ' ||
       bd_cleanup_users();
