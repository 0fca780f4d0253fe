"""Benchmark: the notebook series 01 -> 07 on the sandbox, four arms (target: at most 45 s on 2 cores).

Usage: ``.venv/bin/python benchmarks/series.py [--repeat N] [--realistic] [--no-kernels-ahead]``

Runs what ``make workshop`` runs (``utils.runner.run_series``, default parameters: the base model
and three fine-tuned arms) and prints, for each repetition, every notebook's seconds, the series'
wall time, the CPU seconds of the runner (with its in-process sandbox) and of the kernels, and the
machine's load average before and after: on a shared machine, read a time with its load.
``--realistic`` switches the sandbox's "realistic" fault/latency profile on, as a rehearsal would
see it; ``--no-kernels-ahead`` starts each kernel in its turn (to measure what starting them one
notebook ahead saves).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils import runner  # noqa: E402

TARGET_S = 45.0


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:  # not Linux
        return "?"


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished children (the kernels)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--realistic", action="store_true")
    parser.add_argument("--no-kernels-ahead", action="store_true")
    args = parser.parse_args()
    if args.realistic:
        os.environ["WORKSHOP_SANDBOX_FAULTS"] = "realistic"
    totals = []
    for attempt in range(1, args.repeat + 1):
        load_before, (own_before, kernels_before) = load_average(), cpu_seconds()
        with tempfile.TemporaryDirectory() as runs:
            started = time.perf_counter()
            results = runner.run_series({}, runs_dir=Path(runs), run_id=f"bench{attempt}", log=lambda *_: None,
                                        kernels_ahead=not args.no_kernels_ahead)
            wall = time.perf_counter() - started
        own, kernels = cpu_seconds()
        totals.append(wall)
        for nb in results["notebooks"]:
            print(f"run {attempt}  {nb['name']:<24} {nb['status']:<7} {nb['seconds']:6.2f} s")
        print(f"run {attempt}  series wall time {wall:.2f} s (target <= {TARGET_S:.0f} s), series {results['status']}; "
              f"CPU: runner and sandbox {own - own_before:.1f} s, kernels {kernels - kernels_before:.1f} s; "
              f"load {load_before} -> {load_average()}; sandbox time_scale {results.get('sandbox', {}).get('time_scale')}")
    if len(totals) > 1:
        print(f"median {statistics.median(totals):.2f} s, min {min(totals):.2f} s, max {max(totals):.2f} s "
              f"(target <= {TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
