#!/usr/bin/env bash
# Benchmarks for the Baby Discord server: starts it on 127.0.0.1:9101/3101
# with a temporary config (f, g and i: two more instances on 9102/3102 and
# 9103/3103, same database, their own instance_id), runs loadgen scenarios
# against it and prints the figures. Needs a migrated database; it creates
# rooms named bench*_<stamp>.
#
# usage: tests/bench/run.sh [all|quick|cluster|durable|a|b|...|n ...]
#   all (default) runs a to k; quick runs c only; cluster runs f, g, h
#   and i; durable runs m, g, n and f (issue 14's targets); l (the
#   reconnect storm), m and n run only when named.
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
#   f: 3 instances; 1 sender on instance 1 at 1,000 msg/s for 10 s into one
#      room of 300 TCP members, about 100 on each instance
#      (aim: p99 latency < 10 ms)
#   g: 3 instances, 3 rooms; room k's 10 senders on instance k flat out,
#      10,000 messages each, and 3 receivers per room, one on each instance
#      (aim: >= 60,000 committed msg/s in total); samples /health's
#      notify_queue_usage every second
#   m: g on one instance: 3 rooms, 30 senders flat out, 10,000 messages
#      each, 9 receivers (aim: >= 50,000 committed msg/s)
#   n: g with one room: its 30 senders 10 on each instance, 9 receivers
#      (aim: >= 80% of g's rate, when g ran before it in the same run)
#   h: baseline for g, one message per transaction: pgbench calling
#      bd_post() with a one-message batch, 10 s each with 1 and 10 clients
#      on one room and 30 clients over 3 rooms (no server involved)
#   i: HTTP API request latency (every request with a session first
#      resumes it from the database): one HTTP session in a room of its
#      own, then 2,000 requests of each kind, one at a time, interleaved:
#      POST /api/message, POST /api/command /help and GET /api/rooms (no
#      session: the baseline without the session lookup); i1 on instance 1
#      alone, i3 over instances 1-3, request by request in turn (as behind
#      a round-robin proxy), one keep-alive connection per instance;
#      reports count, failures, p50/p90/p99/max ms and requests/s per kind
#   j: what issue 8 made cheap, with curl on one keep-alive connection:
#      200 POST /api/command /help for a session in no room and for one in
#      2,000 rooms (memberships made by SQL), and 200 GET /api/rooms with
#      the database's rooms (2,000 or more); p50/p90 ms and bytes
#   k: join storms: 1,000, then 5,000 clients connect, set a nickname and
#      join one room, up to 5,000 at a time (the server's db_queue_limit
#      raised so that none is refused as busy); setup time, server CPU and
#      RSS, then 10 messages at 10 msg/s to all of them
#   l: the reconnect storm (issue 11): 3 instances, nginx in front of
#      their HTTP ports (contrib/nginx/babydiscord.conf with the bench
#      ports, on 127.0.0.1:8180); 3,000 clients in 30 rooms of 100:
#      1,470 TCP receivers spread over the instances, 30 TCP senders on
#      instance 1 and 1,500 SSE streams through nginx; the senders post
#      60 msg/s in all for 20 s; 5 s in, loadgen SIGKILLs instance 3.
#      Its TCP clients reconnect to the next instance, take their
#      nicknames back and /join again (the history /join shows fills
#      their gap), its streams reconnect through nginx with
#      Last-Event-ID. Reports the time from the first loss until every
#      client is back in its room (all_back) and has every message sent
#      before that (caught_up), and what was missed or doubled. Instance
#      3 is started again afterwards if a later scenario needs it.
#      BENCH_STORM_SCALE=N divides its clients by N (a quick try).
#   f, g and i also report the CPU time of PostgreSQL's processes, the
#   machine's busy time and PostgreSQL's commit and WAL counters.
# loadgen is $BUILD/bench/loadgen, built by make from tests/bench/loadgen/
# (make bench builds it and the server, then runs this script).
# env: BD_SERVER (server binary; default $BUILD/babydiscord),
#      DATABASE_URL (required), BUILD (default build),
#      BENCH_STRICT=1 (exit non-zero when an aim is missed, too),
#      BENCH_NOFILE (descriptor limit for server and loadgen; default
#      16384, at most the hard limit), PGBENCH (pgbench binary; default
#      /usr/lib/postgresql/15/bin/pgbench), PSQL (default psql),
#      BENCH_SERVER_CPUS / BENCH_LOADGEN_CPUS (taskset -c lists for the
#      servers and nginx / for loadgen; default: not pinned),
#      NGINX (nginx binary for l; default nginx).
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
pgbench=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
tcp_ports=(9101 9102 9103)	# instance i listens on tcp_ports[i - 1]
http_ports=(3101 3102 3103)
tcp_port=${tcp_ports[0]}	# the single-server scenarios (a-e)
http_port=${http_ports[0]}
ready_timeout=30	# seconds for the server's readiness line
stop_timeout=15		# seconds for the server to exit after SIGTERM
nofile=${BENCH_NOFILE:-16384}	# open files, server and loadgen (d: 4,000+)
sample_max=120		# g: at most this many /health samples, 1 a second
pgbench_s=10		# h: seconds per pgbench run
api_requests=2000	# i: requests of each kind
api_max_s=300		# i: hard stop for one loadgen run's requests

