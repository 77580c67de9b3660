"""A small Lambda Runtime API emulator: runs a real function binary (a `bootstrap`) as
Lambda does and hands it events one at a time.

Like Lambda, it freezes the process (SIGSTOP) while it waits for its next event, so work
left running after an answer makes no progress until the next invocation, and it kills
the process (SIGKILL) at an invocation's deadline, answering "Task timed out", then
starts a new one (a cold start) for the next event.

Lambda's side of the Runtime API (2018-06-01):
  GET  /2018-06-01/runtime/invocation/next            -> the next event (blocks)
  POST /2018-06-01/runtime/invocation/{id}/response   <- the function's answer
  POST /2018-06-01/runtime/invocation/{id}/error      <- the function's error
  POST /2018-06-01/runtime/init/error                 <- a failed start
"""

import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The runtime's HTTP client drops idle connections; nothing to report.
        pass


class InvokeError(Exception):
    """The function answered an error (or none in time)."""

    def __init__(self, payload):
        super().__init__(json.dumps(payload))
        self.payload = payload


class Function:
    """One function process behind its own Runtime API endpoint."""

    def __init__(self, name, binary, env, log_path, memory_mb=256):
        self.name = name
        self.binary = binary
        self.env = env
        self.log_path = log_path
        self.memory_mb = memory_mb
        self.events = queue.Queue()
        self.results = {}
        self.done = threading.Condition()
        self.first_poll = None
        self.started = None
        self.process = None
        self.invocations = 0
        self.timeouts = 0
        self.cold_starts = 0
        self.cancelled = set()
        self.server = Server(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        fn = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    return self._reply(404)
                if fn.first_poll is None:
                    fn.first_poll = time.monotonic()
                process = fn.process
                # Between invocations the sandbox is frozen: nothing in it runs.
                fn._signal(process, signal.SIGSTOP)
                request_id, event, timeout_s = fn.events.get()
                while request_id in fn.cancelled:  # its invocation already timed out
                    request_id, event, timeout_s = fn.events.get()
                if process is not fn.process:
                    # A request of a process killed at its deadline: it never gets this event.
                    fn.events.put((request_id, event, timeout_s))
                    return
                fn._signal(process, signal.SIGCONT)
                deadline_ms = int((time.time() + timeout_s) * 1000)
                self._reply(
                    200,
                    json.dumps(event).encode(),
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:123456789012:function:{fn.name}",
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    },
                )

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    fn._finish("init", False, body)
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    fn._finish(parts[1], parts[2] == "response", body)
                else:
                    return self._reply(404)
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        return Handler

    def _finish(self, request_id, ok, body):
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = {"raw": body.decode(errors="replace")}
        with self.done:
            self.results[request_id] = (ok, payload)
            self.done.notify_all()

    @staticmethod
    def _signal(process, sig):
        if process is not None and process.poll() is None:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                pass

    def start(self):
        port = self.server.server_address[1]
        env = dict(self.env)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            }
        )
        if getattr(self, "log", None) is None:
            self.log = open(self.log_path, "ab")
        self.cold_starts += 1
        self.first_poll = None
        self.results.pop("init", None)
        self.started = time.monotonic()
        # KITE_LAMBDA_LAUNCHER runs binaries of another architecture (qemu-user).
        launcher = os.environ.get("KITE_LAMBDA_LAUNCHER", "").split()
        self.process = subprocess.Popen(launcher + [self.binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def init_ms(self, wait_s=10):
        """Milliseconds from process start to its first request for an event."""
        end = time.monotonic() + wait_s
        while self.first_poll is None and time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} (log: {self.log_path})")
            time.sleep(0.001)
        if self.first_poll is None:
            raise RuntimeError(f"{self.name} never asked for an event")
        return (self.first_poll - self.started) * 1000

    def invoke(self, event, timeout_s=30):
        """Delivers one event; returns the answer or raises InvokeError."""
        request_id = str(uuid.uuid4())
        self.invocations += 1
        self.events.put((request_id, event, timeout_s))
        end = time.monotonic() + timeout_s
        with self.done:
            while request_id not in self.results and "init" not in self.results:
                left = end - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    break
                self.done.wait(min(left, 0.5))
            result = self.results.pop(request_id, None) or self.results.get("init")
        if result is None:
            if self.process.poll() is None:
                # Lambda kills the sandbox at the deadline; the next event gets a new one.
                self.timeouts += 1
                self.cancelled.add(request_id)
                self._kill()
                self.start()
                raise InvokeError({"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout_s:.2f} seconds"})
            raise InvokeError({"errorType": "Emulator", "errorMessage": f"{self.name} exited with {self.process.returncode} (log: {self.log_path})"})
        ok, payload = result
        if not ok:
            raise InvokeError(payload)
        return payload

    def _kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self):
        if self.process and self.process.poll() is None:
            self._signal(self.process, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.server.shutdown()
        if getattr(self, "log", None):
            self.log.close()

    def log_lines(self):
        """The function's JSON log lines so far."""
        lines = []
        with open(self.log_path, "rb") as f:
            for raw in f:
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    pass
        return lines


def free_env():
    """The caller's environment minus anything that would point a function elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA_")}
    return env
