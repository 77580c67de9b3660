#!/usr/bin/env bash
# Throughput and peak memory of the serdes conversions: IonToCsv on a generated Ion file of
# MB megabytes (200 by default) in the local file storage, then CsvToIon on the CSV it gave;
# then, in a second process, IonToExcel on the same generated file. Prints MB/s of each and
# each process's peak resident memory.
#
#   bench/serdes.sh            # MB=200
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes="${MB:-200}"
cargo build --release --locked -p kite-local --example serdes_bench 2>&1 | tail -1
for mode in csv excel; do
  /usr/bin/time -v ./target/release/examples/serdes_bench "$megabytes" "$mode" 2>"${TMPDIR:-/tmp}/serdes_bench.time"
  grep -E "Maximum resident set size|Elapsed" "${TMPDIR:-/tmp}/serdes_bench.time"
done
