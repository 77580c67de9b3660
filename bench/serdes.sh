#!/usr/bin/env bash
# Throughput and peak memory of the serdes conversions: IonToCsv on a generated Ion file of
# MB megabytes (200 by default) in the local file storage, then CsvToIon on the CSV it gave;
# then, in a second process, IonToExcel on a file of EXCEL_MB megabytes (150 by default:
# 965,774 rows, under Excel's 1,048,576 rows a sheet). Prints MB/s of each and each
# process's peak resident memory.
#
#   bench/serdes.sh            # MB=200 EXCEL_MB=150
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes="${MB:-200}"
excel_megabytes="${EXCEL_MB:-150}"
cargo build --release --locked -p kite-local --example serdes_bench 2>&1 | tail -1
for run in "$megabytes csv" "$excel_megabytes excel"; do
  # shellcheck disable=SC2086 # two words: the size and the mode
  /usr/bin/time -v ./target/release/examples/serdes_bench $run 2>"${TMPDIR:-/tmp}/serdes_bench.time"
  grep -E "Maximum resident set size|Elapsed" "${TMPDIR:-/tmp}/serdes_bench.time"
done
