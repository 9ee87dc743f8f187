#!/usr/bin/env bash
# Several Baby Discord instances in the background, sharing one database:
# instance N runs with config/instanceN.json, logs to var/log/instanceN.log
# and has its pid in var/run/instanceN.pid. Run from anywhere.
#
# Usage: contrib/cluster.sh start [N...]   start (default 1 2 3); wait for ready
#        contrib/cluster.sh stop [N...]    SIGTERM, wait for the exit
#        contrib/cluster.sh restart N...   stop (if running), then start
#        contrib/cluster.sh roll [N...]    rolling restart of the running ones
#                                          (default 1 2 3), one at a time: the
#                                          next only once this one is ready
#        contrib/cluster.sh status [N...]  running or not; GET /health of each
#
# start and restart use DATABASE_URL (make run-cluster sets it) and record it
# in var/run/cluster.dburl (mode 600), the one used when DATABASE_URL is
# unset; stop removes it with the last pid file. An instance is ready when
# its log has the server's `ready` line (listeners up, database connected)
# and /health answers 200.
# Environment: BD_SERVER (build/babydiscord), BD_READY_TIMEOUT (30 seconds),
# BD_STOP_TIMEOUT (15 seconds).
set -euo pipefail

TOP=$(cd -- "$(dirname -- "$0")/.." && pwd)
cd -- "$TOP"

SERVER=${BD_SERVER:-build/babydiscord}
READY_TIMEOUT=${BD_READY_TIMEOUT:-30}
STOP_TIMEOUT=${BD_STOP_TIMEOUT:-15}
DEFAULT_INSTANCES=(1 2 3)
LOG_DIR=var/log
RUN_DIR=var/run
DBURL_FILE=$RUN_DIR/cluster.dburl
DBURL_DONE=

# Instances this invocation started: stopped again if the start fails.
declare -A STARTED=()

say()
{
	echo "cluster: $*"
}

warn()
{
	echo "cluster: $*" >&2
}

die()
{
	warn "$*"
	exit 1
}

usage()
{
	sed -n '6,9s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

config_of()
{
	echo "config/instance$1.json"
}

log_of()
{
	echo "$LOG_DIR/instance$1.log"
}

pidfile_of()
{
	echo "$RUN_DIR/instance$1.pid"
}

# A key of the instance's config: a number or a string, else the default.
config_value()
{
	local n=$1 key=$2 def=$3 sp='[[:space:]]*' v

	v=$(sed -n "s/.*\"$key\"$sp:$sp\"\{0,1\}\([^\",}]*\).*/\1/p" \
		"$(config_of "$n")" | head -n 1)
	echo "${v:-$def}"
}

addr_of()
{
	config_value "$1" listen_address 127.0.0.1
}

tcp_port_of()
{
	config_value "$1" tcp_port 9001
}

http_port_of()
{
	config_value "$1" http_port 3001
}

# "tcp 127.0.0.1:9001, http 127.0.0.1:3001"
where_of()
{
	local a

	a=$(addr_of "$1")
	echo "tcp $a:$(tcp_port_of "$1"), http $a:$(http_port_of "$1")"
}

check_instance()
{
	case "$1" in
	'' | *[!0-9]*) die "bad instance number '$1'" ;;
	esac
	[ -f "$(config_of "$1")" ] || die "no $(config_of "$1") for instance $1"
}

# Whether a process exists and is not a zombie.
alive()
{
	local state

	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Whether pid $1 is the server of instance $2 (and not a reused pid).
is_instance()
{
	local cmd

	alive "$1" || return 1
	cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	[[ $cmd == *babydiscord*--config*"instance$2.json"* ]]
}

# The pid of instance $1 if it runs; removes a stale pid file.
running_pid()
{
	local n=$1 pf pid

	pf=$(pidfile_of "$n")
	[ -f "$pf" ] || return 1
	pid=$(head -c 32 "$pf" 2>/dev/null || true)
	case "$pid" in
	'' | *[!0-9]*) pid= ;;
	esac
	if [ -n "$pid" ] && is_instance "$pid" "$n"; then
		echo "$pid"
		return 0
	fi
	warn "instance$n: stale pid file $pf (pid ${pid:-?} is not it), removed"
	rm -f -- "$pf"
	return 1
}

# The log since byte $2, last lines, indented.
log_tail()
{
	local log=$1 off=$2

	echo "--- last lines of $log:" >&2
	tail -c +"$((off + 1))" -- "$log" | tail -n 20 | sed 's/^/  | /' >&2
}

