#!/usr/bin/env bash
# A terminal dashboard for the local instances (make run-cluster: HTTP on
# 127.0.0.1:3001-3003): per instance its health, connections, messages
# committed and delivered (and their rate since the last refresh), delivery
# latency p50/p99, slow consumers and database errors from GET /metrics
# (falling back to /health); then PostgreSQL's connections of Baby Discord
# and NOTIFY queue usage. Refreshes every 2 s until Ctrl-C. An instance
# that does not answer is shown as down; the rest goes on.
#
# Usage: contrib/monitor.sh [--once] [--interval SECONDS] [PORT...]
#   PORT       HTTP ports to watch (default 3001 3002 3003)
#   --once     print one screen and exit (no clearing)
# The database is DATABASE_URL when set, else the PG* environment variables;
# without psql or a database the PostgreSQL lines say so. Needs curl, jq.
set -euo pipefail

once=0
interval=2
ports=()
while [ $# -gt 0 ]; do
	case "$1" in
	--once) once=1; shift ;;
	--interval) [ $# -ge 2 ] || { echo "monitor: --interval needs a value" >&2; exit 2; }
		interval=$2; shift 2 ;;
	-h | --help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*[!0-9]*) echo "monitor: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	*) ports+=("$1"); shift ;;
	esac
done
[ ${#ports[@]} -gt 0 ] || ports=(3001 3002 3003)
for tool in curl jq; do
	command -v "$tool" >/dev/null ||
		{ echo "monitor: $tool is missing" >&2; exit 2; }
done

declare -A last_committed=() last_delivered=()
last_time=

instance_line()
{
	local port=$1 m h status fields committed delivered rate_c rate_d dt

	if m=$(curl -sf --max-time 1 "http://127.0.0.1:$port/metrics" 2>/dev/null); then
		h=$(curl -s --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null || true)
		status=$(jq -r '.status // "?"' <<<"${h:-{\}}" 2>/dev/null || echo "?")
		fields=$(jq -r '[.instance_id, .active_connections.tcp,
			.active_connections.http_sessions, .active_connections.sse_streams,
			.messages_committed, (.deliveries.lines + .deliveries.events),
			.latency_us.read_to_last_write.p50, .latency_us.read_to_last_write.p99,
			.slow_consumers, .db_errors, .db_pool_waiting] | @tsv' <<<"$m")
		IFS=$'\t' read -r id tcp http sse committed delivered p50 p99 slow dberr waiting <<<"$fields"
		rate_c=-
		rate_d=-
		dt=$((EPOCHSECONDS - ${last_time:-EPOCHSECONDS}))
		if [ -n "${last_committed[$port]:-}" ] && [ "$dt" -gt 0 ]; then
			rate_c=$(((committed - last_committed[$port]) / dt))
			rate_d=$(((delivered - last_delivered[$port]) / dt))
		fi
		last_committed[$port]=$committed
		last_delivered[$port]=$delivered
		printf '%-6s %-12s %-9s %5s %5s %5s %9s %7s %9s %7s %8s %5s %6s %4s\n' \
			"$port" "$id" "$status" "$tcp" "$http" "$sse" "$committed" \
			"$rate_c" "$delivered" "$rate_d" "$p50/$p99" "$slow" "$dberr" "$waiting"
	elif h=$(curl -s --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null) && [ -n "$h" ]; then
		printf '%-6s %-12s %-9s (no /metrics: %s)\n' "$port" \
			"$(jq -r '.instance_id // "?"' <<<"$h")" \
			"$(jq -r '.status // "?"' <<<"$h")" \
			"$(jq -c '{sessions, streams}' <<<"$h")"
	else
		printf '%-6s %-12s %-9s\n' "$port" - down
	fi
}

db_lines()
{
	local psql_cmd=(psql -X -q -At -F ' ' --set ON_ERROR_STOP=1) out

	if ! command -v psql >/dev/null; then
		echo "PostgreSQL: psql is missing"
		return
	fi
	[ -z "${DATABASE_URL:-}" ] || psql_cmd+=(-d "$DATABASE_URL")
	if out=$(PGCONNECT_TIMEOUT=2 "${psql_cmd[@]}" -c \
		"SELECT count(*) FILTER (WHERE application_name LIKE 'babydiscord%'),
			count(*), round(pg_notification_queue_usage()::numeric * 100, 3)
		 FROM pg_stat_activity" 2>/dev/null); then
		read -r ours all usage <<<"$out"
		echo "PostgreSQL: $ours Baby Discord connection(s) of $all; NOTIFY queue $usage% used"
	else
		echo "PostgreSQL: not reachable"
	fi
}

screen()
{
	date -u '+Baby Discord  %Y-%m-%d %H:%M:%S UTC'
	printf '%-6s %-12s %-9s %5s %5s %5s %9s %7s %9s %7s %8s %5s %6s %4s\n' \
		port instance status tcp http sse committed msg/s delivered del/s \
		"p50/p99" slow dberr wait
	for port in "${ports[@]}"; do
		instance_line "$port"
	done
	last_time=$EPOCHSECONDS
	echo "(latency: read to last write, microseconds)"
	db_lines
}

if [ "$once" = 1 ]; then
	screen
	exit 0
fi
trap 'echo; exit 0' INT TERM
while :; do
	# Not in a $(...) subshell: the rates need the counts of last time.
	printf '\033[H\033[2J'
	screen
	sleep "$interval"
done
