"""Cold start of each function binary: process start -> first request to the Runtime API
(the runtime is ready for its first event), measured under tests/lambda/emulator.py.

Usage: python bench/lambda_init.py BINARY_DIR [RUNS]
"""

import os
import statistics
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lambda"))
from emulator import Function, free_env  # noqa: E402


def main(directory, runs):
    env = free_env()
    env.update(
        {
            "TABLE_NAME": "kite-bench",
            "BUCKET_NAME": "kite-bench",
            "QUEUE_URL": "http://127.0.0.1:9/queue/kite-bench",
            "SCHEDULER_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:kite-scheduler",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "KITE_API_TOKEN": "bench",
        }
    )
    log = os.path.join(directory, "lambda-init.log")
    print("| function | init median (ms) | init p90 (ms) | binary (MB) | stripped (MB) | zipped (MB) |")
    print("|---|---|---|---|---|---|")
    for name in ("api", "worker", "scheduler", "stream"):
        binary = os.path.join(directory, f"kite-fn-{name}")
        samples = []
        for _ in range(runs):
            f = Function(name, binary, env, log).start()
            try:
                samples.append(f.init_ms())
            finally:
                f.stop()
        samples.sort()
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        size = os.path.getsize(binary) / 1e6
        stripped = binary + ".stripped"
        stripped_size = os.path.getsize(stripped) / 1e6 if os.path.exists(stripped) else float("nan")
        print(
            f"| {name} | {statistics.median(samples):.1f} | {p90:.1f} | {size:.1f} | {stripped_size:.1f} "
            f"| {zipped_mb(stripped if os.path.exists(stripped) else binary):.1f} |"
        )


def zipped_mb(binary):
    """The deployment package: the binary as `bootstrap` in a zip (deflate, level 9)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "function.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(binary, "bootstrap")
        return os.path.getsize(path) / 1e6


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20)
