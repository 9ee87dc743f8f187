#!/usr/bin/env bash
# Benchmarks for the Baby Discord server: starts it on 127.0.0.1:9101/3101
# with a temporary config, runs loadgen scenarios against it and prints the
# figures. Needs a migrated database; it creates rooms named bench*_<stamp>.
#
# usage: tests/bench/run.sh [all|quick|a|b|c|d|e ...]
#   all (default) runs a, b, c, d and e; quick runs c only.
#   a: 1,000 clients in one room, 1 sender at 100 msg/s for 10 s
#      (aim: p99 latency < 20 ms)
#   b: 10 senders flat out, 2,000 messages each, 10 more clients
#      (aim: >= 10,000 committed msg/s)
#   c: smoke, 50 clients, 5 senders x 100 messages
#   d: 2,000 TCP clients + 2,000 SSE streams (HTTP sessions) in one room,
#      idle for 70 s (longer than session_idle_timeout_s, the HTTP
#      keep-alive timeout and several heartbeats), then 20 messages at
#      10 msg/s; reports connected counts and server RSS
#   e: 250 TCP + 250 SSE subscribers in one room, 1 TCP sender at
#      100 msg/s for 10 s (aim: p99 latency < 20 ms over all receivers)
# env: BD_SERVER (server binary; default $BUILD/babydiscord),
#      DATABASE_URL (required), BUILD (default build), CC (default cc),
#      BENCH_STRICT=1 (exit non-zero when an aim is missed, too),
#      BENCH_NOFILE (descriptor limit for server and loadgen; default
#      16384, at most the hard limit).
# Exit status: 0 when every scenario delivered everything, else 1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-build}
case $build in
/*) ;;
*) build=$root/$build ;;
esac
server=${BD_SERVER:-$build/babydiscord}
loadgen=$build/bench/loadgen
src=$root/tests/bench/loadgen.c
tcp_port=9101
http_port=3101
ready_timeout=30	# seconds for the server's readiness line
stop_timeout=15		# seconds for the server to exit after SIGTERM
nofile=${BENCH_NOFILE:-16384}	# open files, server and loadgen (d: 4,000+)

die() {
	echo "run.sh: $*" >&2
	exit 2
}

scenarios=()
for arg in "${@:-all}"; do
	case $arg in
	all) scenarios+=(a b c d e) ;;
	quick) scenarios+=(c) ;;
	a | b | c | d | e) scenarios+=("$arg") ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown scenario '$arg' (all, quick, a, b, c, d, e)" ;;
	esac
done

[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL is not set"
[[ -x $server ]] || die "no server binary at $server (set BD_SERVER)"

if [[ ! -x $loadgen || $src -nt $loadgen ]]; then
	mkdir -p "$(dirname "$loadgen")"
	cmd=("${CC:-cc}" -std=c11 -O2 -g -Wall -Wextra -Wshadow
		-Wstrict-prototypes -Wmissing-prototypes -Werror
		-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
		-o "$loadgen" "$src")
	echo "+ ${cmd[*]}"
	"${cmd[@]}"
fi

tmp=$(mktemp -d /tmp/bd-bench.XXXXXX)
log=$tmp/server.log
server_pid=
drain_pid=

cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if [[ -n $drain_pid ]]; then
		kill "$drain_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

cat >"$tmp/config.json" <<EOF
{
	"instance_id": "bench",
	"listen_address": "127.0.0.1",
	"tcp_port": $tcp_port,
	"http_port": $http_port,
	"database_url": $(json_str "$DATABASE_URL"),
	"history_size": 10,
	"max_message_bytes": 2000,
	"outq_limit_bytes": 8388608,
	"log_level": "info",
	"cleanup_interval_s": 0,
	"cleanup_keep": 1000,
	"session_idle_timeout_s": 60,
	"sse_heartbeat_s": 15
}
EOF

echo "== machine"
echo "cpus: $(nproc)"
echo "model: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB\n", $2 / 1048576 }' /proc/meminfo)"
echo "kernel: $(uname -r)"
echo "server: $server ($("$server" --version 2>&1 | head -n 1 || true))"

# 4,000 clients (d) need as many descriptors in the server, which inherits
# this limit; loadgen raises its own.
# Above the hard limit needs CAP_SYS_RESOURCE; else we go up to it.
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [[ $soft != unlimited ]] && ((soft < nofile)); then
	if [[ $hard == unlimited ]] || ((hard >= nofile)); then
		ulimit -Sn "$nofile"
	elif ! ulimit -n "$nofile" 2>/dev/null; then
		ulimit -Sn "$hard"
		echo "run.sh: warning: ulimit -n is $hard, not $nofile" >&2
	fi
fi
echo "ulimit -n: $(ulimit -Sn)"

# The server's stderr goes through a FIFO so that we can block on its lines:
# readiness is the "ready:" line, never a sleep; EOF means it died.
mkfifo "$tmp/stderr"
echo "== server"
echo "+ $server --config $tmp/config.json"
"$server" --config "$tmp/config.json" 2>"$tmp/stderr" &
server_pid=$!
exec 3<"$tmp/stderr"
ready=
deadline=$((SECONDS + ready_timeout))
while ((SECONDS < deadline)); do
	if ! IFS= read -r -t $((deadline - SECONDS + 1)) line <&3; then
		break
	fi
	printf '%s\n' "$line" >>"$log"
	if [[ $line == *"ready: tcp 127.0.0.1:$tcp_port"* ]]; then
		ready=1
		break
	fi
done
if [[ -z $ready ]]; then
	echo "run.sh: server not ready within ${ready_timeout}s; its log:" >&2
	tail -n 30 "$log" >&2 || true
	exit 1
fi
cat <&3 >>"$log" &
drain_pid=$!
exec 3<&-
echo "server pid $server_pid: $(grep -m 1 'ready:' "$log")"

stamp=$(date +%s)_$$
failed=0
missed=0
summary=()

# run_scenario NAME ARGS...: runs loadgen, keeps its output in $tmp/NAME.out.
run_scenario() {
	local name=$1 rc=0
	shift
	local cmd=("$loadgen" --host 127.0.0.1 --port "$tcp_port"
		--http-port "$http_port" --server-pid "$server_pid" "$@")

	echo
	echo "== scenario $name"
	echo "+ ${cmd[*]}"
	"${cmd[@]}" | tee "$tmp/$name.out" || rc=$?
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "run.sh: the server died during scenario $name" >&2
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	if ((rc != 0)); then
		failed=1
	fi
	return 0
}

# field FILE LINE KEY: the number after KEY on the line starting with LINE.
field() {
	sed -n "/^$2/s/.* $3 \([0-9.]*\).*/\1/p" "$1" | head -n 1
}

