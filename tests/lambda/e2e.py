"""End-to-end run of the four function binaries under the Runtime API emulator (which
freezes each process between invocations and kills it at its deadline, as Lambda does),
against moto (DynamoDB, DynamoDB Streams, S3, SQS, Secrets Manager, EventBridge
Scheduler), with the dispatch wired as AWS wires it, in the background like Lambda's
event source mappings: SQS messages are received from moto and fed to two worker
instances at once (each batch twice: Lambda delivers at least once), stream records are
read from moto's DynamoDB Streams, filtered with template.yaml's pattern and fed to the
stream function (twice), schedule inputs go to the scheduler (twice).

Usage: python e2e.py TARGET_DIR BINARY_DIR   (AWS_ENDPOINT_URL and dummy credentials set by moto.sh)
"""

import base64
import datetime as dt
import gzip
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager

import boto3
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from emulator import Function, InvokeError, free_env  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EVENTS = os.path.join(ROOT, "tests", "lambda", "events")
TOKEN = "e2e-token-" + uuid.uuid4().hex[:8]
SCHEDULER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:kite-scheduler"
SCHEDULER_ROLE_ARN = "arn:aws:iam::123456789012:role/kite-e2e-scheduler"
CHECKS = []


def check(condition, what):
    CHECKS.append(what)
    if not condition:
        raise AssertionError(what)
    print(f"  ok  {what}")


# ------------------------------------------------------------------ resources


class CfnTags(yaml.SafeLoader):
    """CloudFormation's short tags as one-key mappings: `!Ref X` is {"!Ref": "X"}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"!" + suffix: value}


CfnTags.add_multi_constructor("!", _tag)


def template():
    with open(os.path.join(ROOT, "template.yaml")) as f:
        return yaml.load(f, Loader=CfnTags)


def provision(suffix):
    """The table, bucket and queues as template.yaml declares them."""
    resources = template()["Resources"]
    props = resources["KiteTable"]["Properties"]
    ddb = boto3.client("dynamodb")
    table = f"kite-e2e-{suffix}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode=props["BillingMode"],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": props["StreamSpecification"]["StreamViewType"]},
    )
    ttl = props["TimeToLiveSpecification"]
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
    bucket = f"kite-e2e-{suffix}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName=f"kite-e2e-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    work = resources["WorkQueue"]["Properties"]
    queue = sqs.create_queue(
        QueueName=f"kite-e2e-work-{suffix}",
        Attributes={
            "VisibilityTimeout": str(work["VisibilityTimeout"]),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(work["RedrivePolicy"]["maxReceiveCount"])}
            ),
        },
    )["QueueUrl"]
    stream_arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    return table, bucket, queue, stream_arn


# ------------------------------------------------------------------ events


def http_event(method, path, body=None, query="", headers=None, auth=True):
    h = {"host": "e2e.execute-api.us-east-1.amazonaws.com", "user-agent": "kite-e2e",
         "x-forwarded-proto": "https", "x-forwarded-port": "443"}
    if auth:
        h["authorization"] = f"Bearer {TOKEN}"
    h.update(headers or {})
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "e2e",
            "domainName": "e2e.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "e2e",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "kite-e2e"},
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def http(api, *args, **kwargs):
    answer = api.invoke(http_event(*args, **kwargs))
    body = answer.get("body") or ""
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return answer["statusCode"], parsed


def jsonable(value):
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


class Stream:
    """Reads the table's stream from moto like Lambda's event source mapping."""

    def __init__(self, arn):
        self.client = boto3.client("dynamodbstreams")
        self.arn = arn
        self.iterators = {}

    def poll(self):
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        records = []
        for shard_id, iterator in list(self.iterators.items()):
            if iterator is None:
                continue
            out = self.client.get_records(ShardIterator=iterator, Limit=1000)
            self.iterators[shard_id] = out.get("NextShardIterator")
            records.extend(out["Records"])
        return [self.lambda_record(r) for r in records]

    def lambda_record(self, r):
        r = jsonable(r)
        r["eventSource"] = "aws:dynamodb"
        r["eventSourceARN"] = self.arn
        return r


def matches_filter(record):
    """template.yaml's FilterCriteria of the stream mapping."""
    pattern = None
    for f in template()["Resources"]["StreamFunction"]["Properties"]["Events"]["Executions"]["Properties"]["FilterCriteria"]["Filters"]:
        pattern = json.loads(f["Pattern"])
    image = record.get("dynamodb", {}).get("NewImage", {})
    return (
        record.get("eventName") in pattern["eventName"]
        and image.get("sk", {}).get("S") in pattern["dynamodb"]["NewImage"]["sk"]["S"]
        and "S" in image.get("state", {})
    )



def sqs_event(messages):
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kite-e2e-work",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


