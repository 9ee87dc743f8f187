#!/usr/bin/env bash
# Baby Discord side by side with its peers (issue 11): the same load
# generator (build/bench/loadgen) against Baby Discord and, from Debian's
# packages, ngircd 26.1, InspIRCd 3.15 and nginx + nchan 1.3.6, on
# 127.0.0.1 only. make bench-peers installs the packages, builds, starts
# the private PostgreSQL (var/pg) and runs this.
#
# Each run of a scenario starts its server afresh (so that RSS before and
# after the setup is that run's alone) in the foreground, as our child,
# with a private config (tests/bench/peers/*.conf; Baby Discord: a
# temporary one) and files under a temporary directory, never a system
# service; it is stopped by pid after the run, and on exit or interrupt.
# With 2 or more CPUs the server runs on CPU 0 and loadgen on CPU 1
# (taskset); PostgreSQL is not pinned.
#
# Scenarios, BENCH_RUNS (3) runs each, medians:
#   idle1k    1,000 clients in one room: setup time, RSS per connection
#   idle5k    5,000 clients in one room: the same
#   rooms500  5,000 clients in 500 rooms of 10: the same
#   mixed10k  10,000 connections in 1,000 rooms of 10: Baby Discord 5,000
#             TCP + 5,000 SSE; peers: ngircd or InspIRCd (5,000 IRC) and
#             nchan (5,000 SSE), two servers at once, RSS added up
#   lat100    100 subscribers, 1 sender at 100 msg/s for 10 s: latency
#             p50/p99; after each Baby Discord run, the commit floor:
#             pgbench -R 100 -T 10 with tests/bench/floor.sql on the same
#             cluster (its p50 per-transaction latency)
#   flat100   100 subscribers, 1 sender flat out with 100 messages in
#             flight, 20,000 messages: deliveries/s to the subscribers
#   rooms100  1,000 clients in 100 rooms of 10, 10 senders flat out (each
#             in a room of its own; 90 rooms idle), 5,000 messages each:
#             deliveries/s to the receivers
#   storm     tests/bench/run.sh l: the reconnect storm (Baby Discord
#             only: the peers have nothing like it)
# Clients: Baby Discord TCP (bd: connect, /nick, /create or /join), Baby
# Discord SSE (bdsse: POST /api/connect, /join, GET /api/messages; the
# room is created by the one TCP sender), IRC (NICK/USER, JOIN, PRIVMSG)
# and nchan (GET /sub/ROOM; senders POST /pub/ROOM). A scenario's clients
# count its senders. Setup runs 1,000 connects/joins at once
# (--concurrency 1000: a crowd arriving together).
#
# usage: tests/bench/peers.sh [SCENARIO ...]   (default: all, in order)
# env: DATABASE_URL (required), BD_SERVER, BUILD (as run.sh),
#      BENCH_RUNS (3), BENCH_PEERS_SCALE=N (divides client counts and
#      messages by N: a quick check of the kit), BENCH_PEERS_SYSTEMS
#      (default "bd bdsse ngircd inspircd nchan"), BENCH_NOFILE
#      (descriptors; default 20000, at most the hard limit),
#      BENCH_PEERS_OUT (where the outputs stay; default
#      var/bench-peers/<date>), PGBENCH, PSQL.
# Prints the outputs as it goes, then one table (markdown) of medians and
# ratios, also written to $BENCH_PEERS_OUT/table.md. Exit 1 when a run
# failed to start or a loadgen run reported loss; 2 on a usage error.
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
peers=$root/tests/bench/peers
runs=${BENCH_RUNS:-3}
scale=${BENCH_PEERS_SCALE:-1}
systems=${BENCH_PEERS_SYSTEMS:-bd bdsse ngircd inspircd nchan}
nofile=${BENCH_NOFILE:-20000}
bd_tcp=9101
bd_http=3101
ngircd_port=6701	# tests/bench/peers/ngircd.conf
inspircd_port=6702	# tests/bench/peers/inspircd.conf
nchan_port=8201		# tests/bench/peers/nchan.conf
ready_timeout=30	# seconds for a server to listen
stop_timeout=15		# seconds for a server to exit after SIGTERM

die() {
	echo "peers.sh: $*" >&2
	exit 2
}

all_scenarios=(idle1k idle5k rooms500 mixed10k lat100 flat100 rooms100 storm)
scenarios=()
for arg in "$@"; do
	case $arg in
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	idle1k | idle5k | rooms500 | mixed10k | lat100 | flat100 | rooms100 | storm)
		scenarios+=("$arg")
		;;
	*) die "unknown scenario '$arg' (${all_scenarios[*]})" ;;
	esac
