"""The sandbox rejects (or reports) what Bedrock does, where a forgiving sandbox would hide a real-AWS defect.

Idempotency tokens outlive deletes, deployment updates take time and swap the model at completion,
stopping takes time, validation metrics land where AWS's samples read them, and CountTokens answers
only for the models AWS lists.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_control import LLAMA, NOVA, code, job_kwargs, message, run_job
from tests.unit.test_sandbox_support import (
    Env,
    conversation,
    prompt_completion,
    sandbox_fixture,
    unique,
    wait_for,
)

_sandbox = sandbox_fixture()


@pytest.fixture(scope="module")
def nova_models(sandbox: Env) -> list[str]:
    """Two Active Nova custom models (us-east-1), trained on different data."""
    first = run_job(sandbox)
    terse = [{**conversation(i), "messages": [
        conversation(i)["messages"][0], {"role": "assistant", "content": [{"text": f"Answer: {i * 7}"}]}]}
        for i in range(40)]
    second = run_job(sandbox, records=terse, validation=False)
    assert first["status"] == second["status"] == "Completed"
    return [first["outputModelArn"], second["outputModelArn"]]


def _deployment(br: object, model_arn: str, **extra: object) -> str:
    return br.create_custom_model_deployment(  # type: ignore[attr-defined]
        modelDeploymentName=unique("dep"), modelArn=model_arn, **extra)["customModelDeploymentArn"]


# ---- idempotency tokens ---------------------------------------------------------------------------------


def test_token_is_remembered_after_the_resource_is_deleted(sandbox: Env, nova_models: list[str]) -> None:
    br = sandbox.client("bedrock")
    token = unique("tok")
    arn = _deployment(br, nova_models[0], clientRequestToken=token)
    wait_for(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=arn), "status", ("Active",))
    br.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
    again = _deployment(br, nova_models[0], clientRequestToken=token)
    assert again == arn  # ignored: the first response, and nothing is created
    with pytest.raises(ClientError) as exc:
        br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert code(exc) == "ResourceNotFoundException"
    assert not br.list_custom_model_deployments(modelArnEquals=nova_models[0])["modelDeploymentSummaries"]

    pt_token = unique("tok")
    pt_kwargs = {"modelUnits": 1, "modelId": nova_models[0], "clientRequestToken": pt_token}
    pt = br.create_provisioned_model_throughput(provisionedModelName=unique("pt"), **pt_kwargs)["provisionedModelArn"]
    br.delete_provisioned_model_throughput(provisionedModelId=pt)
    assert br.create_provisioned_model_throughput(
        provisionedModelName=unique("pt"), **pt_kwargs)["provisionedModelArn"] == pt
    assert not br.list_provisioned_model_throughputs(modelArnEquals=nova_models[0])["provisionedModelSummaries"]


def test_knob_forgets_tokens_on_delete(sandbox: Env, nova_models: list[str]) -> None:
    br = sandbox.client("bedrock")
    sandbox.configure(idempotency_tokens="forget_on_delete")
    try:
        token = unique("tok")
        arn = _deployment(br, nova_models[0], clientRequestToken=token)
        assert _deployment(br, nova_models[0], clientRequestToken=token) == arn  # still there: replayed
        br.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
        fresh = _deployment(br, nova_models[0], clientRequestToken=token)
        assert fresh != arn
        br.delete_custom_model_deployment(customModelDeploymentIdentifier=fresh)
    finally:
        sandbox.configure(idempotency_tokens="remember")
    with pytest.raises(ValueError):
        sandbox.configure(idempotency_tokens="sometimes")


def test_repeated_token_with_other_parameters_returns_the_first_response(sandbox: Env) -> None:
    """Bedrock "ignores the request" (botocore docs); no mismatch error is documented (uncertain)."""
    br = sandbox.client("bedrock")
    token = unique("tok")
    first = br.create_model_customization_job(**job_kwargs(sandbox, clientRequestToken=token))["jobArn"]
    other = job_kwargs(sandbox, clientRequestToken=token)
    assert br.create_model_customization_job(**other)["jobArn"] == first
    assert not br.list_model_customization_jobs(nameContains=other["jobName"])["modelCustomizationJobSummaries"]
    # Tokens are regional and per operation: the same token elsewhere creates.
    west_kwargs = job_kwargs(sandbox, region="us-west-2", base=LLAMA, clientRequestToken=token,
                             records=[prompt_completion(i) for i in range(100)], validation=False)
    west = sandbox.client("bedrock", "us-west-2").create_model_customization_job(**west_kwargs)["jobArn"]
    assert west != first


# ---- deployment updates -----------------------------------------------------------------------------------


def test_deployment_update_takes_time_and_swaps_the_model_at_completion(sandbox: Env, nova_models: list[str]) -> None:
    br = sandbox.client("bedrock")
    rt = sandbox.client("bedrock-runtime")
    bedrock = sandbox.server.bedrock
    old, new = nova_models
    arn = _deployment(br, old)
    wait_for(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=arn), "status", ("Active",))
    sandbox.configure(time_scale=3.0)  # the update lasts 3 s
    try:
        br.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=new)
    finally:
        sandbox.configure(time_scale=0.05)
    during = br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert during["status"] == "Active" and during["modelArn"] == old
    assert during["updateDetails"] == {"modelArn": new, "updateStatus": "Updating"}
    # Traffic still reaches the old model (switching at completion is our assumption).
    assert bedrock.resolve_runtime("us-east-1", arn).behaviour.name == bedrock.models[old].name
    rt.converse(modelId=arn, messages=[{"role": "user", "content": [{"text": "Revenue of segment 3?"}]}])
    with pytest.raises(ClientError) as exc:  # one update at a time
        br.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=old)
    assert code(exc) == "ValidationException" and "already being updated" in message(exc)
    done = wait_for(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["updateDetails"],
                    "updateStatus", ("UpdateCompleted", "UpdateFailed"))
    assert done == {"modelArn": new, "updateStatus": "UpdateCompleted"}
    after = br.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert after["modelArn"] == new and after["lastUpdatedAt"] >= during["lastUpdatedAt"]
    assert bedrock.resolve_runtime("us-east-1", arn).behaviour.name == bedrock.models[new].name
    br.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)


# ---- stopping takes time --------------------------------------------------------------------------------


def test_stopping_takes_time_for_customization_and_batch_jobs(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    bucket = sandbox.bucket()
    uri = sandbox.put_jsonl(bucket, "in.jsonl", [{"recordId": "R1", "modelInput": {"prompt": "hi"}}])
    sandbox.configure(time_scale=5.0)  # stopping lasts 1.5 s
    try:
        job = br.create_model_customization_job(**job_kwargs(sandbox))["jobArn"]
        batch = br.create_model_invocation_job(
            jobName=unique("batch"), roleArn=sandbox.role(), modelId="meta.llama3-1-8b-instruct-v1:0",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": uri}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
        )["jobArn"]
    finally:
        sandbox.configure(time_scale=0.05)
    br.stop_model_customization_job(jobIdentifier=job)
    br.stop_model_invocation_job(jobIdentifier=batch)
    assert br.get_model_customization_job(jobIdentifier=job)["status"] == "Stopping"
    stopping = br.get_model_invocation_job(jobIdentifier=batch)
    assert stopping["status"] == "Stopping" and "endTime" not in stopping
    for call in (lambda: br.stop_model_customization_job(jobIdentifier=job),
                 lambda: br.stop_model_invocation_job(jobIdentifier=batch)):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "ConflictException"
    assert wait_for(lambda: br.get_model_customization_job(jobIdentifier=job), "status", ("Stopped",))["endTime"]
    assert wait_for(lambda: br.get_model_invocation_job(jobIdentifier=batch), "status", ("Stopped",))["endTime"]


# ---- validation metrics where AWS's samples read them -----------------------------------------------


LLAMA_KEY = "validation_artifacts/validation_metrics.csv"
NOVA_KEY = "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv"


@pytest.mark.parametrize(("base", "region", "expected", "absent"), [
    (LLAMA, "us-west-2", LLAMA_KEY, NOVA_KEY),
    (NOVA, "us-east-1", NOVA_KEY, LLAMA_KEY),
])
def test_validation_metrics_path_per_family(sandbox: Env, base: str, region: str, expected: str, absent: str) -> None:
    from utils.customization import read_metrics

    records = [prompt_completion(i) for i in range(100)] if base == LLAMA else [conversation(i) for i in range(40)]
    job = run_job(sandbox, region=region, base=base, records=records)
    assert job["status"] == "Completed", job.get("failureMessage")
    bucket = job["outputDataConfig"]["s3Uri"].split("/")[2]
    folder = f"out/model-customization-job-{job['jobArn'].rsplit('/', 1)[-1]}/"
    keys = sandbox.keys(bucket, folder)
    assert folder + expected in keys and folder + absent not in keys
    frames = read_metrics(job["outputDataConfig"]["s3Uri"], job["jobArn"], client=sandbox.client("s3", region))
    assert list(frames["validation"].columns) == ["step_number", "epoch_number", "validation_loss", "perplexity"]
    assert not frames["training"].empty


# ---- CountTokens ----------------------------------------------------------------------------------------


def test_count_tokens_refuses_models_aws_does_not_list(sandbox: Env) -> None:
    converse = {"converse": {"messages": [{"role": "user", "content": [{"text": "How many tokens?"}]}]}}
    east, west = sandbox.client("bedrock-runtime"), sandbox.client("bedrock-runtime", "us-west-2")
    refused = [
        (east, "amazon.nova-lite-v1:0"),
        (east, "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0"),
        (west, "meta.llama3-1-8b-instruct-v1:0"),
        (east, "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        (east, "anthropic.claude-sonnet-4-6"),
        (east, "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl"),
        (east, "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl"),
    ]
    for client, model_id in refused:
        with pytest.raises(ClientError) as exc:
            client.count_tokens(modelId=model_id, input=converse)
        assert code(exc) == "ValidationException", model_id
        assert message(exc) == "The provided model doesn't support counting tokens.", model_id
    # A listed model that has reached its end of life answers as the runtime does for it.
    with pytest.raises(ClientError) as exc:
        east.count_tokens(modelId="anthropic.claude-3-5-haiku-20241022-v1:0", input=converse)
    assert code(exc) == "ResourceNotFoundException"
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}).encode()
    with pytest.raises(ClientError) as exc:
        east.count_tokens(modelId="amazon.nova-lite-v1:0", input={"invokeModel": {"body": body}})
    assert code(exc) == "ValidationException"