# aim NAME VALUE OP LIMIT TEXT: records whether VALUE OP LIMIT holds.
aim() {
	local verdict=missed

	if [[ -n $2 ]] && awk -v v="$2" -v l="$4" "BEGIN { exit !(v $3 l) }"; then
		verdict=met
	else
		missed=1
	fi
	summary+=("$1: $5: ${2:-?} (aim $3 $4): $verdict")
}

for s in "${scenarios[@]}"; do
	case $s in
	a)
		run_scenario a --room "bencha_$stamp" --clients 999 --senders 1 \
			--messages 1000 --rate 100 --setup-timeout 120 \
			--duration-max 40 --idle-timeout 10
		aim a "$(field "$tmp/a.out" latency_ms: p99)" '<' 20 "p99 latency ms"
		;;
	b)
		run_scenario b --room "benchb_$stamp" --clients 10 --senders 10 \
			--messages 2000 --rate 0 --window 64 \
			--duration-max 60 --idle-timeout 10
		aim b "$(field "$tmp/b.out" rates: committed)" '>=' 10000 \
			"committed msg/s"
		;;
	c)
		run_scenario c --room "benchc_$stamp" --clients 50 --senders 5 \
			--messages 100 --rate 0 --duration-max 30 \
			--idle-timeout 10
		;;
	d)
		run_scenario d --room "benchd_$stamp" --clients 1999 \
			--senders 1 --sse-clients 2000 --messages 20 \
			--rate 10 --hold 70 --setup-timeout 300 \
			--duration-max 60 --idle-timeout 15
		for key in connections_tcp connections_sse server_health \
			server_rss_kb server_fds; do
			line=$(grep -m 1 "^$key:" "$tmp/d.out" || echo "$key: ?")
			summary+=("d: $line")
		done
		;;
	e)
		run_scenario e --room "benche_$stamp" --clients 249 \
			--senders 1 --sse-clients 250 --messages 1000 \
			--rate 100 --setup-timeout 120 --duration-max 40 \
			--idle-timeout 10
		aim e "$(field "$tmp/e.out" latency_ms: p99)" '<' 20 \
			"p99 latency ms (all receivers)"
		summary+=("e: p99 latency ms: tcp $(field "$tmp/e.out" \
			latency_tcp_ms: p99), sse $(field "$tmp/e.out" \
			latency_sse_ms: p99)")
		;;
	esac
	summary+=("$s: $(grep -m 1 '^result:' "$tmp/$s.out" || echo 'result: none')")
done

echo
echo "== stopping server (SIGTERM)"
kill -TERM "$server_pid"
server_rc=0
if ! timeout "$stop_timeout" tail --pid="$server_pid" -s 0.1 -f /dev/null; then
	echo "run.sh: server still running ${stop_timeout}s after SIGTERM; SIGKILL" >&2
	kill -KILL "$server_pid" 2>/dev/null || true
fi
wait "$server_pid" || server_rc=$?
wait "$drain_pid" 2>/dev/null || true
drain_pid=
server_pid=
echo "server exit status: $server_rc"
echo "server log: $(grep -c ' WARN ' "$log" || true) warnings, $(grep -c ' ERROR ' "$log" || true) errors"
grep -E ' (WARN|ERROR) ' "$log" | head -n 10 || true
if ((server_rc != 0)); then
	failed=1
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if ((failed)); then
	echo "FAILED: a scenario lost messages or connections, or the server did not exit cleanly"
	exit 1
fi
if ((missed)) && [[ ${BENCH_STRICT:-0} == 1 ]]; then
	echo "FAILED: an aim was missed (BENCH_STRICT=1)"
	exit 1
fi
echo "OK"