done
((${#scenarios[@]})) || scenarios=("${all_scenarios[@]}")
[[ $runs =~ ^[1-9][0-9]?$ ]] || die "BENCH_RUNS: 1-99"
[[ $scale =~ ^[1-9][0-9]*$ ]] || die "BENCH_PEERS_SCALE: a positive integer"
[[ -n ${DATABASE_URL:-} ]] || die "DATABASE_URL is not set"
[[ -x $server ]] || die "no server binary at $server (set BD_SERVER)"
[[ -x $loadgen ]] || die "no loadgen at $loadgen (make bench-peers builds it)"
psql=("${PSQL:-psql}" -X -q -A -t -v ON_ERROR_STOP=1 -d "$DATABASE_URL")
for bin in ngircd inspircd nginx; do
	command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] ||
		die "$bin is missing (make bench-peers installs it)"
done
[[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] ||
	die "nchan is missing (make bench-peers installs libnginx-mod-nchan)"

stamp=$(date +%Y%m%d-%H%M%S)
out=${BENCH_PEERS_OUT:-$root/var/bench-peers/$stamp}
mkdir -p "$out"
tmp=$(mktemp -d /tmp/bd-peers.XXXXXX)
srv_pids=()	# servers of the current run (nginx: its master)
drain_pid=	# the cat copying Baby Discord's stderr

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local pid

	for pid in "${srv_pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	[[ -z $drain_pid ]] || kill "$drain_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Pinning: server on CPU 0, loadgen on CPU 1, when there are two.
srv_pin=()
lg_pin=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
	srv_pin=(taskset -c 0)
	lg_pin=(taskset -c 1)
fi

# 10,000 connections need as many descriptors in loadgen and in each
# server (which inherit this limit); the soft limit goes up to the hard.
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [[ $soft != unlimited ]] && ((soft < nofile)); then
	if [[ $hard == unlimited ]] || ((hard >= nofile)); then
		ulimit -Sn "$nofile"
	else
		ulimit -Sn "$hard"
		echo "peers.sh: warning: hard limit of open files is $hard, not $nofile" >&2
	fi
fi
if (($(ulimit -Sn) < 10100)); then
	echo "peers.sh: warning: ulimit -n is $(ulimit -Sn): mixed10k needs 10,100 or more (raise the hard limit as root)" >&2
fi

{
	echo "== machine"
	echo "cpus: $(nproc) ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
	echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB\n", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel: $(uname -r)"
	echo "load average: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "ulimit -n: $(ulimit -Sn)"
	echo "pinning: server ${srv_pin[*]:-none}, loadgen ${lg_pin[*]:-none}"
	echo "versions: $(dpkg-query -W -f='${Package} ${Version}, ' ngircd \
		inspircd nginx libnginx-mod-nchan 2>/dev/null || true)"
} | tee "$out/machine.txt"

# wait_port PORT PID: until PORT accepts a connection (PID must live).
wait_port() {
	local deadline=$((SECONDS + ready_timeout))

	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		kill -0 "$2" 2>/dev/null || return 1
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# start_bd: one instance on 9101/3101; ready on its "ready" log line.
start_bd() {
	local conf=$tmp/bd.json line ready=
	local deadline=$((SECONDS + ready_timeout))

	cat >"$conf" <<EOF
{
	"instance_id": "peers1",
	"listen_address": "127.0.0.1",
	"tcp_port": $bd_tcp,
	"http_port": $bd_http,
	"database_url": "${DATABASE_URL//\"/\\\"}",
	"history_size": 10,
	"max_message_bytes": 2000,
	"outq_limit_bytes": 8388608,
	"log_level": "info",
	"cleanup_interval_s": 0,
	"cleanup_keep": 1000,
	"session_idle_timeout_s": 60,
	"sse_heartbeat_s": 15,
	"max_rooms": 10000000,
	"db_queue_limit": 100000,
	"msg_rate_per_s": 0,
	"cmd_rate_per_s": 0,
	"max_connections": 0,
	"max_connections_per_ip": 0,
	"connect_rate_per_min": 0,
	"create_rate_per_min": 0
}
EOF
	rm -f "$tmp/bd.fifo"
	mkfifo "$tmp/bd.fifo"
	"${srv_pin[@]}" "$server" --config "$conf" 2>"$tmp/bd.fifo" &
	srv_pids=("$!")
	exec 3<"$tmp/bd.fifo"
	while ((SECONDS < deadline)) &&
		IFS= read -r -t $((deadline - SECONDS + 1)) line <&3; do
		printf '%s\n' "$line" >>"$tmp/bd.log"
		if [[ $line == *" INFO ready tcp=127.0.0.1:$bd_tcp "* ]]; then
			ready=1
			break
		fi
	done
	if [[ -z $ready ]]; then
		exec 3<&-
		tail -n 20 "$tmp/bd.log" >&2
		return 1
	fi
	cat <&3 >>"$tmp/bd.log" &
	drain_pid=$!
	exec 3<&-
}

start_ngircd() {
	"${srv_pin[@]}" ngircd -n -f "$peers/ngircd.conf" \
		>>"$tmp/ngircd.log" 2>&1 </dev/null &
	srv_pids=("$!")
	wait_port "$ngircd_port" "${srv_pids[0]}"
}

start_inspircd() {
	local asroot=()

	(($(id -u))) || asroot=(--runasroot)
	"${srv_pin[@]}" inspircd --nofork --nopid "${asroot[@]}" \
		--config="$peers/inspircd.conf" >>"$tmp/inspircd.log" 2>&1 \
		</dev/null &
	srv_pids=("$!")
	wait_port "$inspircd_port" "${srv_pids[0]}"
}

# start_nchan [KEEP]: nginx with its own prefix; ready once it wrote its
# pid file (it binds first). KEEP adds it to the servers already running.
start_nchan() {
	local prefix=$tmp/nchan deadline=$((SECONDS + ready_timeout)) pid

	rm -rf "$prefix"
	mkdir -p "$prefix/logs" "$prefix/tmp"
	"${srv_pin[@]}" nginx -p "$prefix" -e logs/error.log \
		-c "$peers/nchan.conf" -g 'daemon off;' \
		>>"$tmp/nchan.log" 2>&1 </dev/null &
	pid=$!
	if [[ -n ${1:-} ]]; then
		srv_pids+=("$pid")
	else
		srv_pids=("$pid")
	fi
	until [[ $(cat "$prefix/nginx.pid" 2>/dev/null || true) == "$pid" ]]; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			tail -n 20 "$prefix/logs/error.log" >&2 || true
			return 1
		fi
		sleep 0.05
	done
}

# stop_servers: SIGTERM, then SIGKILL after stop_timeout.
stop_servers() {
	local pid

	for pid in "${srv_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${srv_pids[@]}"; do
		if ! timeout "$stop_timeout" tail --pid="$pid" -s 0.1 -f /dev/null; then
			echo "peers.sh: pid $pid still running ${stop_timeout}s after SIGTERM; SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	srv_pids=()
	if [[ -n $drain_pid ]]; then
		wait "$drain_pid" 2>/dev/null || true
		drain_pid=
	fi
}

failed=0
results=$out/results.tsv	# scenario system run key value
: >"$results"

# n COUNT: a client count divided by the scale (at least 1).
n() {
	local v=$(($1 / scale))
	echo $((v > 0 ? v : 1))
}

# field FILE LINE KEY: the number after KEY on the line starting LINE.
field() {
	sed -n "/^$2/s/.* $3 \([0-9.]*\).*/\1/p" "$1" | head -n 1
}

record() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-?}" >>"$results"
}

# The room names of one run: short (IRC channels), distinct per run.
room_of() {
	echo "p$(date +%s%N | tail -c 9)"
}

# run_one SCENARIO SYSTEM RUN: starts SYSTEM's server(s), runs loadgen
# with the scenario's clients, records the figures, stops the server(s).
run_one() {
	local sc=$1 sys=$2 r=$3 room f args=() more=() pids i
	local -a common=(--host 127.0.0.1 --concurrency 1000
		--idle-timeout 15 --duration-max 90)

	room=$(room_of)
	f=$out/$sc.$sys.$r.out
	case $sys in
	bd | bdsse) start_bd ;;
	ngircd) start_ngircd ;;
	inspircd) start_inspircd ;;
	nchan) start_nchan ;;
	ngircd+nchan) start_ngircd && start_nchan keep ;;
	inspircd+nchan) start_inspircd && start_nchan keep ;;
	esac || {
		echo "peers.sh: $sys did not start" >&2
		failed=1
		stop_servers
		return 0
	}
	pids=$(IFS=,; echo "${srv_pids[*]}")
	case $sys in
	bd) args=(--port "$bd_tcp" --http-port "$bd_http"
		--nick-prefix "${room}_") ;;
	bdsse) args=(--port "$bd_tcp" --http-port "$bd_http") ;;
	ngircd) args=(--proto irc --port "$ngircd_port") ;;
	inspircd) args=(--proto irc --port "$inspircd_port") ;;
	nchan) args=(--proto nchan --http-port "$nchan_port" --server-tree) ;;
	ngircd+nchan) args=(--proto irc --sse-proto nchan --port \
		"$ngircd_port" --http-port "$nchan_port" --server-tree) ;;
	inspircd+nchan) args=(--proto irc --sse-proto nchan --port \
		"$inspircd_port" --http-port "$nchan_port" --server-tree) ;;
	esac
	read -r -a more < <(scenario_args "$sc" "$sys")
	args+=(--server-pid "$pids" --room "$room" "${more[@]}")
	echo
	echo "== $sc $sys run $r"
	echo "+ ${lg_pin[*]} $loadgen ${common[*]} ${args[*]}"
	"${lg_pin[@]}" "$loadgen" "${common[@]}" "${args[@]}" >"$f" 2>&1 ||
		echo "(loadgen exit status $?)" >>"$f"
	for i in "${srv_pids[@]}"; do
		kill -0 "$i" 2>/dev/null || echo "server pid $i died" >>"$f"
	done
	grep -E '^(connections|setup|deliveries:|rates|deliveries_to|latency_ms|server_rss_per|result)' "$f" || true
	stop_servers
	record "$sc" "$sys" "$r" setup_s "$(sed -n 's/^setup: \([0-9.]*\) s.*/\1/p' "$f")"
	record "$sc" "$sys" "$r" joined "$(sed -n 's/^connections: .*, joined \([0-9]*\),.*/\1/p' "$f")"
	record "$sc" "$sys" "$r" planned "$(sed -n 's/^connections: planned \([0-9]*\) .*/\1/p' "$f")"
	record "$sc" "$sys" "$r" rss_kb "$(sed -n 's/^server_rss_per_conn_kb: \([-0-9.]*\) .*/\1/p' "$f")"
	record "$sc" "$sys" "$r" p50 "$(field "$f" latency_ms: p50)"
	record "$sc" "$sys" "$r" p99 "$(field "$f" latency_ms: p99)"
	record "$sc" "$sys" "$r" rx_rate "$(sed -n 's/^deliveries_to_receivers: [0-9]*, \([0-9.]*\)\/s.*/\1/p' "$f")"
	record "$sc" "$sys" "$r" lost "$(sed -n 's/^deliveries: .*, lost \([0-9]*\),.*/\1/p' "$f")"
	if ! grep -q '^result: PASS' "$f"; then
		echo "peers.sh: $sc $sys run $r: $(grep -m 1 '^result:' "$f" || echo 'no result')" >&2
	fi
	if [[ $sys == bd && $sc == lat100 ]]; then
		commit_floor "$r"
	fi
}

