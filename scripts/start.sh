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

npm start &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' INT TERM

if [ "${1:-}" != "--no-demo" ]; then
  node scripts/demo.mjs "http://127.0.0.1:${PORT:-3000}" "$sample" || echo "[demo] the sample transcription did not complete; the service keeps running" >&2
fi
wait "$server"
