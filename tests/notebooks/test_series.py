"""The notebook series, 01 -> 07 in order (papermill pass).

* the in-order run is the one in ``series_run.py``, as a least-privilege caller role (so
  test_caller_policy.py analyses the same run); every override must be a declared parameter
  (papermill only warns on typos); after each notebook, the sandbox's state is checked through boto3;
* 01 and 04 are rerun to prove they create nothing new;
* after 07, a rerun with the same workshop id trains a new generation and cleans up again;
* 01's preflight and 02's input checks stop bad input with the fix (on a plain sandbox of their own);
* 07 cleans up by tags after a partial series with a broken, then deleted, state file.

The runner's own runs (`make workshop`, the 2024 replay, a run failing at 03) are in
test_runner_series.py, so `make series` can run the files side by side.
"""

from __future__ import annotations

import os

import papermill as pm
import pytest

from tests.notebooks.series_run import (
    CI_PARAMETERS,
    NOTEBOOKS,
    SeriesRun,
    clients,
    execute,
)
from utils import models, runner
from utils.state import WorkshopState


@pytest.fixture(scope="module")
def sandbox_env(tmp_path_factory):
    """A plain sandbox (no caller mode) for the tests that check how notebooks stop on bad input."""
    from utils import sandbox

    saved = dict(os.environ)
    with sandbox.start() as server:
        os.environ.update(runner.sandbox_environment(server.url, tmp_path_factory.mktemp("state")))
        yield server
    os.environ.clear()
    os.environ.update(saved)


def test_series_has_seven_notebooks():
    assert [nb.stem[:2] for nb in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]
    assert set(CI_PARAMETERS) == {nb.stem for nb in NOTEBOOKS}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_order(notebook, series: SeriesRun):
    """The notebook ran in order (as the caller role) and its checks passed right after it
    (``series_run.check_with_reruns``: the account's state through boto3, and for 01 and 04 an
    idempotency rerun that changes nothing)."""
    series.outcome(notebook.stem)


def test_rerun_after_cleanup_trains_a_new_generation(series: SeriesRun, tmp_path):
    """After 07, the series runs again with the same workshop id: the old job record stays
    (Bedrock keeps job history), so 04 trains under a new generation's name, and 07 cleans up."""
    series.complete()
    assert series.failure is None, series.failure
    with series.env():
        for notebook in NOTEBOOKS:
            if notebook.stem in ("01_permissions", "02_data_preparation", "04_fine_tuning", "05_deployment",
                                 "07_cleanup"):
                params = {**CI_PARAMETERS[notebook.stem]}
                if notebook.stem == "04_fine_tuning":
                    params.update(use_synthetic=False, arms="base,ft_n")  # 03 is skipped in this rerun
                recorded = execute(notebook, tmp_path, params)
                if notebook.stem == "05_deployment":
                    assert recorded["deployment_output_tokens"] > 0
        jobs = clients()["bedrock"].list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert sorted(j["status"] for j in jobs) == ["Completed"] * 4  # three arms, then ft_n of generation 1
    assert any(j["jobName"].endswith("-g1") for j in jobs)
    assert recorded["cleanup_remaining"] == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"profile_name": "seed-2024"}, ["Claude 3 Haiku", "retired", "Nova Lite"]),
        ({"student": "llama3-1-8b", "region": "us-east-1"}, ["cannot be customized", "us-west-2"]),
    ],
    ids=["retired-seed-profile", "llama-in-us-east-1"],
)
def test_preflight_stops_01_with_the_fix(parameters, expected, sandbox_env, tmp_path):
    """01 stops at its preflight, before creating anything, and names the fix."""
    notebook = NOTEBOOKS[0]
    with pytest.raises(pm.PapermillExecutionError) as failure:
        execute(notebook, tmp_path, {"workshop_id": "preflight", **parameters})
    message = str(failure.value)
    assert all(text in message for text in expected), message
    assert not [b for b in clients()["s3"].list_buckets()["Buckets"] if b["Name"].startswith("bedrock-ws-preflight-")]


