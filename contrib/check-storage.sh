#!/usr/bin/env bash
# Storage check: every table of the database with its size on disk (with
# indexes and TOAST) and its exact row count, flagging the sizes past which
# the retention job or an archive run is due: messages over 5 MB, users
# over 500 KB, rooms over 200 KB (thresholds in bytes overridable with
# BD_MAX_MESSAGES_BYTES, BD_MAX_USERS_BYTES, BD_MAX_ROOMS_BYTES).
#
# Usage: contrib/check-storage.sh
# Exit status: 0, or 1 when a table is over its threshold.
# The database is DATABASE_URL when set, else the PG* environment variables.
set -euo pipefail

psql_cmd=(psql -X -q -At -v ON_ERROR_STOP=1 -F $'\t'
	-v max_messages="${BD_MAX_MESSAGES_BYTES:-5242880}"
	-v max_users="${BD_MAX_USERS_BYTES:-512000}"
	-v max_rooms="${BD_MAX_ROOMS_BYTES:-204800}")
if [ -n "${DATABASE_URL:-}" ]; then
	psql_cmd+=(-d "$DATABASE_URL")
fi
# query_to_xml counts each table's rows exactly, in one statement.
out=$("${psql_cmd[@]}" -f - <<'SQL'
SELECT c.relname,
       pg_total_relation_size(c.oid),
       pg_size_pretty(pg_total_relation_size(c.oid)),
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I',
		n.nspname, c.relname), false, true, '')))[1]::text::bigint,
       CASE c.relname WHEN 'messages' THEN :max_messages
		      WHEN 'users' THEN :max_users
		      WHEN 'rooms' THEN :max_rooms END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public'
ORDER BY 2 DESC, 1
SQL
)
over=0
printf '%-24s %12s %12s  %s\n' table size rows check
while IFS=$'\t' read -r name bytes pretty rows max; do
	check=
	if [ -n "$max" ]; then
		if [ "$bytes" -gt "$max" ]; then
			check="OVER $((max / 1024)) KB: run migrate/cleanup or migrate/archive"
			over=1
		else
			check="ok (limit $((max / 1024)) KB)"
		fi
	fi
	printf '%-24s %12s %12s  %s\n' "$name" "$pretty" "$rows" "$check"
done <<<"$out"
exit "$over"
