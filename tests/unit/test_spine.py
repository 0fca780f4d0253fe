"""Unit tests of the spine: registry, backend selection, state, names, report, runner helpers."""

from __future__ import annotations

import html
import json
import sys
import types

import pytest

from utils import aws, customization, models, report, runner, synthetic
from utils.state import WorkshopState, name, role_name, tag_list, tags, validate_workshop_id

# ---- registry -----------------------------------------------------------------------------

def test_current_profile_defaults():
    current = models.profile()
    student = models.get(current.student)
    assert current.region == "us-east-1" and student.deployment == "on_demand"
    assert student.customization_id.startswith("amazon.nova-") and current.region in student.customization_regions
    assert current.judges == ("claude-sonnet-4-6", "llama3-3-70b")
    assert all(not models.get(key).retired for key in current.roles().values())


def test_seed_profile_is_retired_with_replacements():
    seed = models.profile("seed-2024")
    assert seed.retired
    for key in seed.roles().values():
        assert models.get(key).retired
        assert models.replacement(key) is not None and not models.replacement(key).retired


def test_lookup_by_any_id_and_family():
    spec = models.get("amazon.nova-lite-v1:0:300k")
    assert spec.key == "nova-lite" and models.get("us.anthropic.claude-sonnet-4-6").key == "claude-sonnet-4-6"
    assert models.family_of("meta.llama3-2-1b-instruct-v1:0:128k") == "llama3.2"
    assert models.data_format("anthropic.claude-3-haiku-20240307-v1:0:200k") == models.FORMAT_CLAUDE_MESSAGES
    with pytest.raises(KeyError, match="only model registry"):
        models.get("openai.gpt-99")


def test_inference_profile_ids():
    sonnet = models.get("claude-sonnet-4-6")
    assert sonnet.invocation_id() == "us.anthropic.claude-sonnet-4-6"
    assert sonnet.profile_id("global") == "global.anthropic.claude-sonnet-4-6"
    assert models.get("nova-lite").invocation_id() == "amazon.nova-lite-v1:0"


def test_default_hyperparameters_are_strings_in_range():
    values = models.default_hyperparameters("amazon.nova-lite-v1:0:300k")
    assert values == {"epochCount": "2", "learningRate": "1e-05", "learningRateWarmupSteps": "10"}


def test_hyperparameters_checked_before_any_call():
    assert customization.hyperparameters_for("amazon.nova-lite-v1:0:300k", epochCount=3)["epochCount"] == "3"
    with pytest.raises(ValueError, match=r"1\.\.5"):
        customization.hyperparameters_for("amazon.nova-lite-v1:0:300k", epochCount=9)
    with pytest.raises(ValueError, match="not a hyperparameter"):
        customization.hyperparameters_for("amazon.nova-lite-v1:0:300k", batchSize=8)


