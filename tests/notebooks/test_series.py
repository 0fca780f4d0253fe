"""The notebook series, 01 -> 07 in order, against one sandbox (papermill pass).

* every override must be a declared parameter (papermill only warns on typos);
* after each notebook, the sandbox's state is checked through boto3;
* 04 is rerun to prove it creates no second job;
* the committed defaults spend nothing (a separate dry run);
* 07 cleans up by tags after a partial series with a broken, then deleted, state file.

The runner's own runs (`make workshop`, the 2024 replay, a run failing at 03) are in
test_runner_series.py, so `make series` can run both files side by side.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import papermill as pm
import pytest

from utils import judging, models, report, runner
from utils.state import WorkshopState

NOTEBOOKS = runner.series()
WORKSHOP_ID = "ci"
# Small sizes for CI; spend opt-ins on (the sandbox bills nothing); fast polling.
CI_PARAMETERS: dict[str, dict] = {
    "01_permissions": {"workshop_id": WORKSHOP_ID},
    "02_data_preparation": {"workshop_id": WORKSHOP_ID, "test_size": 8},
    "03_synthetic_data": {"workshop_id": WORKSHOP_ID, "pairs_per_sample": 3, "confirm_spend": True},
    "04_fine_tuning": {"workshop_id": WORKSHOP_ID, "epochs": 2, "confirm_spend": True, "poll_seconds": 0.2},
    "05_deployment": {"workshop_id": WORKSHOP_ID, "confirm_spend": True, "poll_seconds": 0.2},
    "06_evaluation": {"workshop_id": WORKSHOP_ID, "max_examples": 6, "confirm_spend": True,
                      "use_evaluation_job": True},
    "07_cleanup": {"workshop_id": WORKSHOP_ID},
}


@pytest.fixture(scope="module")
def sandbox_env(tmp_path_factory):
    from utils import sandbox

    saved = dict(os.environ)
    with sandbox.start() as server:
        os.environ.update(runner.sandbox_environment(server.url, tmp_path_factory.mktemp("state")))
        yield server
    os.environ.clear()
    os.environ.update(saved)


def clients(region: str = "us-east-1") -> dict:
    session = boto3.Session(region_name=region)
    return {name: session.client(name) for name in ("s3", "iam", "bedrock")}


def execute(notebook: Path, out_dir: Path, parameters: dict) -> dict:
    declared = runner.declared_parameters(notebook)
    assert parameters.keys() <= declared.keys(), f"undeclared: {parameters.keys() - declared.keys()}"
    output = out_dir / notebook.name
    pm.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name=runner.KERNEL,
        cwd=str(notebook.parent), execution_timeout=120, progress_bar=False,
    )
    return report.collect(output)


def account_snapshot() -> dict:
    """Roles, managed-policy versions, buckets and bucket settings: what a rerun of 01 must not change."""
    c = clients()
    buckets = sorted(b["Name"] for b in c["s3"].list_buckets()["Buckets"])
    return {
        "roles": sorted((r["RoleName"], r["RoleId"]) for r in c["iam"].list_roles()["Roles"]),
        "policies": sorted((p["PolicyName"], p["DefaultVersionId"]) for p in c["iam"].list_policies(Scope="Local")["Policies"]),
        "buckets": buckets,
        "bucket_policies": [c["s3"].get_bucket_policy(Bucket=b)["Policy"] for b in buckets],
        "ledger": [(e.kind, e.identifier) for e in state().ledger],
    }


def state() -> WorkshopState:
    return WorkshopState.load(WORKSHOP_ID)


def check_01(recorded: dict) -> None:
    st = state()
    c = clients(st.region)
    assert c["s3"].get_bucket_encryption(Bucket=st.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    block = c["s3"].get_public_access_block(Bucket=st.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert "aws:SecureTransport" in c["s3"].get_bucket_policy(Bucket=st.bucket)["Policy"]
    role = c["iam"].get_role(RoleName=st.roles["customization"].rsplit("/", 1)[-1])["Role"]
    trust = json.dumps(role["AssumeRolePolicyDocument"])
    assert "bedrock.amazonaws.com" in trust and "aws:SourceAccount" in trust and "aws:SourceArn" in trust
    assert recorded["backend"] == "sandbox"


def check_02(recorded: dict) -> None:
    st = state()
    keys = {o["Key"] for o in clients(st.region)["s3"].list_objects_v2(Bucket=st.bucket)["Contents"]}
    assert {"datasets/train.jsonl", "datasets/validation.jsonl", "datasets/test.jsonl"} <= keys
    assert recorded["train_records"] > 0


def check_03(recorded: dict) -> None:
    st = state()

    def lines(split: str) -> int:
        bucket, key = st.datasets[split].removeprefix("s3://").split("/", 1)
        return len(clients(st.region)["s3"].get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines())

    originals = lines("raw_train")
    assert recorded["synthetic_pairs"] > 0
    assert recorded["synthetic_requested"] == 3 * originals  # 3 per original training sample
    assert recorded["synthetic_pairs"] + sum(recorded["synthetic_removed"].values()) == recorded["synthetic_parsed"]
    assert recorded["synthetic_parsed"] <= recorded["synthetic_requested"]
    assert lines("train_augmented") == originals + recorded["synthetic_pairs"]


def check_04(recorded: dict) -> None:
    st = state()
    bedrock = clients(st.region)["bedrock"]
    jobs = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [j["status"] for j in jobs] == ["Completed"] * 3  # ft_n, ft_4n, ft_n_3n; base has no job
    arms = recorded["arms"]
    assert set(arms) == {"base", "ft_n", "ft_4n", "ft_n_3n"} and arms["base"]["status"] == "NoJob"
    for arm in ("ft_n", "ft_4n", "ft_n_3n"):
        assert arms[arm]["status"] == "Completed" and arms[arm]["final_training_loss"] > 0
        assert arms[arm]["best_validation_loss"] > 0
    assert arms["ft_4n"]["records"] == 4 * arms["ft_n"]["records"]
    assert arms["ft_n"]["records"] < arms["ft_n_3n"]["records"] <= arms["ft_4n"]["records"]
    assert st.get("arms") == arms
    model = bedrock.get_custom_model(modelIdentifier=st.get("custom_model_arn"))
    assert model["modelStatus"] == "Active"
    assert len(recorded["loss_curve"]["training_loss"]) > 1


def check_05(recorded: dict) -> None:
    st = state()
    deployment = clients(st.region)["bedrock"].get_custom_model_deployment(
        customModelDeploymentIdentifier=st.get("endpoint_arn"))
    assert deployment["status"] == "Active"
    assert recorded["deployment_output_tokens"] > 0
    assert recorded["stream_output_tokens"] > 0  # the streamed answer (section 3) reported its usage
    assert set(st.get("serving")) == {"ft_n", "ft_4n", "ft_n_3n"}  # every completed arm is served
    assert st.get("endpoint_arn") == st.get("serving")[st.get("deploy_arm")]
    assert recorded["side_by_side_rows"] > 0


def check_06(recorded: dict) -> None:
    scores = report.rows(recorded["evaluation_scores"])
    assert list(scores[0])[:3] == ["model", "n", "token_f1"]
    assert all(0 <= row["token_f1"] <= 100 for row in scores)
    served = {"base", "comparison", *state().get("serving")}  # 05 serves every completed arm; each answers
    f1 = recorded["f1"]
    assert {(row["arm"], row["dataset"]) for row in f1} == {(a, d) for a in served for d in ("aws_docs_qa", "tatqa")}
    for row in f1:
        assert set(row) == {"arm", "dataset", "f1", "ci_low", "ci_high", "n"}
        assert 0 <= row["ci_low"] <= row["f1"] <= row["ci_high"] <= 100
        assert row["n"] == (6 if row["dataset"] == "aws_docs_qa" else 12)  # max_examples, tatqa_examples
    # Base stand-ins differ by model size: the larger comparison model follows TAT-QA's answer format.
    by = {(row["arm"], row["dataset"]): row["f1"] for row in f1}
    assert by["comparison", "tatqa"] > by["base", "tatqa"]
    judges = recorded["judges"]
    assert {row["judge"] for row in judges} == {"Anthropic Claude Sonnet 4.6", "Meta Llama 3.3 70B Instruct"}
    for row in judges:
        assert set(row) == {"judge", "a", "b", "win_rate", "wilson_low", "wilson_high", "tie_rate",
                            "position_disagreement", "parse_failures", "n"}
        assert row["n"] == 6 and row["parse_failures"] == 0
        assert 0 <= row["tie_rate"] <= 100 and 0 <= row["position_disagreement"] <= 100
        if row["win_rate"] is not None:
            assert row["wilson_low"] <= row["win_rate"] <= row["wilson_high"]
    # Every comparison whose two arms were served (05 serves every completed arm) is judged by each judge.
    assert {(row["a"], row["b"]) for row in judges} == set(judging.available_comparisons(served))
    human = recorded["human"]  # the human check covers the first comparison, once per judge
    assert sorted(row["judge"] for row in human) == sorted({row["judge"] for row in judges})
    for row in human:
        assert set(row) == {"judge", "percent_agreement", "kappa", "n"} and row["n"] == 6
        assert 0 <= row["percent_agreement"] <= 100


def st_arm() -> str:
    return state().get("deploy_arm")


def check_07(recorded: dict) -> None:
    assert recorded["cleanup_remaining"] == []
    c = clients()
    assert not [b for b in c["s3"].list_buckets()["Buckets"] if b["Name"].startswith(f"bedrock-ws-{WORKSHOP_ID}-")]
    assert not c["bedrock"].list_custom_models()["modelSummaries"]
    assert not c["bedrock"].list_custom_model_deployments()["modelDeploymentSummaries"]


CHECKS = {nb.stem: globals()[f"check_{nb.stem[:2]}"] for nb in NOTEBOOKS}


def test_series_has_seven_notebooks():
    assert [nb.stem[:2] for nb in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]
    assert set(CI_PARAMETERS) == {nb.stem for nb in NOTEBOOKS}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_order(notebook, sandbox_env, tmp_path_factory, request):
    out_dir = tmp_path_factory.getbasetemp() / "executed"
    out_dir.mkdir(exist_ok=True)
    recorded = execute(notebook, out_dir, CI_PARAMETERS[notebook.stem])
    CHECKS[notebook.stem](recorded)
    if notebook.stem == "01_permissions":
        # Idempotency: a rerun changes nothing (same roles, policy versions, buckets, settings).
        before = account_snapshot()
        execute(notebook, out_dir, CI_PARAMETERS[notebook.stem])
        assert account_snapshot() == before
    if notebook.stem == "04_fine_tuning":
        # Idempotency: a rerun finds the same job, creates nothing, and records the same model.
        before = state().get("custom_model_arn")
        execute(notebook, out_dir, CI_PARAMETERS[notebook.stem])
        CHECKS[notebook.stem](report.collect(out_dir / notebook.name))
        assert state().get("custom_model_arn") == before


def test_rerun_after_cleanup_trains_a_new_generation(sandbox_env, tmp_path):
    """After 07, the series runs again with the same workshop id: the old job record stays
    (Bedrock keeps job history), so 04 trains under a new generation's name, and 07 cleans up."""
    for notebook in NOTEBOOKS:
        if notebook.stem in ("01_permissions", "02_data_preparation", "04_fine_tuning", "05_deployment", "07_cleanup"):
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
