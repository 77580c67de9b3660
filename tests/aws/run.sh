#!/usr/bin/env bash
# The AWS adapters (crate kite-aws) against moto's server on 127.0.0.1: DynamoDB,
# DynamoDB Streams, S3, SQS and EventBridge through the real SDK clients.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/aws/moto.sh

echo "== aws: build the adapter tests"
cargo test --locked -p kite-aws --no-run

trap moto_stop EXIT
moto_start
cargo test --locked -p kite-aws -- --nocapture --test-threads 4 2>&1 | tee target/aws-tests.log