def test_no_model_id_hard_coded_outside_registry():
    """Model IDs live in utils/models.py only (the sandbox's catalog is the emulated service's data)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    ids = {spec.model_id for spec in models.MODELS.values()}
    offenders = []
    for path in list((root / "utils").glob("*.py")) + list((root / "notebooks").glob("*.ipynb")):
        if path.name == "models.py":
            continue
        text = path.read_text()
        offenders += [f"{path.name}: {i}" for i in ids if i in text]
    assert offenders == []


# ---- backend selection ------------------------------------------------------------------------

def test_backend_default_and_invalid(monkeypatch):
    monkeypatch.delenv(aws.BACKEND_ENV, raising=False)
    assert aws.backend() == "sandbox"
    monkeypatch.setenv(aws.BACKEND_ENV, "gcp")
    with pytest.raises(ValueError, match="expected one of"):
        aws.backend()


def test_sandbox_clients_use_endpoint_and_dummy_credentials(monkeypatch):
    monkeypatch.setenv(aws.BACKEND_ENV, "sandbox")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_PROFILE", "a-real-profile-that-must-not-be-read")
    s3 = aws.client("s3", "us-west-2")
    assert s3.meta.endpoint_url == "http://127.0.0.1:1" and s3.meta.region_name == "us-west-2"
    credentials = aws.session().get_credentials()
    assert credentials.access_key == aws.SANDBOX_ACCESS_KEY
    assert s3.meta.config.retries["mode"] == "adaptive"


def test_sagemaker_import_paths(monkeypatch):
    """Both the 3.x and 2.x locations of get_execution_role/Session are found."""
    for parent in ("sagemaker", "sagemaker.core", "sagemaker.core.helper"):
        monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    for module_name in ("sagemaker.core.helper.session_helper", "sagemaker.session"):
        aws._sagemaker_api.cache_clear()
        fake = types.ModuleType(module_name)
        fake.get_execution_role = lambda: "arn:aws:iam::000000000000:role/x"
        fake.Session = object
        monkeypatch.setitem(sys.modules, module_name, fake)
        assert aws._sagemaker_api()[0]() == "arn:aws:iam::000000000000:role/x"
        monkeypatch.delitem(sys.modules, module_name)
    aws._sagemaker_api.cache_clear()


# ---- state, names, tags ---------------------------------------------------------------------

def test_state_roundtrip_and_ledger_dedup(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_STATE_DIR", str(tmp_path))
    state = WorkshopState.load("team-a")
    state.region = "us-east-1"
    state.record("s3-bucket", "b", "01")
    state.record("s3-bucket", "b", "01")
    state.set("job_arn", "arn:x")
    again = WorkshopState.load("team-a")
    assert again.get("job_arn") == "arn:x" and len(again.ledger) == 1 and again.region == "us-east-1"
    again.forget("s3-bucket", "b")
    assert WorkshopState.load("team-a").ledger == []
    with pytest.raises(RuntimeError, match="Run 04_fine_tuning first"):
        again.require("custom_model_arn", "04_fine_tuning")


@pytest.mark.parametrize("bad", ["", "Demo", "a_b", "-a", "a" * 21])
def test_workshop_id_rejected(bad):
    with pytest.raises(ValueError, match="workshop_id"):
        validate_workshop_id(bad)


def test_names_are_deterministic_and_valid():
    import re

    assert name("demo", "ft train e2") == "bedrock-ws-demo-ft-train-e2"
    bucket = name("demo", "123456789012-us-east-1")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", bucket)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*", name("demo", "ft"))
    assert "AmazonBedrock" in role_name("demo", "customization")
    assert tags("demo") == {"workshop": "bedrock-finetuning-workshop", "workshop-id": "demo"}
    assert tag_list("demo", key="key", value="value")[1] == {"key": "workshop-id", "value": "demo"}
    with pytest.raises(ValueError, match="longer than"):
        name("demo", "x" * 60)


# ---- report and runner helpers ----------------------------------------------------------------

def test_record_and_collect_roundtrip(tmp_path):
    payload = {"name": "f1", "value": 71.4, "label": "f1"}
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
                "data": {report.RECORD_MIME: payload, "text/plain": "x"}}]}]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    assert report.collect(path) == {"f1": 71.4}


def test_report_html_marks_sandbox_numbers():
    results = {"run_id": "r", "backend": "sandbox", "notebooks": [{"name": "01", "status": "ok", "seconds": 1.0}],
               "metrics": {"evaluation_scores": {"columns": ["model", "token_f1"], "data": [["m", 50.0]]}},
               "cleanup": {"audited": True, "by": "07_cleanup", "remaining": []}}
    page = report.render_html(results)
    notice = html.escape(report.SANDBOX_NOTICE)
    assert notice in page and "Nothing billable remains" in page
    assert "<th>Model</th><th>Token F1</th>" in page and "<td>50</td>" in page
    assert notice not in report.render_html({**results, "backend": "aws"})


def test_parse_params_types_and_errors():
    assert runner.parse_params("epochs=3 workshop_id=team-a ok=True", [["lr", "1e-5"]]) == {
        "epochs": 3, "workshop_id": "team-a", "ok": True, "lr": 1e-5}
    assert runner.parse_params('price_overrides={"train_per_1k:x": 0.5, "y": 1} name="a b"') == {
        "price_overrides": {"train_per_1k:x": 0.5, "y": 1}, "name": "a b"}
    with pytest.raises(SystemExit):
        runner.parse_params("noequals")
    with pytest.raises(SystemExit, match="Unknown parameter"):
        runner.check_declared({"epochz": 1}, {"04": {"epochs": {}}})


def test_job_plan_request_shape():
    plan = customization.JobPlan("bedrock-ws-demo-ft", "bedrock-ws-demo-model", "amazon.nova-lite-v1:0:300k",
                                 "arn:aws:iam::000000000000:role/r", "s3://b/train.jsonl", None, "s3://b/out/",
                                 {"epochCount": "2"}, "demo")
    request = plan.request()
    assert "validationDataConfig" not in request and request["hyperParameters"] == {"epochCount": "2"}
    assert {"key": "workshop-id", "value": "demo"} in request["jobTags"]
    assert customization.metrics_keys("s3://b/out/", "arn:...:model-customization-job/x/abc123def456") == (
        "b", "out/model-customization-job-abc123def456/")


def test_synthetic_parse_and_dedup():
    text = 'Sure! [{"question": "What is S3?", "answer": "Storage [1]"}, {"question": "", "answer": "x"}] done'
    parsed = synthetic.parse_reply(text, keys=("question", "answer"))
    assert parsed.records == [{"question": "What is S3?", "answer": "Storage [1]"}]
    assert parsed.issues == {"empty_value": 1}
    assert synthetic.parse_reply("no json here").records == []
    pairs = [{**parsed.records[0], "topic": "s3", "document": "Doc 1: S3 is storage."}] * 2
    assert synthetic.filter_pairs(pairs, original_questions={"What is S3"}).kept == []
