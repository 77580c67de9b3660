#!/usr/bin/env python3
"""End-to-end tests of `kite server` with real clients.

Starts `kite server` on a free 127.0.0.1 port with a temporary data folder, runs the
curl commands of the README (Kestra's "Execute a flow" docs) and the `kestra` PyPI
client against it, then does the same with authentication on. Every server is started
and stopped here, by its PID. Prints one line per check and `e2e: N passed, N failed`.

Usage: e2e.py PATH_TO_KITE_BINARY   (run with a Python that has `kestra` installed)
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"}
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f" -- {detail}"), flush=True)
    return bool(ok)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `kite server` process of this script, stopped by its PID."""

    def __init__(self, kite, work, env_extra):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = work / f"data-{self.port}"
        self.log_path = work / f"server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_")}
        env.update(env_extra)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [kite, "server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--data", str(self.data), "--flows", str(work / "flows")],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if http("GET", self.base + "/ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"kite server did not start; log:\n{self.log_path.read_text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def http(method, url, body=None, headers=None):
    """(status, headers, body bytes) of one request, never raising on HTTP errors."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(url, headers=None):
    status, _, body = http("GET", url, headers=headers)
    return status, json.loads(body or b"null")


def curl(*args):
    """Runs curl (bounded in time); returns (HTTP status, body text)."""
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", *args],
        capture_output=True, text=True, timeout=40,
    )
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body


def wait_terminal(base, execution_id, headers=None, seconds=30):
    deadline = time.monotonic() + seconds
    execution = None
    while time.monotonic() < deadline:
        status, execution = get_json(f"{base}/api/v1/executions/{execution_id}", headers)
        if status == 200 and execution["state"]["current"] in TERMINAL:
            return execution
        time.sleep(0.1)
    return execution


def logs_text(base, execution_id, headers=None):
    return http("GET", f"{base}/api/v1/logs/{execution_id}/download", headers=headers)[2].decode()


def run_and_check(name, base, status, body, expect_in_log, expect_state="SUCCESS", revision=None):
    """Checks a created execution: 200, ends in `expect_state`, and its log has the text."""
    if not check(f"{name}: 200 with an execution", status == 200 and '"id"' in body,
                 f"{status} {body[:300]}"):
        return None
    created = json.loads(body)
    check(f"{name}: response has url", str(created.get("url", "")).endswith(created["id"]),
          created.get("url"))
    execution = wait_terminal(base, created["id"])
    state = execution and execution["state"]["current"]
    check(f"{name}: state {expect_state}", state == expect_state, state)
    if revision is not None:
        check(f"{name}: flowRevision {revision}", created.get("flowRevision") == revision,
              created.get("flowRevision"))
    log = logs_text(base, created["id"])
    check(f"{name}: log has {expect_in_log!r}", expect_in_log in log, log)
    return created


def curl_scenarios(base, work):
    # The README's curl lines, pointed at this server.
    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world")
    run_and_check("curl POST hello-world", base, status, body, "hello", revision=1)

    rev2 = (ROOT / "flows/dev/hello-world.yaml").read_text().replace(
        "defaults: hello", "defaults: hello from revision 2")
    (work / "hello-world-2.yaml").write_text(rev2)
    status, body = curl("-X", "PUT", f"{base}/api/v1/flows/dev/hello-world",
                        "-H", "Content-Type: application/x-yaml",
                        "--data-binary", f"@{work / 'hello-world-2.yaml'}")
    check("PUT flow: revision 2", status == 200 and json.loads(body).get("revision") == 2,
          f"{status} {body[:300]}")
    status, flow = get_json(f"{base}/api/v1/flows/dev/hello-world")
    check("GET flow: source kept verbatim", flow.get("source") == rev2, flow.get("source"))

    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world?revision=2")
    run_and_check("curl POST ?revision=2", base, status, body, "hello from revision 2",
                  revision=2)
    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world?revision=1")
    created = run_and_check("curl POST ?revision=1", base, status, body, "hello", revision=1)
    if created:
        log = logs_text(base, created["id"])
        check("revision 1 keeps its own default", "revision 2" not in log, log)

    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world",
                        "-F", "greeting=hey there")  # the shell's view of -F greeting="hey there"
    run_and_check("curl -F greeting", base, status, body, "hey there")

    status, body = curl("-X", "POST",
                        f"{base}/api/v1/executions/dev/hello-world?labels=team:e2e&labels=env:test",
                        "-F", "greeting=labelled")
    created = run_and_check("curl labels", base, status, body, "labelled")
    if created:
        labels = {(l["key"], l["value"]) for l in created.get("labels", [])}
        check("labels from query", {("team", "e2e"), ("env", "test")} <= labels, labels)

    status, body = curl("-X", "POST",
                        f"{base}/api/v1/executions/webhook/dev/hello-world/test1234",
                        "-H", "Content-Type: application/json",
                        "-d", '{"greeting": "from a webhook"}')
    run_and_check("curl webhook JSON body", base, status, body, "from a webhook")

    status, body = curl("-X", "POST",
                        f"{base}/api/v1/executions/webhook/dev/hello-world/test1234",
                        "-d", "hi there")
    run_and_check("curl webhook text body", base, status, body, "hi there")

    status, body = curl("-X", "POST",
                        f"{base}/api/v1/executions/webhook/dev/hello-world/wrongkey")
    check("webhook wrong key: 404", status == 404 and "Webhook not found" in body,
          f"{status} {body}")

    content = "some text from a file\n"
    (work / "notes.txt").write_text(content)
    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/file-input",
                        "-F", f"myfile=@{work / 'notes.txt'}")
    run_and_check("curl -F myfile=@file", base, status, body, "some text from a file")

    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/missing-flow")
    check("unknown flow: 404 with Kestra's error JSON",
          status == 404 and json.loads(body).get("_links", {}).get("self") is not None,
          f"{status} {body}")
    status, body = curl("-X", "POST", f"{base}/api/v1/other/executions/dev/hello-world")
    check("other tenant: 400", status == 400 and "Tenant must be 'main'" in body,
          f"{status} {body}")
    status, body = curl("-X", "POST", f"{base}/api/v1/main/executions/dev/hello-world")
    run_and_check("tenant main route", base, status, body, "hello from revision 2")

    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world?wait=true")
    ok = status == 200 and json.loads(body)["state"]["current"] == "SUCCESS"
    check("?wait=true answers when terminal", ok, f"{status} {body[:300]}")

    status, body = curl("-X", "POST", f"{base}/api/v1/flows",
                        "-H", "Content-Type: application/x-yaml",
                        "--data-binary", "id: broken\nnamespace: dev\ntasks: []\n")
    check("invalid flow: 422", status == 422 and "_embedded" in body, f"{status} {body}")

    status, body = curl(f"{base}/api/v1/openapi.yml")
    check("openapi.yml served", status == 200 and "openapi:" in body, f"{status} {body[:200]}")
    status, body = curl(f"{base}/api/v1/openapi.json")
    check("openapi.json served", status == 200 and json.loads(body).get("paths"), f"{status}")

    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world")
    if check("follow: an execution to follow", status == 200, f"{status} {body[:300]}"):
        execution_id = json.loads(body)["id"]
        status, stream = curl("-N", f"{base}/api/v1/executions/{execution_id}/follow")
        check("follow: SSE until the end event", status == 200 and "id: end" in stream
              and '"SUCCESS"' in stream, f"{status} {stream[-300:]}")

    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev/hello-world",
                        "-H", "Content-Type: multipart/form-data; boundary=xyz",
                        "--data-binary", "--xyz\r\nnot a part")
    check("malformed multipart: 4xx in Kestra's shape",
          400 <= status < 500 and "message" in json.loads(body or "{}"), f"{status} {body}")


FAILING = """id: nightly-etl
namespace: dev.team
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the warehouse is down
"""


def trigger_scenarios(base):
    """Schedule triggers listed with their state; the namespace alert flow (a Flow trigger)
    runs when a flow below `dev` fails; a trigger disabled through the API."""
    status, found = get_json(f"{base}/api/v1/triggers/search?namespace=dev&size=50")
    by_id = {r["abstractTrigger"]["id"]: r["triggerContext"] for r in (found or {}).get("results", [])}
    check("triggers/search lists the schedule with its next date",
          status == 200 and by_id.get("weekdays", {}).get("nextExecutionDate"), f"{status} {found}")

    status, _, body = http("POST", f"{base}/api/v1/flows", FAILING.encode(),
                           {"Content-Type": "application/x-yaml"})
    check("deploy a failing flow in dev.team", status == 200, body[:300])
    status, body = curl("-X", "POST", f"{base}/api/v1/executions/dev.team/nightly-etl?wait=true")
    failed_id = json.loads(body).get("id") if status == 200 else None
    check("the failing flow fails", status == 200 and json.loads(body)["state"]["current"] == "FAILED",
          f"{status} {body[:300]}")
    alert = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alert is None:
        _, page = get_json(f"{base}/api/v1/executions/search?namespace=dev&flowId=failure-alert&size=50")
        for e in (page or {}).get("results", []):
            if (e.get("trigger") or {}).get("variables", {}).get("executionId") == failed_id:
                alert = e
        time.sleep(0.1)
    check("Flow trigger: failure-alert ran for the failed execution", alert is not None, "no alert execution")
    if alert:
        done = wait_terminal(base, alert["id"])
        log = logs_text(base, alert["id"])
        check("Flow trigger: alert logs the failed flow and state",
              done["state"]["current"] == "SUCCESS" and "dev.team.nightly-etl ended FAILED" in log, log)

    body = json.dumps({"triggers": [{"namespace": "dev", "flowId": "daily-report", "triggerId": "weekdays"}],
                       "disabled": True}).encode()
    status, _, answer = http("POST", f"{base}/api/v1/triggers/set-disabled/by-triggers", body,
                             {"Content-Type": "application/json"})
    _, found = get_json(f"{base}/api/v1/triggers/dev/daily-report")
    check("trigger disabled through the API", status == 200 and found["results"][0]["triggerContext"]["disabled"],
          f"{status} {answer[:200]} {found}")


def sdk_scenarios(base, work, expect_auth=False):
    """The `kestra` PyPI client, unchanged."""
    from kestra import Flow

    os.environ["KESTRA_HOSTNAME"] = base
    suffix = " (auth)" if expect_auth else ""

    def new_flow():
        flow = Flow()
        # kestra 2.0.0 reads KESTRA_USER but never KESTRA_PASSWORD: its docs set
        # `flow.password` by hand, so do the same from the environment.
        flow.password = os.environ.get("KESTRA_PASSWORD")
        return flow

    try:
        result = new_flow().execute("dev", "hello-world", {"greeting": "hello from Python"})
        check("kestra client: SUCCESS" + suffix, result.status == "SUCCESS", result.status)
        check("kestra client: log has the greeting" + suffix,
              "hello from Python" in (result.log or ""), result.log)
    except Exception as e:  # noqa: BLE001 - a failed check, not a crash of the suite
        check("kestra client: execute" + suffix, False, repr(e))

    path = work / "example.txt"
    path.write_text("content of the uploaded file")
    try:
        with open(path, "rb") as fh:
            result = new_flow().execute("dev", "file-input", {"files": ("myfile", fh, "text/plain")})
        check("kestra client FILE: SUCCESS" + suffix, result.status == "SUCCESS", result.status)
        check("kestra client FILE: log has the content" + suffix,
              "content of the uploaded file" in (result.log or ""), result.log)
    except Exception as e:  # noqa: BLE001
        check("kestra client FILE: execute" + suffix, False, repr(e))


def auth_scenarios(kite, work):
    user, password, token = "admin", "s3cret-e2e", "e2e-token-123"
    server = Server(kite, work, {"KITE_BASIC_AUTH": f"{user}:{password}",
                                 "KITE_API_TOKEN": token, "KITE_MAX_UPLOAD": "65536"})
    base = server.base
    try:
        status, _, body = http("POST", f"{base}/api/v1/executions/dev/hello-world")
        headers = http("GET", f"{base}/api/v1/flows/search")[1]
        check("auth: no credentials gives 401", status == 401, f"{status} {body!r}")
        check("auth: WWW-Authenticate Basic",
              (headers.get("WWW-Authenticate") or "").startswith("Basic"), dict(headers))
        status, _, _ = http("GET", f"{base}/ping")
        check("auth: /ping stays open", status == 200, status)
        status, body = curl("-X", "POST", "-u", f"{user}:wrong",
                            f"{base}/api/v1/executions/dev/hello-world")
        check("auth: wrong password gives 401", status == 401, status)
        status, body = curl("-X", "POST", "-u", f"{user}:{password}",
                            f"{base}/api/v1/executions/dev/hello-world")
        check("auth: curl -u gives 200", status == 200, f"{status} {body[:200]}")
        status, body = curl("-X", "POST", "-H", f"Authorization: Bearer {token}",
                            f"{base}/api/v1/executions/dev/hello-world")
        check("auth: bearer token gives 200", status == 200, f"{status} {body[:200]}")
        status, body = curl("-X", "POST", "-H", "Content-Type: application/json",
                            "-d", '{"greeting": "open webhook"}',
                            f"{base}/api/v1/executions/webhook/dev/hello-world/test1234")
        check("auth: webhook stays open", status == 200, f"{status} {body[:200]}")
        (work / "big.bin").write_bytes(b"x" * 200_000)
        status, body = curl("-X", "POST", "-u", f"{user}:{password}",
                            f"{base}/api/v1/executions/dev/file-input",
                            "-F", f"myfile=@{work / 'big.bin'}")
        check("upload over --max-upload: 413", status == 413 and "message" in body,
              f"{status} {body[:200]}")

        os.environ.pop("KESTRA_API_TOKEN", None)
        os.environ["KESTRA_USER"], os.environ["KESTRA_PASSWORD"] = user, password
        sdk_scenarios(base, work, expect_auth=True)

        os.environ.pop("KESTRA_USER", None)
        os.environ.pop("KESTRA_PASSWORD", None)
        os.environ["KESTRA_API_TOKEN"] = token
        from kestra import Flow
        try:
            result = Flow().execute("dev", "hello-world", {"greeting": "token"})
            check("kestra client with KESTRA_API_TOKEN", result.status == "SUCCESS"
                  and "token" in (result.log or ""), result)
        except Exception as e:  # noqa: BLE001
            check("kestra client with KESTRA_API_TOKEN", False, repr(e))
        os.environ["KESTRA_API_TOKEN"] = "wrong"
        try:
            Flow().execute("dev", "hello-world")
            check("kestra client with a wrong token fails", False, "no error")
        except Exception as e:  # noqa: BLE001
            check("kestra client with a wrong token fails", "Authentication" in str(e), repr(e))
        os.environ.pop("KESTRA_API_TOKEN", None)
    finally:
        server.stop()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    kite = str(Path(sys.argv[1]).resolve())
    # The whole run is bounded even if a server stops answering.
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("e2e timed out")))
    signal.alarm(600)
    for name in ("KESTRA_USER", "KESTRA_PASSWORD", "KESTRA_API_TOKEN", "KESTRA_HOSTNAME"):
        os.environ.pop(name, None)
    work = Path(tempfile.mkdtemp(prefix="kite-e2e-"))
    shutil.copytree(ROOT / "flows", work / "flows")
    try:
        server = Server(kite, work, {})
        try:
            curl_scenarios(server.base, work)
            trigger_scenarios(server.base)
            sdk_scenarios(server.base, work)
        finally:
            server.stop()
        auth_scenarios(kite, work)
    except Exception as e:  # noqa: BLE001 - report, then count as a failure
        check("e2e run", False, repr(e))
    finally:
        signal.alarm(0)
    failed = RESULTS.count(False)
    if failed:
        for log in sorted(work.glob("server-*.log")):
            print(f"--- {log.name} (last lines)")
            print("\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    shutil.rmtree(work, ignore_errors=True)
    print(f"e2e: {RESULTS.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
