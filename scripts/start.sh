#!/usr/bin/env bash
# Quick-start command 1: set up whatever is missing, build, start the service in the foreground and transcribe
# the bundled sample recording once through the real HTTP API, so you see it work. Configure with the env names
# of the README (PORT, DATA_DIR, TRANSCRIBE_PROVIDER, ...). `--no-demo` skips the sample transcription.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ENSURE_EXTRA_APT="pocketsphinx-testdata ${ENSURE_EXTRA_APT:-}"
source scripts/ensure-env.sh

npm run --silent build
sample="$(node scripts/make-sample.mjs)"

# Node itself, not `npm start`: killing npm would leave node running and holding the port. node.sh execs node, so
# $! is node's pid. setsid keeps node out of the terminal's process group: Ctrl-C reaches only this script, which
# sends one SIGTERM (a second signal would cut the service's graceful shutdown short).
setsid scripts/node.sh dist/server.js &
server=$!
demo=""
stop() {
  [ -z "$demo" ] || kill -TERM "$demo" 2>/dev/null || true
  kill -TERM "$server" 2>/dev/null || true
  status=0
  wait "$server" || status=$?
  exit "$status"
}
trap stop INT TERM HUP

if [ "${1:-}" != "--no-demo" ]; then
  # In the background and waited for: bash runs a trap only between commands, so a foreground demo would hold
  # off Ctrl-C until it ended.
  node scripts/demo.mjs "http://127.0.0.1:${PORT:-3000}" "$sample" &
  demo=$!
  wait "$demo" || echo "[demo] the sample transcription did not complete; the service keeps running" >&2
  demo=""
fi
status=0
wait "$server" || status=$?
exit "$status"
