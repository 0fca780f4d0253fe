"""Black-box flow: a workshop's whole boto3 path against ``python -m utils.sandbox`` in a subprocess.

Uses only boto3, HTTP and the process's log line (no imports from the sandbox), with the
default time scale, so it also checks that a job takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
DATA_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::flow-*", "arn:aws:s3:::flow-*/*"]}]}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    env = {**os.environ, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "utils.sandbox", "--port", "0"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("sandbox listening on http://127.0.0.1:"), line
        yield line.rsplit(" ", 1)[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def clients(url: str, region: str) -> dict[str, object]:
    kw = {"region_name": region, "endpoint_url": url, "aws_access_key_id": "x", "aws_secret_access_key": "x",
          "config": Config(retries={"mode": "standard", "max_attempts": 1})}
    return {name: boto3.client(name, **kw) for name in ("iam", "s3", "bedrock", "bedrock-runtime")}


def poll(fetch, key: str, done: tuple[str, ...], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if result[key] in done:
            return result
        assert time.monotonic() < deadline, f"{key} stuck at {result[key]}"
        time.sleep(0.25)


def setup(c: dict, region: str, suffix: str, records: list[dict]) -> tuple[str, str]:
    iam, s3 = c["iam"], c["s3"]
    role = iam.create_role(RoleName=f"AmazonBedrockFlow{suffix}", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=f"AmazonBedrockFlow{suffix}", PolicyName="data", PolicyDocument=json.dumps(DATA_POLICY))
    bucket = f"flow-{suffix.lower()}"
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(Bucket=bucket, Key="train.jsonl", Body="\n".join(json.dumps(r) for r in records).encode())
    return role, bucket


def test_black_box_flow(endpoint: str) -> None:
    east = clients(endpoint, "us-east-1")
    br, rt = east["bedrock"], east["bedrock-runtime"]
    nova_records = [{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "Answer briefly."}],
                     "messages": [{"role": "user", "content": [{"text": f"Which colour is item {i}?"}]},
                                  {"role": "assistant", "content": [{"text": f"Item {i} is colour {i % 5}."}]}]}
                    for i in range(50)]
    role, bucket = setup(east, "us-east-1", "Nova", nova_records)

    # Rejections: out-of-range hyperparameters (sync), wrong data format (async).
    base = {"roleArn": role, "baseModelIdentifier": "amazon.nova-lite-v1:0:300k",
            "trainingDataConfig": {"s3Uri": f"s3://{bucket}/train.jsonl"},
            "outputDataConfig": {"s3Uri": f"s3://{bucket}/output"}}
    with pytest.raises(ClientError) as exc:
        br.create_model_customization_job(jobName="flow-bad-hp", customModelName="flow-bad-hp",
                                          hyperParameters={"epochCount": "50"}, **base)
    assert exc.value.response["Error"]["Code"] == "ValidationException"

    # Nova fine-tuning -> Completed with artifacts; custom model by name and ARN.
    job_arn = br.create_model_customization_job(jobName="flow-nova", customModelName="flow-nova-model",
                                                 hyperParameters={"epochCount": "2"}, **base)["jobArn"]
    job = poll(lambda: br.get_model_customization_job(jobIdentifier="flow-nova"), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed", job.get("failureMessage")
    job_id = job_arn.rsplit("/", 1)[-1]
    key = f"output/model-customization-job-{job_id}/training_artifacts/step_wise_training_metrics.csv"
    assert east["s3"].get_object(Bucket=bucket, Key=key)["Body"].read().startswith(b"step_number,epoch_number,training_loss,perplexity")
    model_arn = br.get_custom_model(modelIdentifier="flow-nova-model")["modelArn"]
    assert br.get_custom_model(modelIdentifier=model_arn)["modelName"] == "flow-nova-model"

    # On-demand deployment -> Active; Converse and Nova's native body.
    dep = br.create_custom_model_deployment(modelDeploymentName="flow-dep", modelArn=model_arn)["customModelDeploymentArn"]
    poll(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=dep), "status", ("Active",))
    answer = rt.converse(modelId=dep, messages=[{"role": "user", "content": [{"text": "Which colour is item 7?"}]}])
    assert answer["output"]["message"]["content"][0]["text"] and answer["usage"]["outputTokens"] > 0
    native = json.loads(rt.invoke_model(modelId=dep, body=json.dumps(
        {"messages": [{"role": "user", "content": [{"text": "Which colour is item 7?"}]}],
         "inferenceConfig": {"maxTokens": 100}}))["body"].read())
    assert native["output"]["message"]["role"] == "assistant"

    # Wrong data format: prompt/completion for Nova -> Failed with Bedrock's message.
    east["s3"].put_object(Bucket=bucket, Key="wrong.jsonl", Body=b'{"prompt": "a", "completion": "b"}\n' * 20)
    wrong = dict(base, trainingDataConfig={"s3Uri": f"s3://{bucket}/wrong.jsonl"})
    br.create_model_customization_job(jobName="flow-wrong", customModelName="flow-wrong", **wrong)
    failed = poll(lambda: br.get_model_customization_job(jobIdentifier="flow-wrong"), "status", ("Completed", "Failed"))
    assert failed["status"] == "Failed" and "must follow" in failed["failureMessage"]

    # Claude 3 Haiku is retired in today's catalog.
    west = clients(endpoint, "us-west-2")
    with pytest.raises(ClientError) as exc:
        west["bedrock"].get_foundation_model(modelIdentifier="anthropic.claude-3-haiku-20240307-v1:0:200k")
    assert exc.value.response["Error"]["Code"] in ("ValidationException", "ResourceNotFoundException")

    # Llama 3.1 job in us-west-2 -> PT -> InService, Llama body.
    llama_records = [{"prompt": f"Which colour is item {i}?", "completion": f"Item {i} is colour {i % 5}."}
                     for i in range(100)]
    wrole, wbucket = setup(west, "us-west-2", "Llama", llama_records)
    west["bedrock"].create_model_customization_job(
        jobName="flow-llama", customModelName="flow-llama-model", roleArn=wrole,
        baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{wbucket}/train.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{wbucket}/output/"}, hyperParameters={"epochCount": "1"})
    ljob = poll(lambda: west["bedrock"].get_model_customization_job(jobIdentifier="flow-llama"), "status",
                ("Completed", "Failed"))
    assert ljob["status"] == "Completed", ljob.get("failureMessage")
    pt = west["bedrock"].create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="flow-pt", modelId=ljob["outputModelArn"])["provisionedModelArn"]
    poll(lambda: west["bedrock"].get_provisioned_model_throughput(provisionedModelId=pt), "status", ("InService",))
    gen = json.loads(west["bedrock-runtime"].invoke_model(modelId=pt, body=json.dumps(
        {"prompt": "Which colour is item 12?", "max_gen_len": 64}))["body"].read())
    assert gen["generation"] and gen["generation_token_count"] > 0

    # Teacher and judge calls through inference profiles.
    claude = json.loads(rt.invoke_model(modelId="us.anthropic.claude-sonnet-4-6", body=json.dumps({
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
        "messages": [{"role": "user", "content": "Compare response [A] and [B]; answer [[A]], [[B]] or [[C]]."}]}))["body"].read())
    assert claude["content"][0]["type"] == "text"
    llama = json.loads(rt.invoke_model(modelId="us.meta.llama3-3-70b-instruct-v1:0", body=json.dumps(
        {"prompt": "Is the sky blue?", "max_gen_len": 50}))["body"].read())
    assert "generation" in llama
    judged = rt.converse(modelId="global.anthropic.claude-sonnet-4-6",
                         messages=[{"role": "user", "content": [{"text": "Rate this answer."}]}])
    assert judged["stopReason"]

    # Malformed body and unknown model.
    for model_id, body in (("us.anthropic.claude-sonnet-4-6", b'{"max_tokens": 5}'), ("acme.nothing-v1:0", b"{}")):
        with pytest.raises(ClientError) as exc:
            rt.invoke_model(modelId=model_id, body=body)
        assert exc.value.response["Error"]["Code"] == "ValidationException"

    # Deletes.
    br.delete_custom_model_deployment(customModelDeploymentIdentifier=dep)
    br.delete_custom_model(modelIdentifier="flow-nova-model")
    west["bedrock"].delete_provisioned_model_throughput(provisionedModelId=pt)
    west["bedrock"].delete_custom_model(modelIdentifier=ljob["outputModelArn"])
    assert br.list_custom_models()["modelSummaries"] == []
    # Its duration (target: under 2 minutes) is a benchmark: benchmarks/sandbox_flow.py.
