#!/usr/bin/env bash
# AWS mode end to end without an AWS account: cfn-lint on template.yaml, then the four
# functions built by `sam build` exactly as README's deployment does (aws-sam-cli and
# cargo-lambda from PyPI), run under a local Lambda Runtime API emulator (tests/lambda/
# emulator.py: it freezes each process between invocations and kills it at its deadline)
# against moto's server, with SQS, DynamoDB Streams and schedule deliveries fed to them as
# AWS would (each at least twice).
#
#   KITE_SAM_ARCH=x86_64 (default: runs natively) or arm64 (runs under qemu-user: Debian's
#                        qemu-user and libc6-arm64-cross; a manual check, see docs/aws.md)
#   KITE_LAMBDA_BUILD=sam (default) | debug (the workspace's debug binaries, for a quick loop)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/aws/moto.sh

CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
TOOLS_VENV=target/lambda-venv
ARCH=${KITE_SAM_ARCH:-x86_64}
BUILD=${KITE_LAMBDA_BUILD:-sam}

tools_ok() {
  "$TOOLS_VENV/bin/python" - "$CFN_LINT_VERSION" "$SAM_CLI_VERSION" "$CARGO_LAMBDA_VERSION" 2>/dev/null <<'PY'
import importlib.metadata as m, sys
want = dict(zip(["cfn-lint", "aws-sam-cli", "cargo-lambda"], sys.argv[1:]))
sys.exit(any(m.version(k) != v for k, v in want.items()))
PY
}
if ! tools_ok; then
  echo "== lambda: cfn-lint $CFN_LINT_VERSION, aws-sam-cli $SAM_CLI_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION in $TOOLS_VENV"
  rm -rf "$TOOLS_VENV"
  python3 -m venv "$TOOLS_VENV"
  timeout 900 "$TOOLS_VENV/bin/pip" install --quiet "cfn-lint==$CFN_LINT_VERSION" \
    "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
export PATH="$PWD/$TOOLS_VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0

echo "== lambda: cfn-lint $CFN_LINT_VERSION on template.yaml (informational checks included)"
cfn-lint template.yaml --include-checks I
echo "cfn-lint: no findings"
sam validate --lint --template template.yaml >/dev/null
echo "sam validate --lint: valid"

LAUNCHER=()
if [ "$BUILD" = sam ]; then
  if [ "$ARCH" = arm64 ]; then
    rustup target add aarch64-unknown-linux-gnu >/dev/null
    LAUNCHER=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
  fi
  # README, deployment step 1: the size settings of the lambda-release profile go through
  # Cargo's environment, since sam build runs `cargo lambda build --release`.
  echo "== lambda: sam build ($ARCH)"
  started=$(date +%s)
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_STRIP=true \
    sam build --template template.yaml --build-dir "target/sam-$ARCH" \
      --parameter-overrides "Architecture=$ARCH" 2>&1 | tail -n 20
  echo "sam build: $(( $(date +%s) - started )) s"
  BINARIES="target/sam-$ARCH"
  for f in Api Worker Scheduler Stream; do
    file "$BINARIES/${f}Function/bootstrap" 2>/dev/null || ls -l "$BINARIES/${f}Function/bootstrap"
  done
else
  # The workspace's feature set, as `cargo test --workspace` built them: nothing to rebuild.
  echo "== lambda: debug builds of the functions"
  cargo build --locked --workspace --bins
  BINARIES=target/debug
fi

trap moto_stop EXIT
moto_start
KITE_LAMBDA_LAUNCHER="${LAUNCHER[*]:-}" timeout 900 "$MOTO_VENV/bin/python" tests/lambda/e2e.py target "$BINARIES"
