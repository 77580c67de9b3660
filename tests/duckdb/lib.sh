#!/usr/bin/env bash
# DuckDB's prebuilt library for builds with the `duckdb` feature: libduckdb.so of the
# DuckDB release that libduckdb-sys expects (1.5.6), taken from DuckDB's own npm package
# of native bindings and unpacked once into target/duckdb/. Sourced
# (`. tests/duckdb/lib.sh`) it exports DUCKDB_LIB_DIR (where the build links it from) and
# LD_LIBRARY_PATH (where binaries and tests load it from); run, it prints both. It leaves
# the caller's shell options alone, and fails (status 1) when the library cannot be had.

duckdb_lib_setup() {
  local version=1.5.6-r.1 arch root dir tmp
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *)
      echo "no prebuilt DuckDB library for $(uname -m): build with the duckdb-bundled feature" >&2
      return 1
      ;;
  esac
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)" || return 1
  dir="$root/target/duckdb/linux-$arch-$version"
  if [ ! -f "$dir/libduckdb.so" ]; then
    command -v npm >/dev/null || { echo "npm is needed to fetch DuckDB's library" >&2; return 1; }
    tmp="$(mktemp -d)" || return 1
    if (cd "$tmp" && npm pack --silent "@duckdb/node-bindings-linux-$arch@$version" >/dev/null) &&
      tar -xzf "$tmp"/*.tgz -C "$tmp" package/libduckdb.so &&
      mkdir -p "$dir" && mv "$tmp/package/libduckdb.so" "$dir/libduckdb.so"; then
      rm -rf "$tmp"
    else
      rm -rf "$tmp"
      echo "could not fetch @duckdb/node-bindings-linux-$arch@$version" >&2
      return 1
    fi
  fi
  if [ ! -f "$dir/libduckdb.so" ]; then
    echo "libduckdb.so missing from $dir" >&2
    return 1
  fi
  export DUCKDB_LIB_DIR="$dir"
  case ":${LD_LIBRARY_PATH:-}:" in
    *":$dir:"*) ;;
    *) export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
  echo "DUCKDB_LIB_DIR=$DUCKDB_LIB_DIR"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  duckdb_lib_setup
else
  duckdb_lib_setup || return 1
fi
