#!/usr/bin/env bash
# Runs the browser tests: installs their npm packages when node_modules is
# missing or older than package-lock.json (never a browser: they drive
# Debian's /usr/bin/chromium), then runs chat.test.mjs and cluster.test.mjs
# with node, both even when the first fails; exits non-zero if either failed.
#
# Needs BD_SERVER (server binary), DATABASE_URL (a migrated database, for
# chat.test.mjs) and BD_CLUSTER_DATABASE_URL (another one, for
# cluster.test.mjs, which also needs nginx); `make check-browser` provides
# them. Screenshots and logs go to tests/output/browser/ and
# tests/output/browser-cluster/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
	echo "browser: needs Node.js >= 20 (playwright-core), found $(node --version 2>&1)" >&2
	exit 1
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] ||
	[ package.json -nt "$stamp" ]; then
	echo "browser: npm ci" >&2
	npm ci --no-audit --no-fund --loglevel=error
fi
failed=
for t in chat.test.mjs cluster.test.mjs; do
	echo "browser: node $t"
	rc=0
	node "$t" "$@" || rc=$?
	# 130: interrupted (Ctrl-C); the rest is not wanted either
	[ "$rc" -ne 130 ] || exit 130
	[ "$rc" -eq 0 ] || failed="$failed $t"
done
if [ -n "$failed" ]; then
	echo "browser: FAILED:$failed" >&2
	exit 1
fi
