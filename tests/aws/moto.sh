# moto's server for the AWS tests. Source this file, then:
#   moto_start   installs moto[server] in target/aws-venv (once), starts it on a free
#                port of 127.0.0.1 and exports AWS_ENDPOINT_URL and dummy credentials;
#   moto_stop    stops the server it started (by its PID).
# tests/aws/run.sh uses it for the adapter tests; other end-to-end scripts can too.

MOTO_VERSION=5.2.5
MOTO_VENV=${MOTO_VENV:-target/aws-venv}
MOTO_PID=

moto_install() {
  if "$MOTO_VENV/bin/python" - "$MOTO_VERSION" 2>/dev/null <<'PY'
import importlib.metadata as m, sys
sys.exit(0 if m.version("moto") == sys.argv[1] else 1)
PY
  then
    return 0
  fi
  echo "== aws: virtualenv with moto[server]==$MOTO_VERSION"
  rm -rf "$MOTO_VENV"
  if ! python3 -m venv "$MOTO_VENV" 2>/dev/null; then
    # Debian's python3 without its venv module: install it once.
    rm -rf "$MOTO_VENV"
    (apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null) \
      || { echo "python3 -m venv fails and python3-venv cannot be installed" >&2; return 1; }
    python3 -m venv "$MOTO_VENV"
  fi
  timeout 600 "$MOTO_VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
}

moto_start() {
  moto_install
  local port
  port=$("$MOTO_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  MOTO_LOG=${MOTO_LOG:-target/moto-$port.log}
  # moto_server with DynamoDB's single-item atomicity (see moto_server.py).
  "$MOTO_VENV/bin/python" "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  local i
  for i in $(seq 1 150); do
    if "$MOTO_VENV/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$AWS_ENDPOINT_URL" 2>/dev/null; then
      echo "== aws: moto $MOTO_VERSION on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto_server exited; its log:" >&2
      cat "$MOTO_LOG" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "moto_server did not answer on $AWS_ENDPOINT_URL" >&2
  moto_stop
  return 1
}

moto_stop() {
  if [ -n "$MOTO_PID" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
  fi
}
