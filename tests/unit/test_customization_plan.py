"""Hyperparameter planning (Nova warm-up guidance), numeric comparison, and the KMS key on the job."""

from __future__ import annotations

import pytest

from utils import customization, models

LITE = models.get("nova-lite").customization_id
MICRO = models.get("nova-micro").customization_id
PRO = models.get("nova-pro").customization_id


@pytest.mark.parametrize(("model", "records", "steps"), [
    (LITE, 40, 0), (LITE, 80, 1), (LITE, 1600, 10), (LITE, 100_000, 100),  # clamped to the API's maximum
    (MICRO, 6400, 10), (PRO, 3200, 10), (PRO, 100, 0),
])
def test_recommended_warmup_follows_the_dataset_size_divisors(model, records, steps):
    assert customization.recommended_warmup_steps(model, records) == steps


def test_no_recommendation_outside_nova_v1():
    assert customization.recommended_warmup_steps(models.get("titan-text-express").customization_id, 1000) is None
    assert customization.recommended_warmup_steps(models.get("nova-2-lite").customization_id, 1000) is None


def test_plan_uses_the_guidance_unless_given_and_says_where_values_came_from():
    values, sources = customization.plan_hyperparameters(LITE, 480, epochCount=3)
    assert values == {"epochCount": "3", "learningRate": "1e-05", "learningRateWarmupSteps": "3"}
    assert sources["epochCount"] == "your value" and sources["learningRate"] == "default"
    assert "480 records / 160" in sources["learningRateWarmupSteps"]
    values, sources = customization.plan_hyperparameters(LITE, 480, learningRateWarmupSteps=7)
    assert values["learningRateWarmupSteps"] == "7" and sources["learningRateWarmupSteps"] == "your value"
    assert customization.plan_hyperparameters(LITE, 480, learningRateWarmupSteps=None)[0]["learningRateWarmupSteps"] == "3"


def test_hyperparameters_compare_as_numbers_per_key():
    planned = {"epochCount": "2", "learningRate": "1e-05", "learningRateWarmupSteps": "0"}
    assert customization.same_hyperparameters(
        {"epochCount": "2.0", "learningRate": "0.00001", "learningRateWarmupSteps": "0"}, planned)
    assert customization.same_hyperparameters(
        {"epochCount": "2", "learningRate": "1.0E-5", "learningRateWarmupSteps": "0"}, planned)
    assert not customization.same_hyperparameters({**planned, "learningRate": "2e-05"}, planned)
    assert not customization.same_hyperparameters({"epochCount": "2", "learningRate": "1e-05"}, planned)
    assert not customization.same_hyperparameters({**planned, "batchSize": "1"}, planned)
    assert customization.same_hyperparameters({"mode": " x"}, {"mode": "x"})  # non-numbers compare as text
    assert not customization.same_hyperparameters({"mode": "x"}, {"mode": "y"})


def _plan(**extra) -> customization.JobPlan:
    return customization.JobPlan(
        job_name="bedrock-ws-demo-ft-1", model_name="bedrock-ws-demo-model-1", base_model=LITE,
        role_arn="arn:aws:iam::123456789012:role/AmazonBedrockWorkshop-demo-Customization",
        training_uri="s3://b/datasets/train.jsonl", validation_uri=None, output_uri="s3://b/out/",
        hyperparameters={"epochCount": "2"}, workshop_id="demo", **extra)


def test_kms_key_goes_on_the_job_only_when_given():
    assert "customModelKmsKeyId" not in _plan().request()
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert _plan(kms_key_id=key).request()["customModelKmsKeyId"] == key


def test_request_with_kms_key_matches_the_botocore_shape():
    import boto3
    from botocore.stub import Stubber

    bedrock = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    request = _plan(kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k").request()
    with Stubber(bedrock) as stub:
        stub.add_response("create_model_customization_job", {"jobArn": "arn:aws:bedrock:us-east-1:123456789012:"
                                                             "model-customization-job/x/abcdefghijkl"}, request)
        bedrock.create_model_customization_job(**request)  # botocore validates every parameter


def test_kms_option_end_to_end_in_the_sandbox(monkeypatch, tmp_path):
    from tests.unit.conftest import sandbox_environment
    from utils import aws, formats, iam, s3
    from utils.state import name, tags

    region = "us-east-1"
    with sandbox_environment(monkeypatch, tmp_path, time_scale=0.05):
        account = aws.account_id(region)
        key = iam.validate_kms_key_arn(f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                       region, account)
        bucket = name("kms", f"{account}-{region}")
        s3.ensure_bucket(bucket, region, tags=tags("kms"), kms_key_id=key)
        assert s3.bucket_settings(bucket, region)["kms_key_id"] == key
        role = iam.ensure_customization_role("kms", bucket, region, account, kms_key_arn=key)
        inline = aws.client("iam", region).get_role_policy(RoleName=role.rsplit("/", 1)[-1], PolicyName="kms")
        assert inline["PolicyDocument"]["Statement"][0]["Resource"] == key
        records = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", LITE) for i in range(10)]
        uri = s3.upload_bytes(bucket, f"{iam.TRAINING_PREFIX}train.jsonl", formats.to_jsonl(records))
        plan = customization.JobPlan(
            job_name=name("kms", "ft"), model_name=name("kms", "model"), base_model=LITE, role_arn=role,
            training_uri=uri, validation_uri=None, output_uri=f"s3://{bucket}/{iam.OUTPUT_PREFIX}",
            hyperparameters=customization.plan_hyperparameters(LITE, len(records))[0], workshop_id="kms",
            kms_key_id=key)
        job_arn, created = customization.ensure_job(plan, region=region)
        job = customization.wait_for_job(job_arn, region=region, poll_s=0.05, timeout_s=60)
        model = aws.client("bedrock", region).get_custom_model(modelIdentifier=job["outputModelArn"])
        assert created and model["modelKmsKeyArn"] == key
        stored = aws.client("bedrock", region).get_model_customization_job(jobIdentifier=job_arn)["hyperParameters"]
        assert customization.same_hyperparameters(stored, plan.hyperparameters)