class EventSources(threading.Thread):
    """Lambda's event source mappings, in the background: the work queue's batches go to
    two worker instances at the same time (a duplicate delivery racing the first), the
    stream's filtered batches to the stream function twice. A message is deleted when a
    delivery of it succeeded; otherwise it comes back after its visibility timeout."""

    def __init__(self, workers, stream_fn, sqs, queue, stream):
        super().__init__(daemon=True)
        self.workers, self.stream_fn, self.sqs, self.queue, self.stream = workers, stream_fn, sqs, queue, stream
        self.errors = []
        self.deliveries = {"sqs": 0, "stream": 0}
        self.empty_rounds = 0
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.hold = threading.Event()
        self.idle = threading.Event()

    def run(self):
        while not self.halt.is_set():
            if self.hold.is_set():
                self.idle.set()
                time.sleep(0.05)
                continue
            self.idle.clear()
            try:
                busy = self.round()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                self.errors.append(f"event source: {e!r}")
                busy = False
            with self.lock:
                self.empty_rounds = 0 if busy else self.empty_rounds + 1

    def round(self):
        out = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       VisibilityTimeout=30, AttributeNames=["All"])
        messages = out.get("Messages", [])
        if messages:
            event = sqs_event(messages)
            answers = [None] * len(self.workers)

            def deliver(i, fn):
                try:
                    answers[i] = fn.invoke(event)
                except InvokeError as e:
                    answers[i] = {"error": e.payload}

            threads = [threading.Thread(target=deliver, args=(i, w)) for i, w in enumerate(self.workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.deliveries["sqs"] += len(self.workers) * len(messages)
            for a in answers:
                if "error" in a:
                    self.errors.append(f"worker invocation failed: {a['error']}")
            for m in messages:
                if any("error" not in a and m["MessageId"] not in {f["itemIdentifier"] for f in a["batchItemFailures"]} for a in answers):
                    self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        records = [r for r in self.stream.poll() if matches_filter(r)]
        if records:
            event = {"Records": records}
            for _ in range(2):
                try:
                    answer = self.stream_fn.invoke(event)
                    if answer != {"batchItemFailures": []}:
                        self.errors.append(f"stream batch failures: {answer}")
                except InvokeError as e:
                    self.errors.append(f"stream invocation failed: {e.payload}")
            self.deliveries["stream"] += 2 * len(records)
        return bool(messages or records)

    @contextmanager
    def paused(self):
        """Nothing is delivered inside (the caller reads the stream itself)."""
        self.hold.set()
        self.idle.wait(10)
        try:
            yield
        finally:
            self.hold.clear()

    def drained(self, seconds=20):
        """True once the queue holds nothing (visible, in flight or delayed) and two
        rounds in a row delivered nothing; False if that does not happen in time."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["All"])["Attributes"]
            waiting = sum(int(attrs.get(k, 0)) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"))
            with self.lock:
                quiet = self.empty_rounds >= 2
            if waiting == 0 and quiet:
                return True
            time.sleep(0.2)
        return False

    def until(self, condition, seconds=40):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(0.2)
        return condition()


# ------------------------------------------------------------------ the run


def main(target, binaries):
    suffix = uuid.uuid4().hex[:8]
    table, bucket, queue, stream_arn = provision(suffix)
    ddb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    # The stack's schedule group (template.yaml's ScheduleGroup), and a second stack's.
    group = f"kite-e2e-{suffix}"
    scheduler_client = boto3.client("scheduler")
    scheduler_client.create_schedule_group(Name=group)
    scheduler_client.create_schedule_group(Name=f"{group}-other")
    dlq_url = sqs.create_queue(QueueName=f"kite-e2e-schedule-dlq-{suffix}")["QueueUrl"]
    schedule_dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The stack's secret, as template.yaml's KiteSecrets holds it (read by every function).
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"kite-e2e-{suffix}", SecretString=json.dumps({"apiToken": TOKEN, "basicAuth": "", "secretKey": ""})
    )["ARN"]
    env = free_env()
    env.update(
        {
            "TABLE_NAME": table,
            "BUCKET_NAME": bucket,
            "QUEUE_URL": queue,
            "KITE_SCHEDULE_GROUP": group,
            "KITE_SCHEDULER_ROLE_ARN": SCHEDULER_ROLE_ARN,
            "KITE_SCHEDULE_DLQ_ARN": schedule_dlq,
            "SCHEDULER_FUNCTION_ARN": SCHEDULER_ARN,
            "KITE_SECRETS_ARN": secret_arn,
            # Flow secrets (`secret('NAME')`) live under this prefix in Secrets Manager.
            "KITE_SECRET_PREFIX": f"{group}/",
            "KITE_LOG": "info",
        }
    )
    logs = os.path.join(target, "lambda-e2e")
    os.makedirs(logs, exist_ok=True)
    functions = {}
    for name, binary in (("api", "api"), ("worker", "worker"), ("worker-2", "worker"), ("scheduler", "scheduler"), ("stream", "stream")):
        fenv = dict(env)
        log_path = os.path.join(logs, f"{name}-{suffix}.log")
        functions[name] = Function(name, binary_path(binaries, binary), fenv, log_path).start()
    try:
        run(functions, ddb, sqs, table, queue, stream_arn, group)
    finally:
        for f in functions.values():
            f.stop()
    print(f"lambda e2e: {len(CHECKS)} checks passed")


def binary_path(binaries, name):
    """A cargo output folder (`kite-fn-api`) or `sam build`'s (`.aws-sam/build/ApiFunction/bootstrap`)."""
    sam = os.path.join(binaries, f"{name.capitalize()}Function", "bootstrap")
    return sam if os.path.exists(sam) else os.path.join(binaries, f"kite-fn-{name}")


def execution_item(ddb, table, execution_id):
    item = ddb.get_item(TableName=table, Key={"pk": {"S": f"EXEC#{execution_id}"}, "sk": {"S": "EXEC"}}, ConsistentRead=True)
    return item.get("Item")


def stored_state(ddb, table, execution_id):
    item = execution_item(ddb, table, execution_id)
    return item["state"]["S"] if item else None


class Upstream:
    """The outside world of the flows' I/O tasks: an HTTP server on 127.0.0.1 that counts
    the requests it gets by path and keeps their Authorization headers."""

    FILE = b"id,amount\n1,10\n2,32\n"

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.hits, self.auth = {}, []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                upstream.hits[self.path] = upstream.hits.get(self.path, 0) + 1
                upstream.auth.append(self.headers.get("Authorization"))
                body, kind = (upstream.FILE, "text/csv") if self.path == "/report.csv" else (b'{"ok": true}', "application/json")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def io_tasks(api, ddb, table, sources, secret_prefix):
    """A flow whose tasks do I/O, run by the worker function with every SQS batch delivered
    to two instances at once: each side effect happens once per task run attempt."""
    print("== tasks that do I/O on the worker function: HTTP, Download to S3, a secret, the KV store")
    upstream = Upstream()
    token = "tok-" + uuid.uuid4().hex[:8]
    boto3.client("secretsmanager").create_secret(Name=f"{secret_prefix}API_TOKEN", SecretString=token)
    base = f"http://127.0.0.1:{upstream.port}"
    source = f"""id: io-tasks
namespace: e2e
tasks:
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: {base}/status
    headers:
      Authorization: "Bearer {{{{ secret('API_TOKEN') }}}}"
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: {base}/report.csv
  - id: remember
    type: io.kestra.plugin.core.kv.Set
    key: last_status
    value: "{{{{ outputs.call.code }}}}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{{{ outputs.download.uri }}}}"
  - id: told
    type: io.kestra.plugin.core.log.Log
    message: "token {{{{ secret('API_TOKEN') }}}} status {{{{ outputs.call.code }}}}"
"""
    try:
        status, body = http(api, "POST", "/api/v1/flows", source, headers={"content-type": "application/x-yaml"})
        check(status == 200, f"flow e2e.io-tasks created ({status} {body if status != 200 else ''})")
        status, execution = http(api, "POST", "/api/v1/executions/e2e/io-tasks")
        io_id = execution["id"]
        check(sources.until(lambda: stored_state(ddb, table, io_id) in ("SUCCESS", "FAILED", "KILLED")),
              "the I/O flow ended")
        status, execution = http(api, "GET", f"/api/v1/executions/{io_id}")
        runs = {r["taskId"]: r for r in execution["taskRunList"]}
        check(execution["state"]["current"] == "SUCCESS", f"SUCCESS ({execution['state']['current']})")
        check(all(len(r.get("attempts") or []) == 1 for r in runs.values()), "each task run has one attempt")
        check(upstream.hits == {"/status": 1, "/report.csv": 1},
              f"each request reached the server once although every batch was delivered twice: {upstream.hits}")
        check(upstream.auth[0] == f"Bearer {token}", "the request carried the secret from Secrets Manager")
        check(runs["call"]["outputs"]["code"] == 200, "http.Request outputs the status code")
        uri = runs["download"]["outputs"]["uri"]
        check(uri.startswith("kestra:///e2e/io-tasks/executions/") and runs["download"]["outputs"].get("length") == len(upstream.FILE),
              f"Download stored {runs['download']['outputs'].get('length')} bytes at {uri}")
        check(runs["size"]["outputs"]["size"] == len(upstream.FILE), "storage.Size read the downloaded file back from S3")
        status, value = http(api, "GET", "/api/v1/namespaces/e2e/kv/last_status")
        check(status == 200 and str(value.get("value")) == "200", f"KV pair set in DynamoDB: {status} {value}")
        status, logs = http(api, "GET", f"/api/v1/logs/{io_id}")
        told = [l["message"] for l in logs if l["message"].startswith("token ")]
        check(told == ["token ****** status 200"], f"the secret is masked in the log: {told}")
        check(token not in json.dumps(logs) + json.dumps(execution), "the secret appears nowhere in the API's answers")
        worker_calls_of_one_request(api, ddb, table, sources, base)
    finally:
        upstream.stop()


def script_to_aws(api, ddb, table, sources):
    """A shell script run by the worker function whose output file goes to S3 and whose
    outputs go into a DynamoDB item, every batch delivered to two instances at once: the
    script runs, the object is written and the item is put once per task run attempt."""
    print("== a shell script on the worker function, its file uploaded to S3, an item put in DynamoDB")
    s3 = boto3.client("s3")
    suffix = uuid.uuid4().hex[:8]
    bucket, items = f"e2e-reports-{suffix}", f"e2e-reports-{suffix}"
    s3.create_bucket(Bucket=bucket)
    # Versions and the item table's stream count the writes: a duplicate cannot hide.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    stream_arn = ddb.create_table(
        TableName=items,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    runs_file = os.path.join(tempfile.mkdtemp(prefix="kite-e2e-script-"), "runs")
    source = f"""id: script-to-aws
namespace: e2e
tasks:
  - id: report
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo run >> {runs_file}
      - printf 'id,amount\\n1,10\\n2,32\\n' > report.csv
      - echo '::{{"outputs":{{"rows":2}}}}::'
    outputFiles:
      - report.csv
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    from: "{{{{ outputs.report.outputFiles['report.csv'] }}}}"
    bucket: {bucket}
    key: "reports/{{{{ execution.id }}}}.csv"
  - id: record
    type: io.kestra.plugin.aws.dynamodb.PutItem
    tableName: {items}
    item:
      id: "{{{{ execution.id }}}}"
      rows: "{{{{ outputs.report.vars.rows }}}}"
      key: "{{{{ outputs.upload.key }}}}"
      at: "{{{{ now() }}}}"
"""
    status, body = http(api, "POST", "/api/v1/flows", source, headers={"content-type": "application/x-yaml"})
    check(status == 200, f"flow e2e.script-to-aws created ({status} {body if status != 200 else ''})")
    status, execution = http(api, "POST", "/api/v1/executions/e2e/script-to-aws")
    run_id = execution["id"]
    check(sources.until(lambda: stored_state(ddb, table, run_id) in ("SUCCESS", "FAILED", "KILLED")), "the script flow ended")
    status, execution = http(api, "GET", f"/api/v1/executions/{run_id}")
    runs = {r["taskId"]: r for r in execution["taskRunList"]}
    check(execution["state"]["current"] == "SUCCESS", f"SUCCESS ({execution['state']['current']})")
    check(all(len(r.get("attempts") or []) == 1 for r in runs.values()), "each task run has one attempt")
    check(open(runs_file).read() == "run\n", f"the script ran once: {open(runs_file).read()!r}")
    check(runs["report"]["outputs"].get("exitCode") == 0 and runs["report"]["outputs"]["vars"] == {"rows": 2},
          f"the script's outputs: {runs['report']['outputs']}")
    key = f"reports/{run_id}.csv"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    check(len(versions) == 1, f"one S3 write of {key} although every batch was delivered twice: {len(versions)}")
    check(s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"id,amount\n1,10\n2,32\n", "the object holds the script's file")
    item = ddb.get_item(TableName=items, Key={"id": {"S": run_id}}, ConsistentRead=True).get("Item")
    check(item is not None and item["rows"] == {"S": "2"} and item["key"] == {"S": key}, f"the item: {item}")
    streams = boto3.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    writes = 0
    for shard in shards:
        it = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        writes += len(streams.get_records(ShardIterator=it)["Records"])
    check(writes == 1, f"one PutItem reached the table: {writes} stream records")
    upload = f"""id: one-upload
namespace: e2e
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "id,amount\\n1,10\\n"
    extension: .csv
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    from: "{{{{ outputs.write.uri }}}}"
    bucket: {bucket}
    key: one-upload.csv
"""
    total, calls = worker_calls(api, ddb, table, sources, "one-upload", upload)
    print(f"  worker function, one execution of storage.Write then s3.Upload: {total} AWS calls in {len(calls)} invocations {calls}")
    uploads = sum((json.loads(c) if isinstance(c, str) else c or {}).get("S3.PutObject", 0) for c in calls)
    check(uploads >= 2, f"the task's own PutObject is counted with the adapters' calls ({uploads} S3.PutObject)")
    check(0 < total <= 24, f"a Write and an S3 Upload cost the worker function {total} AWS calls (at most 24)")


def worker_calls(api, ddb, table, sources, flow_id, source):
    """The AWS calls the worker function makes for one execution of `source` (its start,
    its task runs on the worker, its end), every item delivered once, to one instance:
    (total, the calls of each invocation by `Service.Operation`)."""
    status, _ = http(api, "POST", "/api/v1/flows", source, headers={"content-type": "application/x-yaml"})
    check(status == 200, f"flow e2e.{flow_id} created")
    worker = sources.workers[0]
    with sources.paused():
        status, execution = http(api, "POST", f"/api/v1/executions/e2e/{flow_id}")
        done_before = len([l for l in worker.log_lines() if l.get("message") == "invocation done"])
        end = time.monotonic() + 30
        while stored_state(ddb, table, execution["id"]) != "SUCCESS" and time.monotonic() < end:
            out = sources.sqs.receive_message(QueueUrl=sources.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"])
            messages = out.get("Messages", [])
            if messages:
                answer = worker.invoke(sqs_event(messages))
                failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
                for m in messages:
                    if m["MessageId"] not in failed:
                        sources.sqs.delete_message(QueueUrl=sources.queue, ReceiptHandle=m["ReceiptHandle"])
        check(stored_state(ddb, table, execution["id"]) == "SUCCESS", f"e2e.{flow_id}: SUCCESS, run by one worker instance")
        done = [l for l in worker.log_lines() if l.get("message") == "invocation done"][done_before:]
        return sum(int(l.get("aws_calls", 0)) for l in done), [l.get("calls") for l in done]


def worker_calls_of_one_request(api, ddb, table, sources, base):
    """An execution of one http.Request task costs the worker function a few AWS calls."""
    source = f"id: one-request\nnamespace: e2e\ntasks:\n  - id: call\n    type: io.kestra.plugin.core.http.Request\n    uri: {base}/status\n"
    total, calls = worker_calls(api, ddb, table, sources, "one-request", source)
    print(f"  worker function, one execution of one http.Request task: {total} AWS calls in {len(calls)} invocations {calls}")
    check(0 < total <= 12, f"an HTTP task run's execution costs the worker function {total} AWS calls (at most 12)")


def check_template():
    """What the functions and the deployment rely on in template.yaml (cfn-lint, with its
    informational checks, and `sam build` check the rest)."""
    t = template()
    glob = t["Globals"]["Function"]
    arch = t["Parameters"]["Architecture"]
    check(glob["Runtime"] == "provided.al2023" and glob["Architectures"] == [{"!Ref": "Architecture"}]
          and arch["Default"] == "arm64" and set(arch["AllowedValues"]) == {"arm64", "x86_64"},
          "template: provided.al2023, arm64 by default (Architecture parameter: arm64 or x86_64)")
    credentials = {"KITE_API_TOKEN", "KITE_BASIC_AUTH", "KITE_SECRET_KEY"}
    environments = [glob["Environment"]["Variables"]] + [
        r["Properties"].get("Environment", {}).get("Variables", {}) for r in t["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    check(not any(credentials & set(e) for e in environments) and glob["Environment"]["Variables"]["KITE_SECRETS_ARN"] == {"!Ref": "KiteSecrets"},
          "template: no credential in the functions' environment, only the secret's ARN")
    for name in ("KiteTable", "FilesBucket", "KiteSecrets"):
        r = t["Resources"][name]
        check(r.get("DeletionPolicy") == "Retain" and r.get("UpdateReplacePolicy") == "Retain", f"template: {name} is retained when the stack goes")
    for name, r in t["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            group = r["Properties"]["LoggingConfig"]["LogGroup"]["!Ref"]
            check(group == name.replace("Function", "LogGroup") and t["Resources"][group]["Properties"]["RetentionInDays"] == {"!Ref": "RetentionDays"},
                  f"template: {name} logs to its own log group with the stack's retention")
    resources = t["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    binaries = sorted(f["Metadata"]["BuildProperties"]["Binary"] for f in functions.values())
    check(binaries == ["kite-fn-api", "kite-fn-scheduler", "kite-fn-stream", "kite-fn-worker"], f"template: one function per binary {binaries}")
    check(all(f["Metadata"]["BuildMethod"] == "rust-cargolambda" for f in functions.values()), "template: BuildMethod rust-cargolambda")
    check(resources["WorkQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5, "template: work queue redrives to its DLQ after 5 receives")
    work = resources["WorkerFunction"]["Properties"]["Events"]["Work"]["Properties"]
    stream = resources["StreamFunction"]["Properties"]["Events"]["Executions"]["Properties"]
    check(
        work["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"],
        "template: SQS and stream mappings report batch item failures",
    )
    api_events = resources["ApiFunction"]["Properties"]["Events"]
    check(
        any(e["Properties"]["Path"].startswith("/api/v1/executions/webhook/") for e in api_events.values()),
        "template: webhook routes on the HTTP API",
    )
    worker = resources["WorkerFunction"]["Properties"]
    check(
        {"!If": ["HasWorkerTaskPolicy", {"!Ref": "WorkerTaskPolicyArn"}, {"!Ref": "AWS::NoValue"}]} in worker["Policies"]
        and t["Parameters"]["WorkerTaskPolicyArn"]["Default"] == "",
        "template: flows' AWS tasks get only the operator's WorkerTaskPolicyArn (none by default)",
    )
    check(
        worker["Layers"] == {"!If": ["HasWorkerLayers", {"!Ref": "WorkerLayers"}, {"!Ref": "AWS::NoValue"}]}
        and worker["Environment"]["Variables"]["KITE_CONTAINER_TASKS"] == {"!Ref": "ContainerTasks"},
        "template: the worker's script runtimes come from WorkerLayers, its container rule from ContainerTasks",
    )
    sweeper = resources["SchedulerFunction"]["Properties"]["Events"]["Sweeper"]["Properties"]
    check(sweeper["Schedule"] == "rate(1 minute)", "template: the sweeper's rate(1 minute) rule")


def run(fns, ddb, sqs, table, queue, stream_arn, group):
    api, scheduler, stream_fn = fns["api"], fns["scheduler"], fns["stream"]
    workers = [fns["worker"], fns["worker-2"]]
    print("== template.yaml")
    check_template()
    for name, f in fns.items():
        print(f"  {name}: init {f.init_ms():.1f} ms (process start -> first Runtime API request)")

    print("== console test events: each function answers its own with the specific answer, and names the shape of the others")
    shapes = {
        "apigateway-aws-proxy": "an API Gateway REST API (v1) proxy event",
        "apigateway-http-api-proxy": "an API Gateway HTTP API (v2) event",
        "cloudwatch-scheduled-event": "an EventBridge scheduled event",
        "dynamodb-update": "a DynamoDB stream batch",
        "hello-world": "a JSON object with keys [key1, key2, key3]",
        "s3-put": "an S3 event notification",
        "sqs-receive-message": "an SQS batch",
    }
    handled = {
        # The console's API Gateway templates carry no credentials: the management API says 401.
        ("api", "apigateway-aws-proxy"): lambda a: a.get("statusCode") == 401,
        ("api", "apigateway-http-api-proxy"): lambda a: a.get("statusCode") == 401,
        # "Hello from SQS!" is not a work item: reported, so that it ends in the DLQ.
        ("worker", "sqs-receive-message"): lambda a: a == {"batchItemFailures": [{"itemIdentifier": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78"}]},
        # The rate rule's event runs the outbox sweeper, on an empty outbox.
        ("scheduler", "cloudwatch-scheduled-event"): lambda a: a == {"swept": 0},
        # Records of items that are not Kite's are skipped, not failed.
        ("stream", "dynamodb-update"): lambda a: a == {"batchItemFailures": []},
    }
    check(sorted(f[: -len(".json")] for f in os.listdir(EVENTS)) == sorted(shapes), f"the seven console templates: {sorted(shapes)}")
    for name in ("api", "worker", "scheduler", "stream"):
        f = fns[name]
        for template_name, shape in sorted(shapes.items()):
            event = json.load(open(os.path.join(EVENTS, template_name + ".json")))
            expected = handled.get((name, template_name))
            try:
                answer = f.invoke(event, timeout_s=15)
                check(expected is not None and expected(answer), f"{name} x {template_name}: {json.dumps(answer)[:100]}")
            except InvokeError as e:
                payload = e.payload or {}
                message = payload.get("errorMessage", "")
                check(
                    expected is None and payload.get("errorType") == "UnexpectedEventShape"
                    and message.startswith(f"the {name} function cannot handle {shape}; it expects "),
                    f"{name} x {template_name}: {message[:110]}",
                )

    print("== a function whose environment is incomplete explains itself at every invocation")
    env = {k: v for k, v in fns["api"].env.items() if k != "TABLE_NAME"}
    broken = Function("api-misconfigured", fns["api"].binary, env, fns["api"].log_path + ".misconfigured").start()
    try:
        for _ in range(2):
            try:
                broken.invoke(http_event("GET", "/api/v1/flows/search"), timeout_s=10)
                check(False, "a function without TABLE_NAME answered")
            except InvokeError as e:
                check(e.payload == {"errorType": "ConfigurationError", "errorMessage": "configuration: environment variable TABLE_NAME is not set"},
                      f"without TABLE_NAME: {e.payload}")
        check(broken.cold_starts == 1 and broken.process.poll() is None, "and keeps running (one cold start)")
    finally:
        broken.stop()

    print("== flows deployed through the api function (API Gateway v2 events)")
    flows = [
        open(os.path.join(ROOT, "flows", "dev", "hello-world.yaml")).read(),
        open(os.path.join(ROOT, "flows", "benchmarks", "benchmark01.yaml")).read(),
        "id: sleepy\nnamespace: e2e\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1S\n"
        "  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: awake\n",
        "id: sleep3\nnamespace: e2e\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT3S\n"
        "  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: awake\n",
        "id: sleep30\nnamespace: e2e\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT30S\n",
        open(os.path.join(ROOT, "flows", "dev", "file-input.yaml")).read(),
        "id: after-hello\nnamespace: e2e\ntasks:\n  - id: note\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: \"after {{ trigger.executionId }}\"\ntriggers:\n  - id: on-hello\n"
        "    type: io.kestra.plugin.core.trigger.Flow\n    states: [SUCCESS]\n    conditions:\n"
        "      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: dev\n        flowId: hello-world\n",
        "id: every-minute\nnamespace: e2e\ntasks:\n  - id: tick\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: \"tick {{ trigger.date }}\"\ntriggers:\n  - id: minutely\n"
        "    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"* * * * *\"\n",
    ]
    for source in flows:
        status, body = http(api, "POST", "/api/v1/flows", source, headers={"content-type": "application/x-yaml"})
        check(status == 200, f"flow {body.get('namespace') if isinstance(body, dict) else body}.{body.get('id') if isinstance(body, dict) else ''} created ({status})")
    status, _ = http(api, "GET", "/api/v1/flows/dev/hello-world", auth=False)
    check(status == 401, f"management API without the token: {status}")

    scheduler_client = boto3.client("scheduler")
    schedules = scheduler_client.list_schedules(GroupName=group)["Schedules"]
    check(len(schedules) == 1, f"Schedule trigger registered as one schedule in the stack's group: {[x['Name'] for x in schedules]}")
    check(scheduler_client.list_schedules(GroupName=f"{group}-other")["Schedules"] == [], "another stack's group sees none of it")
    schedule = scheduler_client.get_schedule(GroupName=group, Name=schedules[0]["Name"])
    target = schedule["Target"]
    check(schedule["ScheduleExpression"].startswith("cron(") and target["Arn"] == SCHEDULER_ARN and target["RoleArn"] == SCHEDULER_ROLE_ARN,
          f"the schedule ({schedule['ScheduleExpression']}) invokes the scheduler function with the stack's role")
    check(target.get("RetryPolicy") == {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600}
          and target.get("DeadLetterConfig", {}).get("Arn", "").endswith(":kite-e2e-schedule-dlq-" + group.rsplit("-", 1)[1]),
          "failed deliveries are retried for an hour, then go to the stack's dead-letter queue")
    # EventBridge Scheduler replaces <aws.scheduler.scheduled-time> with the firing's time.
    check("<aws.scheduler.scheduled-time>" in target["Input"], "its input carries the scheduled time")
    fire_time = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime())
    rule_input = json.loads(target["Input"].replace('"<aws.scheduler.scheduled-time>"', json.dumps(fire_time)))

    print("== API Gateway v2 event creating dev/hello-world's execution")
    status, execution = http(api, "POST", "/api/v1/executions/dev/hello-world")
    check(status == 200, f"created {execution.get('id') if isinstance(execution, dict) else execution}")
    hello_id = execution["id"]
    check(execution.get("url") == f"https://e2e.execute-api.us-east-1.amazonaws.com/ui/executions/dev/hello-world/{hello_id}",
          f"its url is the API's own without KITE_URL: {execution.get('url')}")
    check(stored_state(ddb, table, hello_id) == "SUCCESS", "SUCCESS in DynamoDB when the api invocation returned (light task ran in-process)")
    expires = int(execution_item(ddb, table, hello_id).get("ttl", {}).get("N", 0))
    check(abs(expires - (time.time() + 30 * 86400)) < 300, "the finished execution's item expires after the retention (30 days, DynamoDB TTL)")

    print("== a browser's Accept-Encoding: gzip through API Gateway")
    answer = api.invoke(http_event("GET", "/api/v1/openapi.json", headers={"accept-encoding": "gzip, deflate, br"}))
    check(answer.get("headers", {}).get("content-encoding") == "gzip" and answer.get("isBase64Encoded") is True,
          f"gzip body, base64 in the event ({answer.get('headers', {}).get('content-encoding')}, {answer.get('isBase64Encoded')})")
    document = json.loads(gzip.decompress(base64.b64decode(answer["body"])))
    check("/api/v1/executions/{namespace}/{flow_id}" in document.get("paths", {}), "it inflates to the OpenAPI document")

    print("== webhook event (no credentials)")
    status, execution = http(api, "POST", "/api/v1/executions/webhook/dev/hello-world/test1234", "hi from a webhook", auth=False)
    check(status == 200, f"webhook created {execution.get('id') if isinstance(execution, dict) else execution}")
    webhook_id = execution["id"]
    check(stored_state(ddb, table, webhook_id) == "SUCCESS", "webhook execution SUCCESS in DynamoDB")
    status, wlogs = http(api, "GET", f"/api/v1/logs/{webhook_id}")
    check([l["message"] for l in wlogs].count("hi from a webhook") == 1, "the webhook body logged once")

    print("== wait=true answers the terminated execution")
    status, execution = http(api, "POST", "/api/v1/executions/dev/hello-world", query="wait=true")
    check(status == 200 and execution["state"]["current"] == "SUCCESS", f"wait=true: {execution['state']['current']}")

    print("== FILE input through the api function (multipart, base64 event body)")
    boundary = "kite-e2e-" + uuid.uuid4().hex
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"myfile\"; filename=\"notes.txt\"\r\n"
                 f"Content-Type: text/plain\r\n\r\nnotes from a file\r\n--{boundary}--\r\n").encode()
    event = http_event("POST", "/api/v1/executions/dev/file-input", query="wait=true",
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    event.update(body=base64.b64encode(multipart).decode(), isBase64Encoded=True)
    answer = api.invoke(event)
    execution = json.loads(answer["body"])
    check(answer["statusCode"] == 200 and execution["state"]["current"] == "SUCCESS", f"file-input with wait=true: {execution['state']['current']}")
    uri = execution["inputs"]["myfile"]
    check(uri.startswith("kestra:///dev/file-input/executions/") and uri.endswith("/notes.txt"), f"the FILE input is stored as {uri}")
    status, flogs = http(api, "GET", f"/api/v1/logs/{execution['id']}")
    check("notes from a file" in [l["message"] for l in flogs], "read(inputs.myfile) logged the uploaded content")

    print("== a FILE input over the payload limit: staged straight to S3 through a presigned URL")
    status, asked = http(api, "POST", "/api/v1/executions/dev/file-input/uploads",
                         body=json.dumps({"input": "myfile", "filename": "big.txt"}),
                         headers={"content-type": "application/json"})
    check(status == 200, f"upload URL asked: {status} {asked}")
    uri, upload_url = asked["uri"], asked["uploadUrl"]
    check(uri.startswith("kestra:///dev/file-input/uploads/") and uri.endswith("/big.txt"), f"staging URI {uri}")
    check(asked["method"] == "PUT" and asked["expiresIn"] == 900 and "X-Amz-Signature=" in upload_url,
          f"a presigned S3 PUT, not the API: {upload_url[:80]}")
    content = b"big file through S3\n" + b"x" * (5 * 1024 * 1024)
    put = urllib.request.Request(upload_url, data=content, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(put, timeout=60) as r:
        check(r.status == 200, f"PUT of 5 MB to the presigned URL: {r.status}")
    form = {"content-type": "application/x-www-form-urlencoded"}
    status, refused = http(api, "POST", "/api/v1/executions/dev/file-input", headers=form,
                           body=urllib.parse.urlencode({"myfile": "kestra:///dev/file-input/executions/x/inputs/myfile/a.txt"}))
    check(status == 422 and refused["_embedded"]["errors"][0]["path"] == "myfile",
          f"a URI that is not a staged upload of the flow is refused: {status}")
    status, execution = http(api, "POST", "/api/v1/executions/dev/file-input", query="wait=true", headers=form,
                             body=urllib.parse.urlencode({"myfile": uri}))
    check(status == 200 and execution["state"]["current"] == "SUCCESS", f"file-input with the staged URI: {status} {execution.get('state') if isinstance(execution, dict) else execution}")
    check(execution["inputs"]["myfile"] == uri, "the input is the staged URI")
    status, blogs = http(api, "GET", f"/api/v1/logs/{execution['id']}")
    message = next((l["message"] for l in blogs if l.get("taskId") == "content"), "")
    # DynamoDB keeps the first 64 KB of a log line.
    check(message.startswith("big file through S3\nxxxx"), f"read(inputs.myfile) logged the staged content ({len(message)} characters kept)")
    answer = api.invoke(http_event("GET", f"/api/v1/executions/{execution['id']}/file",
                                   query=urllib.parse.urlencode({"path": uri})))
    location = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}.get("location", "")
    check(answer["statusCode"] == 307 and "X-Amz-Signature=" in location, f"a 5 MB download is a 307 to S3: {answer['statusCode']}")
    with urllib.request.urlopen(location, timeout=60) as r:
        check(r.read() == content, "the presigned GET serves the staged bytes")

    stream = Stream(stream_arn)
    sources = EventSources(workers, stream_fn, sqs, queue, stream)
    sources.start()

    print("== direct invoke of the api function, work through SQS to two worker instances at once")
    answer = api.invoke({"namespace": "e2e", "flowId": "sleepy", "labels": {"via": "invoke"}})
    sleepy_id = answer["id"]
    check(answer["state"]["current"] in ("CREATED", "RUNNING"), f"direct invoke answered execution {sleepy_id} ({answer['state']['current']})")
    check(sources.until(lambda: stored_state(ddb, table, sleepy_id) == "SUCCESS"), "Sleep then Log: SUCCESS in DynamoDB after the workers ran the queued timer")
    status, execution = http(api, "GET", f"/api/v1/executions/{sleepy_id}")
    runs = execution["taskRunList"]
    check([r["taskId"] for r in runs] == ["nap", "after"], f"task runs {[r['taskId'] for r in runs]}: each once")
    check(all(len(r.get("attempts") or []) == 1 for r in runs), "each task run has one attempt")
    status, slogs = http(api, "GET", f"/api/v1/logs/{sleepy_id}")
    check([l["message"] for l in slogs].count("awake") == 1, "the Log task after the Sleep logged once")

    io_tasks(api, ddb, table, sources, secret_prefix=f"{group}/")
    script_to_aws(api, ddb, table, sources)

    print("== wait=true across functions: the api instance sees the worker's progress")
    started = time.monotonic()
    status, execution = http(api, "POST", "/api/v1/executions/e2e/sleep3", query="wait=true")
    took = time.monotonic() - started
    check(status == 200 and execution["state"]["current"] == "SUCCESS", f"wait=true on a 3 s flow run by the worker: {execution['state']['current']}")
    check(3 <= took < 8, f"answered {took:.1f} s after the request: as soon as it ended, not at the 25 s limit")

    print("== wait=true past the invocation's deadline: the current state, before the deadline")
    started = time.monotonic()
    answer = api.invoke(http_event("POST", "/api/v1/executions/e2e/sleep30", query="wait=true"), timeout_s=4)
    took = time.monotonic() - started
    execution = json.loads(answer["body"])
    check(answer["statusCode"] == 200 and execution["state"]["current"] in ("CREATED", "RUNNING"),
          f"a 4 s invocation answered {answer['statusCode']} {execution['state']['current']} in {took:.1f} s")
    check(api.timeouts == 0, "the api function was never killed at a deadline")
    long_id = execution["id"]

    print("== follow (server-sent events) across functions: one change per answer, then reconnect")
    status, execution = http(api, "POST", "/api/v1/executions/e2e/sleep3")
    follow_id = execution["id"]
    answers, ends = [], []
    for _ in range(20):
        started = time.monotonic()
        answer = api.invoke(http_event("GET", f"/api/v1/executions/{follow_id}/follow", headers={"accept": "text/event-stream"}), timeout_s=10)
        took = time.monotonic() - started
        text = base64.b64decode(answer["body"]).decode() if answer.get("isBase64Encoded") else answer["body"]
        answers.append((took, answer["statusCode"], text))
        if "id: end" in text or "id:end" in text:
            ends.append(text)
            break
    check(all(code == 200 for _, code, _ in answers), f"{len(answers)} follow answers, all 200")
    check(ends and '"SUCCESS"' in ends[0], "the last follow answer is the `end` event of the SUCCESS execution")
    check(all("retry:" in text for _, _, text in answers[:-1]), "each earlier answer ends with a retry hint")
    check(all(took < 9 for took, _, _ in answers), f"each answered before the invocation's deadline: {[round(t, 1) for t, _, _ in answers]} s")
    check(api.timeouts == 0, "no follow invocation was killed at its deadline")
    status, execution = http(api, "DELETE", f"/api/v1/executions/{long_id}/kill")
    check(status in (202, 204), f"the 30 s execution killed ({status})")

    print("== stream batches fire the Flow trigger once per upstream execution")
    def after_hello():
        status, page = http(api, "GET", "/api/v1/executions/search", query="namespace=e2e&flowId=after-hello&size=100")
        return page["results"] if status == 200 else []

    upstream = {hello_id, webhook_id}
    sources.until(lambda: len(after_hello()) >= 3 and all(e["state"]["current"] == "SUCCESS" for e in after_hello()), seconds=20)
    triggered = after_hello()
    sources_ids = sorted(e["trigger"]["variables"]["executionId"] for e in triggered)
    check(len(triggered) == 3 and len(set(sources_ids)) == 3 and upstream <= set(sources_ids), f"3 hello-world SUCCESS -> 3 after-hello executions (stream records delivered: {sources.deliveries['stream']})")
    check(all(e["state"]["current"] == "SUCCESS" for e in triggered), "triggered executions SUCCESS")

    print("== scheduled event (the schedule's input with its time), delivered twice")
    # The trigger's dates start when its flow was saved: the schedule's next firing is the next minute.
    minute = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    event = dict(rule_input, time=minute.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def every_minute():
        status, page = http(api, "GET", "/api/v1/executions/search", query="namespace=e2e&flowId=every-minute&size=100")
        return page["results"]

    first = scheduler.invoke(event)
    after_first = every_minute()
    second = scheduler.invoke(event)
    runs = every_minute()
    fired = [e for e in runs if e["trigger"]["variables"].get("date", "").startswith(minute.strftime("%Y-%m-%dT%H:%M"))]
    check(len(fired) == 1 and len(runs) == len(after_first), f"one execution for {minute.isoformat()} after two deliveries (answers {first}, {second})")
    check(sources.until(lambda: all(stored_state(ddb, table, e["id"]) == "SUCCESS" for e in runs)), "scheduled execution SUCCESS in DynamoDB")

    print("== sweeper")
    answer = scheduler.invoke(json.load(open(os.path.join(EVENTS, "cloudwatch-scheduled-event.json"))))
    check(isinstance(answer.get("swept"), int), f"sweeper answered {answer}")
    check(sources.drained(seconds=45), "queue and stream drained: nothing visible, in flight or delayed, two empty rounds")
    check(not sources.errors, f"every delivery answered without a function error or batch failure: {sources.errors[:3]}")
    print(f"  deliveries: {sources.deliveries}")

    print("== benchmark01 through its webhook: AWS calls per execution (warm api function)")
    with sources.paused():
        for i in range(3):
            status, execution = http(api, "POST", "/api/v1/executions/webhook/benchmarks/benchmark01/benchmark", "", auth=False)
            check(status == 200 and stored_state(ddb, table, execution["id"]) == "SUCCESS", f"benchmark01 #{i + 1} SUCCESS in the api invocation")
        done = [l for l in api.log_lines() if l.get("message") == "invocation done"]
        last = done[-1]
        print(f"  api function, one benchmark01 webhook: {last.get('aws_calls')} AWS calls {last.get('calls')}")
        check(int(last.get("aws_calls", 99)) <= 3, "benchmark01 needs at most 3 billable AWS calls in the api function")
        # What CloudWatch Logs ingests for it: the invocation's lines (the template turns
        # Lambda's own START/REPORT lines off), plus 26 bytes per event as CloudWatch meters.
        with open(api.log_path, "rb") as f:
            lines = f.read().splitlines()
        ends = [i for i, l in enumerate(lines) if b'"invocation done"' in l]
        per_invocation = sum(len(l) + 26 for l in lines[ends[-2] + 1 : ends[-1] + 1])
        print(f"  CloudWatch Logs bytes of one benchmark01 invocation: {per_invocation}")
        check(per_invocation <= 400, f"one benchmark01 invocation logs {per_invocation} bytes (at most 400: $0.20 per million at $0.50/GB)")
        before = len([l for l in stream_fn.log_lines() if l.get("message") == "invocation done"])
        # The benchmark's records, read from the start of the stream (the paused sources
        # deliver nothing meanwhile).
        records = [r for r in Stream(stream.arn).poll() if matches_filter(r)
                   and r["dynamodb"]["NewImage"].get("namespace", {}).get("S") == "benchmarks"]
        check(len(records) == 3, f"the stream holds the 3 benchmark01 executions' records ({len(records)})")
        stream_fn.invoke({"Records": records})
        sdone = [l for l in stream_fn.log_lines() if l.get("message") == "invocation done"][before:]
        check(len(sdone) == 1 and "calls" in sdone[-1], "the stream invocation logged its AWS calls")
        print(f"  stream function, one batch of {len(records)} records of 3 benchmark01 executions: {sdone[-1].get('aws_calls')} AWS calls {sdone[-1].get('calls')}")
        # The one listener (after-hello) listens to another flow: no trigger-state read per
        # execution; at most the flow revision, once, when the function had not cached it.
        calls = sdone[-1]["calls"]
        calls = json.loads(calls) if isinstance(calls, str) else calls
        check(isinstance(calls, dict) and calls.get("DynamoDB.GetItem", 0) <= 1,
              "benchmark01 executions cost the stream function no read per execution")
    sources.halt.set()
    sources.join(10)
    summary = {f"{name}": f.invocations for name, f in fns.items()}
    print(f"  invocations: {summary}; cold starts: {({n: f.cold_starts for n, f in fns.items()})}")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target")
    main(target, sys.argv[2] if len(sys.argv) > 2 else os.path.join(target, "release"))
