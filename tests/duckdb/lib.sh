#!/usr/bin/env bash
# DuckDB's prebuilt library for builds with the `duckdb` feature: libduckdb.so of the
# DuckDB release that libduckdb-sys expects, taken from DuckDB's own npm package of
# native bindings, unpacked once into target/duckdb/. Sourced (`. tests/duckdb/lib.sh`)
# it exports DUCKDB_LIB_DIR (where the build links it from) and LD_LIBRARY_PATH (where
# the binaries and tests load it from); run, it prints both.
set -euo pipefail

duckdb_version=1.5.6-r.1
case "$(uname -m)" in
  x86_64 | amd64) duckdb_arch=x64 ;;
  aarch64 | arm64) duckdb_arch=arm64 ;;
  *) echo "no prebuilt DuckDB library for $(uname -m): build with the duckdb-bundled feature" >&2; return 1 2>/dev/null || exit 1 ;;
esac
duckdb_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
duckdb_dir="$duckdb_root/target/duckdb/linux-$duckdb_arch-$duckdb_version"

if [ ! -f "$duckdb_dir/libduckdb.so" ]; then
  duckdb_tmp="$(mktemp -d)"
  (cd "$duckdb_tmp" && npm pack --silent "@duckdb/node-bindings-linux-$duckdb_arch@$duckdb_version" >/dev/null)
  tar -xzf "$duckdb_tmp"/*.tgz -C "$duckdb_tmp" package/libduckdb.so
  mkdir -p "$duckdb_dir"
  mv "$duckdb_tmp/package/libduckdb.so" "$duckdb_dir/libduckdb.so"
  rm -rf "$duckdb_tmp"
fi
if [ ! -f "$duckdb_dir/libduckdb.so" ]; then
  echo "libduckdb.so missing from $duckdb_dir" >&2
  return 1 2>/dev/null || exit 1
fi

export DUCKDB_LIB_DIR="$duckdb_dir"
export LD_LIBRARY_PATH="$duckdb_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "DUCKDB_LIB_DIR=$DUCKDB_LIB_DIR"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
