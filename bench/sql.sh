#!/usr/bin/env bash
# Rows per second and peak memory of the SQL tasks reading a table of ROWS rows
# (1,000,000 by default) through the worker: SQLite, and PostgreSQL when it is installed
# (a server of its own, started here on 127.0.0.1 and stopped at the end) and DuckDB
# (DUCKDB=0 skips it; its library is fetched once by tests/duckdb/lib.sh), each with
# fetchType FETCH (rows kept as outputs) and STORE (rows streamed to an Ion file).
#
#   bench/sql.sh              # ROWS=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${ROWS:-1000000}"
cargo build --release --locked -p kite-local --example sql_bench 2>&1 | tail -1
work="$(mktemp -d "${TMPDIR:-/tmp}/kite-sql-bench.XXXXXX")"
chmod 777 "$work"
export KITE_BENCH_DIR="$work"
pg_pid=""
cleanup() {
  if [ -n "$pg_pid" ]; then
    kill -INT "$pg_pid" 2>/dev/null || true
    while kill -0 "$pg_pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

measure() {
  /usr/bin/time -v ./target/release/examples/sql_bench "$@" "$rows" 2>"$work/time.log" | sed 's/^/  /'
  grep "Maximum resident set size" "$work/time.log" | sed 's/^\s*/  /'
}

echo "== SQLite"
measure sqlite store
measure sqlite fetch

# DuckDB: the example built again with the duckdb feature (DuckDB's prebuilt library).
if [ "${DUCKDB:-1}" = 1 ] && . tests/duckdb/lib.sh >/dev/null; then
  cargo build --release --locked -p kite-local --features duckdb --example sql_bench 2>&1 | tail -1
  echo "== DuckDB"
  measure duckdb store
  measure duckdb fetch
  cargo build --release --locked -p kite-local --example sql_bench 2>&1 | tail -1
else
  echo "== DuckDB: skipped (DUCKDB=0, or its library could not be fetched)"
fi

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ]; then
  echo "== PostgreSQL: not installed (apt-get install postgresql), skipped"
  exit 0
fi
run_as_server() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; else "$@"; fi; }
run_as_server "$bin/initdb" -D "$work/pg" -U kite --auth=trust -E UTF8 --locale=C >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
run_as_server "$bin/postgres" -D "$work/pg" -p "$port" -k "$work" -c listen_addresses=127.0.0.1 -c fsync=off >/dev/null 2>&1 &
until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do sleep 0.1; done
# The server's own pid (the background job is the shell around it).
pg_pid="$(head -n 1 "$work/pg/postmaster.pid")"
export KITE_BENCH_POSTGRES_URL="jdbc:postgresql://127.0.0.1:$port/postgres?user=kite"
echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}')"
measure postgres store
measure postgres fetch
