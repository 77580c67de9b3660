#!/usr/bin/env bash
# AWS mode numbers (a measurement, not a timed test):
#  - release binary size of each function (raw and stripped; Lambda's limit of interest: 10 MB);
#  - init time: process start -> first Runtime API request, under the local emulator;
#  - AWS calls of one benchmark01 execution, counted by the adapters' SDK interceptor in the
#    real api binary against moto (tests/lambda/e2e.py prints them).
# Builds with the functions' size profile (Cargo.toml's `lambda-release`: opt-level z, fat
# LTO, one codegen unit, stripped): for arm64 with `cargo lambda build --release --arm64`
# and the same settings through Cargo's environment (as README's `sam build` step) when the
# aarch64 target is installed (rustup target add aarch64-unknown-linux-gnu; pip install
# cargo-lambda), else `cargo build --profile lambda-release` for this host, and says which.
#   bench/lambda.sh            RUNS=20 init samples per function
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
TARGET=${CARGO_TARGET_DIR:-target}
FUNCTIONS=(-p kite-fn-api -p kite-fn-worker -p kite-fn-scheduler -p kite-fn-stream)

if rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu && command -v cargo-lambda >/dev/null; then
  echo "== cargo lambda build --release --arm64 (lambda-release settings)"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_STRIP=true \
    cargo lambda build --release --arm64 "${FUNCTIONS[@]}"
  OUT=$TARGET/lambda-arm64
  mkdir -p "$OUT"
  for f in api worker scheduler stream; do cp "$TARGET/lambda/kite-fn-$f/bootstrap" "$OUT/kite-fn-$f"; done
  echo "(arm64 binaries: init times below need an arm64 host or qemu)"
else
  echo "== no aarch64 target installed: lambda-release build for this host ($(uname -m)), not arm64"
  cargo build --profile lambda-release --locked "${FUNCTIONS[@]}"
  OUT=$TARGET/lambda-release
fi
for f in api worker scheduler stream; do
  strip -o "$OUT/kite-fn-$f.stripped" "$OUT/kite-fn-$f" 2>/dev/null || cp "$OUT/kite-fn-$f" "$OUT/kite-fn-$f.stripped"
done

echo "== init time ($RUNS cold starts each) and binary size, $(nproc) cores"
python3 bench/lambda_init.py "$OUT" "$RUNS"

echo "== AWS calls per benchmark01 execution (real binaries against moto)"
. tests/aws/moto.sh
trap moto_stop EXIT
moto_start
"$MOTO_VENV/bin/python" tests/lambda/e2e.py target "$OUT" | grep -E "init|AWS calls|invocations|checks passed"
