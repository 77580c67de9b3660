#!/usr/bin/env bash
# Removes a Kite stack and what CloudFormation cannot delete by itself: the Schedule
# trigger rules the api function created (named RulePrefix-*) and the files bucket's
# objects. Executions, flows and files are lost.
#   infra/teardown.sh [--stack kite] [--yes]
set -euo pipefail

STACK=kite
YES=
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --yes) YES=1; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

output() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
param() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Parameters[?ParameterKey=='$1'].ParameterValue" --output text
}

BUCKET=$(output BucketName)
PREFIX=$(param RulePrefix)
if [ -z "$YES" ]; then
  read -r -p "Delete stack $STACK, its bucket $BUCKET and the rules $PREFIX-*? [y/N] " answer
  [ "$answer" = y ] || exit 1
fi

for rule in $(aws events list-rules --name-prefix "$PREFIX-" --query 'Rules[].Name' --output text); do
  ids=$(aws events list-targets-by-rule --rule "$rule" --query 'Targets[].Id' --output text)
  [ -z "$ids" ] || aws events remove-targets --rule "$rule" --ids $ids >/dev/null
  aws events delete-rule --name "$rule"
  echo "deleted rule $rule"
done

if [ -n "$BUCKET" ] && [ "$BUCKET" != None ]; then
  aws s3 rm "s3://$BUCKET" --recursive --only-show-errors
fi
aws cloudformation delete-stack --stack-name "$STACK"
aws cloudformation wait stack-delete-complete --stack-name "$STACK"
echo "stack $STACK deleted"
