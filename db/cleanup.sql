-- Retention job, run by `make cleanup` (migrate/cleanup) through psql:
-- keep the newest :keep messages of every room.
\set ON_ERROR_STOP on
SELECT bd_cleanup(:keep) AS deleted;
