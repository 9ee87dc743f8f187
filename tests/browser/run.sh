#!/usr/bin/env bash
# Runs the browser test (chat.test.mjs): installs its npm packages when
# node_modules is missing or older than package-lock.json (never a browser:
# it drives Debian's /usr/bin/chromium), then runs it with node.
#
# Needs BD_SERVER (server binary) and DATABASE_URL (a migrated database);
# `make check-browser` provides both. Screenshots and the server log go to
# tests/output/browser/.
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
exec node chat.test.mjs "$@"
