#!/usr/bin/env bash
# Quick-start command 2: set up whatever is missing, then typecheck, lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# redis-server: the scale-out tests start their own instance (test/support/redis-server.ts), never the system one.
# postgresql: the PostgreSQL store tests make a throw-away cluster (initdb + pg_ctl, test/support/postgres-server.ts),
# never the system one (on a host with systemd the package starts its own cluster on 5432: the tests ignore it).
# prometheus: for its promtool (docker/prometheus's rules and config; ~96 MB installed). The tests never run the
# server, but on a host with systemd the package enables and starts it (all interfaces, port 9090): there,
# `systemctl disable --now prometheus` after the first run.
# iproute2: `ip netns`, for the multi-host test's hosts (test/support/netns.ts).
export ENSURE_EXTRA_APT="pocketsphinx-testdata chromium redis-server postgresql espeak-ng zsh prometheus iproute2 ${ENSURE_EXTRA_APT:-}"
source scripts/ensure-env.sh

echo "[test] node $(node --version), $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
npm run --silent typecheck
npm run --silent lint
mkdir -p test/.results
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test/.results/vitest.json "$@" || status=$?
# One plain closing line that any CI can read, whatever vitest's own summary looks like.
node -e '
  const r = JSON.parse(require("fs").readFileSync("test/.results/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit "$status"
