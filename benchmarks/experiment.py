"""Benchmark: the four-arm experiment on the sandbox, wall time against one job.

Usage: ``.venv/bin/python benchmarks/experiment.py [--time-scale S]``

Trains one job alone, then the three trained arms (FT-N, FT-4N, FT-N+3N) through
``utils.arms.run_arms`` at the quota the sandbox reports, and prints
``arms_wall_ratio=<three-arm wall / one-job wall>``. With a quota of 2 the goal is
at most ceil(3 / 2) + 0.3 = 2.3 (the arms run concurrently, not one after another).
Pick ``--time-scale`` so that one job takes about 10 s. Timing lives here, not in the tests.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils import arms, aws, formats, iam, models, s3  # noqa: E402
from utils.runner import sandbox_environment  # noqa: E402
from utils.state import name, tags  # noqa: E402

REGION = "us-east-1"


def planned(workshop_id: str, bucket: str, role: str, only: list[str]) -> list[arms.ArmJob]:
    student = models.get("nova-lite").customization_id
    originals = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget of size {i}.", student) for i in range(100)]
    synthetic = [formats.format_record(f"How big is item {i}?", f"Size {i}.", student) for i in range(75)]
    data = arms.build_arm_data(only, 25, originals, synthetic)
    jobs = arms.plan_jobs(data, workshop_id=workshop_id, base_model=student, role_arn=role, bucket=bucket,
                          hyperparameters=models.default_hyperparameters(student), validation_uri=None)
    for job, body in jobs:
        s3.upload_bytes(bucket, job.plan.training_uri.split("/", 3)[3], body.encode(), region=REGION)
    return [job for job, _ in jobs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-scale", type=float, default=4.0)
    args = parser.parse_args()
    from utils import sandbox

    with sandbox.start(time_scale=args.time_scale) as server, tempfile.TemporaryDirectory() as state_dir:
        os.environ.update(sandbox_environment(server.url, Path(state_dir)))
        account = aws.account_id(REGION)
        walls = {}
        for workshop_id, only in (("one", ["ft_n"]), ("arms", ["base", "ft_n", "ft_4n", "ft_n_3n"])):
            bucket = name(workshop_id, f"{account}-{REGION}")
            s3.ensure_bucket(bucket, REGION, tags=tags(workshop_id))
            role = iam.ensure_customization_role(workshop_id, bucket, REGION, account)
            jobs = planned(workshop_id, bucket, role, only)
            quota, source = arms.concurrent_job_quota(region=REGION)
            started = time.perf_counter()
            done = arms.run_arms(jobs, quota=quota, poll_s=0.2, timeout_s=600, region=REGION, log=lambda _: None)
            walls[workshop_id] = time.perf_counter() - started
            assert all(j.status == "Completed" for j in done), [j.result() for j in done]
    goal = math.ceil(3 / quota) + 0.3
    print(f"one_job_wall_s={walls['one']:.1f} arms_wall_s={walls['arms']:.1f} quota={quota} ({source})")
    print(f"arms_wall_ratio={walls['arms'] / walls['one']:.2f} (goal <= {goal:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