# scenario_args SCENARIO SYSTEM: loadgen's client options.
scenario_args() {
	local sc=$1 sys=$2 tcp sse=0 senders=1 rooms=1 msgs=1 rate=0
	local win=64 total setup=50

	case $sc in
	idle1k) total=$(n 1000) ;;
	idle5k) total=$(n 5000) ;;
	rooms500) total=$(n 5000) rooms=$(n 500) ;;
	mixed10k) total=$(n 5000) sse=$(n 5000) rooms=$(n 1000) setup=90 ;;
	lat100) total=101 msgs=1000 rate=100 ;;
	flat100) total=101 msgs=$((20000 / scale)) win=100 ;;
	rooms100) total=$(n 1000) rooms=$(n 100) senders=10
		msgs=$((5000 / scale)) ;;
	esac
	tcp=$((total - senders))
	case $sys in
	bdsse)
		sse=$tcp
		tcp=0
		;;
	nchan)
		sse=$tcp
		tcp=0
		;;
	esac
	echo "--clients $tcp --senders $senders --sse-clients $sse" \
		"--rooms $rooms --messages $msgs --rate $rate --window $win" \
		"--setup-timeout $setup"
}

# commit_floor RUN: pgbench, tests/bench/floor.sql paced at 100/s for
# 10 s on a room of its own; records the p50 of its per-transaction
# latencies (from its log; a paced transaction's latency includes its
# schedule lag, which at 100/s with one client is near 0).
commit_floor() {
	local r=$1 room f log p50 lag

	room=$("${psql[@]}" -c "INSERT INTO rooms (name)
		VALUES ('benchfloor_$(date +%s%N)') RETURNING id") || {
		record lat100 floor "$r" p50 "?"
		return 0
	}
	f=$out/lat100.floor.$r.out
	rm -f "$tmp"/floor.*
	echo "+ $pgbench -n -f tests/bench/floor.sql -D r=$room -R 100 -T 10 -c 1 -l --log-prefix=floor"
	(cd "$tmp" && "$pgbench" -n -f "$root/tests/bench/floor.sql" \
		-D "r=$room" -R 100 -T 10 -c 1 -l --log-prefix=floor \
		"$DATABASE_URL") >"$f" 2>&1 || echo "(pgbench failed)" >>"$f"
	log=$(find "$tmp" -maxdepth 1 -name 'floor.*' -print -quit)
	if [[ -n $log ]]; then
		p50=$(awk '{ print $3 }' "$log" | sort -n |
			awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int((NR + 1) / 2)] / 1000 }')
		lag=$(awk '{ print $7 }' "$log" | sort -n |
			awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int((NR + 1) / 2)] / 1000 }')
		echo "commit floor: p50 ${p50} ms (schedule lag p50 ${lag} ms), $(wc -l <"$log") transactions" | tee -a "$f"
	fi
	grep -E '^(latency average|tps)' "$f" || true
	record lat100 floor "$r" p50 "${p50:-?}"
	"${psql[@]}" -c "DELETE FROM rooms WHERE id = $room" >/dev/null || true
}

