#!/usr/bin/env bash
# AWS mode end to end without an AWS account: cfn-lint on template.yaml, then the four
# function binaries under a local Lambda Runtime API emulator (tests/lambda/
# emulator.py) against moto's server, with SQS, DynamoDB Streams and EventBridge
# deliveries fed to them as AWS would (each twice).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/aws/moto.sh

CFN_LINT_VERSION=1.58.0
LINT_VENV=target/lambda-venv

echo "== lambda: cfn-lint $CFN_LINT_VERSION on template.yaml"
if ! "$LINT_VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("cfn-lint") != sys.argv[1])' "$CFN_LINT_VERSION" 2>/dev/null; then
  rm -rf "$LINT_VENV"
  python3 -m venv "$LINT_VENV"
  timeout 600 "$LINT_VENV/bin/pip" install --quiet "cfn-lint==$CFN_LINT_VERSION"
fi
"$LINT_VENV/bin/cfn-lint" template.yaml
echo "cfn-lint: no findings"

# The suite runs the debug binaries (their dependencies are already built by
# `cargo test --workspace`; a release build of the AWS SDKs takes ~10 minutes on 2 cores):
# KITE_LAMBDA_PROFILE=lambda-release runs the size-optimised binaries Lambda gets, as
# bench/lambda.sh does (any other Cargo profile name works too, e.g. release).
PROFILE=${KITE_LAMBDA_PROFILE:-debug}
FUNCTIONS=(-p kite-fn-api -p kite-fn-worker -p kite-fn-scheduler -p kite-fn-stream)
echo "== lambda: $PROFILE builds of the functions"
if [ "$PROFILE" = debug ]; then
  # The workspace's feature set, as `cargo test --workspace` built them: nothing to rebuild.
  cargo build --locked --workspace --bins
else
  cargo build --profile "$PROFILE" --locked "${FUNCTIONS[@]}"
fi

trap moto_stop EXIT
moto_start
timeout 600 "$MOTO_VENV/bin/python" tests/lambda/e2e.py target "target/$PROFILE"