die() {
	echo "run.sh: $*" >&2
	exit 2
}

scenarios=()
for arg in "${@:-all}"; do
	case $arg in
	all) scenarios+=(a b c d e f g h i j k) ;;
	quick) scenarios+=(c) ;;
	cluster) scenarios+=(f g h i) ;;
	durable) scenarios+=(m g n f) ;;
	a | b | c | d | e | f | g | h | i | j | k | l | m | n) scenarios+=("$arg") ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown scenario '$arg' (all, quick, cluster, durable, a-n)" ;;
	esac
done

[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL is not set"
[[ -x $server ]] || die "no server binary at $server (set BD_SERVER)"
psql=("${PSQL:-psql}" -X -q -A -t -v ON_ERROR_STOP=1 -d "$DATABASE_URL")

[[ -x $loadgen ]] ||
	die "no loadgen binary at $loadgen: make bench builds it (or make ${BUILD:-build}/bench/loadgen)"
for f in "$root"/tests/bench/loadgen/*.[ch]; do
	if [[ $f -nt $loadgen ]]; then
		echo "run.sh: warning: $loadgen is older than $f (make ${BUILD:-build}/bench/loadgen rebuilds it)" >&2
		break
	fi
done

tmp=$(mktemp -d /tmp/bd-bench.XXXXXX)
# Instance i (1-3): server_pids[i], drain_pids[i] (the cat that copies its
# stderr into $tmp/server<i>.log).
server_pids=()
drain_pids=()
sampler_pid=
nginx_pid=

# Pinning (taskset -c), when asked for.
server_pin=()
loadgen_pin=()
if [[ -n ${BENCH_SERVER_CPUS:-} ]]; then
	server_pin=(taskset -c "$BENCH_SERVER_CPUS")
fi
if [[ -n ${BENCH_LOADGEN_CPUS:-} ]]; then
	loadgen_pin=(taskset -c "$BENCH_LOADGEN_CPUS")
fi

cleanup() {
	local pid

	for pid in "${server_pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	for pid in "${drain_pids[@]}" $sampler_pid $nginx_pid; do
		kill "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

echo "== machine"
echo "cpus: $(nproc)"
echo "model: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB\n", $2 / 1048576 }' /proc/meminfo)"
echo "kernel: $(uname -r)"
echo "server: $server ($("$server" --version 2>&1 | head -n 1 || true))"
echo "load average: $(cut -d ' ' -f 1-3 /proc/loadavg)"

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

# start_server I: instance I (1-3) on tcp_ports[I-1]/http_ports[I-1] with
# its own config and instance_id bench<I>. Its stderr goes through a FIFO
# so that we can block on its lines: readiness is the "ready" line, never
# a sleep; EOF means it died.
start_server() {
	local i=$1 line ready="" deadline
	local tport=${tcp_ports[i - 1]} hport=${http_ports[i - 1]}
	local conf=$tmp/config$i.json log=$tmp/server$i.log room_cap=""

	# The scenarios make rooms on every run: no cap on them (for servers
	# that know the key; older builds refuse unknown keys).
	if grep -qa max_rooms_per_user "$server"; then
		room_cap=$',\n\t"max_rooms": 10000000'
	fi
	# k's crowd of 5,000 asks at once: none refused as busy.
	if grep -qa db_queue_limit "$server"; then
		room_cap+=$',\n\t"db_queue_limit": 100000'
	fi
	# Senders go flat out: no per-session rate limits.
	if grep -qa msg_rate_per_s "$server"; then
		room_cap+=$',\n\t"msg_rate_per_s": 0,\n\t"cmd_rate_per_s": 0'
		room_cap+=$',\n\t"max_connections": 0,\n\t"max_connections_per_ip": 0'
	fi
	# Thousands of HTTP sessions and rooms from 127.0.0.1.
	if grep -qa connect_rate_per_min "$server"; then
		room_cap+=$',\n\t"connect_rate_per_min": 0,\n\t"create_rate_per_min": 0'
	fi

	cat >"$conf" <<EOF
{
	"instance_id": "bench$i",
	"listen_address": "127.0.0.1",
	"tcp_port": $tport,
	"http_port": $hport,
	"database_url": $(json_str "$DATABASE_URL"),
	"history_size": 10,
	"max_message_bytes": 2000,
	"outq_limit_bytes": 8388608,
	"log_level": "info",
	"cleanup_interval_s": 0,
	"cleanup_keep": 1000,
	"session_idle_timeout_s": 60,
	"sse_heartbeat_s": 15$room_cap
}
EOF
	mkfifo "$tmp/stderr$i"
	echo "== server $i"
	echo "+ $server --config $conf"
	"${server_pin[@]}" "$server" --config "$conf" 2>"$tmp/stderr$i" &
	server_pids[i]=$!
	exec 3<"$tmp/stderr$i"
	deadline=$((SECONDS + ready_timeout))
	while ((SECONDS < deadline)); do
		if ! IFS= read -r -t $((deadline - SECONDS + 1)) line <&3; then
			break
		fi
		printf '%s\n' "$line" >>"$log"
		if [[ $line == *" INFO ready tcp=127.0.0.1:$tport "* ]]; then
			ready=1
			break
		fi
	done
	if [[ -z $ready ]]; then
		echo "run.sh: server $i not ready within ${ready_timeout}s; its log:" >&2
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	cat <&3 >>"$log" &
	drain_pids[i]=$!
	exec 3<&-
	echo "server $i pid ${server_pids[i]}: $(grep -m 1 ' INFO ready ' "$log")"
}

# ensure_servers N: instances 1 to N are running.
ensure_servers() {
	local i

	for ((i = 1; i <= $1; i++)); do
		[[ -n ${server_pids[i]:-} ]] || start_server "$i"
	done
}

# check_servers NAME: every server started is still alive.
check_servers() {
	local i

	for i in "${!server_pids[@]}"; do
		[[ $i == "${killed_on_purpose:-}" ]] && continue
		if ! kill -0 "${server_pids[i]}" 2>/dev/null; then
			echo "run.sh: server $i died during scenario $1" >&2
			tail -n 30 "$tmp/server$i.log" >&2 || true
			exit 1
		fi
	done
}

stamp=$(date +%s)_$$
failed=0
missed=0
summary=()

# run_scenario NAME ARGS...: runs loadgen against instance 1 alone.
run_scenario() {
	local name=$1
	shift
	ensure_servers 1
	run_loadgen "$name" --port "$tcp_port" --http-port "$http_port" \
		--server-pid "${server_pids[1]}" "$@"
}

# run_cluster_scenario NAME ARGS...: runs loadgen against instances 1-3.
run_cluster_scenario() {
	local name=$1
	shift
	ensure_servers 3
	run_loadgen "$name" --ports "$(IFS=,; echo "${tcp_ports[*]}")" \
		--http-ports "$(IFS=,; echo "${http_ports[*]}")" \
		--server-pid "${server_pids[1]},${server_pids[2]},${server_pids[3]}" \
		"$@"
}

# run_loadgen NAME ARGS...: keeps loadgen's output in $tmp/NAME.out.
run_loadgen() {
	local name=$1 rc=0
	shift
	local cmd=("${loadgen_pin[@]}" "$loadgen" --host 127.0.0.1 "$@")

	echo
	echo "== scenario $name"
	echo "+ ${cmd[*]}"
	"${cmd[@]}" | tee "$tmp/$name.out" || rc=$?
	check_servers "$name"
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

# --- Resource accounting for the cluster scenarios (f, g, h, i) ---

clk_tck=$(getconf CLK_TCK)

# ticks PID: user + system clock ticks of a process (nothing when gone).
ticks() {
	local stat
	local -a f

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	read -r -a f <<<"${stat##*) }"
	echo $((f[11] + f[12]))	# utime, stime (fields 14, 15)
}

# PostgreSQL's postmaster and its children now, one "pid group" a line:
# group query or listen for the servers' connections (by
# application_name), other for the rest. Nothing when the data directory
# cannot be read (a remote database, or not a superuser).
pg_procs() {
	local dir pm pid
	local -A app=()

	dir=$("${psql[@]}" -c 'SHOW data_directory' 2>/dev/null) || return 0
	pm=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null) || return 0
	[[ $pm =~ ^[0-9]+$ ]] || return 0
	while IFS='|' read -r pid name; do
		app[$pid]=$name
	done < <("${psql[@]}" -c 'SELECT pid, application_name
		FROM pg_stat_activity' 2>/dev/null || true)
	echo "$pm other"
	for pid in $(ps -o pid= --ppid "$pm" || true); do
		case ${app[$pid]:-} in
		babydiscord-query) echo "$pid query" ;;
		babydiscord-listen) echo "$pid listen" ;;
		*) echo "$pid other" ;;
		esac
	done
}

# busy and total jiffies of the whole machine, from /proc/stat.
machine_jiffies() {
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i;
		print t - $5 - $6, t; exit }' /proc/stat
}

# Commits in this database (read-only ones too: a LISTENing backend reads
# the NOTIFY queue in a transaction of its own), transaction ids handed
# out (only writing transactions get one; reading them assigns none) and
# WAL counters. Statistics are flushed about once a second, hence the pause
# in measure_end.
pg_counters() {
	"${psql[@]}" -F ' ' -c "SELECT d.xact_commit,
			pg_snapshot_xmax(pg_current_snapshot()),
			w.wal_bytes, w.wal_sync
		FROM pg_stat_database d, pg_stat_wal w
		WHERE d.datname = current_database()" 2>/dev/null ||
		echo "? ? ? ?"
}

# measure_start / measure_end NAME: CPU of PostgreSQL (the processes that
# live through the scenario: the servers' backends and the background
# processes) and of the whole machine, commits and WAL, over the scenario.
declare -A m_pg_group=() m_pg_ticks=()
measure_start() {
	local pid grp t

	m_pg_group=()
	m_pg_ticks=()
	while read -r pid grp; do
		t=$(ticks "$pid")
		[[ -n $t ]] || continue
		m_pg_group[$pid]=$grp
		m_pg_ticks[$pid]=$t
	done < <(pg_procs)
	read -r m_busy m_total < <(machine_jiffies)
	read -r m_commits m_xids m_wal m_syncs < <(pg_counters)
	m_t0=$(date +%s.%N)
}

# CPU seconds from clock ticks.
cpu_s() {
	awk -v t="$1" -v h="$clk_tck" 'BEGIN { printf "%.2f", t / h }'
}

measure_end() {
	local name=$1 busy total commits xids wal syncs t1 span pid t n=0
	local -A pg=([query]=0 [listen]=0 [other]=0)

	t1=$(date +%s.%N)
	# Processes that lived through the scenario (not pgbench's backends
	# nor autovacuum workers).
	for pid in "${!m_pg_group[@]}"; do
		t=$(ticks "$pid")
		[[ -n $t ]] || continue
		pg[${m_pg_group[$pid]}]=$((pg[${m_pg_group[$pid]}] + t -
			m_pg_ticks[$pid]))
		n=$((n + 1))
	done
	read -r busy total < <(machine_jiffies)
	sleep 1.5	# let the backends flush their statistics
	read -r commits xids wal syncs < <(pg_counters)
	span=$(awk -v a="$m_t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	{
		echo "postgres_cpu_s: $(cpu_s $((pg[query] + pg[listen] + pg[other]))) over ${span} s (servers' query backends $(cpu_s "${pg[query]}"), listen backends $(cpu_s "${pg[listen]}"), other $(cpu_s "${pg[other]}"); $n processes)"
		echo "machine_busy: $(awk -v b=$((busy - m_busy)) \
			-v t=$((total - m_total)) -v n="$(nproc)" \
			'BEGIN { printf "%.0f%% of %d cpus", 100 * b / t, n }')"
		if [[ $commits != "?" && $m_commits != "?" ]]; then
			echo "postgres_counters: commits $((commits - m_commits)) write_xacts $((xids - m_xids)) wal_bytes $((wal - m_wal)) wal_syncs $((syncs - m_syncs)) over ${span} s"
		fi
	} | tee -a "$tmp/$name.out"
}

# sampler_start NAME: GET /health of instance 1 and
# pg_notification_queue_usage() once a second, at most sample_max times.
sampler_start() {
	local out=$tmp/$1.queue

	(
		for ((n = 0; n < sample_max; n++)); do
			h=$(curl -s -m 1 "http://127.0.0.1:$http_port/health" |
				sed -n 's/.*"notify_queue_usage":\([0-9.e+-]*\).*/\1/p')
			q=$("${psql[@]}" -c 'SELECT pg_notification_queue_usage()' \
				2>/dev/null)
			echo "$(date +%T) health ${h:-?} direct ${q:-?}"
			sleep 1
		done
	) >"$out" &
	sampler_pid=$!
}

