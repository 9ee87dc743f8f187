-- Retention job, run by `make cleanup` (migrate/cleanup) through psql:
-- keep the newest :keep messages of every room, and remove guests that are
-- gone (bd_cleanup_guests). Prints the two counts, separated by a space.
\set ON_ERROR_STOP on
SELECT bd_cleanup(:keep) || ' ' || bd_cleanup_guests();
