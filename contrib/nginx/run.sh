#!/usr/bin/env bash
# Debian's nginx as a reverse proxy for a Baby Discord cluster, with a
# private prefix: config contrib/nginx/babydiscord.conf, pid file, logs and
# temp directories in var/nginx. It never uses /etc/nginx or the system
# nginx service. Listens on 127.0.0.1:8080.
#
# Usage: contrib/nginx/run.sh start [--canary N]   install nginx if missing;
#                                                  start it
#        contrib/nginx/run.sh stop     SIGTERM; wait for the exit
#        contrib/nginx/run.sh status   running (exit 0) or not (exit 3)
#        contrib/nginx/run.sh check [--canary N]   write and check the config
#        contrib/nginx/run.sh cert     make a self-signed certificate if
#                                      there is none
#
# HTTPS on 127.0.0.1:8443 with var/nginx/tls/cert.pem and key.pem: start
# and check make a self-signed pair for localhost (openssl) when there is
# none; replace both files with your certificate and key.
#
# --canary N: a canary upstream: instance N (port 300N) gets weight=1 and
# the others weight=9, so about 1 request in 19 (per other instance: 1 in
# 10 with two of them) goes to the canary. The config is written to
# var/nginx/babydiscord.conf from contrib/nginx/babydiscord.conf; without
# --canary it is the same as that file. BD_NGINX_PREFIX overrides var/nginx.
#
# In the foreground instead (Ctrl-C stops it), from the top directory:
#   mkdir -p var/nginx/logs var/nginx/tmp
#   nginx -p var/nginx -e logs/error.log \
#         -c "$PWD/contrib/nginx/babydiscord.conf" -g 'daemon off;'
set -euo pipefail

TOP=$(cd -- "$(dirname -- "$0")/../.." && pwd)
cd -- "$TOP"

PREFIX=${BD_NGINX_PREFIX:-$TOP/var/nginx}
CONF=$TOP/contrib/nginx/babydiscord.conf
PIDFILE=$PREFIX/nginx.pid
LISTEN=127.0.0.1:8080
LISTEN_TLS=127.0.0.1:8443
TIMEOUT=${BD_NGINX_TIMEOUT:-10}

say()
{
	echo "nginx: $*"
}

die()
{
	echo "nginx: $*" >&2
	exit 1
}

