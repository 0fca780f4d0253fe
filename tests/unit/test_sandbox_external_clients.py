"""External clients: AWS's public fine-tuning samples, call for call, against the sandbox.

Each test replays with plain boto3 the calls and parameters of an aws-samples notebook series,
in its order, so that code written for real Bedrock (not by this project) runs unchanged here.
Sources, ``aws-samples/amazon-bedrock-samples`` at commit
``85fba9d9c404ae120c0ceee5e67befed35004fdc``:

* Nova Micro with on-demand custom model deployment:
  ``custom-models/on_demand_inference/01_setup_nova_micro.ipynb`` and
  ``custom-models/on_demand_inference/02_fine-tune_nova_micro_with_on_demand_inference.ipynb``.
* Llama 3.1 8B with Provisioned Throughput:
  ``custom-models/bedrock-fine-tuning/meta-llama/Llama-3.1 Text customization/01_setup.ipynb``,
  ``.../02_fine-tune_and_evaluate_llama31_8B_bedrock_summarization.ipynb`` and ``.../03_cleanup.ipynb``.

The code is ours; the calls, arguments, policies, hyperparameters, S3 keys and response fields
read are the samples'. Where the samples need something the sandbox cannot model, a comment
says so: the CNN/DailyMail data set (Hugging Face) is replaced by synthetic articles in the same
record format, the 60 s polling sleeps are shortened, and fmeval (not installed) is replaced by
the InvokeModel calls its ``BedrockModelRunner`` makes.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from tests.unit.conftest import sandbox_environment

# Lifecycles at 5 % of their sandbox length: both flows finish in a few seconds.
TIME_SCALE = 0.05
POLL_S = 0.1  # the samples sleep 60 s between polls
MAX_POLLS = 600  # a guard against a hang, not a timing assertion

WORDS = ("council", "river", "market", "school", "storm", "team", "mayor", "bridge", "report", "budget",
         "festival", "hospital", "court", "museum", "airport", "harvest", "strike", "election", "station", "park")


def _articles(count: int, seed: int) -> list[dict[str, str]]:
    """CNN/DailyMail-shaped rows (``article``, ``highlights``) made from a fixed vocabulary."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        topic, place = rng.choice(WORDS), rng.choice(WORDS)
        body = " ".join(
            f"The {rng.choice(WORDS)} near the {place} reported {rng.randint(2, 90)} new cases of {topic} "
            f"trouble on day {d}." for d in range(rng.randint(3, 8))
        )
        rows.append({"article": f"(CNN) -- Story {i} about the {topic} in {place}. {body}",
                     "highlights": f"The {topic} in {place} faced trouble.\nOfficials promise a {rng.choice(WORDS)} plan."})
    return rows


