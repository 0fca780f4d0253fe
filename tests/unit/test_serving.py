"""utils.serving and 05_deployment: every completed arm served, PT safety, the AWS path spends nothing by default."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.unit.conftest import sandbox_environment
from tests.unit.test_deployment import _train, _wait_model
from utils import aws, costs, deployment, formats, iam, invoke, models, s3, serving
from utils.state import WorkshopState, name, tags

REGION = "us-east-1"
ACCOUNT = "123456789012"
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_deployment.ipynb"
MODEL = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-lite-v1:0:300k/aaaaaaaaaaaa"
ARMS = {
    "base": {"arm": "base", "status": "NoJob"},
    "ft_n": {"arm": "ft_n", "status": "Completed", "model_arn": MODEL},
    "ft_4n": {"arm": "ft_4n", "status": "Failed", "model_arn": None},
    "ft_n_3n": {"arm": "ft_n_3n", "status": "Completed", "model_arn": MODEL.replace("aaaa", "bbbb")},
}


# ---- parameters -------------------------------------------------------------------------------------


def test_a_commitment_needs_its_second_opt_in_and_says_it_cannot_be_deleted():
    with pytest.raises(serving.ServingError, match="confirm_commitment=True") as err:
        serving.check_pt_options(1, "OneMonth", confirm_commitment=False)
    assert "cannot be deleted" in str(err.value)
    assert serving.check_pt_options(2, "SixMonths", confirm_commitment=True) == "SixMonths"
    assert "CANNOT be deleted" in serving.commitment_warning("SixMonths")
    assert serving.check_pt_options(1, "", confirm_commitment=False) is None


@pytest.mark.parametrize(("units", "commitment", "fragment"), [
    (2, "", "limited to 1 model unit"), (0, "", "whole number >= 1"), (True, "", "whole number"),
    (1, "ThreeMonths", "OneMonth"),
])
def test_bad_pt_options_are_refused_with_the_fix(units, commitment, fragment):
    with pytest.raises(serving.ServingError, match=fragment):
        serving.check_pt_options(units, commitment, confirm_commitment=True)


def test_only_completed_arms_are_served_and_the_others_are_named_with_their_status():
    said = []
    chosen = serving.arms_to_serve(ARMS, "all", log=said.append)
    assert chosen == {"ft_n": MODEL, "ft_n_3n": ARMS["ft_n_3n"]["model_arn"]}
    assert said == ["arm ft_4n is not served: its job is Failed (only a Completed job has a model to serve)."]
    with pytest.raises(serving.ServingError, match="ft_4n is not served: its job is Failed"):
        serving.arms_to_serve(ARMS, "ft_n,ft_4n")
    with pytest.raises(serving.ServingError, match="unknown"):
        serving.arms_to_serve(ARMS, "base")


def test_a_handoff_arn_replaces_the_arms_and_a_serving_arn_is_used_as_it_is():
    dep = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdefghijkl"
    assert serving.arms_to_serve(ARMS, "all", dep, log=lambda _: None) == {"handoff": dep}
    student = models.get("nova-lite")
    (plan,) = serving.plan({"handoff": dep}, student, "demo")
    assert plan.path == "existing" and plan.resource_name == ""
    (plan,) = serving.plan({"handoff": MODEL}, student, "demo")
    assert plan.path == "on_demand" and plan.resource_name == "bedrock-ws-demo-deployment-handoff"
    with pytest.raises(serving.ServingError, match="not a custom model"):
        serving.arms_to_serve(ARMS, "all", "arn:aws:s3:::bucket")


def test_the_estimate_covers_every_arm_and_a_pt_without_a_price_asks_for_an_override(monkeypatch):
    monkeypatch.delenv(costs.UNBILLED_ENV, raising=False)  # as on AWS
    llama = models.get("llama3-1-8b")
    plans = serving.plan({"ft_n": MODEL, "ft_n_3n": MODEL}, llama, "demo")
    assert [p.path for p in plans] == ["provisioned", "provisioned"]
    estimate = serving.estimate(plans, llama, region=REGION, pt_hours=2)
    pt_items = [i for i in estimate.items if "Provisioned Throughput" in i.description]
    assert [i.description.split(":")[0] for i in pt_items] == ["ft_n", "ft_n_3n"]
    assert estimate.total is None and estimate.gaps  # no sourced Llama PT rate
    key = pt_items[0].price_key
    priced = serving.estimate(plans, llama, region=REGION, pt_hours=2, price_overrides={key: 10.0})
    assert sum(i.subtotal for i in priced.items if "Provisioned" in i.description) == pytest.approx(40.0)
    assert serving.hourly_rate(llama, price_overrides={key: 10.0}) == pytest.approx(10.0)
    nova = serving.estimate(serving.plan({"ft_n": MODEL, "ft_4n": MODEL}, models.get("nova-lite"), "demo"),
                            models.get("nova-lite"), region=REGION)
    assert nova.total is not None and sum("ft_" in i.description for i in nova.items) == 4  # in + out per arm


def test_sampling_sends_top_p_only_where_the_model_takes_both():
    assert invoke.sampling_for("claude3") == {"temperature": 0.1, "top_p": 0.9}
    assert invoke.sampling_for("claude4") == {"temperature": 0.1}
    body = invoke.native_body("anthropic", "hi", **invoke.sampling_for("claude3"))
    assert (body["temperature"], body["top_p"]) == (0.1, 0.9)
    assert "top_p" not in invoke.native_body("anthropic", "hi", temperature=0.1)
    assert invoke.native_body("titan", "hi", top_p=0.9)["textGenerationConfig"]["topP"] == 0.9


# ---- the AWS backend with default parameters: nothing billable is created ---------------------------


class Recorder:
    """A stand-in for every boto3 client: answers reads, records every call."""

    def __init__(self, service: str, calls: list, test_jsonl: str):
        self.service, self.calls, self.test_jsonl = service, calls, test_jsonl

    def __getattr__(self, operation: str):
        def call(*args, **kwargs):
            self.calls.append((self.service, operation))
            if operation == "get_object":
                return {"Body": io.BytesIO(self.test_jsonl.encode())}
            return {}
        return call


def _run_notebook(namespace: dict, overrides: dict) -> None:
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        exec("".join(cell["source"]), namespace)  # noqa: S102 - the notebook under test
        if "parameters" in cell["metadata"].get("tags", []):
            namespace.update(overrides)


def test_default_parameters_on_the_aws_backend_create_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("WORKSHOP_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("WORKSHOP_CONFIRM_SPEND", raising=False)
    monkeypatch.delenv(costs.UNBILLED_ENV, raising=False)
    state = WorkshopState(workshop_id="awsdemo", region=REGION, backend="aws",
                          datasets={"test": "s3://bucket/data/test.jsonl"})
    state.set("base_model", "nova-lite")
    state.set("arms", ARMS)
    state.set("deploy_arm", "ft_n_3n")
    calls: list = []
    row = json.dumps({"question": "What is X?", "answer": "X is Y.", "document": "X is Y."})
    monkeypatch.setattr(aws, "client", lambda service, region=None, **kw: Recorder(service, calls, row + "\n"))
    namespace: dict = {"display": lambda *a, **k: None}
    _run_notebook(namespace, {"workshop_id": "awsdemo"})
    assert namespace["go"] is False and namespace["served"] == {}
    assert len(namespace["plans"]) == 2  # both completed arms were planned and priced
    billable = [c for c in calls if c[1].startswith(("create_", "update_", "delete_", "invoke", "converse"))]
    assert billable == []
    assert ("s3", "get_object") in calls  # the recorder did see the notebook's calls


# ---- in the sandbox ---------------------------------------------------------------------------------


@pytest.fixture()
def sandbox_env(monkeypatch, tmp_path):
    with sandbox_environment(monkeypatch, tmp_path, time_scale=0.05) as server:
        yield server


def _bucket_and_role(workshop_id: str, region: str) -> tuple[str, str]:
    account = aws.account_id(region)
    bucket = name(workshop_id, f"{account}-{region}")
    s3.ensure_bucket(bucket, region, tags=tags(workshop_id))
    return bucket, iam.ensure_customization_role(workshop_id, bucket, region, account)


def test_sandbox_default_student_every_arm_active_invoked_streamed_and_in_the_ledger(sandbox_env):
    bucket, role = _bucket_and_role("srv", REGION)
    student = models.get("nova-lite")
    records = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", student.customization_id)
               for i in range(10)]
    uri = s3.upload_bytes(bucket, f"{iam.TRAINING_PREFIX}train.jsonl", formats.to_jsonl(records))
    model_arn = _wait_model(_train("srv", "a", bucket, role, uri))  # one model stands in for both arms
    arms = {arm: {"status": "Completed", "model_arn": model_arn} for arm in ("ft_n", "ft_n_3n")}
    state = WorkshopState.load("srv")
    state.region = REGION
    plans = serving.plan(serving.arms_to_serve(arms), student, "srv")
    served = serving.serve(plans, state, "srv", poll_s=0.05, timeout_s=30)
    assert set(served) == {"ft_n", "ft_n_3n"} and state.get("serving") == served
    bedrock, runtime = aws.client("bedrock", REGION), aws.client("bedrock-runtime", REGION)
    ledger = {e.identifier for e in state.resources("custom-model-deployment")}
    for arm, arn in served.items():
        got = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
        assert got["status"] == "Active" and got["modelArn"] == arms[arm]["model_arn"] and arn in ledger
    arn = served["ft_n"]
    sampling = invoke.sampling_for(student.family)
    assert invoke.converse(arn, "What is item 3?", client=runtime, **sampling).output_tokens
    native = invoke.invoke(arn, student.body, "What is item 3?", client=runtime, **sampling)
    assert native.text and native.output_tokens and native.latency_ms >= 0
    stream = invoke.stream_text(arn, "What is item 3?", body_family=student.body, client=runtime)
    assert "".join(stream) and stream.reply.output_tokens
    rows = [{"question": "What is item 3?", "answer": "Item 3 is a widget."}]
    table = serving.side_by_side(rows, {"base": student.model_id, **served}, lambda r: r["question"], client=runtime)
    assert list(table.columns) == ["question", "reference", "base", "ft_n", "ft_n_3n"]
    assert all(" out tokens, " in table[c][0] for c in ("base", "ft_n", "ft_n_3n"))
    assert "pre-wrap" in serving.styled(table).to_html()
    assert serving.running_cost(state, student) == ([], 0.0)  # on demand: nothing hourly
    assert "Nothing billed by the hour" not in serving.reminder(state) and "07_cleanup" in serving.reminder(state)
    again = serving.serve(plans, state, "srv", poll_s=0.05, timeout_s=30)  # a rerun finds, never duplicates
    assert again == served and len(bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]) == 2


def test_sandbox_llama_student_gets_a_provisioned_throughput_in_service(sandbox_env, monkeypatch):
    region = "us-west-2"
    bucket, role = _bucket_and_role("pt", region)
    student = models.get("llama3-1-8b")
    records = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", student.customization_id)
               for i in range(100)]
    uri = s3.upload_bytes(bucket, f"{iam.TRAINING_PREFIX}train.jsonl", formats.to_jsonl(records))
    bedrock = aws.client("bedrock", region)
    job = bedrock.create_model_customization_job(
        jobName="bedrock-ws-pt-ft", customModelName="bedrock-ws-pt-model", roleArn=role,
        baseModelIdentifier=student.customization_id, trainingDataConfig={"s3Uri": uri},
        outputDataConfig={"s3Uri": f"s3://{bucket}/{iam.OUTPUT_PREFIX}"},
        hyperParameters=models.default_hyperparameters(student.customization_id))["jobArn"]
    model_arn = aws.poll_until(lambda: bedrock.get_model_customization_job(jobIdentifier=job), "Completed",
                               poll_s=0.1, timeout_s=30)["outputModelArn"]
    state = WorkshopState.load("pt")
    state.region = region
    (plan,) = serving.plan({"ft_n": model_arn}, student, "pt")
    assert plan.path == "provisioned"
    served = serving.serve([plan], state, "pt", model_units=1, commitment=None, poll_s=0.05, timeout_s=30)
    pt = bedrock.get_provisioned_model_throughput(provisionedModelId=served["ft_n"])
    assert pt["status"] == "InService" and pt["modelUnits"] == 1 and "commitmentDuration" not in pt
    assert [e.identifier for e in state.resources("provisioned-throughput")] == [served["ft_n"]]
    lines, total = serving.running_cost(state, student)
    assert len(lines) == 1 and total == 0.0  # the sandbox bills nothing: a price gap counts as $0, labelled
    monkeypatch.delenv(costs.UNBILLED_ENV, raising=False)  # as on AWS: no sourced Llama PT price
    lines, total = serving.running_cost(state, student)
    assert len(lines) == 1 and total is None and "unknown rate" in lines[0]
    key = serving.estimate([plan], student, region=region).gaps[0]
    lines, total = serving.running_cost(state, student, price_overrides={key: 20.0})
    assert total is not None and total >= 0 and "$20.00/h" in lines[0]
    assert "REMINDER" in serving.reminder(state) and served["ft_n"] in serving.reminder(state)
    answer = invoke.invoke(served["ft_n"], student.body, "What is item 3?", client=aws.client("bedrock-runtime", region),
                           **invoke.sampling_for(student.family))
    assert answer.text and answer.output_tokens


def test_sandbox_commitment_terms_and_no_early_delete(sandbox_env):
    with pytest.raises(serving.ServingError):  # refused before any call without the second opt-in
        serving.check_pt_options(1, "OneMonth", confirm_commitment=False)
    bedrock = aws.client("bedrock", REGION)
    fm = "amazon.titan-text-express-v1:0:8k"
    try:
        arn = bedrock.create_provisioned_model_throughput(modelUnits=1, provisionedModelName="committed",
                                                          modelId=fm, commitmentDuration="OneMonth")["provisionedModelArn"]
    except bedrock.exceptions.ValidationException as err:  # the catalog may not offer PT for this FM
        pytest.skip(str(err))
    pt = deployment.wait_for_provisioned_throughput(arn, client=bedrock, poll_s=0.05, timeout_s=30)
    assert pt["commitmentDuration"] == "OneMonth" and pt["commitmentExpirationTime"] > pt["creationTime"]
    with pytest.raises(bedrock.exceptions.ValidationException, match="commitment"):
        bedrock.delete_provisioned_model_throughput(provisionedModelId=arn)


def test_costs_import_estimate_is_priced():
    assert costs.estimate_import("llama3-1-8b", active_minutes=10).total is not None
