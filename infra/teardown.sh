#!/usr/bin/env bash
# Removes a Kite stack and the files bucket's objects, which CloudFormation cannot delete
# by itself. The Schedule triggers' schedules go with the stack: they all live in its
# schedule group, and deleting a group deletes its schedules. Executions, flows and files
# are lost.
#   infra/teardown.sh [--stack kite] [--yes]
set -euo pipefail

STACK=kite
YES=
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --yes) YES=1; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

output() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

BUCKET=$(output BucketName)
if [ -z "$YES" ]; then
  read -r -p "Delete stack $STACK (its Schedule triggers' schedules too) and the bucket $BUCKET? [y/N] " answer
  [ "$answer" = y ] || exit 1
fi

if [ -n "$BUCKET" ] && [ "$BUCKET" != None ]; then
  aws s3 rm "s3://$BUCKET" --recursive --only-show-errors
fi
aws cloudformation delete-stack --stack-name "$STACK"
aws cloudformation wait stack-delete-complete --stack-name "$STACK"
echo "stack $STACK deleted"
