#!/usr/bin/env bash
# A private PostgreSQL cluster for development and tests, run with the
# binaries of Debian's postgresql package: unix socket only, trust auth for
# local connections, superuser postgres, database babydiscord.
#
# Usage: contrib/pg.sh init DIR PORT   create it (no-op if it exists); leaves it running
#        contrib/pg.sh start DIR       start it (no-op if running)
#        contrib/pg.sh stop DIR        stop it (no-op if stopped)
#        contrib/pg.sh status DIR      exit 0 running, 3 stopped, 4 not initialized
#        contrib/pg.sh url DIR [DB]    libpq URL of database DB (babydiscord)
#        contrib/pg.sh host DIR        socket directory (for PGHOST)
#        contrib/pg.sh port DIR        port (for PGPORT)
#        contrib/pg.sh destroy DIR     stop it and remove it
#
# DIR holds data/ (PGDATA), sock/ (the socket), log and port. As root,
# PostgreSQL runs as the postgres user, which owns DIR. When postgres cannot
# reach DIR (a checkout inside a mode-700 `mktemp -d`) or the socket path
# would be too long, the cluster lives in /tmp/babydiscord-pg-<hash of DIR>
# and DIR is a symlink to it. PG_BINDIR overrides where the binaries are.
set -euo pipefail

die()
{
	echo "pg.sh: $*" >&2
	exit 1
}

say()
{
	echo "pg.sh: $*" >&2
}

usage()
{
	sed -n '6,13s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# The newest server binaries: Debian keeps them out of $PATH, in
# /usr/lib/postgresql/<version>/bin.
find_bindir()
{
	local d

	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV) \
		 "$(pg_config --bindir 2>/dev/null || true)"; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return
		fi
	done
	die "no PostgreSQL server binaries (initdb, pg_ctl) found; run contrib/install-deps.sh"
}

