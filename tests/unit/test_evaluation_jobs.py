"""utils.evaluation_jobs against the in-process sandbox: records, estimate, run, scores, 07 cleanup."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.conftest import sandbox_environment
from utils import aws, cleanup, evaluation_jobs, s3
from utils.state import WorkshopState, name, tags

REGION = "us-east-1"


@pytest.fixture()
def sandbox_env(monkeypatch, tmp_path):
    with sandbox_environment(monkeypatch, tmp_path, time_scale=0.05) as server:
        yield server


def _scored() -> pd.DataFrame:
    return pd.DataFrame([
        {"arm": "fine_tuned", "mode": "zero_shot", "question": "What was revenue?", "reference": "Revenue was 4.2 billion.",
         "prediction": "Revenue was 4.2 billion."},
        {"arm": "fine_tuned", "mode": "zero_shot", "question": "Who is the CEO?", "reference": "The CEO is Jane Doe.",
         "prediction": "No idea."},
        {"arm": "base", "mode": "zero_shot", "question": "Who is the CEO?", "reference": "x", "prediction": "y"},
        {"arm": "fine_tuned", "mode": "few_shot", "question": "Who is the CEO?", "reference": "x", "prediction": "y"},
    ])


def test_records_and_estimate_need_prices():
    records = evaluation_jobs.dataset_records(_scored(), "fine_tuned")
    assert len(records) == 2 and records[0]["modelResponses"][0]["modelIdentifier"] == "fine_tuned"
    assert evaluation_jobs.source_id("a b/c") == "a-b-c"
    estimate = evaluation_jobs.estimate(records, "nova-pro")
    assert estimate.total is None or estimate.total > 0


def test_run_reads_pointwise_scores_and_cleanup_deletes_the_job(sandbox_env):
    account = aws.account_id(REGION)
    state = WorkshopState.load("evj")
    state.region, state.account_id = REGION, account
    state.bucket = name("evj", f"{account}-{REGION}")
    s3.ensure_bucket(state.bucket, REGION, tags=tags("evj"))
    records = evaluation_jobs.dataset_records(_scored(), "fine_tuned")
    job = evaluation_jobs.run(state, records, "fine_tuned", "amazon.nova-pro-v1:0", poll_s=0.05, timeout_s=30)
    assert job["status"] == "Completed"
    again = evaluation_jobs.run(state, records, "fine_tuned", "amazon.nova-pro-v1:0", poll_s=0.05, timeout_s=30)
    assert again["jobArn"] == job["jobArn"]  # a rerun reuses the job
    assert [e.identifier for e in state.resources("evaluation-job")] == [job["jobArn"]]
    scores = evaluation_jobs.read_scores(job, REGION)
    assert len(scores) == 6 and set(scores["metric"]) == {"Correctness", "Completeness", "Helpfulness"}
    table = evaluation_jobs.summary(scores).set_index("metric")
    assert table.loc["Correctness", "max"] == 1.0 and table.loc["Correctness", "min"] < 0.5
    cleanup.cleanup(state, poll_s=0.05, wait_s=30, log=lambda _: None)
    assert not aws.client("bedrock", REGION).list_evaluation_jobs()["jobSummaries"]