sampler_stop() {
	local out=$tmp/$1.queue

	kill "$sampler_pid" 2>/dev/null || true
	wait "$sampler_pid" 2>/dev/null || true
	sampler_pid=
	echo "notify_queue_usage samples (health, direct):" \
		"$(awk '{ printf "%s%s/%s", (NR > 1 ? " " : ""), $3, $5 }' "$out")" |
		tee -a "$tmp/$1.out"
	echo "notify_queue_usage_max: health $(awk '$3 + 0 > m { m = $3 + 0 }
		END { print m + 0 }' "$out") direct $(awk '$5 + 0 > m { m = $5 + 0 }
		END { print m + 0 }' "$out")" | tee -a "$tmp/$1.out"
}

# pgbench_run NAME CLIENTS SCRIPT...: one message per transaction.
pgbench_run() {
	local name=$1 clients=$2 rc=0 tps
	shift 2
	local cmd=("$pgbench" -n -c "$clients" -j 2 -T "$pgbench_s")
	local f

	for f in "$@"; do
		cmd+=(-f "$f")
	done
	cmd+=("$DATABASE_URL")
	echo
	echo "== scenario $name"
	echo "+ ${cmd[*]}"
	measure_start
	"${cmd[@]}" >"$tmp/$name.out" 2>&1 || rc=$?
	measure_end "$name" >/dev/null
	cat "$tmp/$name.out"
	if ((rc != 0)); then
		failed=1
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$tmp/$name.out")
	summary+=("h: $clients clients: ${tps:-?} transactions (= messages)/s; $(grep -m 1 '^machine_busy:' "$tmp/$name.out" || echo 'machine_busy: ?')")
}