usage()
{
	sed -n '7,14s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

nginx_bin()
{
	command -v nginx 2>/dev/null ||
		{ [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }
}

alive()
{
	local state

	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The master's pid if our nginx runs (its title names our prefix); removes a
# stale pid file.
running_pid()
{
	local pid cmd

	[ -f "$PIDFILE" ] || return 1
	pid=$(head -c 32 "$PIDFILE" 2>/dev/null | tr -d '[:space:]' || true)
	case "$pid" in
	'' | *[!0-9]*) pid= ;;
	esac
	if [ -n "$pid" ] && alive "$pid"; then
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		if [[ $cmd == *nginx*"$PREFIX"* ]]; then
			echo "$pid"
			return 0
		fi
	fi
	echo "nginx: stale pid file $PIDFILE (pid ${pid:-?} is not ours)," \
		"removed" >&2
	rm -f -- "$PIDFILE"
	return 1
}

# Writes the config nginx runs with into the prefix: contrib's, with the
# canary's weights when $1 is an instance number.
write_conf()
{
	local canary=$1 out=$PREFIX/babydiscord.conf

	mkdir -p -- "$PREFIX"
	if [ -z "$canary" ]; then
		cp -- "$TOP/contrib/nginx/babydiscord.conf" "$out"
	else
		grep -q "server 127.0.0.1:300$canary " \
			"$TOP/contrib/nginx/babydiscord.conf" ||
			die "--canary $canary: no such upstream server"
		sed -E -e "s/^(\t\tserver 127\.0\.0\.1:300$canary) /\1 weight=1 /" \
			-e "/weight=1/!s/^(\t\tserver 127\.0\.0\.1:300[0-9]) /\1 weight=9 /" \
			"$TOP/contrib/nginx/babydiscord.conf" >"$out"
	fi
	CONF=$out
}

# A self-signed certificate for localhost in $PREFIX/tls, unless there is
# a certificate there already (yours, or one made before).
make_cert()
{
	local dir=$PREFIX/tls

	[ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && return 0
	command -v openssl >/dev/null ||
		die "openssl is missing (contrib/install-deps.sh --nginx installs it)"
	mkdir -p -- "$dir"
	(umask 077 && openssl req -x509 -newkey ec \
		-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" \
		>>"$PREFIX/logs/run.log" 2>&1) ||
		die "openssl could not make a certificate (see $PREFIX/logs/run.log)"
	say "made a self-signed certificate for localhost: $dir/cert.pem"
}

check_conf()
{
	local bin

	bin=$(nginx_bin) ||
		die "nginx is not installed (contrib/install-deps.sh --nginx)"
	mkdir -p -- "$PREFIX/logs" "$PREFIX/tmp"
	make_cert
	# -e: the log nginx writes before it has read the config (Debian's
	# default is stderr); -q -t: check the config.
	if ! "$bin" -q -t -p "$PREFIX" -e logs/error.log -c "$CONF" \
		>>"$PREFIX/logs/run.log" 2>&1; then
		log_tail "$PREFIX/logs/run.log"
		die "the configuration $CONF does not check out"
	fi
}

log_tail()
{
	echo "--- last lines of $1:" >&2
	tail -n 20 -- "$1" 2>/dev/null | sed 's/^/  | /' >&2 || true
}

cmd_start()
{
	local bin pid deadline

	"$TOP/contrib/install-deps.sh" --nginx
	bin=$(nginx_bin) ||
		die "nginx is not installed (contrib/install-deps.sh --nginx)"
	if pid=$(running_pid); then
		say "already running (pid $pid, http://$LISTEN/); nothing to do"
		return 0
	fi
	write_conf "$1"
	check_conf
	# daemon off: nginx stays our (then init's) child, so $! is the
	# master. It binds 127.0.0.1:8080 before it writes its pid file.
	rm -f -- "$PIDFILE"
	setsid "$bin" -p "$PREFIX" -e logs/error.log -c "$CONF" \
		-g 'daemon off;' </dev/null >>"$PREFIX/logs/run.log" 2>&1 &
	pid=$!
	deadline=$((EPOCHSECONDS + TIMEOUT))
	until [ "$(cat "$PIDFILE" 2>/dev/null || true)" = "$pid" ]; do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null || true
			log_tail "$PREFIX/logs/error.log"
			die "nginx exited at start (log $PREFIX/logs/error.log)"
		fi
		if [ "$EPOCHSECONDS" -ge "$deadline" ]; then
			kill -TERM "$pid" 2>/dev/null || true
			log_tail "$PREFIX/logs/error.log"
			die "nginx wrote no pid file within $TIMEOUT s; stopped it"
		fi
		sleep 0.1
	done
	say "started (pid $pid): http://$LISTEN/ and https://$LISTEN_TLS/" \
		"-> 127.0.0.1:3001-3003;" \
		"logs in $PREFIX/logs"
}

cmd_stop()
{
	local pid deadline

	if ! pid=$(running_pid); then
		say "not running"
		return 0
	fi
	# SIGTERM is nginx's fast shutdown: open event streams are closed.
	kill -TERM "$pid"
	deadline=$((EPOCHSECONDS + TIMEOUT))
	while alive "$pid"; do
		[ "$EPOCHSECONDS" -lt "$deadline" ] ||
			die "pid $pid still running $TIMEOUT s after SIGTERM;" \
				"kill -KILL $pid to force"
		sleep 0.1
	done
	rm -f -- "$PIDFILE"
	say "stopped (pid $pid)"
}

cmd_status()
{
	local pid

	if pid=$(running_pid); then
		say "running (pid $pid): http://$LISTEN/, prefix $PREFIX," \
			"config $PREFIX/babydiscord.conf"
		return 0
	fi
	say "not running"
	return 3
}

cmd_check()
{
	write_conf "$1"
	check_conf
	say "$CONF checks out"
}

canary=
case "${2:-}" in
'') [ $# -eq 1 ] || usage ;;
--canary)
	[ $# -eq 3 ] || usage
	case "$3" in '' | *[!0-9]*) usage ;; esac
	canary=$3
	;;
*) usage ;;
esac
case "$1" in
start | check) "cmd_$1" "$canary" ;;
stop | status) [ -z "$canary" ] || usage; "cmd_$1" ;;
cert)
	[ -z "$canary" ] || usage
	mkdir -p -- "$PREFIX/logs"
	make_cert
	;;
*) usage ;;
esac
