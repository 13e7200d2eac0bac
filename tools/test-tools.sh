#!/usr/bin/env bash
# The command-line tools some tests drive, installed from the system's packages when missing:
# headless Chromium (the public verification pages) and docker-compose (compose validation; it
# needs no engine). Called by `make test`; never skips a test, fails with one line instead.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
  || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "make test: installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "make test needs ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and run make test again" >&2
  exit 1
fi
