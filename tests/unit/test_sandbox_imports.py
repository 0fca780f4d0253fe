"""Custom Model Import in the sandbox, with plain boto3: layout checks, lifecycle, cold start, shapes."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from utils import sandbox

REGION = "us-east-1"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}


def tiny_model_folder(s3, bucket: str, prefix: str, *, architecture: str = "LlamaForCausalLM",
                      skip: tuple[str, ...] = ()) -> str:
    """A fabricated Hugging Face folder: real file names, a few bytes each, no real weights."""
    files = {
        "config.json": json.dumps({"architectures": [architecture], "model_type": "llama", "hidden_size": 8}),
        "tokenizer_config.json": json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}),
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE"}}),
        "model-00001-of-00001.safetensors": "\0" * 16,
    }
    for name, body in files.items():
        if name not in skip:
            s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=body.encode())
    return f"s3://{bucket}/{prefix}"


@pytest.fixture(scope="module")
def env():
    with sandbox.start(time_scale=0.05) as server:
        kw = {"region_name": REGION, "endpoint_url": server.url, "aws_access_key_id": "x",
              "aws_secret_access_key": "x"}
        s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
        bedrock = boto3.client("bedrock", **kw)
        runtime = boto3.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}), **kw)
        s3.create_bucket(Bucket="weights")
        role = iam.create_role(RoleName="imp", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName="imp", PolicyName="read-weights", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                    "Resource": ["arn:aws:s3:::weights", "arn:aws:s3:::weights/good/*"]}]}))
        yield {"s3": s3, "bedrock": bedrock, "runtime": runtime, "role": role}


def _wait(bedrock, job_arn: str) -> dict:
    deadline = time.monotonic() + 20
    while (job := bedrock.get_model_import_job(jobIdentifier=job_arn))["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job


def test_import_completes_and_the_model_is_cold_then_answers(env):
    bedrock, runtime = env["bedrock"], env["runtime"]
    uri = tiny_model_folder(env["s3"], "weights", "good/")
    job_arn = bedrock.create_model_import_job(
        jobName="imp-good", importedModelName="imp-model", roleArn=env["role"],
        modelDataSource={"s3DataSource": {"s3Uri": uri}}, importedModelTags=[{"key": "workshop", "value": "t"}],
    )["jobArn"]
    assert ":model-import-job/" in job_arn
    job = _wait(bedrock, job_arn)
    assert job["status"] == "Completed" and "failureMessage" not in job
    model = bedrock.get_imported_model(modelIdentifier=job["importedModelArn"])
    assert model["modelArchitecture"] == "llama" and model["instructSupported"] is True
    assert model["modelDataSource"]["s3DataSource"]["s3Uri"] == uri
    assert bedrock.list_tags_for_resource(resourceARN=model["modelArn"])["tags"] == [{"key": "workshop", "value": "t"}]
    assert [m["modelName"] for m in bedrock.list_imported_models()["modelSummaries"]] == ["imp-model"]
    assert [j["jobName"] for j in bedrock.list_model_import_jobs(statusEquals="Completed")["modelImportJobSummaries"]] == ["imp-good"]
    body = json.dumps({"prompt": "What is a widget?", "max_gen_len": 50, "temperature": 0.1})
    for _ in range(3):  # cold start: the first calls are refused
        with pytest.raises(ClientError) as err:
            runtime.invoke_model(modelId=model["modelArn"], body=body)
        assert err.value.response["Error"]["Code"] == "ModelNotReadyException"
    answer = json.loads(runtime.invoke_model(modelId=model["modelArn"], body=body)["body"].read())
    assert answer["generation"] and answer["generation_token_count"] > 0 and answer["stop_reason"] in ("stop", "length")
    bedrock.delete_imported_model(modelIdentifier=model["modelArn"])
    with pytest.raises(ClientError) as err:
        bedrock.get_imported_model(modelIdentifier=model["modelArn"])
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(("skip", "architecture", "fragment"), [
    (("tokenizer.json",), "LlamaForCausalLM", "tokenizer.json (or tokenizer.model)"),
    (("model-00001-of-00001.safetensors",), "LlamaForCausalLM", "*.safetensors"),
    ((), "BertForMaskedLM", "BertForMaskedLM is not supported"),
])
def test_a_broken_folder_fails_the_job_with_the_rule_it_breaks(env, skip, architecture, fragment):
    bedrock = env["bedrock"]
    tag = f"{len(skip) and skip[0].split('.')[0][:5]}-{architecture[:4]}".lower()
    prefix = f"bad-{tag}/"
    uri = tiny_model_folder(env["s3"], "weights", prefix, architecture=architecture, skip=skip)
    job_arn = bedrock.create_model_import_job(
        jobName=f"imp-{tag}", importedModelName=f"m-{tag}",
        roleArn=env["role"], modelDataSource={"s3DataSource": {"s3Uri": uri}})["jobArn"]
    job = _wait(bedrock, job_arn)
    assert job["status"] == "Failed" and fragment in job["failureMessage"]
    assert "importedModelArn" not in job


def test_a_role_bedrock_cannot_assume_is_refused_at_create(env):
    with pytest.raises(ClientError) as err:
        env["bedrock"].create_model_import_job(
            jobName="imp-norole", importedModelName="m-norole", roleArn="arn:aws:iam::123456789012:role/missing",
            modelDataSource={"s3DataSource": {"s3Uri": "s3://weights/good/"}})
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "assume" in err.value.response["Error"]["Message"]


def test_a_folder_the_role_cannot_read_fails_the_job(env):
    uri = tiny_model_folder(env["s3"], "weights", "private/")
    job_arn = env["bedrock"].create_model_import_job(
        jobName="imp-private", importedModelName="m-private", roleArn=env["role"],
        modelDataSource={"s3DataSource": {"s3Uri": uri}})["jobArn"]
    job = _wait(env["bedrock"], job_arn)
    assert job["status"] == "Failed" and "GetObject" in job["failureMessage"]