# Run a command as the cluster's owner: postgres when we are root. From /,
# because initdb and pg_ctl fail in a directory postgres cannot enter.
as_pg()
{
	if [ "$IS_ROOT" = 1 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# Whether the cluster in $R is complete: the port file is written last.
is_initialized()
{
	[ -f "$R/data/PG_VERSION" ] && [ -s "$R/port" ]
}

is_running()
{
	as_pg "$BIN/pg_ctl" -D "$R/data" status >/dev/null 2>&1
}

need_initialized()
{
	is_initialized || die "no cluster in $DIR (run: contrib/pg.sh init $DIR PORT)"
}

# Percent-encode a URL query value (a path: keep / . _ - ~).
urlencode()
{
	local LC_ALL=C s=$1 out='' c i

	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case "$c" in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# Whether the cluster must live under /tmp instead of DIR itself.
need_redirect()
{
	local port=$1 parent

	parent=$(dirname -- "$DIR")
	# sun_path holds 108 bytes: DIR/sock/.s.PGSQL.<port> and a NUL.
	[ $((${#DIR} + 16 + ${#port})) -gt 107 ] && return 0
	[ "$IS_ROOT" = 1 ] || return 1
	! runuser -u postgres -- test -x "$parent"
}

cmd_init()
{
	local port=$1 tmp

	case "$port" in
	'' | *[!0-9]*) die "init: bad port '$port'" ;;
	esac
	if is_initialized; then
		[ "$(cat "$R/port")" = "$port" ] ||
			say "note: $DIR already uses port $(cat "$R/port"), not $port"
		return 0
	fi
	BIN=$(find_bindir)
	if [ "$IS_ROOT" = 1 ] && ! id postgres >/dev/null 2>&1; then
		die "there is no postgres user; run contrib/install-deps.sh"
	fi

	# A half-made cluster (interrupted init) holds nothing: start over.
	if [ -f "$R/data/PG_VERSION" ]; then
		as_pg "$BIN/pg_ctl" -D "$R/data" -m immediate -w stop \
			>/dev/null 2>&1 || true
		rm -rf -- "$R/data"
	fi

	mkdir -p -- "$(dirname -- "$DIR")"
	if [ ! -L "$DIR" ] && need_redirect "$port"; then
		tmp=/tmp/babydiscord-pg-$(printf '%s' "$DIR" | sha256sum | cut -c1-16)
		if [ -e "$DIR" ]; then
			rmdir -- "$DIR" 2>/dev/null ||
				die "$DIR is not empty, but PostgreSQL cannot use it (the postgres user cannot reach it, or its path is too long)"
		fi
		[ -L "$tmp" ] && die "$tmp is a symlink; refusing to use it"
		mkdir -p -- "$tmp"
		ln -sfn -- "$tmp" "$DIR"
		R=$tmp
		say "$DIR is unreachable for postgres or too long a socket path; the cluster lives in $R"
	fi
	mkdir -p -- "$R"
	case "$R" in
	*\'* | *\\*) die "the path $R must not contain quotes or backslashes" ;;
	esac
	[ "$IS_ROOT" = 1 ] && chown postgres:postgres "$R"
	chmod 755 "$R"
	rm -f -- "$R/port"
	as_pg mkdir -p "$R/sock"
	as_pg touch "$R/log"

	say "initdb in $R/data (log: $R/log)"
	if ! as_pg "$BIN/initdb" -D "$R/data" -U postgres -E UTF8 --locale=C \
		--auth-local=trust --auth-host=reject >>"$R/log" 2>&1; then
		tail -n 20 "$R/log" >&2
		die "initdb failed"
	fi
	cat >>"$R/data/postgresql.conf" <<EOF

# Private cluster of contrib/pg.sh: unix socket only.
port = $port
listen_addresses = ''
unix_socket_directories = '$R/sock'
EOF
	echo "$port" >"$R/port.new"
	start_server "$port"
	if [ -z "$(as_pg "$BIN/psql" -XAtq -h "$R/sock" -p "$port" -U postgres \
		-d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'babydiscord'")" ]; then
		as_pg "$BIN/createdb" -h "$R/sock" -p "$port" -U postgres babydiscord
	fi
	mv -- "$R/port.new" "$R/port"
	say "initialized $DIR: port $port, socket $R/sock, database babydiscord"
}

start_server()
{
	local port=$1

	if is_running; then
		say "already running ($DIR, port $port)"
		return 0
	fi
	# -w waits until the server accepts connections: the readiness signal.
	if ! as_pg "$BIN/pg_ctl" -D "$R/data" -l "$R/log" -w -t 60 start \
		>/dev/null; then
		tail -n 20 "$R/log" >&2
		die "could not start the cluster in $DIR (log: $R/log)"
	fi
	say "started $DIR (port $port, socket $R/sock)"
}

cmd_start()
{
	need_initialized
	BIN=$(find_bindir)
	start_server "$(cat "$R/port")"
}

cmd_stop()
{
	if ! is_initialized; then
		say "no cluster in $DIR"
		return 0
	fi
	BIN=$(find_bindir)
	if ! is_running; then
		say "not running ($DIR)"
		return 0
	fi
	as_pg "$BIN/pg_ctl" -D "$R/data" -m fast -w -t 60 stop >/dev/null ||
		die "could not stop the cluster in $DIR (log: $R/log)"
	say "stopped $DIR"
}

cmd_status()
{
	if ! is_initialized; then
		echo "not initialized: $DIR"
		return 4
	fi
	BIN=$(find_bindir)
	if is_running; then
		echo "running: $DIR (port $(cat "$R/port"), socket $R/sock, log $R/log)"
		return 0
	fi
	echo "stopped: $DIR (port $(cat "$R/port"))"
	return 3
}

cmd_url()
{
	local db=${1:-babydiscord}

	need_initialized
	printf 'postgresql:///%s?host=%s&port=%s&user=postgres\n' \
		"$(urlencode "$db")" "$(urlencode "$R/sock")" "$(cat "$R/port")"
}

cmd_destroy()
{
	if [ -f "$R/data/PG_VERSION" ]; then
		BIN=$(find_bindir)
		if is_running; then
			as_pg "$BIN/pg_ctl" -D "$R/data" -m immediate -w stop \
				>/dev/null || die "could not stop the cluster in $DIR"
		fi
	fi
	if [ -L "$DIR" ]; then
		rm -rf -- "$R"
		rm -f -- "$DIR"
	else
		rm -rf -- "$DIR"
	fi
	say "destroyed $DIR"
}

[ $# -ge 2 ] || usage
cmd=$1
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
# DIR: absolute, symlinks kept; R: where the cluster really is.
DIR=$(realpath -m -s -- "$2")
R=$(realpath -m -- "$DIR")
BIN=

case "$cmd" in
init)
	[ $# -eq 3 ] || usage
	cmd_init "$3"
	;;
start | stop | status | host | port | destroy)
	[ $# -eq 2 ] || usage
	case "$cmd" in
	host) need_initialized && echo "$R/sock" ;;
	port) need_initialized && cat "$R/port" ;;
	*) "cmd_$cmd" ;;
	esac
	;;
url)
	[ $# -le 3 ] || usage
	cmd_url "${3:-}"
	;;
*)
	usage
	;;
esac
