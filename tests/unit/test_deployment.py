"""utils.deployment: Active models only, fresh tokens per generation, Failed replaced, updates waited out."""

from __future__ import annotations

import datetime as dt
import time

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.conftest import sandbox_environment
from utils import aws, deployment, formats, iam, models, s3
from utils.state import name, tags

REGION = "us-east-1"
ACCOUNT = "123456789012"
MODEL_A = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-lite-v1:0:300k/aaaaaaaaaaaa"
MODEL_B = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-lite-v1:0:300k/bbbbbbbbbbbb"
DEP = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdefghijkl"
NAME = "bedrock-ws-demo-deployment"
NOW = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)  # noqa: UP017 - runs on Python 3.10


def _bedrock():
    return boto3.client("bedrock", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s")


def _model(arn: str, status: str = "Active", **extra) -> dict:
    return {"modelArn": arn, "modelName": arn.rsplit("/", 1)[-1], "creationTime": NOW,
            "baseModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-lite-v1:0:300k",
            "modelStatus": status, **extra}


def _deployment(model_arn: str, status: str = "Active", **extra) -> dict:
    return {"customModelDeploymentArn": DEP, "modelDeploymentName": NAME, "modelArn": model_arn,
            "createdAt": NOW, "status": status, **extra}


def _not_found(stub: Stubber, operation: str) -> None:
    stub.add_client_error(operation, "ResourceNotFoundException", "not found", 404)


def _create_params(token: str, model_arn: str = MODEL_A) -> dict:
    return {"modelDeploymentName": NAME, "modelArn": model_arn, "description": "Bedrock fine-tuning workshop demo",
            "tags": [{"key": k, "value": v} for k, v in tags("demo").items()], "clientRequestToken": token}


def test_tokens_change_with_generation_model_and_replaced_resource():
    tokens = {deployment.request_token(NAME, MODEL_A, 0), deployment.request_token(NAME, MODEL_A, 1),
              deployment.request_token(NAME, MODEL_B, 0), deployment.request_token(NAME, MODEL_A, 0, replaces=DEP)}
    assert len(tokens) == 4
    assert deployment.request_token(NAME, MODEL_A, 2) == deployment.request_token(NAME, MODEL_A, 2)  # a retry
    import re
    assert all(re.fullmatch(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?", t) for t in tokens)  # the API's pattern


@pytest.mark.parametrize("generation", [0, 3])
def test_create_sends_the_generation_token(generation):
    bedrock = _bedrock()
    with Stubber(bedrock) as stub:
        stub.add_response("get_custom_model", _model(MODEL_A), {"modelIdentifier": MODEL_A})
        _not_found(stub, "get_custom_model_deployment")
        stub.add_response("create_custom_model_deployment", {"customModelDeploymentArn": DEP},
                          _create_params(deployment.request_token(NAME, MODEL_A, generation)))
        arn, created = deployment.ensure_on_demand_deployment(NAME, MODEL_A, "demo", generation=generation,
                                                              client=bedrock, poll_s=0)
        stub.assert_no_pending_responses()
    assert (arn, created) == (DEP, True)


def test_model_still_creating_is_waited_for_and_a_failed_model_is_refused():
    bedrock = _bedrock()
    with Stubber(bedrock) as stub:
        stub.add_response("get_custom_model", _model(MODEL_A, "Creating"))
        stub.add_response("get_custom_model", _model(MODEL_A, "Active"))
        assert deployment.wait_for_model_active(MODEL_A, client=bedrock, poll_s=0)["modelStatus"] == "Active"
        stub.add_response("get_custom_model", _model(MODEL_A, "Failed", failureMessage="bad data"))
        with pytest.raises(deployment.DeploymentError, match="bad data.*rerun 04_fine_tuning"):
            deployment.ensure_on_demand_deployment(NAME, MODEL_A, "demo", client=bedrock, poll_s=0)
        stub.assert_no_pending_responses()


def test_failed_deployment_is_deleted_and_created_anew_with_a_new_token():
    bedrock = _bedrock()
    with Stubber(bedrock) as stub:
        stub.add_response("get_custom_model", _model(MODEL_A))
        stub.add_response("get_custom_model_deployment", _deployment(MODEL_A, "Failed", failureMessage="capacity"))
        stub.add_response("delete_custom_model_deployment", {}, {"customModelDeploymentIdentifier": NAME})
        stub.add_response("get_custom_model_deployment", _deployment(MODEL_A, "Failed"))  # still deleting
        _not_found(stub, "get_custom_model_deployment")
        token = deployment.request_token(NAME, MODEL_A, 0, replaces=DEP)
        assert token != deployment.request_token(NAME, MODEL_A, 0)
        stub.add_response("create_custom_model_deployment", {"customModelDeploymentArn": DEP + "x"},
                          _create_params(token))
        from unittest import mock
        with mock.patch.object(deployment.time, "sleep"):
            arn, created = deployment.ensure_on_demand_deployment(NAME, MODEL_A, "demo", client=bedrock, poll_s=0)
        stub.assert_no_pending_responses()
    assert created and arn == DEP + "x"


def test_update_is_requested_once_and_waited_out_until_update_completed():
    bedrock = _bedrock()
    with Stubber(bedrock) as stub:
        stub.add_response("get_custom_model", _model(MODEL_B))
        stub.add_response("get_custom_model_deployment", _deployment(MODEL_A))
        stub.add_response("update_custom_model_deployment", {"customModelDeploymentArn": DEP},
                          {"customModelDeploymentIdentifier": DEP, "modelArn": MODEL_B})
        arn, created = deployment.ensure_on_demand_deployment(NAME, MODEL_B, "demo", client=bedrock, poll_s=0)
        assert (arn, created) == (DEP, False)
        # A rerun while the swap is under way does not request it again.
        stub.add_response("get_custom_model", _model(MODEL_B))
        stub.add_response("get_custom_model_deployment", _deployment(
            MODEL_A, updateDetails={"modelArn": MODEL_B, "updateStatus": "Updating"}))
        deployment.ensure_on_demand_deployment(NAME, MODEL_B, "demo", client=bedrock, poll_s=0)
        # The wait returns only once the new model serves.
        stub.add_response("get_custom_model_deployment", _deployment(
            MODEL_A, updateDetails={"modelArn": MODEL_B, "updateStatus": "Updating"}))
        stub.add_response("get_custom_model_deployment", _deployment(
            MODEL_B, updateDetails={"modelArn": MODEL_B, "updateStatus": "UpdateCompleted"}))
        done = deployment.wait_for_deployment(DEP, model_arn=MODEL_B, client=bedrock, poll_s=0)
        stub.assert_no_pending_responses()
    assert done["modelArn"] == MODEL_B


def test_update_failed_and_unrequested_update_fail_clearly():
    bedrock = _bedrock()
    with Stubber(bedrock) as stub:
        stub.add_response("get_custom_model_deployment", _deployment(
            MODEL_A, updateDetails={"modelArn": MODEL_B, "updateStatus": "UpdateFailed"}))
        with pytest.raises(deployment.DeploymentError, match="UpdateFailed.*still serves its previous model"):
            deployment.wait_for_deployment(DEP, model_arn=MODEL_B, client=bedrock, poll_s=0)
        for _ in range(deployment.UPDATE_GRACE_POLLS):  # a lagging read first counts as still updating
            stub.add_response("get_custom_model_deployment", _deployment(MODEL_A))
        with pytest.raises(deployment.DeploymentError, match="UpdateNotRequested"):
            deployment.wait_for_deployment(DEP, model_arn=MODEL_B, client=bedrock, poll_s=0)
        stub.add_response("get_custom_model_deployment", _deployment(MODEL_A, "Failed", failureMessage="boom"))
        with pytest.raises(deployment.DeploymentError, match="boom"):
            deployment.wait_for_deployment(DEP, client=bedrock, poll_s=0)


PT = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:provisioned-model/abcdefghijkl"


def _pt(model_arn: str, status: str = "InService", **extra) -> dict:
    return {"modelUnits": 1, "desiredModelUnits": 1, "provisionedModelName": "bedrock-ws-demo-pt",
            "provisionedModelArn": PT, "modelArn": model_arn, "desiredModelArn": extra.pop("desired", model_arn),
            "foundationModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/x", "status": status,
            "creationTime": NOW, "lastModifiedTime": NOW, **extra}


def test_provisioned_throughput_token_failed_replacement_and_update_wait():
    bedrock = _bedrock()
    with Stubber(bedrock) as stub:
        stub.add_response("get_custom_model", _model(MODEL_A))
        stub.add_response("get_provisioned_model_throughput", _pt(MODEL_A, "Failed", failureMessage="x"))
        stub.add_response("delete_provisioned_model_throughput", {}, {"provisionedModelId": "bedrock-ws-demo-pt"})
        _not_found(stub, "get_provisioned_model_throughput")
        stub.add_response("create_provisioned_model_throughput", {"provisionedModelArn": PT}, {
            "provisionedModelName": "bedrock-ws-demo-pt", "modelId": MODEL_A, "modelUnits": 1,
            "tags": [{"key": k, "value": v} for k, v in tags("demo").items()],
            "clientRequestToken": deployment.request_token("bedrock-ws-demo-pt", MODEL_A, 2, replaces=PT)})
        assert deployment.ensure_provisioned_throughput("bedrock-ws-demo-pt", MODEL_A, "demo", generation=2,
                                                        client=bedrock, poll_s=0) == (PT, True)
        stub.add_response("get_custom_model", _model(MODEL_B))
        stub.add_response("get_provisioned_model_throughput", _pt(MODEL_A))
        stub.add_response("update_provisioned_model_throughput", {},
                          {"provisionedModelId": PT, "desiredModelId": MODEL_B})
        assert deployment.ensure_provisioned_throughput("bedrock-ws-demo-pt", MODEL_B, "demo",
                                                        client=bedrock, poll_s=0) == (PT, False)
        stub.add_response("get_provisioned_model_throughput", _pt(MODEL_A, "Updating", desired=MODEL_B))
        stub.add_response("get_provisioned_model_throughput", _pt(MODEL_A, "InService", desired=MODEL_B))
        stub.add_response("get_provisioned_model_throughput", _pt(MODEL_B))
        assert deployment.wait_for_provisioned_throughput(PT, model_arn=MODEL_B, client=bedrock,
                                                          poll_s=0)["modelArn"] == MODEL_B
        stub.assert_no_pending_responses()


# ---- against the in-process sandbox: a real swap of the deployed model ----------------------------


@pytest.fixture()
def sandbox_env(monkeypatch, tmp_path):
    with sandbox_environment(monkeypatch, tmp_path, time_scale=0.05) as server:
        yield server


def _train(workshop_id: str, suffix: str, bucket: str, role: str, uri: str) -> str:
    bedrock = aws.client("bedrock", REGION)
    student = models.get("nova-lite")
    job = bedrock.create_model_customization_job(
        jobName=name(workshop_id, f"ft-{suffix}"), customModelName=name(workshop_id, f"model-{suffix}"),
        roleArn=role, baseModelIdentifier=student.customization_id, trainingDataConfig={"s3Uri": uri},
        outputDataConfig={"s3Uri": f"s3://{bucket}/{iam.OUTPUT_PREFIX}"},
        customModelTags=[{"key": k, "value": v} for k, v in tags(workshop_id).items()],
    )["jobArn"]
    return bedrock.get_model_customization_job(jobIdentifier=job)["jobArn"]


def _wait_model(job_arn: str) -> str:
    bedrock = aws.client("bedrock", REGION)
    deadline = time.monotonic() + 30
    while (job := bedrock.get_model_customization_job(jobIdentifier=job_arn))["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "Completed", job
    return job["outputModelArn"]


def test_sandbox_rerun_with_a_newer_model_swaps_it_in_and_waits(sandbox_env):
    account = aws.account_id(REGION)
    bucket = name("swap", f"{account}-{REGION}")
    s3.ensure_bucket(bucket, REGION, tags=tags("swap"))
    role = iam.ensure_customization_role("swap", bucket, REGION, account)
    student = models.get("nova-lite")
    records = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", student.customization_id)
               for i in range(10)]
    uri = s3.upload_bytes(bucket, f"{iam.TRAINING_PREFIX}train.jsonl", formats.to_jsonl(records))
    first, second = (_wait_model(_train("swap", s, bucket, role, uri)) for s in ("a", "b"))
    dep_name = name("swap", "deployment")
    arn, created = deployment.ensure_on_demand_deployment(dep_name, first, "swap", region=REGION, poll_s=0.05)
    assert created
    assert deployment.wait_for_deployment(arn, model_arn=first, region=REGION, poll_s=0.05)["modelArn"] == first
    again, created = deployment.ensure_on_demand_deployment(dep_name, second, "swap", region=REGION, poll_s=0.05)
    assert (again, created) == (arn, False)
    served = deployment.wait_for_deployment(arn, model_arn=second, region=REGION, poll_s=0.05)
    assert served["modelArn"] == second and served["updateDetails"]["updateStatus"] == "UpdateCompleted"
