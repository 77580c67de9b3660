#!/usr/bin/env bash
# Responsiveness of the local server while its workers are saturated: executions whose
# Log message renders about 900,000 loop iterations keep every worker busy, and wrk
# measures `GET /ping` meanwhile (one connection). 127.0.0.1 only; bounded by DURATION.
# Prints the ping latencies (p50, p99, max) and how many heavy executions finished.
#
#   bench/ping_under_load.sh        # DURATION=10s EXECUTIONS=40 (KITE_BIN: another build)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-10s}"
executions="${EXECUTIONS:-40}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
kite="${KITE_BIN:-./target/release/kite}"
[ -n "${KITE_BIN:-}" ] || cargo build --release --locked --bin kite 2>&1 | tail -1

work="$(mktemp -d)"
mkdir -p "$work/flows"
cat >"$work/flows/heavy.yaml" <<'YAML'
id: heavy
namespace: bench
tasks:
  - id: render
    type: io.kestra.plugin.core.log.Log
    message: "{% for i in range(1, 900) %}{% for j in range(1, 1000) %}{% endfor %}{% endfor %}done"
YAML
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$kite" server --port "$port" --data "$work/data" --flows "$work/flows" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done

base="http://127.0.0.1:$port/api/v1"
for _ in $(seq 1 "$executions"); do
  curl -s -f -o /dev/null -X POST "$base/executions/bench/heavy"
done
out="$(wrk -t1 -c1 -d"$duration" --latency "http://127.0.0.1:$port/ping")"
finished="$(curl -s "$base/executions/search?namespace=bench&state=SUCCESS&size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')"
p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
p99="$(echo "$out" | awk '$1=="99%" {print $2}')"
max="$(echo "$out" | awk '/Latency/ {print $4}')"
echo "ping while $executions heavy executions run: p50 $p50, p99 $p99, max $max; $finished finished within $duration"