# scenario_h: rooms and a user made with SQL, one pgbench script per room.
scenario_h() {
	local ids user r f i

	user=$("${psql[@]}" -c "INSERT INTO users (nickname)
		VALUES ('benchh_$stamp') RETURNING id") ||
		die "h: cannot create the pgbench user"
	ids=()
	for i in 0 1 2; do
		r=$("${psql[@]}" -c "INSERT INTO rooms (name, created_by)
			VALUES ('benchh_${stamp}_$i', $user) RETURNING id") ||
			die "h: cannot create a room"
		ids+=("$r")
		f=$tmp/one$i.sql
		printf '%s\n' "SELECT * FROM bd_post('[{\"r\":$r,\"u\":$user,\"n\":\"pgbench-user\",\"c\":\"hello from pgbench\"}]');" >"$f"
	done
	echo
	echo "== scenario h: user $user, rooms ${ids[*]}; $tmp/one0.sql:"
	cat "$tmp/one0.sql"
	pgbench_run h1 1 "$tmp/one0.sql"
	pgbench_run h10 10 "$tmp/one0.sql"
	pgbench_run h30 30 "$tmp/one0.sql" "$tmp/one1.sql" "$tmp/one2.sql"
}

# api_summary NAME TEXT: i's figures per request kind, from $tmp/NAME.out.
api_summary() {
	local f=$tmp/$1.out line=$2 k

	for k in message command rooms; do
		line+=" $k p50 $(field "$f" "api_${k}_ms:" p50) p99 $(field "$f" \
			"api_${k}_ms:" p99) max $(field "$f" "api_${k}_ms:" max) ms $(field \
			"$f" "api_$k:" rate)/s;"
	done
	summary+=("$1: ${line%;}")
	summary+=("$1: $(grep -m 1 '^server_cpu_s:' "$f" || echo 'server_cpu_s: ?')")
	summary+=("$1: $(grep -m 1 '^postgres_counters:' "$f" || echo 'postgres_counters: ?')")
	summary+=("$1: $(grep -m 1 '^result:' "$f" || echo 'result: none')")
}

# scenario_i: API request latency on instance 1 alone (i1), then over
# instances 1-3, request by request in turn (i3).
scenario_i() {
	local n

	ensure_servers 1
	measure_start
	run_loadgen i1 --http-port "$http_port" \
		--server-pid "${server_pids[1]}" --room "benchi1_$stamp" \
		--api-requests "$api_requests" --duration-max "$api_max_s"
	measure_end i1
	ensure_servers 3
	measure_start
	run_loadgen i3 --http-ports "$(IFS=,; echo "${http_ports[*]}")" \
		--server-pid "${server_pids[1]},${server_pids[2]},${server_pids[3]}" \
		--room "benchi3_$stamp" --api-requests "$api_requests" \
		--duration-max "$api_max_s"
	measure_end i3
	# GET /api/rooms counts every room's members: its cost grows with them.
	n=$("${psql[@]}" -F ' ' -c 'SELECT (SELECT count(*) FROM rooms),
		(SELECT count(*) FROM room_members)' 2>/dev/null || echo '? ?')
	echo "database: ${n% *} rooms, ${n#* } memberships (GET /api/rooms counts them all)"
	api_summary i1 "1 instance:"
	api_summary i3 "3 instances, round robin:"
	summary+=("i: database: ${n% *} rooms, ${n#* } memberships")
}

# curl_times N URL [CURL ARGS...]: N requests on one keep-alive
# connection; prints "p50 P90 bytes" (ms, ms, bytes of the last answer).
curl_times() {
	local n=$1 url=$2 i
	local -a args=()

	shift 2
	for ((i = 0; i < n; i++)); do
		((i == 0)) || args+=(--next)
		args+=(-s -o /dev/null -w '%{time_total} %{size_download}\n' "$@"
			"$url")
	done
	curl "${args[@]}" | sort -n | awk -v n="$n" '
		{ t[NR] = $1 * 1000; b = $2 }
		END { printf "%.2f %.2f %d\n", t[int(n / 2) + 1], t[int(n * 0.9) + 1], b }'
}

# api_session NICK: connects; prints "session_id user_id".
api_session() {
	curl -s -H 'Content-Type: application/json' \
		-d "{\"nickname\":\"$1\"}" -w '\n' \
		"127.0.0.1:$http_port/api/connect" |
		sed -E 's/.*"session_id":"([0-9a-f]+)".*"user_id":([0-9]+).*/\1 \2/'
}

# scenario_j: per-request costs that grew with rooms before issue 8.
scenario_j() {
	local base="benchj_$stamp" s0 s1 u1 r

	ensure_servers 1
	read -r s0 _ < <(api_session "j0_$$")
	read -r s1 u1 < <(api_session "j1_$$")
	"${psql[@]}" -c "INSERT INTO rooms (name) SELECT '$base' || '_' || g
			FROM generate_series(1, 2000) g" \
		-c "INSERT INTO room_members (room_id, user_id) SELECT id, $u1
			FROM rooms WHERE name LIKE '${base}_%'" >/dev/null
	for r in "0 $s0" "2000 $s1"; do
		read -r p50 p90 bytes < <(curl_times 200 \
			"127.0.0.1:$http_port/api/command" \
			-H 'Content-Type: application/json' \
			-d "{\"session_id\":\"${r#* }\",\"command\":\"/help\"}")
		echo "j: /help, session in ${r% *} rooms: p50 $p50 ms, p90 $p90 ms"
		summary+=("j: /help, session in ${r% *} rooms: p50 $p50 ms, p90 $p90 ms")
	done
	read -r p50 p90 bytes < <(curl_times 200 "127.0.0.1:$http_port/api/rooms")
	r=$("${psql[@]}" -c 'SELECT count(*) FROM rooms')
	"${psql[@]}" -c "DELETE FROM rooms WHERE name LIKE '${base}_%'" >/dev/null
	echo "j: GET /api/rooms, $r rooms in the database: p50 $p50 ms, p90 $p90 ms, $bytes bytes"
	summary+=("j: GET /api/rooms, $r rooms: p50 $p50 ms, p90 $p90 ms, $bytes bytes")
}

# start_nginx: contrib's nginx configuration in front of the bench
# instances' HTTP ports, listening on 127.0.0.1:8180, with a private
# prefix in $tmp (never /etc/nginx or the system service); in the
# foreground, stopped by pid. Ready when its pid file names it (it binds
# first).
start_nginx() {
	local conf=$tmp/nginx/bench.conf prefix=$tmp/nginx bin i deadline

	[[ -n $nginx_pid ]] && return 0
	bin=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
	[[ -x $bin ]] || die "l: no nginx (make bench-peers installs it)"
	mkdir -p "$prefix/logs" "$prefix/tmp"
	sed -e "s/127\.0\.0\.1:3001/127.0.0.1:${http_ports[0]}/" \
		-e "s/127\.0\.0\.1:3002/127.0.0.1:${http_ports[1]}/" \
		-e "s/127\.0\.0\.1:3003/127.0.0.1:${http_ports[2]}/" \
		-e 's/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:8180 backlog=4096;/' \
		-e 's/listen 127\.0\.0\.1:8443 ssl;/listen 127.0.0.1:8543 ssl;/' \
		-e 's/worker_connections 1024;/worker_connections 16384;/' \
		-e 's/access_log logs\/access.log upstream;/access_log off;/' \
		"$root/contrib/nginx/babydiscord.conf" >"$conf"
	for i in 0 1 2; do
		grep -q "127.0.0.1:${http_ports[i]} " "$conf" ||
			die "l: $conf: upstream port ${http_ports[i]} not set"
	done
	grep -q 'listen 127.0.0.1:8180 ' "$conf" ||
		die "l: $conf: listen port not set"
	grep -q 'listen 127.0.0.1:8543 ssl;' "$conf" ||
		die "l: $conf: HTTPS listen port not set"
	BD_NGINX_PREFIX=$prefix "$root/contrib/nginx/run.sh" cert >/dev/null
	grep -q 'worker_connections 16384;' "$conf" ||
		die "l: $conf: worker_connections not raised"
	echo "+ nginx -p $prefix -c $conf (contrib/nginx/babydiscord.conf, bench ports)"
	"${server_pin[@]}" "$bin" -p "$prefix" -e logs/error.log -c "$conf" \
		-g 'daemon off;' </dev/null >>"$prefix/logs/run.log" 2>&1 &
	nginx_pid=$!
	deadline=$((SECONDS + ready_timeout))
	until [[ $(cat "$prefix/nginx.pid" 2>/dev/null || true) == "$nginx_pid" ]]; do
		if ! kill -0 "$nginx_pid" 2>/dev/null || ((SECONDS >= deadline)); then
			tail -n 20 "$prefix/logs/error.log" >&2 || true
			die "l: nginx did not start"
		fi
		sleep 0.05
	done
}

# scenario_l: the reconnect storm (see the usage at the top).
scenario_l() {
	local scale=${BENCH_STORM_SCALE:-1} pid3 rc=0

	[[ $scale =~ ^[1-9][0-9]*$ ]] || die "BENCH_STORM_SCALE: a positive integer"
	ensure_servers 3
	start_nginx
	pid3=${server_pids[3]}
	killed_on_purpose=3
	measure_start
	run_loadgen l --ports "$(IFS=,; echo "${tcp_ports[*]}")" \
		--sender-port "$tcp_port" --http-port 8180 \
		--server-pid "${server_pids[1]},${server_pids[2]},${server_pids[3]}" \
		--room "benchl_$stamp" --rooms 30 --senders 30 \
		--clients $((1470 / scale)) --sse-clients $((1500 / scale)) \
		--nick-prefix "l${stamp: -6}_" --messages 40 \
		--rate 60 --reconnect --kill-pid "$pid3" \
		--kill-at 5 --concurrency 64 --setup-timeout 600 \
		--duration-max 120 --idle-timeout 30
	measure_end l
	# Instance 3 died as planned: reap it; a later scenario restarts it.
	wait "$pid3" 2>/dev/null || rc=$?
	wait "${drain_pids[3]}" 2>/dev/null || true
	echo "server 3 (killed) exit status: $rc"
	unset 'server_pids[3]' 'drain_pids[3]'
	killed_on_purpose=
	rm -f "$tmp/stderr3" "$tmp/config3.json"
	summary+=("l: $(grep -m 1 '^reconnect_s:' "$tmp/l.out" || echo 'reconnect_s: ?')")
	summary+=("l: $(grep -m 1 '^reconnect:' "$tmp/l.out" || echo 'reconnect: ?')")
	summary+=("l: $(grep -m 1 '^deliveries:' "$tmp/l.out" || echo 'deliveries: ?')")
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
	f)
		ensure_servers 3
		measure_start
		run_cluster_scenario f --sender-port "$tcp_port" \
			--room "benchf_$stamp" --clients 299 --senders 1 \
			--messages 10000 --rate 1000 --setup-timeout 120 \
			--duration-max 40 --idle-timeout 10
		measure_end f
		aim f "$(field "$tmp/f.out" latency_ms: p99)" '<' 10 \
			"p99 latency ms (all receivers)"
		summary+=("f: p99 latency ms per instance: $(for i in 1 2 3; do
			printf '%s ' "i$i $(field "$tmp/f.out" latency_i${i}_ms: p99)"
		done)")
		;;
	g)
		ensure_servers 3
		measure_start
		sampler_start g
		run_cluster_scenario g --room "benchg_$stamp" --rooms 3 \
			--clients 9 --senders 30 --messages 10000 --rate 0 \
			--window 64 --duration-max 90 --idle-timeout 10
		sampler_stop g
		measure_end g
		aim g "$(field "$tmp/g.out" rates: committed)" '>=' 60000 \
			"committed msg/s, all instances"
		summary+=("g: $(grep -m 1 '^server_cpu_s:' "$tmp/g.out" || echo 'server_cpu_s: ?'); $(grep -m 1 '^postgres_cpu_s:' "$tmp/g.out" || echo 'postgres_cpu_s: ?')")
		summary+=("g: $(grep -m 1 '^notify_queue_usage_max:' "$tmp/g.out" || echo 'notify_queue_usage_max: ?')")
		;;
	m)
		ensure_servers 1
		measure_start
		run_scenario m --room "benchm_$stamp" --rooms 3 \
			--clients 9 --senders 30 --messages 10000 --rate 0 \
			--window 64 --duration-max 90 --idle-timeout 10
		measure_end m
		aim m "$(field "$tmp/m.out" rates: committed)" '>=' 50000 \
			"committed msg/s, one instance"
		;;
	n)
		ensure_servers 3
		measure_start
		run_cluster_scenario n --room "benchn_$stamp" --rooms 1 \
			--clients 9 --senders 30 --messages 10000 --rate 0 \
			--window 64 --duration-max 120 --idle-timeout 10
		measure_end n
		g_rate=$(field "$tmp/g.out" rates: committed 2>/dev/null || true)
		if [[ -n $g_rate ]]; then
			aim n "$(field "$tmp/n.out" rates: committed)" '>=' \
				"$(awk -v g="$g_rate" 'BEGIN { print 0.8 * g }')" \
				"committed msg/s, one room on 3 instances (80% of g's $g_rate)"
		fi
		;;
	h)
		scenario_h
		continue
		;;
	i)
		scenario_i
		continue
		;;
	k)
		for n in 1000 5000; do
			run_scenario "k$n" --room "benchk${n}_$stamp" \
				--clients "$n" --senders 1 --messages 10 \
				--rate 10 --nick-prefix "k${n}_${stamp}_" \
				--concurrency 5000 --setup-timeout 120 \
				--duration-max 30 --idle-timeout 10
			summary+=("k: $n into one room: $(grep -m 1 '^setup:' \
				"$tmp/k$n.out"), $(grep -m 1 '^server_rss_kb:' \
				"$tmp/k$n.out"), $(grep -m 1 '^result:' \
				"$tmp/k$n.out" || echo 'result: none')")
		done
		continue
		;;
	j)
		scenario_j
		continue
		;;
	l)
		scenario_l
		;;
	esac
	summary+=("$s: $(grep -m 1 '^result:' "$tmp/$s.out" || echo 'result: none')")
