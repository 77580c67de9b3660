#!/usr/bin/env bash
# Load benchmark of the local server: Kestra's benchmark01 flow started by its webhook
# with `?wait=true`, so each response arrives when the execution is SUCCESS and wrk's
# latency is webhook → SUCCESS. Several loads (open connections); 127.0.0.1 only;
# each run bounded by DURATION. Prints executions/s, p50/p99 latency and the server's RSS.
#
#   bench/webhook.sh                # DURATION=10s CONNECTIONS="1 4 16 64"
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-1 4 16 64}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --locked --bin kite 2>&1 | tail -1

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
./target/release/kite server --port "$port" --data "$work/data" --flows flows/benchmarks >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done

url="http://127.0.0.1:$port/api/v1/executions/webhook/benchmarks/benchmark01/benchmark?wait=true"
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name": "Kite"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# One call first: it must succeed.
curl -s -f -X POST -H 'Content-Type: application/json' -d '{}' "$url" | grep -q '"SUCCESS"' \
  || { echo "benchmark01 did not succeed"; cat "$work/server.log"; exit 1; }

printf '%-12s %12s %10s %10s %10s\n' connections "exec/s" p50 p99 errors
for c in $connections; do
  threads=$(( c < 2 ? c : 2 ))
  out="$(wrk -t"$threads" -c"$c" -d"$duration" --latency -s "$work/post.lua" "$url")"
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
  p99="$(echo "$out" | awk '$1=="99%" {print $2}')"
  errors="$(echo "$out" | awk '/Non-2xx/ {print $5} /Socket errors/ {print $0}' | tr '\n' ' ')"
  printf '%-12s %12s %10s %10s %10s\n' "$c" "$rps" "$p50" "$p99" "${errors:-0}"
done
rss_kb="$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
echo "server peak RSS: $((rss_kb / 1024)) MiB"