# Waits for the ready line that instance $1 (pid $2) writes to its log after
# byte $3, until the epoch second $4. Returns 0 ready, 1 exited, 2 timeout.
wait_ready()
{
	local n=$1 pid=$2 off=$3 deadline=$4 log line left tail_pid rc=2

	log=$(log_of "$n")
	exec 8< <(exec tail -c +"$((off + 1))" -F -- "$log" 2>/dev/null)
	tail_pid=$!
	while :; do
		left=$((deadline - EPOCHSECONDS))
		[ "$left" -gt 0 ] || break
		[ "$left" -le 1 ] || left=1
		# At most a second per read, to notice an exit between lines.
		if IFS= read -r -t "$left" -u 8 line; then
			if [[ $line == *" INFO ready tcp="* ]]; then
				rc=0
				break
			fi
			continue
		fi
		if ! alive "$pid"; then
			# Lines written just before the exit are still in the pipe.
			while IFS= read -r -t 1 -u 8 line; do
				[[ $line == *" INFO ready tcp="* ]] && { rc=0; break; }
			done
			[ "$rc" = 0 ] || rc=1
			break
		fi
	done
	kill "$tail_pid" 2>/dev/null || true
	exec 8<&-
	return "$rc"
}

# Sends SIGTERM to pid $1 and waits until it is gone or epoch second $2.
wait_gone()
{
	local pid=$1 deadline=$2

	while alive "$pid"; do
		[ "$EPOCHSECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
	# Reap it if it is our child (a start that failed).
	wait "$pid" 2>/dev/null || true
	return 0
}

launch()
{
	local n=$1 log pf pid

	log=$(log_of "$n")
	pf=$(pidfile_of "$n")
	printf '=== %s cluster.sh: starting instance%s (%s)\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$n" "$(config_of "$n")" >>"$log"
	OFFSET[$n]=$(stat -c %s -- "$log")
	# Its own session: a Ctrl-C in this terminal does not reach it.
	setsid "$SERVER" --config "$(config_of "$n")" \
		</dev/null >>"$log" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$pf"
	STARTED[$n]=$pid
	say "instance$n: started, pid $pid (log $log)"
}

# Stops what this invocation started (after a failed start or a signal).
undo_started()
{
	local n pid deadline

	deadline=$((EPOCHSECONDS + STOP_TIMEOUT))
	local -A was_alive=()

	for n in "${!STARTED[@]}"; do
		pid=${STARTED[$n]}
		alive "$pid" && was_alive[$n]=1
		kill -TERM "$pid" 2>/dev/null || true
	done
	for n in "${!STARTED[@]}"; do
		pid=${STARTED[$n]}
		if wait_gone "$pid" "$deadline"; then
			rm -f -- "$(pidfile_of "$n")"
			if [ -n "${was_alive[$n]:-}" ]; then
				warn "instance$n: stopped again (pid $pid)"
			else
				warn "instance$n: pid $pid has exited; pid file removed"
			fi
		else
			warn "instance$n: pid $pid did not exit; kill -KILL $pid"
		fi
	done
	STARTED=()
}

on_signal()
{
	trap - INT TERM
	warn "interrupted; stopping the instances started by this run"
	undo_started
	exit 130
}

declare -A OFFSET=()

# DATABASE_URL, else the one the cluster was last started with.
use_dburl()
{
	[ -z "$DBURL_DONE" ] || return 0
	DBURL_DONE=1
	if [ -z "${DATABASE_URL:-}" ]; then
		[ -s "$DBURL_FILE" ] ||
			die "DATABASE_URL is not set, and no cluster was started" \
				"(make run-cluster sets it)"
		DATABASE_URL=$(cat "$DBURL_FILE")
	elif [ -s "$DBURL_FILE" ] &&
		[ "$DATABASE_URL" != "$(cat "$DBURL_FILE")" ]; then
		warn "note: DATABASE_URL differs from the one in $DBURL_FILE (the last start)"
	fi
}

cmd_start()
{
	local n pid deadline code ok=1 waiting=()

	use_dburl
	[ -x "$SERVER" ] || die "no server binary $SERVER (run make)"
	export DATABASE_URL

	trap on_signal INT TERM
	for n in "$@"; do
		if pid=$(running_pid "$n"); then
			say "instance$n: already running (pid $pid); nothing to do"
			continue
		fi
		launch "$n"
		waiting+=("$n")
	done
	[ ${#waiting[@]} -gt 0 ] || return 0

	deadline=$((EPOCHSECONDS + READY_TIMEOUT))
	for n in "${waiting[@]}"; do
		pid=${STARTED[$n]}
		code=0
		wait_ready "$n" "$pid" "${OFFSET[$n]}" "$deadline" || code=$?
		case "$code" in
		0) ;;
		1)
			warn "instance$n: the server exited before it was ready"
			log_tail "$(log_of "$n")" "${OFFSET[$n]}"
			ok=0
			break
			;;
		*)
			warn "instance$n: not ready after $READY_TIMEOUT s" \
				"(no 'ready' line in $(log_of "$n"))"
			log_tail "$(log_of "$n")" "${OFFSET[$n]}"
			ok=0
			break
			;;
		esac
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
			"http://$(addr_of "$n"):$(http_port_of "$n")/health" || true)
		if [ "$code" != 200 ]; then
			warn "instance$n: ready, but GET /health answered '${code:-nothing}'"
			log_tail "$(log_of "$n")" "${OFFSET[$n]}"
			ok=0
			break
		fi
		say "instance$n: ready: $(where_of "$n"), /health 200"
	done
	if [ "$ok" = 0 ]; then
		undo_started
		trap - INT TERM
		die "start failed"
	fi
	trap - INT TERM
	STARTED=()
	(umask 077 && printf '%s\n' "$DATABASE_URL" >"$DBURL_FILE")
}

