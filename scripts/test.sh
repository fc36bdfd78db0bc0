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
# caddy: `caddy validate`/`adapt` check the compose cluster profile's docker/caddy/Caddyfile (never run as a server
# by the tests; on a host with systemd the package starts one on port 80: `systemctl disable --now caddy`).
export ENSURE_EXTRA_APT="pocketsphinx-testdata chromium redis-server postgresql espeak-ng zsh prometheus caddy ${ENSURE_EXTRA_APT:-}"
source scripts/ensure-env.sh

echo "[test] node $(node --version), $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
npm run --silent typecheck
npm run --silent lint
mkdir -p test/.results
rm -f test/.results/vitest.json test/.results/vitest-postgresql.json
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test/.results/vitest.json "$@" || status=$?
# The whole suite (no arguments) also runs the end-to-end tests that exercise the job store a second time, with
# the store on a throw-away PostgreSQL (TEST_STORE=postgresql, test/global-setup.ts), so the two stores cannot
# drift. Not every test/app file: the whole of it on PostgreSQL was half done after 20 minutes on 2 shared cores
# (CONTRIBUTING.md says what is left out and why).
if [ "$#" -eq 0 ]; then
  TEST_STORE=postgresql npx vitest run --reporter=default --reporter=json \
    --outputFile.json=test/.results/vitest-postgresql.json \
    test/app/{jobs-api,upload-errors,upload-disconnect,hostile-uploads,restart,webhooks,idempotency,job-events}.test.ts \
    test/app/{openai-facade,openai-facade-refusals,openai-facade-shutdown,object-store-e2e}.test.ts || status=$?
fi
# One plain closing line that any CI can read, whatever vitest's own summary looks like: both passes summed.
node -e '
  const fs = require("fs");
  const read = (f) => (fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, "utf8")) : null);
  const runs = [read("test/.results/vitest.json"), read("test/.results/vitest-postgresql.json")];
  const count = (r) => [r.numPassedTests, r.numFailedTests, r.numPendingTests + r.numTodoTests];
  const words = ([p, f, s]) => `${p} passed, ${f} failed, ${s} skipped`;
  const total = runs.filter(Boolean).map(count).reduce((a, b) => a.map((n, i) => n + b[i]), [0, 0, 0]);
  console.log(words(total) + (runs[1] ? ` (on PostgreSQL: ${words(count(runs[1]))})` : ""));
' || true
exit "$status"