# run_storm RUN: run.sh l, pinned like the rest.
run_storm() {
	local r=$1 f=$out/storm.bd.$1.out
	local -a env=(BENCH_SERVER_CPUS=0 BENCH_LOADGEN_CPUS=1)

	((${#srv_pin[@]})) || env=()
	echo
	echo "== storm bd run $r"
	echo "+ ${env[*]} BENCH_STORM_SCALE=$scale tests/bench/run.sh l"
	env "${env[@]}" BENCH_STORM_SCALE="$scale" BUILD="$build" \
		BD_SERVER="$server" bash "$root/tests/bench/run.sh" l >"$f" 2>&1 ||
		echo "(run.sh exit status $?)" >>"$f"
	grep -E '^(connections|setup|deliveries:|kill|reconnect|result)' "$f" || true
	record storm bd "$r" setup_s "$(sed -n 's/^setup: \([0-9.]*\) s.*/\1/p' "$f")"
	record storm bd "$r" all_back_s "$(sed -n 's/^reconnect_s: .* all_back \([0-9.]*\) .*/\1/p' "$f")"
	record storm bd "$r" caught_up_s "$(sed -n 's/^reconnect_s: .* caught_up \([0-9.]*\) .*/\1/p' "$f")"
	record storm bd "$r" lost "$(sed -n 's/^deliveries: .*, lost \([0-9]*\),.*/\1/p' "$f")"
	record storm bd "$r" doubled "$(sed -n 's/^deliveries: .*, duplicated \([0-9]*\),.*/\1/p' "$f")"
	record storm bd "$r" back "$(sed -n 's/^reconnect: lost tcp \([0-9]*\) sse \([0-9]*\), back tcp \([0-9]*\) sse \([0-9]*\),.*/\3+\4 of \1+\2/p' "$f")"
}

# The systems each scenario runs on.
systems_of() {
	local s want=()

	case $1 in
	idle1k | idle5k) want=(bd bdsse ngircd inspircd nchan) ;;
	rooms500 | flat100 | rooms100) want=(bd ngircd inspircd nchan) ;;
	lat100) want=(bd bdsse ngircd inspircd nchan) ;;
	mixed10k) want=(bd ngircd+nchan inspircd+nchan) ;;
	esac
	for s in "${want[@]}"; do
		[[ " $systems " == *" ${s%%+*} "* ]] && echo "$s"
	done
}

for sc in "${scenarios[@]}"; do
	for ((r = 1; r <= runs; r++)); do
		if [[ $sc == storm ]]; then
			[[ " $systems " == *" bd "* ]] && run_storm "$r"
			continue
		fi
		for sys in $(systems_of "$sc"); do
			run_one "$sc" "$sys" "$r"
		done
	done
done

if awk -F '\t' '$4 == "lost" && $5 != "0" && $5 != "?" { bad = 1 }
	END { exit !bad }' "$results"; then
	failed=1
fi

echo
echo "== table (medians of $runs runs; raw outputs in $out)"
bash "$root/tests/bench/peers-table.sh" "$results" | tee "$out/table.md"
exit "$failed"
