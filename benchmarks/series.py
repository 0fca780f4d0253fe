"""Benchmark: the notebook series 01 -> 07 on the sandbox (target: at most 60 s on 2 cores).

Usage: ``.venv/bin/python benchmarks/series.py [--repeat N] [--realistic]``

Prints per-notebook seconds and the total for each repetition. ``--realistic`` switches the
sandbox's "realistic" fault/latency profile on, as a rehearsal would see it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils import runner  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--realistic", action="store_true")
    args = parser.parse_args()
    totals = []
    for attempt in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as runs:
            if args.realistic:
                import os

                os.environ["WORKSHOP_SANDBOX_FAULTS"] = "realistic"
            started = time.perf_counter()
            results = runner.run_series({}, runs_dir=Path(runs), run_id=f"bench{attempt}", log=lambda *_: None)
            wall = time.perf_counter() - started
        totals.append(wall)
        for nb in results["notebooks"]:
            print(f"run {attempt}  {nb['name']:<24} {nb['status']:<7} {nb['seconds']:6.2f} s")
        print(f"run {attempt}  series wall time {wall:.2f} s (target <= 60 s)")
    if len(totals) > 1:
        print(f"median {statistics.median(totals):.2f} s, min {min(totals):.2f} s, max {max(totals):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
