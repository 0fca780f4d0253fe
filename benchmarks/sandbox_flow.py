"""Benchmark: the black-box boto3 flow against `python -m utils.sandbox` (target: under 2 minutes).

Usage: ``.venv/bin/python benchmarks/sandbox_flow.py [--repeat N]``

Runs ``tests/unit/test_sandbox_flow.py`` (role and bucket, Nova job -> deployment -> Converse and
native invoke, Llama 3.1 job -> Provisioned Throughput, rejections, inference profiles, deletes)
in a subprocess and prints its wall time. Timing lives here, not in the tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for attempt in range(1, args.repeat + 1):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "tests/unit/test_sandbox_flow.py"], cwd=ROOT,
            capture_output=True, text=True, check=False,
        )
        seconds = time.perf_counter() - started
        status = "passed" if done.returncode == 0 else "FAILED"
        print(f"run {attempt}: black-box flow {status} in {seconds:.1f} s (target < 120 s, includes pytest start-up)")
        if done.returncode:
            print(done.stdout[-2000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
