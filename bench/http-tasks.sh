#!/usr/bin/env bash
# Overhead of an `http.Request` task run on the local server: a flow of 100 sequential
# Requests against a small HTTP server on 127.0.0.1, started through the API with
# `?wait=true`. The server's own time per request is measured directly (wrk, one
# connection, keep-alive as Kite's pooled client); what a task run costs beyond it is
#   (execution time / 100) - server time per request.
# Release build, SQLite in a temp folder, 127.0.0.1 only.
#
#   bench/http-tasks.sh              # RUNS=5 executions, TASKS=100
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
tasks="${TASKS:-100}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked --bin kite 2>&1 | tail -1

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
target_port="$(free_port)"
port="$(free_port)"

# The target: answers every GET with 2 bytes, HTTP/1.1 keep-alive, one thread per connection.
cat >"$work/target.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        # One write: a head and a body sent apart wait on delayed ACKs (40 ms).
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
PY
python3 "$work/target.py" "$target_port" &
target_pid=$!

mkdir -p "$work/flows"
{
  echo "id: http$tasks"
  echo "namespace: bench"
  echo "tasks:"
  for i in $(seq 1 "$tasks"); do
    echo "  - id: r$i"
    echo "    type: io.kestra.plugin.core.http.Request"
    echo "    uri: http://127.0.0.1:$target_port/ok"
  done
} >"$work/flows/http.yaml"

./target/release/kite server --port "$port" --data "$work/data" --flows "$work/flows" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid $target_pid 2>/dev/null; wait $pid $target_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$target_port/ok" && break; sleep 0.1; done

# The server's own time per request, measured directly.
out="$(wrk -t1 -c1 -d3s "http://127.0.0.1:$target_port/ok")"
rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
server_us="$(python3 -c "print(round(1e6 / $rps, 1))")"

url="http://127.0.0.1:$port/api/v1/executions/bench/http$tasks?wait=true"
printf '%-6s %14s %16s %18s\n' run "execution ms" "per task run µs" "overhead/task µs"
times=()
for r in $(seq 0 "$runs"); do
  body="$work/answer.json"
  secs="$(curl -s -f -X POST -o "$body" -w '%{time_total}' "$url")"
  grep -q '"SUCCESS"' "$body" || { echo "the flow did not succeed"; cat "$body"; tail -20 "$work/server.log"; exit 1; }
  [ "$r" = 0 ] && continue # warm-up: connections, caches
  per_task="$(python3 -c "print(round($secs * 1e6 / $tasks, 1))")"
  overhead="$(python3 -c "print(round($secs * 1e6 / $tasks - $server_us, 1))")"
  printf '%-6s %14s %16s %18s\n' "$r" "$(python3 -c "print(round($secs * 1e3, 1))")" "$per_task" "$overhead"
  times+=("$secs")
done
median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
echo "target server: ${server_us} µs per request (wrk, 1 connection)"
echo "median: $(python3 -c "print(round($median * 1e6 / $tasks - $server_us, 1))") µs per task run beyond the request"
rss_kb="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
echo "server peak RSS: $((rss_kb / 1024)) MiB"
