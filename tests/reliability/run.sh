#!/usr/bin/env bash
# Reliability tests: kill -9 under load, 10,000 webhooks, a crash-loop flow, renders
# near the loop bound, the crash-loop guard. Runs a release `kite` binary built beforehand; builds nothing.
#   tests/reliability/run.sh target/release/kite [SCENARIO ...]
set -euo pipefail
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH_TO_RELEASE_KITE_BINARY [SCENARIO ...]   (scenarios 1 2 3 4 5)" >&2
  exit 2
fi
kite="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
cd "$(dirname "$0")"
echo "== reliability (kill -9 under load, webhooks, crash-loop flow, render bounds)"
timeout 600 python3 reliability.py "$kite" "$@"
