"""Sandbox Bedrock control plane: every operation's happy path and its rejections, through boto3."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import (
    Env,
    claude_messages,
    conversation,
    prompt_completion,
    sandbox_fixture,
    unique,
    wait_for,
)
from utils import models as registry
from utils.sandbox.catalog import Catalog

NOVA = "amazon.nova-lite-v1:0:300k"
LLAMA = "meta.llama3-1-8b-instruct-v1:0:128k"
TITAN = "amazon.titan-text-express-v1:0:8k"

_sandbox = sandbox_fixture()


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Message"]


def job_kwargs(env: Env, *, base: str = NOVA, region: str = "us-east-1", records: list | None = None,
               role: str | None = None, validation: bool = True, **over: object) -> dict:
    bucket = env.bucket(region)
    records = records if records is not None else [conversation(i) for i in range(40)]
    train = env.put_jsonl(bucket, "data/train.jsonl", records, region)
    kwargs: dict = {
        "jobName": unique("job"), "customModelName": unique("model"),
        "roleArn": role or env.role(), "baseModelIdentifier": base,
        "trainingDataConfig": {"s3Uri": train}, "outputDataConfig": {"s3Uri": f"s3://{bucket}/out/"},
        "hyperParameters": {"epochCount": "2"},
    }
    if validation:
        val = env.put_jsonl(bucket, "data/validation.jsonl", records[:10], region)
        kwargs["validationDataConfig"] = {"validators": [{"s3Uri": val}]}
    kwargs.update(over)
    return kwargs


def run_job(env: Env, region: str = "us-east-1", **kwargs: object) -> dict:
    br = env.client("bedrock", region)
    arn = br.create_model_customization_job(**job_kwargs(env, region=region, **kwargs))["jobArn"]
    return wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status",
                    ("Completed", "Failed", "Stopped"))


# ---- catalog ------------------------------------------------------------------------------


def test_list_foundation_models_filters(sandbox: Env) -> None:
    east = sandbox.client("bedrock", "us-east-1")
    west = sandbox.client("bedrock", "us-west-2")
    ids = {m["modelId"] for m in east.list_foundation_models()["modelSummaries"]}
    assert {"amazon.nova-lite-v1:0", NOVA, "anthropic.claude-sonnet-4-6"} <= ids
    assert "anthropic.claude-3-haiku-20240307-v1:0" not in ids  # retired: absent
    assert LLAMA not in ids  # customizable only in us-west-2
    ft_west = {m["modelId"] for m in west.list_foundation_models(byCustomizationType="FINE_TUNING")["modelSummaries"]}
    assert LLAMA in ft_west and NOVA not in ft_west
    meta = west.list_foundation_models(byProvider="Meta")["modelSummaries"]
    assert meta and all(m["providerName"] == "Meta" for m in meta)
    on_demand = {m["modelId"] for m in east.list_foundation_models(byInferenceType="ON_DEMAND")["modelSummaries"]}
    assert "amazon.nova-lite-v1:0" in on_demand and "anthropic.claude-sonnet-4-6" not in on_demand
    assert east.list_foundation_models(byOutputModality="IMAGE")["modelSummaries"] == []


def test_get_foundation_model_and_availability(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    details = br.get_foundation_model(modelIdentifier=NOVA)["modelDetails"]
    assert details["customizationsSupported"] == ["FINE_TUNING", "DISTILLATION"]
    assert details["inferenceTypesSupported"] == ["PROVISIONED"]
    assert details["modelLifecycle"]["status"] == "ACTIVE"
    by_arn = br.get_foundation_model(modelIdentifier=details["modelArn"])["modelDetails"]
    assert by_arn["modelId"] == NOVA
    sonnet = br.get_foundation_model(modelIdentifier="anthropic.claude-sonnet-4-6")["modelDetails"]
    assert sonnet["inferenceTypesSupported"] == ["INFERENCE_PROFILE"]
    for retired in ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0:200k",
                    "meta.llama3-70b-instruct-v1:0", "nosuch.model-v1:0"):
        with pytest.raises(ClientError) as exc:
            br.get_foundation_model(modelIdentifier=retired)
        assert code(exc) == "ValidationException"
        assert message(exc) == "The provided model identifier is invalid."
    avail = br.get_foundation_model_availability(modelId="amazon.nova-pro-v1:0")
    assert avail["regionAvailability"] == "AVAILABLE" and avail["authorizationStatus"] == "AUTHORIZED"


def test_inference_profiles(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    first = br.list_inference_profiles(typeEquals="SYSTEM_DEFINED", maxResults=3)
    assert len(first["inferenceProfileSummaries"]) == 3 and first["nextToken"]
    pages = list(br.get_paginator("list_inference_profiles").paginate(PaginationConfig={"PageSize": 4}))
    ids = [p["inferenceProfileId"] for page in pages for p in page["inferenceProfileSummaries"]]
    assert len(ids) == len(set(ids)) and "us.anthropic.claude-sonnet-4-6" in ids and "global.anthropic.claude-sonnet-4-6" in ids
    assert br.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"] == []
    profile = br.get_inference_profile(inferenceProfileIdentifier="us.meta.llama3-3-70b-instruct-v1:0")
    assert profile["inferenceProfileArn"] == (
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-3-70b-instruct-v1:0"
    )
    assert {m["modelArn"].split(":")[3] for m in profile["models"]} == {"us-east-1", "us-east-2", "us-west-2"}
    assert br.get_inference_profile(inferenceProfileIdentifier=profile["inferenceProfileArn"])["type"] == "SYSTEM_DEFINED"
    with pytest.raises(ClientError) as exc:
        br.get_inference_profile(inferenceProfileIdentifier="us.anthropic.claude-3-haiku-20240307-v1:0")
    assert code(exc) == "ResourceNotFoundException"


def test_catalog_covers_registry() -> None:
    """Every current model of the workshop's registry exists in the sandbox's current catalog."""
    catalog = Catalog("current")
    regions = ("us-east-1", "us-east-2", "us-west-2")
    for spec in registry.MODELS.values():
        if spec.retired:
            assert all(catalog.model(r, spec.model_id) is None for r in regions), spec.key
            continue
        assert any(catalog.model(r, spec.model_id) for r in regions), spec.key
        for prefix in spec.profile_prefixes:
            assert catalog.profile("us-east-1", f"{prefix}.{spec.model_id}") is not None, (spec.key, prefix)
        if spec.customization_id:
            for region in spec.customization_regions:
                model = catalog.model(region, spec.customization_id)
                assert model is not None and "FINE_TUNING" in model.customizations, (spec.key, region)


def test_historical_catalog_knob(sandbox: Env) -> None:
    west = sandbox.client("bedrock", "us-west-2")
    sandbox.configure(catalog="2024")
    try:
        haiku = west.get_foundation_model(modelIdentifier="anthropic.claude-3-haiku-20240307-v1:0:200k")["modelDetails"]
        assert haiku["customizationsSupported"] == ["FINE_TUNING"]
        ids = {m["modelId"] for m in west.list_foundation_models(byInferenceType="ON_DEMAND")["modelSummaries"]}
        assert {"anthropic.claude-3-sonnet-20240229-v1:0", "meta.llama3-70b-instruct-v1:0"} <= ids
        assert "anthropic.claude-sonnet-4-6" not in ids
    finally:
        sandbox.configure(catalog="current")


# ---- customization jobs -------------------------------------------------------------------


def test_job_lifecycle_artifacts_and_model(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    kwargs = job_kwargs(sandbox, jobTags=[{"key": "team", "value": "a"}], customModelTags=[{"key": "k", "value": "v"}])
    sandbox.configure(time_scale=0.5)  # slow enough that the early read below sees InProgress under CPU load
    try:
        arn = br.create_model_customization_job(**kwargs)["jobArn"]
    finally:
        sandbox.configure(time_scale=0.05)
    job_id = arn.rsplit("/", 1)[-1]
    assert arn.startswith(f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{NOVA}/")
    assert len(job_id) == 12 and job_id.isalnum() and job_id == job_id.lower()
    early = br.get_model_customization_job(jobIdentifier=kwargs["jobName"])
    assert early["status"] == "InProgress" and "failureMessage" not in early and "endTime" not in early
    assert "outputModelArn" not in early and early["statusDetails"]["validationDetails"]["status"] == "InProgress"
    with pytest.raises(ClientError):
        br.get_custom_model(modelIdentifier=kwargs["customModelName"])  # only on success
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed", job.get("failureMessage")
    assert "failureMessage" not in job and job["endTime"] >= job["creationTime"]
    assert job["trainingMetrics"]["trainingLoss"] > 0 and len(job["validationMetrics"]) == 1
    assert all(d["status"] == "Completed" for d in job["statusDetails"].values())
    bucket = kwargs["outputDataConfig"]["s3Uri"].split("/")[2]
    folder = f"out/model-customization-job-{job_id}"
    train_csv = sandbox.read(bucket, f"{folder}/training_artifacts/step_wise_training_metrics.csv").decode()
    rows = list(csv.DictReader(io.StringIO(train_csv)))
    assert list(rows[0]) == ["step_number", "epoch_number", "training_loss", "perplexity"]
    assert len(rows) == 40 * 2  # Nova: batch 1, 40 records, 2 epochs
    assert rows[0]["step_number"] == "0" and rows[-1]["epoch_number"] == "1"
    assert math.isclose(float(rows[5]["perplexity"]), math.exp(float(rows[5]["training_loss"])), rel_tol=1e-4)
    assert float(rows[-1]["training_loss"]) == pytest.approx(job["trainingMetrics"]["trainingLoss"])
    val_csv = sandbox.read(
        bucket, f"{folder}/validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv"
    ).decode()
    assert val_csv.startswith("step_number,epoch_number,validation_loss,perplexity\n")
    model = br.get_custom_model(modelIdentifier=job["outputModelArn"])
    assert model["modelName"] == kwargs["customModelName"] and model["modelStatus"] == "Active"
    assert model["modelArn"].startswith(f"arn:aws:bedrock:us-east-1:123456789012:custom-model/{NOVA}/")
    assert model["baseModelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA}"
    assert br.get_custom_model(modelIdentifier=kwargs["customModelName"])["modelArn"] == model["modelArn"]
    assert br.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "team", "value": "a"}]
    assert br.list_tags_for_resource(resourceARN=model["modelArn"])["tags"] == [{"key": "k", "value": "v"}]
    stored = sandbox.server.bedrock.models[model["modelArn"]].training_pairs
    assert stored[3] == ("What was the revenue of segment 3 in 2019?", "The revenue of segment 3 in 2019 was 21 million dollars.")


def test_job_steps_follow_batch_size(sandbox: Env) -> None:
    job = run_job(sandbox, region="us-west-2", base=TITAN, records=[prompt_completion(i) for i in range(30)],
                  validation=False, hyperParameters={"epochCount": "3", "batchSize": "4"})
    assert job["status"] == "Completed", job.get("failureMessage")
    assert job["validationDataConfig"] == {"validators": []} and job["validationMetrics"] == []
    bucket = job["outputDataConfig"]["s3Uri"].split("/")[2]
    keys = sandbox.keys(bucket, "out/model-customization-job-")
    assert len(keys) == 1  # no validation CSV without a validation set
    rows = sandbox.read(bucket, keys[0]).decode().strip().splitlines()[1:]
    assert len(rows) == math.ceil(30 / 4) * 3


def test_claude_early_stopping_truncates(sandbox: Env) -> None:
    sandbox.configure(catalog="2024")
    try:
        job = run_job(
            sandbox, region="us-west-2", base="anthropic.claude-3-haiku-20240307-v1:0:200k",
            records=[claude_messages(i) for i in range(64)],
            hyperParameters={"epochCount": "10", "batchSize": "4", "earlyStoppingThreshold": "0.1",
                             "earlyStoppingPatience": "1"},
        )
    finally:
        sandbox.configure(catalog="current")
    assert job["status"] == "Completed", job.get("failureMessage")
    bucket = job["outputDataConfig"]["s3Uri"].split("/")[2]
    train_key = next(k for k in sandbox.keys(bucket, "out/") if k.endswith("step_wise_training_metrics.csv"))
    steps = len(sandbox.read(bucket, train_key).decode().strip().splitlines()) - 1
    assert steps < math.ceil(64 / 4) * 10


def test_job_list_filters_pagination_and_sort(sandbox: Env) -> None:
    br = sandbox.client("bedrock", "us-east-2")
    tag = unique("lst")
    names = [f"{tag}-{i}" for i in range(3)]
    east = sandbox.client("bedrock")
    for name in names:
        east.create_model_customization_job(**job_kwargs(sandbox, jobName=name))
    summaries = east.list_model_customization_jobs(nameContains=tag)["modelCustomizationJobSummaries"]
    assert [s["jobName"] for s in summaries] == list(reversed(names))  # newest first
    ascending = east.list_model_customization_jobs(nameContains=tag, sortOrder="Ascending")
    assert [s["jobName"] for s in ascending["modelCustomizationJobSummaries"]] == names
    page = east.list_model_customization_jobs(nameContains=tag, maxResults=2)
    assert len(page["modelCustomizationJobSummaries"]) == 2 and page["nextToken"]
    rest = east.list_model_customization_jobs(nameContains=tag, maxResults=2, nextToken=page["nextToken"])
    assert len(rest["modelCustomizationJobSummaries"]) == 1 and "nextToken" not in rest
    assert br.list_model_customization_jobs(nameContains=tag)["modelCustomizationJobSummaries"] == []  # other region
    wait_for(lambda: east.get_model_customization_job(jobIdentifier=names[0]), "status", ("Completed",))
    done = east.list_model_customization_jobs(nameContains=tag, statusEquals="Completed")
    assert names[0] in [s["jobName"] for s in done["modelCustomizationJobSummaries"]]


def test_stop_job(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    sandbox.configure(time_scale=1.0)
    try:
        kwargs = job_kwargs(sandbox)
        arn = br.create_model_customization_job(**kwargs)["jobArn"]
    finally:
        sandbox.configure(time_scale=0.05)
    br.stop_model_customization_job(jobIdentifier=arn)
    assert br.get_model_customization_job(jobIdentifier=arn)["status"] == "Stopping"
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Stopped",))
    assert "endTime" in job and "outputModelArn" not in job and "failureMessage" not in job
    with pytest.raises(ClientError) as exc:
        br.stop_model_customization_job(jobIdentifier=arn)
    assert code(exc) == "ConflictException"
    with pytest.raises(ClientError):
        br.get_custom_model(modelIdentifier=kwargs["customModelName"])


def test_job_idempotency_and_duplicates(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    kwargs = job_kwargs(sandbox, clientRequestToken=unique("tok"))
    first = br.create_model_customization_job(**kwargs)["jobArn"]
    assert br.create_model_customization_job(**kwargs)["jobArn"] == first
    kwargs.pop("clientRequestToken")
    with pytest.raises(ClientError) as exc:
        br.create_model_customization_job(**kwargs)
    assert code(exc) == "ValidationException" and "job name" in message(exc)
    kwargs["jobName"] = unique("job")
    with pytest.raises(ClientError) as exc:
        br.create_model_customization_job(**kwargs)
    assert "custom model name" in message(exc)


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"jobName": "bad_name"}, "at 'jobName' failed to satisfy constraint"),
        ({"customModelName": "bad..name"}, "at 'customModelName' failed to satisfy constraint"),
        ({"roleArn": "not-a-role"}, "at 'roleArn' failed to satisfy constraint"),
        ({"hyperParameters": {"epochCount": "9"}}, "epochCount"),
        ({"hyperParameters": {"epochCount": "two"}}, "must be an integer"),
        ({"hyperParameters": {"learningRate": "0.5"}}, "out of range"),
        ({"hyperParameters": {"batchSize": "8"}}, "not supported"),
        ({"baseModelIdentifier": "amazon.nova-lite-v1:0"}, "does not support customization type FINE_TUNING"),
        ({"baseModelIdentifier": "anthropic.claude-3-haiku-20240307-v1:0:200k"}, "The provided model identifier is invalid."),
        ({"baseModelIdentifier": LLAMA}, "The provided model identifier is invalid."),  # us-west-2 only
        ({"customizationType": "DISTILLATION"}, "distillationConfig"),
        ({"customizationType": "CONTINUED_PRE_TRAINING"}, "does not support customization type"),
    ],
)
def test_create_job_synchronous_rejections(sandbox: Env, over: dict, fragment: str) -> None:
    br = sandbox.client("bedrock")
    with pytest.raises(ClientError) as exc:
        br.create_model_customization_job(**job_kwargs(sandbox, **over))
    assert code(exc) == "ValidationException"
    assert fragment in message(exc)


def test_async_failures(sandbox: Env) -> None:
    # A role Bedrock cannot assume is refused by the create call (utils/sandbox/bedrock/access.py).
    for role in ("arn:aws:iam::123456789012:role/AmazonBedrockNoSuchRole", sandbox.role(trust=False)):
        with pytest.raises(ClientError) as exc:
            sandbox.client("bedrock").create_model_customization_job(**job_kwargs(sandbox, role=role))
        assert code(exc) == "ValidationException" and message(exc) == "Could not assume provided IAM role."
    job = run_job(sandbox, role=sandbox.role(s3=False))
    assert job["status"] == "Failed" and "endTime" in job and "trainingMetrics" not in job
    assert "outputModelArn" not in job and job["statusDetails"]["validationDetails"]["status"] == "Failed"
    assert job["failureMessage"].startswith("Could not validate GetObject permissions to access Amazon S3 bucket:")
    assert job["failureMessage"].endswith("at key data/train.jsonl")
    job = run_job(sandbox, role=sandbox.role(write=False))
    assert job["failureMessage"].startswith("Amazon S3 perms missing (PutObject)")
    assert job["failureMessage"].endswith("out/.write_access_check_file.tmp")
    # Training object missing.
    br = sandbox.client("bedrock")
    kwargs = job_kwargs(sandbox)
    kwargs["trainingDataConfig"] = {"s3Uri": kwargs["trainingDataConfig"]["s3Uri"].replace("train.jsonl", "nope.jsonl")}
    arn = br.create_model_customization_job(**kwargs)["jobArn"]
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Failed", "Completed"))
    assert job["failureMessage"].endswith("at key data/nope.jsonl")
    # Bucket in another region.
    other = sandbox.bucket("us-west-2")
    uri = sandbox.put_jsonl(other, "train.jsonl", [conversation(i) for i in range(20)], "us-west-2")
    kwargs = job_kwargs(sandbox, validation=False, trainingDataConfig={"s3Uri": uri})
    arn = br.create_model_customization_job(**kwargs)["jobArn"]
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Failed", "Completed"))
    assert "us-west-2" in job["failureMessage"] and "same region" in job["failureMessage"]


def _job_with_policy(env: Env, statements: list) -> dict:
    """Run a job whose role has exactly ``statements`` ({bucket} is the job's bucket)."""
    from tests.unit.test_sandbox_support import TRUST

    br = env.client("bedrock")
    kwargs = job_kwargs(env)
    bucket = kwargs["outputDataConfig"]["s3Uri"].split("/")[2]
    name = unique("AmazonBedrockPolicy")
    iam = env.client("iam")
    kwargs["roleArn"] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="data", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": json.loads(json.dumps(statements).replace("{bucket}", bucket))}))
    arn = br.create_model_customization_job(**kwargs)["jobArn"]
    return wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Completed", "Failed"))


def test_job_s3_checks_use_iam_evaluation(sandbox: Env) -> None:
    """Item 11: NotAction/NotResource are honoured and an explicit Deny on the output prefix wins."""
    allow_all_but_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    deny_outside_bucket = {"Effect": "Deny", "Action": "s3:*",
                           "NotResource": ["arn:aws:s3:::{bucket}", "arn:aws:s3:::{bucket}/*"]}
    job = _job_with_policy(sandbox, [allow_all_but_iam, deny_outside_bucket])
    assert job["status"] == "Completed", job.get("failureMessage")
    deny_reads_here = {"Effect": "Deny", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::elsewhere/*"}
    job = _job_with_policy(sandbox, [allow_all_but_iam, deny_reads_here])
    assert job["failureMessage"] == (
        "Could not validate GetObject permissions to access Amazon S3 bucket: "
        f"{job['trainingDataConfig']['s3Uri'].split('/')[2]} at key data/train.jsonl")
    deny_output = {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::{bucket}/out/*"}
    job = _job_with_policy(sandbox, [allow_all_but_iam, deny_output])
    bucket = job["outputDataConfig"]["s3Uri"].split("/")[2]
    assert job["failureMessage"] == (
        "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
        f"S3 bucket: {bucket} at key out/.write_access_check_file.tmp")


def test_wrong_data_format_fails_job(sandbox: Env) -> None:
    job = run_job(sandbox, records=[prompt_completion(i) for i in range(20)], validation=False)
    assert job["status"] == "Failed"
    assert job["failureMessage"].startswith("Input data at train.jsonl must follow")
    bucket = sandbox.bucket()
    sandbox.client("s3").put_object(Bucket=bucket, Key="t/train.jsonl", Body=b'{"prompt": "x"\nnot json\n')
    br = sandbox.client("bedrock")
    kwargs = job_kwargs(sandbox, validation=False, trainingDataConfig={"s3Uri": f"s3://{bucket}/t/train.jsonl"})
    arn = br.create_model_customization_job(**kwargs)["jobArn"]
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Failed", "Completed"))
    assert job["failureMessage"] == "Unable to parse Amazon S3 file: train.jsonl. Data files must conform to JSONL format."


def test_distillation_uses_teacher(sandbox: Env) -> None:
    prompts = [{"schemaVersion": "bedrock-conversation-2024",
                "messages": [{"role": "user", "content": [{"text": f"Explain item {i} of the report."}]}]}
               for i in range(10)]
    job = run_job(
        sandbox, base="amazon.nova-micro-v1:0:128k", records=prompts, validation=False,
        customizationType="DISTILLATION",
        customizationConfig={"distillationConfig": {"teacherModelConfig": {
            "teacherModelIdentifier": "us.amazon.nova-pro-v1:0", "maxResponseLengthForInference": 200}}},
    )
    assert job["status"] == "Completed", job.get("failureMessage")
    assert job["customizationConfig"]["distillationConfig"]["teacherModelConfig"]["teacherModelIdentifier"]
    pairs = sandbox.server.bedrock.models[job["outputModelArn"]].training_pairs
    assert len(pairs) == 10 and all(answer for _, answer in pairs)


# ---- custom models --------------------------------------------------------------------------


def test_custom_models_get_list_delete(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    job = run_job(sandbox)
    name, arn = job["outputModelName"], job["outputModelArn"]
    listed = br.list_custom_models(nameContains=name)["modelSummaries"]
    assert [m["modelArn"] for m in listed] == [arn]
    assert listed[0]["baseModelName"] == "Nova Lite" and listed[0]["ownerAccountId"] == "123456789012"
    fm_arn = f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA}"
    assert arn in [m["modelArn"] for m in br.list_custom_models(foundationModelArnEquals=fm_arn)["modelSummaries"]]
    assert br.list_custom_models(nameContains=name, modelStatus="Failed")["modelSummaries"] == []
    br.delete_custom_model(modelIdentifier=arn)
    for ident in (arn, name):
        with pytest.raises(ClientError) as exc:
            br.get_custom_model(modelIdentifier=ident)
        assert code(exc) == "ResourceNotFoundException"
    job2 = run_job(sandbox)
    br.delete_custom_model(modelIdentifier=job2["outputModelName"])  # by name
    with pytest.raises(ClientError) as exc:
        br.delete_custom_model(modelIdentifier=job2["outputModelName"])
    assert code(exc) == "ResourceNotFoundException"


# ---- provisioned throughput and deployments ------------------------------------------------


def test_provisioned_throughput(sandbox: Env) -> None:
    west = sandbox.client("bedrock", "us-west-2")
    job = run_job(sandbox, region="us-west-2", base=LLAMA, records=[prompt_completion(i) for i in range(100)],
                  validation=False, hyperParameters={"epochCount": "1"})
    assert job["status"] == "Completed", job.get("failureMessage")
    name = unique("pt")
    arn = west.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName=name, modelId=job["outputModelArn"], tags=[{"key": "a", "value": "b"}]
    )["provisionedModelArn"]
    assert arn.startswith("arn:aws:bedrock:us-west-2:123456789012:provisioned-model/") and len(arn.rsplit("/", 1)[1]) == 12
    first = west.get_provisioned_model_throughput(provisionedModelId=name)
    assert first["status"] == "Creating" and first["foundationModelArn"].endswith(LLAMA)
    pt = wait_for(lambda: west.get_provisioned_model_throughput(provisionedModelId=arn), "status", ("InService",))
    assert pt["modelArn"] == job["outputModelArn"] and "commitmentDuration" not in pt
    assert [s["provisionedModelArn"] for s in west.list_provisioned_model_throughputs(nameContains=name)["provisionedModelSummaries"]] == [arn]
    assert west.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "a", "value": "b"}]
    with pytest.raises(ClientError) as exc:
        west.delete_custom_model(modelIdentifier=job["outputModelArn"])
    assert code(exc) == "ConflictException"
    renamed = unique("pt")
    west.update_provisioned_model_throughput(provisionedModelId=arn, desiredProvisionedModelName=renamed)
    assert west.get_provisioned_model_throughput(provisionedModelId=renamed)["provisionedModelArn"] == arn
    with pytest.raises(ClientError) as exc:  # a foundation model needs a commitment
        west.create_provisioned_model_throughput(modelUnits=1, provisionedModelName=unique("pt"), modelId=LLAMA)
    assert code(exc) == "ValidationException" and "commitment" in message(exc)
    committed = west.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName=unique("pt"), modelId=LLAMA, commitmentDuration="OneMonth"
    )["provisionedModelArn"]
    got = west.get_provisioned_model_throughput(provisionedModelId=committed)
    assert got["commitmentDuration"] == "OneMonth" and got["commitmentExpirationTime"] > got["creationTime"]
    with pytest.raises(ClientError) as exc:
        west.delete_provisioned_model_throughput(provisionedModelId=committed)
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:  # on-demand-only model
        west.create_provisioned_model_throughput(
            modelUnits=1, provisionedModelName=unique("pt"), modelId="meta.llama3-1-8b-instruct-v1:0",
            commitmentDuration="OneMonth")
    assert code(exc) == "ValidationException"
    west.delete_provisioned_model_throughput(provisionedModelId=renamed)
    with pytest.raises(ClientError) as exc:
        west.get_provisioned_model_throughput(provisionedModelId=arn)
    assert code(exc) == "ResourceNotFoundException"


def test_no_provisioned_throughput_for_legacy_base(sandbox: Env) -> None:
    west = sandbox.client("bedrock", "us-west-2")
    sandbox.configure(legacy_models={LLAMA: {"legacyTime": "2026-11-01", "endOfLifeTime": "2027-05-01"}})
    try:
        details = west.get_foundation_model(modelIdentifier=LLAMA)["modelDetails"]
        assert details["modelLifecycle"]["status"] == "LEGACY" and "endOfLifeTime" in details["modelLifecycle"]
        with pytest.raises(ClientError) as exc:
            west.create_provisioned_model_throughput(
                modelUnits=1, provisionedModelName=unique("pt"), modelId=LLAMA, commitmentDuration="OneMonth")
        assert code(exc) == "ValidationException" and "Legacy" in message(exc)
    finally:
        sandbox.configure(legacy_models={})


def test_custom_model_deployments(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    job = run_job(sandbox)
    name = unique("dep")
    arn = br.create_custom_model_deployment(modelDeploymentName=name, modelArn=job["outputModelArn"],
                                            description="test")["customModelDeploymentArn"]
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/")
    assert br.get_custom_model_deployment(customModelDeploymentIdentifier=name)["status"] == "Creating"
    dep = wait_for(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=arn), "status", ("Active",))
    assert dep["modelArn"] == job["outputModelArn"] and dep["description"] == "test"
    listed = br.list_custom_model_deployments(nameContains=name, statusEquals="Active")["modelDeploymentSummaries"]
    assert [d["customModelDeploymentArn"] for d in listed] == [arn]
    job2 = run_job(sandbox)
    br.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=job2["outputModelArn"])
    assert br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["updateDetails"]["updateStatus"] == "Updating"
    done = wait_for(
        lambda: {**br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["updateDetails"]},
        "updateStatus", ("UpdateCompleted",))
    assert done["modelArn"] == job2["outputModelArn"]
    br.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
    with pytest.raises(ClientError) as exc:
        br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert code(exc) == "ResourceNotFoundException"
    titan = run_job(sandbox, base=TITAN, records=[prompt_completion(i) for i in range(20)], validation=False)
    with pytest.raises(ClientError) as exc:
        br.create_custom_model_deployment(modelDeploymentName=unique("dep"), modelArn=titan["outputModelArn"])
    assert code(exc) == "ValidationException" and "Nova" in message(exc)


# ---- batch inference -----------------------------------------------------------------------


def test_batch_inference_job(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    bucket = sandbox.bucket()
    records = [{"recordId": f"CALL{i:07d}", "modelInput": {
        "messages": [{"role": "user", "content": [{"text": f"Summarise item {i}."}]}],
        "inferenceConfig": {"maxTokens": 50}}} for i in range(3)]
    records.append({"recordId": "CALL0000099", "modelInput": {"bad": True}})
    sandbox.put_jsonl(bucket, "batch/in/input.jsonl", records)
    name = unique("batch")
    arn = br.create_model_invocation_job(
        jobName=name, roleArn=sandbox.role(), modelId="amazon.nova-lite-v1:0",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/batch/in/"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/batch/out/"}},
        tags=[{"key": "x", "value": "y"}],
    )["jobArn"]
    job_id = arn.rsplit("/", 1)[-1]
    # 0.2 s per early phase: under CPU load the first read can already be past Submitted
    assert br.get_model_invocation_job(jobIdentifier=arn)["status"] in ("Submitted", "Validating", "Scheduled")
    job = wait_for(lambda: br.get_model_invocation_job(jobIdentifier=job_id), "status",
                   ("Completed", "PartiallyCompleted", "Failed"))
    assert job["status"] == "PartiallyCompleted", job.get("message")
    assert (job["totalRecordCount"], job["successRecordCount"], job["errorRecordCount"]) == (4, 3, 1)
    lines = [json.loads(x) for x in sandbox.read(bucket, f"batch/out/{job_id}/input.jsonl.out").splitlines()]
    assert lines[0]["recordId"] == "CALL0000000" and "output" in lines[0]["modelOutput"]
    assert lines[3]["error"]["errorCode"] == 400
    manifest = json.loads(sandbox.read(bucket, f"batch/out/{job_id}/manifest.json.out"))
    assert manifest["successRecordCount"] == 3 and manifest["inputTokenCount"] > 0
    assert [j["jobArn"] for j in br.list_model_invocation_jobs(nameContains=name)["invocationJobSummaries"]] == [arn]
    with pytest.raises(ClientError) as exc:  # by name is not accepted
        br.get_model_invocation_job(jobIdentifier=name)
    assert code(exc) in ("ValidationException", "ResourceNotFoundException")
    with pytest.raises(ClientError) as exc:
        br.stop_model_invocation_job(jobIdentifier=arn)
    assert code(exc) == "ConflictException"


def test_batch_job_minimum_records_and_stop(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    bucket = sandbox.bucket()
    uri = sandbox.put_jsonl(bucket, "in.jsonl", [{"recordId": "R1", "modelInput": {"prompt": "hi"}}])
    kwargs = {
        "roleArn": sandbox.role(), "modelId": "meta.llama3-1-8b-instruct-v1:0",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": uri}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
    }
    sandbox.configure(batch_min_records=100)
    try:
        arn = br.create_model_invocation_job(jobName=unique("batch"), **kwargs)["jobArn"]
        job = wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status", ("Failed", "Completed"))
    finally:
        sandbox.configure(batch_min_records=1)
    assert job["status"] == "Failed" and "minimum of 100" in job["message"]
    arn = br.create_model_invocation_job(jobName=unique("batch"), **kwargs)["jobArn"]
    br.stop_model_invocation_job(jobIdentifier=arn)
    assert wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status", ("Stopped",))["endTime"]


# ---- tags ----------------------------------------------------------------------------------


def test_tagging(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    job = run_job(sandbox)
    for arn in (job["jobArn"], job["outputModelArn"]):
        br.tag_resource(resourceARN=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        br.untag_resource(resourceARN=arn, tagKeys=["a"])
        assert br.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "b", "value": "2"}]
    with pytest.raises(ClientError) as exc:
        br.tag_resource(resourceARN=job["outputModelArn"], tags=[{"key": f"k{i}", "value": "v"} for i in range(200)])
    assert code(exc) == "TooManyTagsException"
    missing = job["outputModelArn"][:-12] + "aaaaaaaaaaaa"
    with pytest.raises(ClientError) as exc:
        br.list_tags_for_resource(resourceARN=missing)
    assert code(exc) == "ResourceNotFoundException"


def test_tagging_is_regional(sandbox: Env) -> None:
    """Item 12 (a): another region's ARN is unknown to tagging (ResourceNotFoundException)."""
    job = run_job(sandbox)
    west = sandbox.client("bedrock", "us-west-2")
    for call in (lambda arn: west.list_tags_for_resource(resourceARN=arn),
                 lambda arn: west.tag_resource(resourceARN=arn, tags=[{"key": "k", "value": "v"}]),
                 lambda arn: west.untag_resource(resourceARN=arn, tagKeys=["k"])):
        for arn in (job["jobArn"], job["outputModelArn"]):
            with pytest.raises(ClientError) as exc:
                call(arn)
            assert code(exc) == "ResourceNotFoundException"
    assert sandbox.client("bedrock").list_tags_for_resource(resourceARN=job["jobArn"])["tags"] == []


def test_forged_page_tokens_are_rejected(sandbox: Env) -> None:
    """Item 12 (b): a token whose offset is negative or past the list is a ValidationException."""
    import base64

    run_job(sandbox)
    br = sandbox.client("bedrock")
    for offset in (-1, 10**6):
        token = base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()
        with pytest.raises(ClientError) as exc:
            br.list_model_customization_jobs(maxResults=1, nextToken=token)
        assert code(exc) == "ValidationException" and "pagination token" in message(exc)


def test_write_check_leaves_probe_object(sandbox: Env) -> None:
    """Item 12 (d): a passing write check writes <prefix>/.write_access_check_file.tmp, as the service does."""
    job = run_job(sandbox)
    assert job["status"] == "Completed"
    bucket = job["outputDataConfig"]["s3Uri"].split("/")[2]
    assert "out/.write_access_check_file.tmp" in sandbox.keys(bucket, "out/")
    failed = run_job(sandbox, role=sandbox.role(write=False))
    bucket = failed["outputDataConfig"]["s3Uri"].split("/")[2]
    assert sandbox.keys(bucket, "out/") == []


def test_anthropic_model_field_is_bare_name(sandbox: Env) -> None:
    """Item 12 (c): no provider prefix, geo prefix or -v1:0 suffix in the response's ``model``."""
    rt = sandbox.client("bedrock-runtime")
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "Hi"}]})
    for model_id, name in (("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
                           ("global.anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"),
                           ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6",
                            "claude-sonnet-4-6")):
        assert json.loads(rt.invoke_model(modelId=model_id, body=body)["body"].read())["model"] == name


def test_claude4_rejects_temperature_with_top_p(sandbox: Env) -> None:
    """Item 13: Sonnet 4.6 / Haiku 4.5 take temperature or top_p, not both (InvokeModel and Converse)."""
    rt = sandbox.client("bedrock-runtime")
    expected = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    msgs = [{"role": "user", "content": "Hi"}]
    for model_id in ("us.anthropic.claude-sonnet-4-6", "global.anthropic.claude-haiku-4-5-20251001-v1:0"):
        with pytest.raises(ClientError) as exc:
            rt.invoke_model(modelId=model_id, body=json.dumps({
                "anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": msgs,
                "temperature": 0.2, "top_p": 0.9}))
        assert code(exc) == "ValidationException" and message(exc) == expected
        with pytest.raises(ClientError) as exc:
            rt.converse(modelId=model_id, messages=[{"role": "user", "content": [{"text": "Hi"}]}],
                        inferenceConfig={"temperature": 0.2, "topP": 0.9})
        assert code(exc) == "ValidationException" and message(exc) == expected
        for only in ({"temperature": 0.2}, {"top_p": 0.9}):  # one of them is fine
            rt.invoke_model(modelId=model_id, body=json.dumps(
                {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": msgs, **only}))
    # Other families keep accepting both.
    rt.converse(modelId="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": [{"text": "Hi"}]}],
                inferenceConfig={"temperature": 0.2, "topP": 0.9, "maxTokens": 10})


def test_output_caps_per_model(sandbox: Env) -> None:
    """Item 13: a requested output length above the model's maximum is a ValidationException."""
    rt = sandbox.client("bedrock-runtime")
    hi = [{"role": "user", "content": [{"text": "Hi"}]}]
    claude = {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "Hi"}]}
    with pytest.raises(ClientError) as exc:
        rt.invoke_model(modelId="us.anthropic.claude-sonnet-4-6", body=json.dumps({**claude, "max_tokens": 64001}))
    assert message(exc) == ("max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens "
                            "for claude-sonnet-4-6")
    rt.invoke_model(modelId="us.anthropic.claude-sonnet-4-6", body=json.dumps({**claude, "max_tokens": 64000}))
    with pytest.raises(ClientError) as exc:
        rt.invoke_model(modelId="amazon.nova-lite-v1:0", body=json.dumps(
            {"messages": hi, "inferenceConfig": {"maxTokens": 10001}}))
    assert message(exc) == ("Malformed input request: #/inferenceConfig/maxTokens: 10001 is not less or equal "
                            "to 10000, please reformat your input and try again.")
    for model_id, cap in (("us.meta.llama3-3-70b-instruct-v1:0", 2048), ("amazon.nova-pro-v1:0", 10000)):
        with pytest.raises(ClientError) as exc:
            rt.converse(modelId=model_id, messages=hi, inferenceConfig={"maxTokens": cap + 1})
        assert code(exc) == "ValidationException"
        assert message(exc) == (f"The maximum tokens you requested exceeds the model limit of {cap}. "
                                f"Try again with a maximum tokens value that is lower than {cap}.")
        rt.converse(modelId=model_id, messages=hi, inferenceConfig={"maxTokens": cap})
    sandbox.configure(catalog="2024")
    try:
        with pytest.raises(ClientError) as exc:
            rt.invoke_model(modelId="anthropic.claude-3-haiku-20240307-v1:0",
                            body=json.dumps({**claude, "max_tokens": 4097}))
        assert message(exc).startswith("max_tokens: 4097 > 4096") and message(exc).endswith("claude-3-haiku-20240307")
    finally:
        sandbox.configure(catalog="current")


# ---- runtime routing -----------------------------------------------------------------------


def test_runtime_routing_and_errors(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    nova = rt.invoke_model(modelId="amazon.nova-micro-v1:0", body=json.dumps(
        {"messages": [{"role": "user", "content": [{"text": "Hello"}]}], "inferenceConfig": {"maxTokens": 20}}))
    headers = nova["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) > 0 and "x-amzn-bedrock-invocation-latency" in headers
    assert "output" in json.loads(nova["body"].read())
    titan = rt.invoke_model(modelId="amazon.titan-text-express-v1", body=json.dumps({"inputText": "Hello"}))
    assert "results" in json.loads(titan["body"].read())
    profile_arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    claude = rt.invoke_model(modelId=profile_arn, body=json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}))
    assert json.loads(claude["body"].read())["type"] == "message"
    converse = rt.converse(modelId="us.meta.llama3-3-70b-instruct-v1:0",
                           messages=[{"role": "user", "content": [{"text": "Hello"}]}])
    assert converse["usage"]["totalTokens"] > 0 and "latencyMs" in converse["metrics"]
    cases = [
        ("anthropic.claude-sonnet-4-6", b"{}", "ValidationException", "with on-demand throughput isn't supported"),
        ("anthropic.claude-3-haiku-20240307-v1:0", b"{}", "ResourceNotFoundException", "end of its life"),
        ("acme.unknown-model-v1:0", b"{}", "ValidationException", "The provided model identifier is invalid."),
        ("amazon.nova-lite-v1:0:300k", b"{}", "ValidationException", "doesn't support on-demand throughput"),
        ("amazon.nova-micro-v1:0", b"{not json", "ValidationException", ""),
        ("amazon.nova-micro-v1:0", json.dumps({"inputText": "wrong family"}).encode(), "ValidationException", ""),
    ]
    for model_id, body, expected, fragment in cases:
        with pytest.raises(ClientError) as exc:
            rt.invoke_model(modelId=model_id, body=body)
        assert code(exc) == expected, model_id
        assert fragment in message(exc)


def test_runtime_throttling_fault(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    body = json.dumps({"inputText": "Hello"})
    sandbox.configure(faults={"profile": "off", "rpm": 1, "burst": 1.0})
    try:
        rt.invoke_model(modelId="amazon.titan-text-express-v1", body=body)
        with pytest.raises(ClientError) as exc:
            rt.invoke_model(modelId="amazon.titan-text-express-v1", body=body)
        assert code(exc) == "ThrottlingException" and exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    finally:
        sandbox.configure(faults={"profile": "off"})


def test_count_tokens(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # No model of the sandbox's catalogs is on AWS's CountTokens list; pretend Nova Lite is.
    from utils.sandbox.bedrock import runtime

    monkeypatch.setattr(runtime, "COUNT_TOKENS_MODELS", runtime.COUNT_TOKENS_MODELS | {"amazon.nova-lite-v1:0"})
    rt = sandbox.client("bedrock-runtime")
    out = rt.count_tokens(modelId="amazon.nova-lite-v1:0", input={"converse": {
        "messages": [{"role": "user", "content": [{"text": "How many tokens is this?"}]}]}})
    assert out["inputTokens"] > 0


def test_unemulated_operation_is_a_validation_error(sandbox: Env) -> None:
    with pytest.raises(ClientError) as exc:
        sandbox.client("bedrock").list_guardrails()
    assert code(exc) == "ValidationException" and "ListGuardrails" in message(exc)


def test_custom_model_answers_depend_on_data_not_on_random_ids(sandbox: Env) -> None:
    """Two jobs on the same data and hyperparameters give models that answer identically,
    even though their ARNs (random 12-character IDs, as on Bedrock) differ; other data differs."""
    runtime = sandbox.client("bedrock-runtime")
    first, second = run_job(sandbox), run_job(sandbox)
    terse = [conversation(i) for i in range(40)]
    for record in terse:  # same questions, a terse answer style: "21 million."
        record["messages"][1]["content"][0]["text"] = record["messages"][1]["content"][0]["text"].split(" was ")[1]
    other = run_job(sandbox, records=terse)
    assert first["outputModelArn"] != second["outputModelArn"]

    def ask(model_arn: str) -> str:
        name = unique("dep")
        br = sandbox.client("bedrock")
        arn = br.create_custom_model_deployment(modelDeploymentName=name, modelArn=model_arn)[
            "customModelDeploymentArn"]
        wait_for(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=arn), "status", ("Active",))
        prompt = ("Doc 1: Segment 3 sells storage systems. Its revenue in 2019 was 21 million dollars, "
                  "up from 18 million in 2018. Doc 2: Segment 4 sells services.\n\n"
                  "Question: Which products does segment 3 sell, and how did its revenue change?")
        behaviour = sandbox.server.bedrock.resolve_runtime("us-east-1", arn).behaviour
        assert behaviour.kind == "custom" and behaviour.model_id == first["baseModelArn"].split("/", 1)[1]
        reply = runtime.converse(modelId=arn, messages=[{"role": "user", "content": [{"text": prompt}]}])
        return reply["output"]["message"]["content"][0]["text"]

    assert ask(first["outputModelArn"]) == ask(second["outputModelArn"])
    assert ask(other["outputModelArn"]) != ask(first["outputModelArn"])
