#!/usr/bin/env bash
# Deploys flow files (default: the repository's flows/) to a deployed Kite stack with the
# `kite` CLI. The API URL comes from the stack's ApiUrl output unless given.
#   KITE_API_TOKEN=... infra/deploy-flows.sh [--stack kite] [--url URL] [PATH...]
# Credentials: KITE_API_TOKEN or KITE_BASIC_AUTH (user:password), as for the stack.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=kite
URL=
PATHS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --url) URL=$2; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) PATHS+=("$1"); shift ;;
  esac
done
[ ${#PATHS[@]} -gt 0 ] || PATHS=(flows)

if [ -z "$URL" ]; then
  URL=$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue" --output text)
fi
[ -n "$URL" ] && [ "$URL" != "None" ] || { echo "no ApiUrl output on stack $STACK" >&2; exit 1; }

KITE=${KITE:-$(command -v kite || echo target/release/kite)}
[ -x "$KITE" ] || { echo "build the CLI first: cargo build --release --bin kite" >&2; exit 1; }

echo "deploying ${PATHS[*]} to $URL"
exec "$KITE" flow deploy --server "$URL" "${PATHS[@]}"
