#!/usr/bin/env python3
"""Reliability tests of `kite server`: crashes under load, webhook load, bounded renders.

Scenarios (each prints its figures and fails the run when its guarantee breaks):
  1. kill -9 under load: three flows (Sleep, ForEach, FILE upload) driven by client
     threads while the server is killed 3 times and restarted on the same data folder;
     then 0 lost, 0 duplicated, 0 stuck, 0 not SUCCESS.
  2. 10,000 webhooks over 64 keep-alive connections: rate, p50/p99, non-2xx answers
     (503 + Retry-After retried), exactly 10,000 executions at the end.
  3. Crash-loop flow: a variable that renders itself through render() fails its
     execution (log naming the bound); the server stays up, also after a restart.
  4. Nested-loop renders near the loop bound do not starve the API: /ping sampled every
     ~10 ms stays below 100 ms.
  5. Crash-loop guard: a task run in flight at two kill -9 is not run a third time; its
     execution FAILS saying why, and the server carries on.

Every server runs on 127.0.0.1 on a free port with a fresh temporary data folder, and is
started and stopped here by its PID. Standard library only.

Usage: reliability.py PATH_TO_KITE_BINARY [SCENARIO ...]   (scenarios: 1 2 3 4 5; default all)
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"}
CHECKS = []  # (scenario, name, ok, detail)
SUMMARY = []  # (scenario, figures text, ok)


def check(scenario, name, ok, detail=""):
    CHECKS.append((scenario, name, bool(ok), str(detail)))
    print(("  PASS " if ok else "  FAIL ") + name + ("" if ok else f" -- {detail}"), flush=True)
    return bool(ok)


def figure(name, value):
    print(f"  {name}: {value}", flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


# ---------------------------------------------------------------------------- HTTP


def request(port, method, path, body=None, headers=None, timeout=30):
    """(status, headers, body bytes) over a fresh connection; raises OSError on
    connection failures."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def get_json(port, path, timeout=30):
    status, _, body = request(port, "GET", path, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    return json.loads(body)


def deploy(port, source):
    status, _, body = request(port, "POST", "/api/v1/flows", source.encode(),
                              {"Content-Type": "application/x-yaml"})
    if status != 200:
        raise RuntimeError(f"cannot deploy flow: {status} {body[:500]!r}")


def search_all(port, query):
    """Every execution the search finds (pages of 10,000)."""
    found, page = [], 1
    while True:
        answer = get_json(port, f"/api/v1/executions/search?{query}&size=10000&page={page}",
                          timeout=120)
        found.extend(answer["results"])
        if len(answer["results"]) < 10000 or len(found) >= answer["total"]:
            return found
        page += 1


def logs_text(port, execution_id):
    return request(port, "GET", f"/api/v1/logs/{execution_id}/download")[2].decode(
        errors="replace")


def failure_reason(port, execution_id):
    lines = [l for l in logs_text(port, execution_id).splitlines() if "ERROR" in l]
    return (lines[-1] if lines else "no ERROR line in its logs")[:300]


def multipart(fields, files):
    """A multipart/form-data body: (content type, bytes)."""
    boundary = "----kite-reliability-" + uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n".encode())
    for name, (filename, content) in files.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                   f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
                   + content + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


# -------------------------------------------------------------------------- server


class Server:
    """`kite server` processes of this script on one data folder and port, each started
    and stopped by its PID."""

    def __init__(self, kite, work, name, env_extra=None):
        self.kite = kite
        self.port = free_port()
        self.data = work / f"data-{name}"
        self.flows = work / "no-flows"  # absent: nothing deployed at start
        self.logs = work / f"server-{name}"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_")}
        self.env.update(env_extra or {})
        self.proc = None
        self.log = None
        self.starts = 0

    def start(self, timeout=30):
        self.starts += 1
        self.log = open(self.logs / f"run-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [self.kite, "server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--data", str(self.data), "--flows", str(self.flows)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                break
            if self.ping(timeout=1) is not None:
                return time.monotonic() - started
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"kite server did not start; log:\n{self.last_log()}")

    def ping(self, timeout=2):
        """Seconds /ping took, or None when it did not answer 200."""
        t0 = time.monotonic()
        try:
            status, _, _ = request(self.port, "GET", "/ping", timeout=timeout)
        except OSError:
            return None
        return time.monotonic() - t0 if status == 200 else None

    def cpu_seconds(self):
        """User + system CPU time of the running server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL, then waits until the PID is gone (reaped): the data-folder lock is
        free once it is."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log and not self.log.closed:
            self.log.close()

    def recovered(self):
        """(queue leases released, non-terminal executions) the last start found, from its
        log line `recovered queued work`."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.last_log(lines=200))
        found = re.search(r"recovered queued work released=(\d+) executions=(\d+)", text)
        return (int(found.group(1)), int(found.group(2))) if found else (None, None)

    def last_log(self, lines=30):
        path = self.logs / f"run-{self.starts}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_all_terminal(port, query, expected, seconds):
    """Polls the search until `expected` executions exist and all are terminal, or the
    time is up; returns (executions, seconds waited)."""
    t0 = time.monotonic()
    while True:
        executions = search_all(port, query)
        pending = [e for e in executions if e["state"]["current"] not in TERMINAL]
        if (not pending and len(executions) >= expected) or time.monotonic() - t0 > seconds:
            return executions, time.monotonic() - t0
        time.sleep(0.5)


def label_value(execution, key):
    for label in execution.get("labels") or []:
        if label.get("key") == key:
            return label.get("value")
    return None


# ------------------------------------------------------------ 1. kill -9 under load

SLEEPY = """id: sleepy
namespace: rel.crash
inputs:
  - id: n
    type: INT
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: "start {{ inputs.n }}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "end {{ inputs.n }}"
"""

LOOP = """id: loop
namespace: rel.crash
inputs:
  - id: n
    type: INT
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c", "d"]
    tasks:
      - id: value
        type: io.kestra.plugin.core.output.OutputValues
        values:
          v: "{{ taskrun.value }}-{{ inputs.n }}"
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{ outputs.value[taskrun.value].values.v }}"
"""

UPLOAD = """id: upload
namespace: rel.crash
inputs:
  - id: n
    type: INT
  - id: file
    type: FILE
tasks:
  - id: content
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(inputs.file) }}"
"""

CLIENT_THREADS = 6
PAUSE_BETWEEN_REQUESTS = 0.02  # per thread: about 300 requests/s in all at most
KILLS = 3
MAX_LOAD_SECONDS = 60
TERMINAL_BOUND = 60


def scenario_kill9(kite, work):
    name = "1 kill -9 under load"
    print(f"== {name}", flush=True)
    server = Server(kite, work, "kill9")
    server.start()
    try:
        for source in (SLEEPY, LOOP, UPLOAD):
            deploy(server.port, source)

        lock = threading.Lock()
        numbers = iter(range(1, 10**9))
        outcome = {}  # number -> "ok" | "rejected:<status>" | "in-flight" | "refused"
        created = {}  # number -> execution id from the 2xx answer
        latencies = []
        stop = threading.Event()

        def one(n):
            kind = n % 3
            if kind == 0:
                path, ctype, body = f"/api/v1/executions/rel.crash/sleepy?labels=req:{n}", *multipart({"n": n}, {})
            elif kind == 1:
                path, ctype, body = f"/api/v1/executions/rel.crash/loop?labels=req:{n}", *multipart({"n": n}, {})
            else:
                content = f"file of request {n}\n".encode()
                path = f"/api/v1/executions/rel.crash/upload?labels=req:{n}"
                ctype, body = multipart({"n": n}, {"file": (f"req-{n}.txt", content)})
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                try:
                    conn.connect()
                except OSError:
                    return "refused", None
                t0 = time.monotonic()
                try:
                    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
                    r = conn.getresponse()
                    data = r.read()
                except (OSError, http.client.HTTPException):
                    return "in-flight", None
                latencies.append(time.monotonic() - t0)
                if 200 <= r.status < 300:
                    return "ok", json.loads(data)["id"]
                return f"rejected:{r.status}", None
            finally:
                conn.close()

        def client():
            while not stop.is_set():
                with lock:
                    n = next(numbers)
                result, execution_id = one(n)
                with lock:
                    outcome[n] = result
                    if execution_id:
                        created[n] = execution_id
                time.sleep(PAUSE_BETWEEN_REQUESTS if result != "refused" else 0.05)

        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENT_THREADS)]
        load_start = time.monotonic()
        for t in threads:
            t.start()
        restarts = []
        rng = random.Random()
        for _ in range(KILLS):
            time.sleep(rng.uniform(2.0, 4.0))
            if time.monotonic() - load_start > MAX_LOAD_SECONDS:
                break
            t_kill = time.monotonic()
            server.kill9()
            up = server.start()
            restarts.append((t_kill - load_start, time.monotonic() - t_kill, up,
                             server.recovered()[1]))
        time.sleep(rng.uniform(2.0, 4.0))  # load on the last server too
        stop.set()
        for t in threads:
            t.join(timeout=40)
        load_seconds = time.monotonic() - load_start

        counts = {}
        for result in outcome.values():
            counts[result] = counts.get(result, 0) + 1
        figure("load", f"{load_seconds:.1f} s, {CLIENT_THREADS} client threads, "
               f"{len(outcome)} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for i, (at, down, up, pending) in enumerate(restarts, 1):
            figure(f"kill {i}", f"at {at:.1f} s of load; {pending} unfinished executions "
                   f"recovered; answered /ping {down:.2f} s after the kill (start to /ping "
                   f"{up:.2f} s)")
        figure("creation latency", f"p50 {ms(percentile(latencies, 50))}, p99 "
               f"{ms(percentile(latencies, 99))}, max {ms(max(latencies or [0]))}")

        executions, waited = wait_all_terminal(server.port, "namespace=rel.crash",
                                               len(created), TERMINAL_BOUND)
        by_number = {}
        unlabelled = 0
        for e in executions:
            n = label_value(e, "req")
            if n is None:
                unlabelled += 1
                continue
            by_number.setdefault(int(n), []).append(e)
        ids = {e["id"] for e in executions}
        lost = sorted(n for n, eid in created.items() if eid not in ids)
        duplicated = sorted(n for n, found in by_number.items() if len(found) > 1)
        stuck = [e for e in executions if e["state"]["current"] not in TERMINAL]
        not_success = [e for e in executions if e["state"]["current"] in TERMINAL
                       and e["state"]["current"] != "SUCCESS"]
        in_flight = [n for n, r in outcome.items() if r == "in-flight"]
        in_flight_exist = sum(1 for n in in_flight if n in by_number)
        rejected = [n for n, r in outcome.items() if r.startswith("rejected")]
        rejected_exist = [n for n in rejected if n in by_number]
        figure("executions", f"{len(executions)} found, {len(created)} acknowledged (2xx), "
               f"all terminal after {waited:.1f} s" if not stuck else
               f"{len(executions)} found, {len(stuck)} not terminal after {waited:.1f} s")
        figure("in flight at a kill (no answer)",
               f"{len(in_flight)}, of which {in_flight_exist} exist and "
               f"{len(in_flight) - in_flight_exist} do not (either is allowed)")
        states = {}
        for e in executions:
            states[e["state"]["current"]] = states.get(e["state"]["current"], 0) + 1
        figure("final states", ", ".join(f"{k} {v}" for k, v in sorted(states.items())))

        ok = check(name, "3 kills, each restart answered /ping", len(restarts) == KILLS, restarts)
        ok &= check(name, "0 lost (every 2xx answer has its execution)", not lost,
                    f"{len(lost)} lost, numbers {lost[:20]}")
        ok &= check(name, "0 duplicated (no client number in two executions)", not duplicated,
                    f"{len(duplicated)}: " + "; ".join(
                        f"{n}: {[e['id'] for e in by_number[n]]}" for n in duplicated[:10]))
        ok &= check(name, "no execution without its client number", unlabelled == 0, unlabelled)
        ok &= check(name, "no execution for an answered error (non-2xx)", not rejected_exist,
                    rejected_exist[:20])
        ok &= check(name, f"0 stuck (all terminal within {TERMINAL_BOUND} s)", not stuck,
                    "; ".join(f"{e['id']} {e['flowId']} {e['state']['current']}" for e in stuck[:10]))
        reasons = [f"{e['id']} {e['flowId']} {e['state']['current']}: "
                   f"{failure_reason(server.port, e['id'])}" for e in not_success[:10]]
        for r in reasons:
            figure("not SUCCESS", r)
        ok &= check(name, "0 ended other than SUCCESS", not not_success,
                    f"{len(not_success)}; " + " | ".join(reasons[:3]))
        ok &= check(name, "requests created executions", len(created) > 100, len(created))
        recovered = sum(r[3] or 0 for r in restarts)
        SUMMARY.append((name, f"{len(outcome)} requests, {len(created)} acknowledged, "
                        f"{len(restarts)} kills ({recovered} unfinished recovered), lost {len(lost)}, dup {len(duplicated)}, "
                        f"stuck {len(stuck)}, not SUCCESS {len(not_success)}, "
                        f"in flight {len(in_flight)} ({in_flight_exist} exist)", ok))
    finally:
        server.stop()


# ---------------------------------------------------------- 2. 10,000 webhooks

HOOK = """id: hook
namespace: rel.hook
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "request {{ trigger.body.n }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: reliability
"""

WEBHOOKS = 10_000
CONNECTIONS = 64


def scenario_webhooks(kite, work):
    name = "2 10,000 webhooks"
    print(f"== {name}", flush=True)
    server = Server(kite, work, "webhooks")
    server.start()
    try:
        deploy(server.port, HOOK)
        path = "/api/v1/executions/webhook/rel.hook/hook/reliability"
        lock = threading.Lock()
        numbers = iter(range(WEBHOOKS))
        latencies = [[] for _ in range(CONNECTIONS)]
        statuses = {}
        retried_503 = [0]
        connection_errors = [0]
        failed = []

        def take():
            with lock:
                return next(numbers, None)

        def client(slot):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            while True:
                n = take()
                if n is None:
                    break
                body = json.dumps({"n": n}).encode()
                for _ in range(20):
                    t0 = time.monotonic()
                    try:
                        conn.request("POST", path, body=body,
                                     headers={"Content-Type": "application/json"})
                        r = conn.getresponse()
                        r.read()
                    except (OSError, http.client.HTTPException):
                        # Counted; sent again on a new connection (duplicates would show
                        # in the count below).
                        with lock:
                            connection_errors[0] += 1
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                        continue
                    latencies[slot].append(time.monotonic() - t0)
                    with lock:
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.status == 503:
                        with lock:
                            retried_503[0] += 1
                        time.sleep(float(r.headers.get("Retry-After") or 1))
                        continue
                    if not 200 <= r.status < 300:
                        with lock:
                            failed.append((n, r.status))
                    break
                else:
                    with lock:
                        failed.append((n, "gave up"))
            conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(CONNECTIONS)]
        cpu0 = server.cpu_seconds()
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.monotonic() - t0
        cpu = server.cpu_seconds() - cpu0
        all_latencies = [x for slot in latencies for x in slot]
        rate = WEBHOOKS / elapsed
        figure("sent", f"{WEBHOOKS} POSTs over {CONNECTIONS} keep-alive connections in "
               f"{elapsed:.2f} s: {rate:.0f}/s; server CPU {cpu:.2f} s "
               f"({cpu / WEBHOOKS * 1e6:.0f} µs per webhook)")
        figure("latency", f"p50 {ms(percentile(all_latencies, 50))}, p99 "
               f"{ms(percentile(all_latencies, 99))}, max {ms(max(all_latencies or [0]))}")
        figure("answers", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
               + f"; 503 retried {retried_503[0]}, connection errors {connection_errors[0]}")

        executions, waited = wait_all_terminal(server.port, "namespace=rel.hook&flowId=hook",
                                               WEBHOOKS, 60)
        body_numbers = [((e.get("trigger") or {}).get("variables") or {}).get("body", {}).get("n")
                        for e in executions]
        distinct = len(set(body_numbers) - {None})
        states = {}
        for e in executions:
            states[e["state"]["current"]] = states.get(e["state"]["current"], 0) + 1
        figure("executions", f"{len(executions)} ({distinct} distinct request numbers), "
               f"states: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
               + f", all terminal {waited:.1f} s after the last answer")
        ok = check(name, "every webhook answered 2xx (after 503 retries)", not failed, failed[:10])
        ok &= check(name, f"exactly {WEBHOOKS} executions", len(executions) == WEBHOOKS,
                    len(executions))
        ok &= check(name, f"{WEBHOOKS} distinct request numbers", distinct == WEBHOOKS, distinct)
        ok &= check(name, "all SUCCESS", states.get("SUCCESS") == WEBHOOKS, states)
        non2xx = sum(v for k, v in statuses.items() if not 200 <= k < 300)
        SUMMARY.append((name, f"{rate:.0f}/s, p50 {ms(percentile(all_latencies, 50))}, "
                        f"p99 {ms(percentile(all_latencies, 99))}, non-2xx {non2xx} "
                        f"(503 {statuses.get(503, 0)}), executions {len(executions)}", ok))
    finally:
        server.stop()


