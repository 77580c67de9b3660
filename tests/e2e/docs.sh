#!/usr/bin/env bash
# Kestra's "Execute a flow" docs, verbatim: the `kite` binary on localhost:8080,
# the docs' curl commands exactly as written, and the real
# `kestra` Python package (2.0.0) in a virtualenv this script creates.
# Starts and stops its own servers; bounded in time; prints `docs: N passed, N failed`.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

port=8080
base="http://localhost:$port"
work="$(mktemp -d)"
server_pid=""
passed=0
failed=0

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=""
  fi
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

check() {
  local name="$1"
  shift
  if "$@" >"$work/out.txt" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$work/out.txt" | tail -20
  fi
}

start_server() {
  if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))==0)"; then :; else
    echo "port $port is busy: the docs' curl lines need it free" >&2
    exit 1
  fi
  "./target/$profile/kite" server --port "$port" --data "$work/data" --flows flows "$@" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/ping" && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
}

# Waits for an execution to end; prints its JSON.
finished() {
  local id="$1" auth=("${@:2}")
  for _ in $(seq 1 100); do
    local body
    body="$(curl -s "${auth[@]}" "$base/api/v1/executions/$id")"
    case "$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["current"])')" in
      SUCCESS|WARNING|FAILED|KILLED|CANCELLED) echo "$body"; return 0 ;;
    esac
    sleep 0.1
  done
  echo "execution $id did not finish" >&2
  return 1
}

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

logs_of() { curl -s "${@:2}" "$base/api/v1/logs/$1/download"; }

expect_log() {
  local response="$1" want="$2"
  local id
  id="$(echo "$response" | field '["id"]')" || return 1
  local done
  done="$(finished "$id")" || return 1
  [ "$(echo "$done" | field '["state"]["current"]')" = SUCCESS ] || { echo "$done"; return 1; }
  logs_of "$id" | grep -F -- "$want" || { echo "log of $id lacks: $want"; logs_of "$id"; return 1; }
}

echo "== build"
# The debug build reuses what `cargo test` compiled; set KITE_PROFILE=release to test that one.
profile="${KITE_PROFILE:-debug}"
if [ "$profile" = release ]; then
  cargo build --release --locked --bin kite 2>&1 | tail -1
else
  cargo build --locked --bin kite 2>&1 | tail -1
fi

echo "== curl, as in Kestra's docs"
start_server

docs_execute() {
  local r
  r="$(curl -s -X POST http://localhost:8080/api/v1/executions/dev/hello-world)"
  echo "$r"
  expect_log "$r" "hello"
}
check "curl -X POST .../executions/dev/hello-world" docs_execute

docs_revision() {
  # A second revision of the flow first (the docs assume one exists).
  sed 's/defaults: hello/defaults: hello from revision 2/' flows/dev/hello-world.yaml >"$work/hello-v2.yaml"
  curl -s -f -X PUT -H 'Content-Type: application/x-yaml' --data-binary @"$work/hello-v2.yaml" \
    "$base/api/v1/flows/dev/hello-world" >/dev/null || return 1
  local r
  r="$(curl -s -X POST 'http://localhost:8080/api/v1/executions/dev/hello-world?revision=2')"
  echo "$r"
  [ "$(echo "$r" | field '["flowRevision"]')" = 2 ] || return 1
  expect_log "$r" "hello from revision 2"
}
check "curl ...?revision=2" docs_revision

docs_form() {
  local r
  r="$(curl -s -X POST http://localhost:8080/api/v1/executions/dev/hello-world -F greeting="hey there")"
  echo "$r"
  expect_log "$r" "hey there"
}
check 'curl -F greeting="hey there"' docs_form

docs_webhook() {
  local r
  r="$(curl -s -X POST http://localhost:8080/api/v1/executions/webhook/dev/hello-world/test1234 \
    -H 'Content-Type: application/json' -d '{"greeting": "from a webhook"}')"
  echo "$r"
  expect_log "$r" '{"greeting":"from a webhook"}'
}
check "curl webhook with a JSON body" docs_webhook

wrong_key() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/executions/webhook/dev/hello-world/nope")" = 404 ]
}
check "webhook with a wrong key is 404" wrong_key

echo "== the kestra Python package"
python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q "kestra==2.0.0" 2>&1 | tail -2
printf 'content of my file\n' >"$work/myfile.txt"

python_execute() {
  KESTRA_HOSTNAME="$base" "$work/venv/bin/python" - <<'PY'
from kestra import Flow
result = Flow(poll_interval=0.2).execute('dev', 'hello-world', {'greeting': 'hello from Python'})
print(result.status, result.log)
assert result.status == 'SUCCESS', result.status
assert 'hello from Python' in result.log, result.log
PY
}
check "kestra Flow().execute with inputs" python_execute

python_file() {
  KESTRA_HOSTNAME="$base" MYFILE="$work/myfile.txt" "$work/venv/bin/python" - <<'PY'
import os
from kestra import Flow
with open(os.environ['MYFILE'], 'rb') as fh:
    result = Flow(poll_interval=0.2).execute('dev', 'file-input', {'files': ('myfile', fh, 'text/plain')})
print(result.status, result.log)
assert result.status == 'SUCCESS', result.status
assert 'content of my file' in result.log, result.log
PY
}
check "kestra Flow().execute with a FILE input" python_file
stop_server

echo "== basic auth"
start_server --basic-auth admin:s3cret
auth_required() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/executions/dev/hello-world")"
  [ "$code" = 401 ] || { echo "got $code"; return 1; }
  curl -s -D - -o /dev/null -X POST "$base/api/v1/executions/dev/hello-world" | grep -i '^www-authenticate: Basic'
}
check "API needs credentials (401 + WWW-Authenticate)" auth_required

python_auth() {
  KESTRA_HOSTNAME="$base" KESTRA_USER=admin KESTRA_PASSWORD=s3cret "$work/venv/bin/python" - <<'PY'
import os
from kestra import Flow
flow = Flow(poll_interval=0.2)
# kestra 2.0.0 reads KESTRA_USER but not KESTRA_PASSWORD; its docs set the password on the object.
flow.password = os.environ['KESTRA_PASSWORD']
result = flow.execute('dev', 'hello-world', {'greeting': 'hello with auth'})
print(result.status, result.log)
assert result.status == 'SUCCESS' and 'hello with auth' in result.log
PY
}
check "kestra client with KESTRA_USER/KESTRA_PASSWORD" python_auth

webhook_open() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/executions/webhook/dev/hello-world/test1234")" = 200 ]
}
check "webhooks stay open with auth on" webhook_open
stop_server

echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
