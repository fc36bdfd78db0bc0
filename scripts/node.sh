#!/bin/sh
# Runs Node with the given arguments, `exec`ed so that the caller's pid, signals and exit status are Node's own.
# The service needs Node >= 22 (node:sqlite): the node on PATH when it is new enough, else the Node 24 that
# scripts/ensure-env.sh installs into .tools/, else a message saying what to do (a bare `npm start` on a system
# with an older Node would otherwise crash with ERR_UNKNOWN_BUILTIN_MODULE).
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -ge 22 ]; then
  exec node "$@"
fi
tools_node="$root/.tools/node/node_modules/node/bin/node"
if [ -x "$tools_node" ]; then
  exec "$tools_node" "$@"
fi
echo "chunkscribe needs Node 22 or newer; the node on PATH is $(node --version 2>/dev/null || echo missing)." >&2
echo "Run ./scripts/start.sh once (it installs Node 24 into .tools/), or put Node >= 22 first on PATH." >&2
exit 1