# -------------------------------------------------------------- 3. crash-loop flow

SELF_RENDER = """id: self-render
namespace: rel.guard
variables:
  a: "{{ render(vars.a) }}"
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ render(vars.a) }}"
"""

BOUND_TEXT = "renders nest deeper than 10 levels"


def scenario_crash_loop(kite, work):
    name = "3 crash-loop flow"
    print(f"== {name}", flush=True)
    server = Server(kite, work, "crash-loop")
    server.start()
    ok = True
    try:
        deploy(server.port, SELF_RENDER)
        status, _, body = request(server.port, "POST",
                                  "/api/v1/executions/rel.guard/self-render?wait=true")
        execution = json.loads(body) if status == 200 else {}
        state = (execution.get("state") or {}).get("current")
        log = logs_text(server.port, execution["id"]) if execution.get("id") else ""
        ok &= check(name, "the execution FAILED", status == 200 and state == "FAILED",
                    f"{status} {state} {body[:200]!r}")
        bound_lines = [l for l in log.splitlines() if BOUND_TEXT in l]
        if bound_lines:
            figure("log", bound_lines[0][:200])
        ok &= check(name, "its log names the bound", bound_lines, log[-500:])
        ok &= check(name, "the server is alive and answers /ping",
                    server.alive() and server.ping() is not None, server.last_log())

        # Executions left queued by a crash are run again at start: a flow that crashed
        # the process would crash every start. Queue a few, kill -9 at once, restart.
        queued = []
        for _ in range(5):
            status, _, body = request(server.port, "POST",
                                      "/api/v1/executions/rel.guard/self-render")
            if status == 200:
                queued.append(json.loads(body)["id"])
        server.kill9()
        server.start()
        time.sleep(3)  # a crash loop would show here
        alive = server.alive() and server.ping() is not None
        ok &= check(name, "after kill -9 and restart: up 3 s later, /ping answers", alive,
                    server.last_log())
        server.stop()
        server.start()
        time.sleep(2)
        alive2 = server.alive() and server.ping() is not None
        ok &= check(name, "after a clean restart: up 2 s later, /ping answers", alive2,
                    server.last_log())
        executions, _ = wait_all_terminal(server.port, "namespace=rel.guard", len(queued) + 1, 20)
        states = {}
        for e in executions:
            states[e["state"]["current"]] = states.get(e["state"]["current"], 0) + 1
        figure("executions", ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        ok &= check(name, "every execution of the flow FAILED (none left running)",
                    states == {"FAILED": len(queued) + 1}, states)
        SUMMARY.append((name, f"{len(queued) + 1} executions FAILED naming the bound; "
                        f"server up after {server.starts - 1} restarts", ok))
    finally:
        server.stop()


# ------------------------------------------------------- 4. nested-loop renders

# range() as in Pebble (both ends included): 999 outer + 999 x 1,000 inner iterations
# = 999,999, one short of MAX_LOOP_ITERATIONS (1,000,000).
NESTED = """id: nested-loops
namespace: rel.loops
tasks:
  - id: spin
    type: io.kestra.plugin.core.log.Log
    message: "{% for i in range(1, 999) %}{% for j in range(1, 1000) %}{% endfor %}{% endfor %}done"
"""

RENDERS = 4
PING_BOUND = 0.100


def scenario_nested_loops(kite, work):
    name = "4 nested-loop renders vs /ping"
    print(f"== {name}", flush=True)
    server = Server(kite, work, "loops")
    server.start()
    try:
        deploy(server.port, NESTED)
        samples = []
        errors = []
        done = threading.Event()

        def sampler():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            while not done.is_set():
                t0 = time.monotonic()
                try:
                    conn.request("GET", "/ping")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                except (OSError, http.client.HTTPException) as e:
                    errors.append(repr(e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                samples.append(time.monotonic() - t0)
                time.sleep(0.01)
            conn.close()

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        time.sleep(0.3)  # a few samples before
        # All at once, from their own threads: a render runs while its execution is
        # created (light tasks run inline), so the POST's latency is the render's time.
        ids, render_times = [], []

        def start_one():
            t = time.monotonic()
            status, _, body = request(server.port, "POST",
                                      "/api/v1/executions/rel.loops/nested-loops", timeout=60)
            if status == 200:
                ids.append(json.loads(body)["id"])
                render_times.append(time.monotonic() - t)

        t0 = time.monotonic()
        starters = [threading.Thread(target=start_one) for _ in range(RENDERS)]
        for t in starters:
            t.start()
        for t in starters:
            t.join(timeout=60)
        executions, waited = wait_all_terminal(server.port, "namespace=rel.loops", RENDERS, 60)
        all_done = time.monotonic() - t0
        time.sleep(0.2)
        done.set()
        thread.join(timeout=15)
        states = {}
        for e in executions:
            states[e["state"]["current"]] = states.get(e["state"]["current"], 0) + 1
        figure("renders", f"{len(ids)} executions started at once, 999,999 loop iterations "
               f"each; their POSTs took " + ", ".join(f"{d:.2f} s" for d in sorted(render_times))
               + f"; all ended {all_done:.2f} s after the first request; states "
               + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        p50, p99, worst = percentile(samples, 50), percentile(samples, 99), max(samples or [0])
        figure("/ping", f"{len(samples)} samples: p50 {ms(p50)}, p99 {ms(p99)}, max {ms(worst)}")
        ok = check(name, "all executions SUCCESS", states == {"SUCCESS": RENDERS}, states)
        log = logs_text(server.port, ids[0]) if ids else ""
        ok &= check(name, "the render completed (log 'done')", "done" in log, log[-300:])
        ok &= check(name, "/ping always answered 200", not errors, errors[:5])
        ok &= check(name, f"max /ping latency below {ms(PING_BOUND)}", worst < PING_BOUND, ms(worst))
        SUMMARY.append((name, f"{RENDERS} renders in {all_done:.2f} s; /ping p50 {ms(p50)}, "
                        f"p99 {ms(p99)}, max {ms(worst)}", ok))
    finally:
        server.stop()


# ---------------------------------------------------------------------------- main

# ------------------------------------------------------- 5. crash-loop guard

HANGING = """id: hanging
namespace: rel.guard
tasks:
  - id: fetch
    type: io.kestra.plugin.core.http.Request
    uri: "http://127.0.0.1:{port}/never-answers"
"""


class SilentPeer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: the HTTP
    task of the flow stays in flight. Counts the connections it got."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.arrived:
                self.accepted.append(conn)
                self.arrived.notify_all()

    def wait_for(self, count, seconds):
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.accepted) >= count, seconds)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def scenario_crash_guard(kite, work):
    name = "5 crash-loop guard"
    print(f"== {name}", flush=True)
    peer = SilentPeer()
    server = Server(kite, work, "crash-guard")
    server.start()
    ok = True
    try:
        deploy(server.port, HANGING.replace("{port}", str(peer.port)))
        status, _, body = request(server.port, "POST", "/api/v1/executions/rel.guard/hanging")
        ok &= check(name, "execution created", status == 200, body[:200])
        execution_id = json.loads(body)["id"]
        # Killed twice while the task's request is in flight: the worker had it in hand.
        for kill in (1, 2):
            in_flight = peer.wait_for(kill, 20)
            ok &= check(name, f"the task's request is in flight before kill {kill}", in_flight,
                        server.last_log())
            server.kill9()
            server.start()
        text = ""
        deadline = time.monotonic() + 20
        state = None
        while time.monotonic() < deadline:
            execution = get_json(server.port, f"/api/v1/executions/{execution_id}")
            state = execution["state"]["current"]
            if state in TERMINAL:
                text = logs_text(server.port, execution_id)
                break
            time.sleep(0.1)
        figure("state after the third start", state)
        guard_lines = [l for l in text.splitlines() if "Kite gave up on task run `fetch`" in l]
        if guard_lines:
            figure("log", guard_lines[0][:160])
        ok &= check(name, "the execution FAILED instead of running the task a third time",
                    state == "FAILED", text[-500:])
        ok &= check(name, "its log says why", guard_lines, text[-500:])
        time.sleep(0.5)
        ok &= check(name, "the task was not started again", len(peer.accepted) == 2,
                    f"{len(peer.accepted)} requests")
        ok &= check(name, "the server is up and answers /ping",
                    server.alive() and server.ping() is not None, server.last_log())
        SUMMARY.append((name, f"in flight at 2 kills: FAILED at the 3rd start, "
                        f"{len(peer.accepted)} requests sent", ok))
    finally:
        server.stop()
        peer.close()


SCENARIOS = {"1": scenario_kill9, "2": scenario_webhooks, "3": scenario_crash_loop,
             "4": scenario_nested_loops, "5": scenario_crash_guard}


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    kite = str(Path(sys.argv[1]).resolve())
    chosen = sys.argv[2:] or list(SCENARIOS)
    # The whole run is bounded even if a server stops answering.
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("timed out")))
    signal.alarm(420)
    work = Path(tempfile.mkdtemp(prefix="kite-reliability-"))
    started = time.monotonic()
    try:
        for key in chosen:
            t0 = time.monotonic()
            try:
                SCENARIOS[key](kite, work)
            except Exception as e:  # noqa: BLE001 - report, then count as a failure
                check(key, "scenario ran to its end", False, repr(e))
                SUMMARY.append((key, f"error: {e!r}"[:100], False))
            print(f"  ({time.monotonic() - t0:.1f} s)", flush=True)
    finally:
        signal.alarm(0)
    failed = [c for c in CHECKS if not c[2]]
    if failed:
        for log in sorted(work.glob("server-*/run-*.log")):
            print(f"--- {log.parent.name}/{log.name} (last lines)")
            print("\n".join(log.read_text(errors="replace").splitlines()[-20:]))
    shutil.rmtree(work, ignore_errors=True)
    print()
    width = max((len(s[0]) for s in SUMMARY), default=10)
    print(f"{'scenario'.ljust(width)} | result | figures")
    print(f"{'-' * width}-|--------|--------")
    for scenario, figures, ok in SUMMARY:
        print(f"{scenario.ljust(width)} | {'PASS' if ok else 'FAIL':6} | {figures}")
    print(f"reliability: {len(CHECKS) - len(failed)} checks passed, {len(failed)} failed, "
          f"{time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
