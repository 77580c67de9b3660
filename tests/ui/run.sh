#!/usr/bin/env bash
# Browser tests of the web UI: the release `kite` binary on 127.0.0.1, driven in
# headless Chromium (Debian's `chromium`) by playwright-core, pinned in
# package-lock.json and installed here with npm (it never downloads a browser).
# Needs Chromium, Node.js 18+ and npm (.ci/run installs them when missing).
#   UI_SCREENSHOTS=docs/images tests/ui/run.sh   also refreshes the docs' screenshots
set -euo pipefail
cd "$(dirname "$0")/../.."

CHROMIUM="${KITE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "ui: no Chromium at $CHROMIUM (Debian: apt-get install chromium, or set KITE_CHROMIUM)" >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "ui: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$NODE_MAJOR" -lt 18 ]; then
  echo "ui: Node.js 18 or newer is needed, found $(node --version)" >&2
  exit 1
fi

echo "== ui: build the release kite binary"
cargo build --release --locked --bin kite

# The locked playwright-core needs Node.js 20; with Debian 12's own nodejs (18) a release
# that still supports it is used (also tested against Debian's Chromium).
NODE18_PLAYWRIGHT=1.49.1
if [ "$NODE_MAJOR" -ge 20 ]; then
  WANTED="$(node -p 'require("./tests/ui/package.json").devDependencies["playwright-core"]')"
else
  WANTED="$NODE18_PLAYWRIGHT"
fi
HAVE="$(node -p 'try { require("./tests/ui/node_modules/playwright-core/package.json").version } catch { "" }')"
if [ "$HAVE" != "$WANTED" ]; then
  echo "== ui: install playwright-core $WANTED"
  if [ "$NODE_MAJOR" -ge 20 ]; then
    (cd tests/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd tests/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm install --no-save --no-package-lock \
      --no-audit --no-fund --loglevel=error "playwright-core@$NODE18_PLAYWRIGHT")
  fi
fi

echo "== ui: headless Chromium against kite server"
KITE_BIN=target/release/kite KITE_CHROMIUM="$CHROMIUM" \
  timeout 600 node --test --test-concurrency=1 --test-timeout=120000 tests/ui/ui.test.mjs
