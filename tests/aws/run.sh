#!/usr/bin/env bash
# The AWS adapters (crate kite-aws) against moto's server on 127.0.0.1: DynamoDB,
# DynamoDB Streams, S3, SQS and EventBridge Scheduler through the real SDK clients, then
# Kestra's AWS tasks (kite-local's aws_tasks). Those tests are #[ignore]d (plain `cargo
# test` has no moto): this runs them with --ignored.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/aws/moto.sh

# `--workspace --test moto` (not `-p kite-aws`) keeps the workspace's feature set, so the
# SDKs built by `cargo test --workspace` are reused instead of built a second time.
echo "== aws: build the adapter tests"
cargo test --locked --workspace --test moto --no-run
cargo test --locked --workspace --test aws_tasks --no-run

trap moto_stop EXIT
moto_start
cargo test --locked --workspace --test moto -- --ignored --nocapture --test-threads 4 2>&1 | tee target/aws-tests.log
# Kestra's AWS tasks in flows: each test starts its own moto (the virtualenv above).
cargo test --locked --workspace --test aws_tasks -- --include-ignored 2>&1 | tee target/aws-tasks-tests.log
