#!/usr/bin/env bash
# End-to-end tests: the release `kite` binary served on 127.0.0.1, driven by curl and by
# the `kestra` PyPI client (2.0.0, unchanged) in a virtualenv made here.
set -euo pipefail
cd "$(dirname "$0")/../.."

KESTRA_CLIENT_VERSION=2.0.0
VENV=target/e2e-venv

echo "== e2e: build the release kite binary"
cargo build --release --locked --bin kite

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import kestra" 2>/dev/null \
   || [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kestra"))')" != "$KESTRA_CLIENT_VERSION" ]; then
  echo "== e2e: virtualenv with kestra==$KESTRA_CLIENT_VERSION"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/pip" install --quiet "kestra==$KESTRA_CLIENT_VERSION"
fi

echo "== e2e: kite server with curl and the kestra client"
timeout 900 "$VENV/bin/python" tests/e2e/e2e.py target/release/kite
