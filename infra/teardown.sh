#!/usr/bin/env bash
# Removes a Kite stack. Its functions, queues, log groups, API and schedule group go (the
# Schedule triggers' schedules with their group). The table, the files bucket and the
# secret are retained by the template (DeletionPolicy: Retain): flows, executions, files
# and the key of SECRET inputs outlive the stack. With --delete-data they are deleted too,
# this stack's only (their names are read from the stack before it goes).
#   infra/teardown.sh [--stack kite] [--delete-data] [--yes]
set -euo pipefail

STACK=kite
YES=
DATA=
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --delete-data) DATA=1; shift ;;
    --yes) YES=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

output() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

BUCKET=$(output BucketName)
TABLE=$(output TableName)
SECRET=$(output SecretsArn)
if [ -z "$YES" ]; then
  if [ -n "$DATA" ]; then
    what="stack $STACK, and its data: table $TABLE, bucket $BUCKET, secret $SECRET"
  else
    what="stack $STACK (table $TABLE, bucket $BUCKET and the secret are kept)"
  fi
  read -r -p "Delete $what? [y/N] " answer
  [ "$answer" = y ] || exit 1
fi

aws cloudformation delete-stack --stack-name "$STACK"
aws cloudformation wait stack-delete-complete --stack-name "$STACK"
echo "stack $STACK deleted"

if [ -n "$DATA" ]; then
  if [ -n "$BUCKET" ] && [ "$BUCKET" != None ]; then
    aws s3 rm "s3://$BUCKET" --recursive --only-show-errors
    aws s3api delete-bucket --bucket "$BUCKET"
    echo "bucket $BUCKET deleted"
  fi
  if [ -n "$TABLE" ] && [ "$TABLE" != None ]; then
    aws dynamodb delete-table --table-name "$TABLE" >/dev/null
    echo "table $TABLE deleted"
  fi
  if [ -n "$SECRET" ] && [ "$SECRET" != None ]; then
    aws secretsmanager delete-secret --secret-id "$SECRET" --recovery-window-in-days 7 >/dev/null
    echo "secret $SECRET scheduled for deletion (7 days)"
  fi
fi
