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
if "$KITE" flow deploy --server "$URL" "${PATHS[@]}"; then
  exit 0
fi

# A kite binary built without TLS cannot call an https URL: deploy with curl instead,
# flow by flow (create, or update when it exists).
echo "kite could not deploy; deploying with curl" >&2
auth=()
if [ -n "${KITE_API_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $KITE_API_TOKEN");
elif [ -n "${KITE_BASIC_AUTH:-}" ]; then auth=(-u "$KITE_BASIC_AUTH"); fi
status=0
while IFS= read -r file; do
  ns=$(sed -n 's/^namespace:[[:space:]]*//p' "$file" | head -1 | tr -d '"'"'"'\r')
  id=$(sed -n 's/^id:[[:space:]]*//p' "$file" | head -1 | tr -d '"'"'"'\r')
  code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/x-yaml' \
    --data-binary "@$file" -X PUT "$URL/api/v1/flows/$ns/$id")
  if [ "$code" = 404 ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/x-yaml' \
      --data-binary "@$file" -X POST "$URL/api/v1/flows")
  fi
  echo "$file: $ns.$id -> HTTP $code"
  [ "$code" = 200 ] || status=1
done < <(find "${PATHS[@]}" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
exit $status