def _write_jsonl(records: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _setup_role_and_bucket(session: boto3.session.Session, region: str, base_model_id: str, *,
                           location_constraint: bool) -> dict[str, str]:
    """Both samples' 01 setup notebook: the model listing, bucket, trust policy with conditions,
    S3 policy, attachment."""
    listing = session.client(service_name="bedrock").list_foundation_models(byCustomizationType="FINE_TUNING")
    assert base_model_id in [m["modelId"] for m in listing["modelSummaries"]]
    account_id = session.client("sts").get_caller_identity()["Account"]
    bucket_name = f"bedrock-customization-{region}-{account_id}"
    s3_client = session.client("s3", region_name=region)
    iam = session.client("iam", region_name=region)
    role_name = "AmazonBedrockCustomizationRole1"
    s3_bedrock_finetuning_access_policy = "AmazonBedrockCustomizationPolicy1"
    if location_constraint:  # the Llama sample (us-west-2)
        s3_client.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": region})
    else:  # the Nova sample (us-east-1)
        s3_client.create_bucket(Bucket=bucket_name)
    role_doc = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnEquals": {"aws:SourceArn": f"arn:aws:bedrock:{region}:{account_id}:model-customization-job/*"},
            },
        }],
    }
    access_policy_doc = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject", "s3:GetObject",
                       "s3:GetBucketAcl", "s3:GetBucketNotification", "s3:ListBucket", "s3:PutBucketNotification"],
            "Resource": [f"arn:aws:s3:::{bucket_name}", f"arn:aws:s3:::{bucket_name}/*"],
        }],
    }
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(role_doc, indent=4),
                               Description="Role for Bedrock to access S3 for finetuning")["Role"]["Arn"]
    policy_arn = iam.create_policy(PolicyName=s3_bedrock_finetuning_access_policy,
                                   PolicyDocument=json.dumps(access_policy_doc, indent=4))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    return {"account_id": account_id, "bucket_name": bucket_name, "role_name": role_name,
            "role_arn": role_arn, "policy_arn": policy_arn}


def _upload(session: boto3.session.Session, folder: Path, bucket_name: str, files: dict[str, list[dict]]) -> dict[str, str]:
    """``upload_file`` to ``fine-tuning-datasets/<split>/<file>``; returns the samples' s3 URIs."""
    s3_client = session.client("s3")
    folder.mkdir()
    uris = {}
    for split, (file_name, records) in zip(("train", "validation", "test"), files.items(), strict=True):
        _write_jsonl(records, folder / file_name)
        s3_client.upload_file(str(folder / file_name), bucket_name, f"fine-tuning-datasets/{split}/{file_name}")
        uris[split] = f"s3://{bucket_name}/fine-tuning-datasets/{split}/{file_name}"
    return uris


def _wait_while(fetch, status: str) -> str:
    """The samples' ``while status == X: time.sleep(60)`` loop."""
    current = fetch()
    for _ in range(MAX_POLLS):
        if current != status:
            return current
        time.sleep(POLL_S)
        current = fetch()
    pytest.fail(f"still {status} after {MAX_POLLS} polls")


def _fine_tune(session, region, setup, uris, base_model_id, names: tuple[str, str], validation_key: str,
               folder: Path) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """02 notebook: create the job with the samples' hyperparameters, poll, find the model, read the
    metric CSVs. ``names``: the job and model name templates (``{ts}``: the samples' timestamp).
    Returns the custom model's ARN and the training and validation metrics."""
    bedrock = session.client(service_name="bedrock", region_name=region)
    ts = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    job_name, model_name = (name.format(ts=ts) for name in names)
    # Both samples pass batchSize "1"; for Nova it is not on AWS's hyperparameter page
    # (https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html), yet the sample reports
    # the job completing, so the sandbox accepts it (utils/sandbox/bedrock/customization.py).
    hyper_parameters = {"epochCount": "2", "batchSize": "1", "learningRate": "0.00005"}
    bedrock.create_model_customization_job(
        customizationType="FINE_TUNING",
        jobName=job_name,
        customModelName=model_name,
        roleArn=setup["role_arn"],
        baseModelIdentifier=base_model_id,
        hyperParameters=hyper_parameters,
        trainingDataConfig={"s3Uri": uris["train"]},
        validationDataConfig={"validators": [{"s3Uri": uris["validation"]}]},
        outputDataConfig={"s3Uri": f"s3://{setup['bucket_name']}/outputs/output-{model_name}"},
    )
    status = _wait_while(lambda: bedrock.get_model_customization_job(jobIdentifier=job_name)["status"], "InProgress")
    job = bedrock.get_model_customization_job(jobIdentifier=job_name)
    assert status == "Completed", job.get("failureMessage")
    # The trust policy's conditions hold for the job: aws:SourceArn is the job's ARN, which the
    # ArnEquals pattern "...:model-customization-job/*" matches (the wildcard spans the base model
    # ID's colons: ARN conditions compare the resource part as a whole), aws:SourceAccount the account.
    assert job["jobArn"].startswith(f"arn:aws:bedrock:{region}:{setup['account_id']}:model-customization-job/")
    assert model_name in [m["modelName"] for m in bedrock.list_custom_models()["modelSummaries"]]
    fine_tune_job = bedrock.get_custom_model(modelIdentifier=model_name)
    output_job_name = "model-customization-job-" + fine_tune_job["jobArn"].split("/")[-1]

    # The samples' download_file of the two metric CSVs, then pd.read_csv.
    s3_client, bucket_name = session.client("s3"), setup["bucket_name"]
    prefix = f"outputs/output-{model_name}/{output_job_name}"
    folder = folder / output_job_name
    folder.mkdir()
    train_local, validation_local = folder / "train_metrics.csv", folder / "validation_metrics.csv"
    s3_client.download_file(bucket_name, f"{prefix}/training_artifacts/step_wise_training_metrics.csv", str(train_local))
    s3_client.download_file(bucket_name, f"{prefix}/{validation_key}", str(validation_local))
    return fine_tune_job["modelArn"], pd.read_csv(train_local), pd.read_csv(validation_local)


def _finite(values) -> bool:
    return len(values) > 0 and all(math.isfinite(float(v)) and v > 0 for v in values)


def _remove_sample_resources(session: boto3.session.Session, region: str) -> None:
    """Delete what the samples create and (the Nova one) leave behind: the bucket, role and policy.

    moto's IAM and S3 state is process-wide and both samples use the same fixed names, so each
    test removes them instead of resetting moto (which would also wipe other tests' state).
    """
    account_id = session.client("sts").get_caller_identity()["Account"]
    s3_client, iam = session.client("s3", region_name=region), session.client("iam")
    bucket_name = f"bedrock-customization-{region}-{account_id}"
    with suppress(ClientError):
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name):
            for obj in page.get("Contents", []):
                s3_client.delete_object(Bucket=bucket_name, Key=obj["Key"])
        s3_client.delete_bucket(Bucket=bucket_name)
    policy_arn = f"arn:aws:iam::{account_id}:policy/AmazonBedrockCustomizationPolicy1"
    with suppress(iam.exceptions.NoSuchEntityException):
        iam.detach_role_policy(RoleName="AmazonBedrockCustomizationRole1", PolicyArn=policy_arn)
    with suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role(RoleName="AmazonBedrockCustomizationRole1")
    with suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_policy(PolicyArn=policy_arn)


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """An in-process sandbox in ``region``; yields a boto3 session, then removes the samples' resources."""

    @contextmanager
    def start(region: str) -> Iterator[boto3.session.Session]:
        monkeypatch.setenv("AWS_DEFAULT_REGION", region)
        with sandbox_environment(monkeypatch, tmp_path / "state", time_scale=TIME_SCALE):
            session = boto3.session.Session()
            _remove_sample_resources(session, region)  # left by an earlier run in this process
            try:
                yield session
            finally:
                _remove_sample_resources(session, region)

    return start


def test_nova_micro_fine_tuning_with_on_demand_deployment(aws, tmp_path: Path) -> None:
    region, base_model_id = "us-east-1", "amazon.nova-micro-v1:0:128k"
    with aws(region) as session:
        setup = _setup_role_and_bucket(session, region, base_model_id, location_constraint=False)

        # 01_setup_nova_micro: bedrock-conversation-2024 records, <= 3,000 characters each.
        system_instruction = "You are a helpful assistant that summarizes news articles accurately and concisely."

        def convert_to_nova_micro_format(dp: dict[str, str]) -> dict:
            return {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": system_instruction}],
                    "messages": [
                        {"role": "user", "content": [{"text": f"Summarize the following news article:\n\n{dp['article']}"}]},
                        {"role": "assistant", "content": [{"text": dp["highlights"]}]}]}

        def short(rows: list[dict]) -> list[dict]:
            return [r for r in rows if len(r["system"][0]["text"]) + len(r["messages"][0]["content"][0]["text"])
                    + len(r["messages"][1]["content"][0]["text"]) <= 3000]

        uris = _upload(session, tmp_path / "fine-tuning-datasets", setup["bucket_name"], {
            "train-cnn-nova-micro.jsonl": short([convert_to_nova_micro_format(a) for a in _articles(40, 1)]),
            "validation-cnn-nova-micro.jsonl": short([convert_to_nova_micro_format(a) for a in _articles(10, 2)]),
            "test-cnn-nova-micro.jsonl": short([convert_to_nova_micro_format(a) for a in _articles(3, 3)]),
        })

        # 02: the customization job and its metrics.
        custom_model_id, train_data, validation_metrics_epoch = _fine_tune(
            session, region, setup, uris, base_model_id,
            ("amazon-nova-micro-custom-job-{ts}", "amazon-nova-micro-custom-model-{ts}"),
            "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv", tmp_path)
        train_metrics_epoch = train_data.groupby("step_number").mean()
        assert _finite(train_metrics_epoch.training_loss) and len(train_metrics_epoch.index) > 0
        assert _finite(validation_metrics_epoch.validation_loss)
        assert len(validation_metrics_epoch.epoch_number) == len(validation_metrics_epoch.validation_loss)

        # Deployment, with the sample's arguments.
        bedrock = session.client(service_name="bedrock", region_name=region)
        response = bedrock.create_custom_model_deployment(
            modelDeploymentName="novafinetunedtestfinal", modelArn=custom_model_id,
            description="on-demand custom model deployment", tags=[{"key": "key", "value": "value"}])
        deployed_model_id = response["customModelDeploymentArn"]

        def get_deployment_status(deployment_arn: str) -> dict:
            response = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment_arn)
            return {"status": response["status"], "deployment_name": response["modelDeploymentName"],
                    "model_arn": response["modelArn"], "deployment_arn": response["customModelDeploymentArn"],
                    "description": response.get("description", ""), "created_at": response["createdAt"],
                    "last_updated_at": response["lastUpdatedAt"], "failure_message": response.get("failureMessage")}

        # The sample re-runs its status cell by hand until the deployment is Active; we loop.
        status = _wait_while(lambda: get_deployment_status(deployed_model_id)["status"], "Creating")
        info = get_deployment_status(deployed_model_id)
        assert status == "Active", info["failure_message"]
        assert info["description"] == "on-demand custom model deployment" and info["model_arn"] == custom_model_id

        deployments = bedrock.list_custom_model_deployments().get("modelDeploymentSummaries", [])
        [listed] = [d for d in deployments if d["customModelDeploymentArn"] == deployed_model_id]
        for key in ("customModelDeploymentName", "status", "modelArn", "createdAt", "lastUpdatedAt"):
            assert key in listed
        assert listed["status"] == "Active"

        # Testing the deployed model: Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream.
        brt = session.client(service_name="bedrock-runtime", region_name="us-east-1")
        article = "Summarize the following news article:\n\n" + _articles(1, 9)[0]["article"]
        system_list = [{"text": system_instruction}]
        message_list = [{"role": "user", "content": [{"text": article}]}]
        result = brt.converse(modelId=deployed_model_id, system=system_list, messages=message_list)
        assert result["ResponseMetadata"]["RequestId"]
        assert result.get("output")["message"]["content"][0]["text"]

        streamed = brt.converse_stream(modelId=deployed_model_id, system=system_list, messages=message_list)
        text = "".join(c["contentBlockDelta"]["delta"]["text"] for c in streamed["stream"] if "contentBlockDelta" in c)
        assert text

        inf_params = {"maxTokens": 500, "topP": 0.9, "topK": 20, "temperature": 0.7}
        request_body = {"schemaVersion": "messages-v1", "messages": message_list, "system": system_list,
                        "inferenceConfig": inf_params}
        response = brt.invoke_model(modelId=deployed_model_id, body=json.dumps(request_body))
        assert response["ResponseMetadata"]["RequestId"]
        model_response = json.loads(response["body"].read())
        assert model_response["output"]["message"]["content"][0]["text"]

        response = brt.invoke_model_with_response_stream(modelId=deployed_model_id, body=json.dumps(request_body))
        stream = response.get("body")
        assert stream
        pieces = []
        for event in stream:
            chunk = event.get("chunk")
            if chunk:
                chunk_json = json.loads(chunk.get("bytes").decode())
                content_block_delta = chunk_json.get("contentBlockDelta")
                if content_block_delta:
                    pieces.append(content_block_delta.get("delta").get("text"))
        assert pieces and all(isinstance(p, str) for p in pieces)

        # Cleanup (the sample's only cleanup cell).
        bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=deployed_model_id)


def test_llama31_8b_fine_tuning_with_provisioned_throughput(aws, tmp_path: Path) -> None:
    region, base_model_id = "us-west-2", "meta.llama3-1-8b-instruct-v1:0:128k"
    with aws(region) as session:
        setup = _setup_role_and_bucket(session, region, base_model_id, location_constraint=True)

        # 01_setup: prompt/completion records with the sample's instruction header, <= 3,000 characters.
        instruction = ("Below is an instruction that describes a task, paired with an input that provides further "
                       "context. Write a response that appropriately completes the request.\n\ninstruction:\n\n"
                       "Summarize the news article provided below.\n\ninput:\n\n")

        def datapoints(rows: list[dict[str, str]]) -> list[dict[str, str]]:
            out = [{"prompt": instruction + dp["article"], "completion": "response:\n\n" + dp["highlights"]} for dp in rows]
            return [dp for dp in out if len(dp["prompt"] + dp["completion"]) <= 3000]

        test = datapoints(_articles(3, 6))
        uris = _upload(session, tmp_path / "fine-tuning-datasets", setup["bucket_name"], {
            "train-cnn-5K.jsonl": datapoints(_articles(100, 4)),
            "validation-cnn-1K.jsonl": datapoints(_articles(20, 5)),
            "test-cnn-10.jsonl": test,
        })

        # 02: the customization job and its metrics.
        custom_model_id, train_data, validation_metrics_epoch = _fine_tune(
            session, region, setup, uris, base_model_id,
            ("llama31-8B-finetune-sm-test-model-{ts}", "llama31-8B-finetune-{ts}"),
            "validation_artifacts/validation_metrics.csv", tmp_path)
        train_metrics_epoch = train_data.groupby("epoch_number").mean()
        assert list(train_metrics_epoch.index) == [0, 1]  # epochCount "2"
        assert _finite(train_metrics_epoch.training_loss)
        assert _finite(validation_metrics_epoch.validation_loss)
        assert set(validation_metrics_epoch.epoch_number) <= set(train_metrics_epoch.index)

        # Provisioned Throughput (no commitment), polled while Creating.
        bedrock = session.client(service_name="bedrock", region_name=region)
        provisioned_model_id = bedrock.create_provisioned_model_throughput(
            modelUnits=1, provisionedModelName="test-model-v1-001", modelId=custom_model_id)["provisionedModelArn"]
        status_provisioning = _wait_while(
            lambda: bedrock.get_provisioned_model_throughput(provisionedModelId=provisioned_model_id)["status"], "Creating")
        assert status_provisioning == "InService"

        bedrock_runtime = session.client(service_name="bedrock-runtime", region_name=region)
        body = json.dumps({"prompt": test[0]["prompt"], "max_gen_len": 200, "temperature": 0.4, "top_p": 0.3})
        response = bedrock_runtime.invoke_model(body=body, modelId=provisioned_model_id,
                                                accept="application/json", contentType="application/json")
        response_body = json.loads(response.get("body").read())
        assert isinstance(response_body["generation"], str) and response_body["generation"]

        # fmeval's BedrockModelRunner (not installed here) sends the sample's content_template per
        # test record and reads the JMESPath "generation".
        for record in test:
            content = json.dumps({"prompt": record["prompt"], "max_gen_len": 50, "temperature": 0.1, "top_p": 0.3})
            out = bedrock_runtime.invoke_model(body=content, modelId=provisioned_model_id,
                                               accept="application/json", contentType="application/json")
            assert isinstance(json.loads(out["body"].read())["generation"], str)

        bedrock.delete_provisioned_model_throughput(provisionedModelId=provisioned_model_id)

        # 03_cleanup: empty and delete the bucket, detach the policy, delete the role.
        s3_client = session.client("s3")
        iam = session.client("iam", region_name=region)
        objects = s3_client.list_objects(Bucket=setup["bucket_name"])
        if "Contents" in objects:
            for obj in objects["Contents"]:
                s3_client.delete_object(Bucket=setup["bucket_name"], Key=obj["Key"])
        s3_client.delete_bucket(Bucket=setup["bucket_name"])
        iam.detach_role_policy(RoleName=setup["role_name"], PolicyArn=setup["policy_arn"])
        iam.delete_role(RoleName=setup["role_name"])