def test_02_stops_bad_input_before_uploading(sandbox_env, tmp_path):
    """02 refuses a look-alike or on-demand base model and an unreadable CSV with one line that
    names the valid IDs or the file's line, before anything reaches the bucket (or 04)."""
    workshop = "badinput"
    execute(NOTEBOOKS[0], tmp_path, {"workshop_id": workshop})
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("document,question,answer\nDoc 1: café,What?,Answer.\n".encode("cp1252"))
    nova_lite = models.MODELS["nova-lite"]
    cases = [
        ({"base_model": "amazon.nova-ultra-v9:0"}, ["UnknownCustomizationModel", nova_lite.customization_id]),
        ({"base_model": nova_lite.model_id}, ["not a customization model ID", f"use {nova_lite.customization_id}"]),
        ({"dataset_path": str(latin1)}, ["DatasetFileError", f"{latin1}:2: not valid UTF-8", "CSV UTF-8"]),
    ]
    for parameters, expected in cases:
        with pytest.raises(pm.PapermillExecutionError) as failure:
            execute(NOTEBOOKS[1], tmp_path, {"workshop_id": workshop, **parameters})
        message = str(failure.value)
        assert all(text in message for text in expected), message
    st = WorkshopState.load(workshop)
    assert not st.datasets
    assert "Contents" not in clients(st.region)["s3"].list_objects_v2(Bucket=st.bucket, Prefix="datasets/")



def ours_in_sandbox(workshop_id: str) -> list[str]:
    """Buckets, roles, policies, models, deployments and throughputs named for this workshop."""
    c = clients()
    names = [b["Name"] for b in c["s3"].list_buckets()["Buckets"]]
    names += [m["modelName"] for m in c["bedrock"].list_custom_models()["modelSummaries"]]
    names += [d["customModelDeploymentName"] for d in
              c["bedrock"].list_custom_model_deployments()["modelDeploymentSummaries"]]
    names += [p["provisionedModelName"] for p in
              c["bedrock"].list_provisioned_model_throughputs()["provisionedModelSummaries"]]
    names += [r["RoleName"] for r in c["iam"].list_roles()["Roles"]]
    names += [p["PolicyName"] for p in c["iam"].list_policies(Scope="Local")["Policies"]]
    return [n for n in names if n.startswith((f"bedrock-ws-{workshop_id}-", f"AmazonBedrockWorkshop-{workshop_id}-"))]


def test_cleanup_by_tags_after_a_partial_series_and_a_broken_state_file(sandbox_env, tmp_path):
    """01 only, then the state file is truncated: 03 and 04 stop with one clear message (not a
    JSONDecodeError); with the file then deleted, 07 finds everything by its tags and deletes it,
    and a second 07 is a clean no-op."""
    workshop = "partial"
    execute(NOTEBOOKS[0], tmp_path, {"workshop_id": workshop})
    assert len(ours_in_sandbox(workshop)) == 3  # bucket, role, its policy
    path = WorkshopState.load(workshop).path
    path.write_text(path.read_text()[:60])
    for notebook in (NOTEBOOKS[2], NOTEBOOKS[3]):
        with pytest.raises(pm.PapermillExecutionError) as failure:
            execute(notebook, tmp_path, {"workshop_id": workshop})
        assert failure.value.ename == "StateFileError", failure.value.ename
        assert str(path) in failure.value.evalue and "07_cleanup" in failure.value.evalue
    path.unlink()
    params = {"workshop_id": workshop, "poll_seconds": 0.2}
    recorded = execute(NOTEBOOKS[6], tmp_path, params)
    assert recorded["cleanup_status"] == "done" and recorded["cleanup_remaining"] == []
    assert ours_in_sandbox(workshop) == []
    again = execute(NOTEBOOKS[6], tmp_path, params)
    assert again["cleanup_status"] == "nothing to delete" and again["cleanup_remaining"] == []