done

if ((${#server_pids[@]} > 0)); then
	echo
	echo "== stopping servers (SIGTERM)"
fi
for i in "${!server_pids[@]}"; do
	kill -TERM "${server_pids[i]}" 2>/dev/null || true
done
for i in "${!server_pids[@]}"; do
	pid=${server_pids[i]}
	log=$tmp/server$i.log
	server_rc=0
	if ! timeout "$stop_timeout" tail --pid="$pid" -s 0.1 -f /dev/null; then
		echo "run.sh: server $i still running ${stop_timeout}s after SIGTERM; SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" || server_rc=$?
	wait "${drain_pids[i]}" 2>/dev/null || true
	echo "server $i exit status: $server_rc"
	echo "server $i log: $(grep -c ' WARN ' "$log" || true) warnings, $(grep -c ' ERROR ' "$log" || true) errors"
	grep -E ' (WARN|ERROR) ' "$log" | head -n 10 || true
	if ((server_rc != 0)); then
		failed=1
	fi
done
server_pids=()
drain_pids=()

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if ((failed)); then
	echo "FAILED: a scenario lost messages, connections or API requests, or a server did not exit cleanly"
	exit 1
fi
if ((missed)) && [[ ${BENCH_STRICT:-0} == 1 ]]; then
	echo "FAILED: an aim was missed (BENCH_STRICT=1)"
	exit 1
fi
echo "OK"
