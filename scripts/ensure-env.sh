#!/usr/bin/env bash
# Sourced by the quick-start scripts: makes sure this machine has what the service needs, installing only
# what is missing (Node >= 22 from the npm registry, ffmpeg and pocketsphinx from Debian), then `npm ci`.
# Idempotent: a second run installs nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt 22 ]; then
  if [ ! -x "$tools/node/node_modules/node/bin/node" ]; then
    echo "[setup] system Node is $(node --version 2>/dev/null || echo missing); installing Node 24 from the npm registry into .tools/" >&2
    mkdir -p "$tools/node"
    npm install --prefix "$tools/node" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
  fi
  export PATH="$tools/node/node_modules/node/bin:$PATH"
fi

missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v pocketsphinx_continuous >/dev/null || missing+=(pocketsphinx)
[ -d /usr/share/pocketsphinx/model/en-us/en-us ] || missing+=(pocketsphinx-en-us)
for pkg in ${ENSURE_EXTRA_APT:-}; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

cd "$root"
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f node_modules/.lock-hash ] || [ "$(cat node_modules/.lock-hash)" != "$lock_hash" ]; then
  echo "[setup] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_hash" > node_modules/.lock-hash
fi