cmd_stop()
{
	local n pid deadline left rc=0 pids=()

	for n in "$@"; do
		if pid=$(running_pid "$n"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids[n]=$pid
		else
			say "instance$n: not running"
		fi
	done
	deadline=$((EPOCHSECONDS + STOP_TIMEOUT))
	for n in "${!pids[@]}"; do
		pid=${pids[$n]}
		if wait_gone "$pid" "$deadline"; then
			rm -f -- "$(pidfile_of "$n")"
			say "instance$n: stopped (pid $pid)"
		else
			warn "instance$n: pid $pid still running $STOP_TIMEOUT s" \
				"after SIGTERM (log $(log_of "$n"));" \
				"kill -KILL $pid to force"
			rc=1
		fi
	done
	# The last one gone: the cluster's database is forgotten.
	left=$(find "$RUN_DIR" -maxdepth 1 -name 'instance*.pid' -print -quit)
	[ -n "$left" ] || rm -f -- "$DBURL_FILE"
	return "$rc"
}

cmd_restart()
{
	local n

	use_dburl
	for n in "$@"; do
		running_pid "$n" >/dev/null || continue
		cmd_stop "$n" || die "instance$n did not stop"
	done
	cmd_start "$@"
}

# One instance at a time: SIGTERM (it drains: clients are told to
# reconnect, to the others), wait for its exit, start it, wait until it is
# ready and /health says 200; then the next. Stops at the first failure,
# leaving the rest running.
cmd_roll()
{
	local n rolled=0

	use_dburl
	for n in "$@"; do
		if ! running_pid "$n" >/dev/null; then
			say "instance$n: not running; skipped"
			continue
		fi
		cmd_stop "$n" || die "instance$n did not stop; rolling restart halted"
		cmd_start "$n"
		rolled=$((rolled + 1))
	done
	say "rolling restart done: $rolled instance(s), one at a time"
}

cmd_status()
{
	local n pid url health rc=0

	for n in "$@"; do
		if pid=$(running_pid "$n"); then
			say "instance$n: running, pid $pid, $(where_of "$n")," \
				"log $(log_of "$n")"
		else
			say "instance$n: not running"
			rc=3
		fi
		url="http://$(addr_of "$n"):$(http_port_of "$n")/health"
		health=$(curl -s --max-time 3 "$url" || true)
		echo "  GET $url: ${health:-(no answer)}"
	done
	return "$rc"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
start | stop | status | roll) [ $# -gt 0 ] || set -- "${DEFAULT_INSTANCES[@]}" ;;
restart) [ $# -gt 0 ] || usage ;;
-h | --help) usage ;;
*) usage ;;
esac
for n in "$@"; do
	check_instance "$n"
done
mkdir -p -- "$LOG_DIR" "$RUN_DIR"

if [ "$cmd" = status ]; then
	cmd_status "$@"
	exit
fi
# One start, stop or restart at a time in this checkout (not held by servers).
exec 9>"$RUN_DIR/cluster.lock"
if ! flock -n 9; then
	warn "another contrib/cluster.sh is running here; waiting (up to 60 s)"
	flock -w 60 9 || die "gave up waiting for $RUN_DIR/cluster.lock"
fi
"cmd_$cmd" "$@"
