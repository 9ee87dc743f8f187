#!/usr/bin/env bash
# Install the Debian packages Baby Discord needs to build, run and test.
# Silent and fast (one dpkg-query) when everything is there: `make run` and
# `make check` call it every time.
#
# Usage: contrib/install-deps.sh [--browser] [--nginx] [--metrics] [--fuzz]
#                                [--peers]
#   --browser   also the browser-test group (chromium, nodejs, npm)
#   --nginx     also nginx (the reverse proxy of contrib/nginx/run.sh)
#   --metrics   also promtool (package prometheus), to check /metrics
#   --fuzz      also clang and libFuzzer (make fuzz, make check)
#   --peers     also the peers of make bench-peers (ngircd, inspircd,
#               nginx with libnginx-mod-nchan)
#
# To add an optional group: add an array below, an option in the case
# statement that appends it to WANT, and a line to the usage above.
set -euo pipefail

# Always needed: toolchain, libraries, PostgreSQL, and the tools tests use.
BASE_PKGS=(gcc make pkg-config libwebsockets-dev libwebsockets-evlib-uv libuv1-dev jq
	libpq-dev libjansson-dev
	check postgresql postgresql-client netcat-openbsd curl procps iproute2
	shellcheck)
# Optional groups.
BROWSER_PKGS=(chromium nodejs npm)
NGINX_PKGS=(nginx openssl)
# promtool (in Debian's prometheus) checks GET /metrics' text format.
METRICS_PKGS=(prometheus)
# libFuzzer: clang and its runtime.
FUZZ_PKGS=(clang libclang-rt-14-dev)
PEERS_PKGS=(ngircd inspircd nginx libnginx-mod-nchan)

WANT=("${BASE_PKGS[@]}")
for arg in "$@"; do
	case "$arg" in
	--browser) WANT+=("${BROWSER_PKGS[@]}") ;;
	--nginx) WANT+=("${NGINX_PKGS[@]}") ;;
	--metrics) WANT+=("${METRICS_PKGS[@]}") ;;
	--fuzz) WANT+=("${FUZZ_PKGS[@]}") ;;
	--peers) WANT+=("${PEERS_PKGS[@]}") ;;
	-h | --help)
		sed -n '2,14s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "install-deps: unknown option $arg (try --help)" >&2
		exit 2
		;;
	esac
done

# A package counts as present when it is installed or an installed package
# provides it (postgresql-client-15 provides postgresql-client; NodeSource's
# nodejs provides npm and conflicts with Debian's).
have=$(dpkg-query -W -f='${db:Status-Status} ${Package} ${Provides}\n' \
	2>/dev/null | awk '$1 == "installed" {
		gsub(/\([^)]*\)/, ""); gsub(/,/, " ");	# drop versions: "(= 14)"
		for (i = 2; i <= NF; i++)
			print $i
	}')
missing=()
for p in "${WANT[@]}"; do
	grep -qxF -- "$p" <<<"$have" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	cat >&2 <<EOF
install-deps: missing Debian packages: ${missing[*]}
Install them as root, then try again:
  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}
EOF
	exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
