#!/usr/bin/env bash
# Overhead of a script task run on the local server beyond starting its process: a flow of
# TASKS sequential `shell.Commands` tasks (`true`), and one of `python.Script` tasks
# (`pass`), started through the API with `?wait=true`. What starting the same process
# costs is measured directly (the same `/bin/sh -c` command, RUNS×50 times); a task run's
# overhead is
#   (execution time / TASKS) - process start.
# Release build, SQLite in a temp folder, 127.0.0.1 only.
#
#   bench/script-tasks.sh            # RUNS=5 executions of each flow, TASKS=20
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
tasks="${TASKS:-20}"

cargo build --release --locked --bin kite 2>&1 | tail -1

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$work/flows"
{
  echo "id: shell$tasks"
  echo "namespace: bench"
  echo "tasks:"
  for i in $(seq 1 "$tasks"); do
    echo "  - id: s$i"
    echo "    type: io.kestra.plugin.scripts.shell.Commands"
    echo "    commands: [\"true\"]"
  done
} >"$work/flows/shell.yaml"
{
  echo "id: python$tasks"
  echo "namespace: bench"
  echo "tasks:"
  for i in $(seq 1 "$tasks"); do
    echo "  - id: p$i"
    echo "    type: io.kestra.plugin.scripts.python.Script"
    echo "    script: pass"
  done
} >"$work/flows/python.yaml"

./target/release/kite server --port "$port" --data "$work/data" --flows "$work/flows" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done

# What starting the task's process costs by itself (µs), as the worker starts it.
echo pass >"$work/script.py"
start_us() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1])
command = ["/bin/sh", "-c", sys.argv[2]]
subprocess.run(command, check=True)
t = time.perf_counter()
for _ in range(n):
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
print(round((time.perf_counter() - t) * 1e6 / n, 1))
PY
}

measure() { # flow id, process start µs
  local flow="$1" start="$2" times=() body="$work/answer.json"
  local url="http://127.0.0.1:$port/api/v1/executions/bench/$flow?wait=true"
  printf '%-6s %14s %16s %18s\n' run "execution ms" "per task run ms" "overhead/task ms"
  for r in $(seq 0 "$runs"); do
    secs="$(curl -s -f -X POST -o "$body" -w '%{time_total}' "$url")"
    grep -q '"SUCCESS"' "$body" || { echo "the flow did not succeed"; cat "$body"; tail -20 "$work/server.log"; exit 1; }
    [ "$r" = 0 ] && continue # warm-up
    printf '%-6s %14s %16s %18s\n' "$r" "$(python3 -c "print(round($secs * 1e3, 1))")" \
      "$(python3 -c "print(round($secs * 1e3 / $tasks, 2))")" \
      "$(python3 -c "print(round($secs * 1e3 / $tasks - $start / 1e3, 2))")"
    times+=("$secs")
  done
  median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
  echo "process start: $(python3 -c "print(round($start / 1e3, 2))") ms"
  echo "median: $(python3 -c "print(round($median * 1e3 / $tasks - $start / 1e3, 2))") ms per task run beyond the process start"
}

python="$(command -v python3)"
echo "== shell.Commands (true)"
measure "shell$tasks" "$(start_us $((runs * 50)) "$(printf 'set -e\ntrue')")"
echo "== python.Script (pass)"
measure "python$tasks" "$(start_us $((runs * 10)) "$(printf 'set -e\n%s %s' "$python" "$work/script.py")")"
