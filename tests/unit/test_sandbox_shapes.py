"""Shape test: every emulated operation's parsed boto3 response validates against botocore's output shape.

``botocore.validate.ParamValidator`` checks required members, types and minimums of
the response against the operation's output shape; the test demands 0 violations
and that every Bedrock operation the sandbox implements was exercised.
"""

from __future__ import annotations

import json
from typing import Any

import botocore
import pytest
from botocore.validate import ParamValidator

from tests.unit.test_sandbox_support import (
    Env,
    conversation,
    prompt_completion,
    sandbox_fixture,
    unique,
    wait_for,
)
from utils.sandbox.control import Bedrock

_sandbox = sandbox_fixture()


class Recorder:
    """Calls boto3 operations and keeps each parsed response for validation."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, dict[str, Any]]] = []

    def __call__(self, client: Any, method: str, **kwargs: Any) -> dict[str, Any]:
        response = getattr(client, method)(**kwargs)
        if method == "invoke_model":
            response["body"] = response["body"].read()  # a blob: validate the bytes
            json.loads(response["body"])
        self.calls.append((client, method, response))
        return response

    def violations(self) -> list[str]:
        out = []
        for client, method, response in self.calls:
            model = client.meta.service_model
            op_name = next(op for op in model.operation_names if botocore.xform_name(op) == method)
            shape = model.operation_model(op_name).output_shape
            payload = {k: v for k, v in response.items() if k != "ResponseMetadata"}
            report = ParamValidator().validate(payload, shape) if shape is not None else None
            if report is not None and report.has_errors():
                out.append(f"{op_name}: {report.generate_report()}")
        return out

    def operations(self) -> set[str]:
        return {method for _, method, _ in self.calls}


def test_every_operation_matches_botocore_output_shapes(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.sandbox.bedrock import runtime

    # No model of the sandbox's catalogs is on AWS's CountTokens list; pretend Nova Lite is.
    monkeypatch.setattr(runtime, "COUNT_TOKENS_MODELS", runtime.COUNT_TOKENS_MODELS | {"amazon.nova-lite-v1:0"})
    call = Recorder()
    east, west = sandbox.client("bedrock"), sandbox.client("bedrock", "us-west-2")
    rt_east, rt_west = sandbox.client("bedrock-runtime"), sandbox.client("bedrock-runtime", "us-west-2")
    role = sandbox.role()

    # Catalog.
    call(east, "list_foundation_models")
    call(east, "list_foundation_models", byCustomizationType="FINE_TUNING", byInferenceType="PROVISIONED")
    call(east, "get_foundation_model", modelIdentifier="amazon.nova-lite-v1:0:300k")
    call(east, "get_foundation_model", modelIdentifier="anthropic.claude-sonnet-4-6")
    call(east, "get_foundation_model_availability", modelId="amazon.nova-pro-v1:0")
    call(east, "list_inference_profiles", maxResults=2)
    call(east, "get_inference_profile", inferenceProfileIdentifier="global.anthropic.claude-sonnet-4-6")

    # Customization job (Nova, us-east-1) with a validation set, tags, then its model.
    bucket = sandbox.bucket()
    records = [conversation(i) for i in range(30)]
    train = sandbox.put_jsonl(bucket, "d/train.jsonl", records)
    val = sandbox.put_jsonl(bucket, "d/val.jsonl", records[:8])
    job_arn = call(
        east, "create_model_customization_job", jobName=unique("shape"), customModelName=unique("shape"),
        roleArn=role, baseModelIdentifier="amazon.nova-lite-v1:0:300k",
        trainingDataConfig={"s3Uri": train}, validationDataConfig={"validators": [{"s3Uri": val}]},
        outputDataConfig={"s3Uri": f"s3://{bucket}/out/"}, hyperParameters={"epochCount": "1"},
        jobTags=[{"key": "k", "value": "v"}],
    )["jobArn"]
    call(east, "get_model_customization_job", jobIdentifier=job_arn)  # InProgress
    job = wait_for(lambda: east.get_model_customization_job(jobIdentifier=job_arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed", job.get("failureMessage")
    call(east, "get_model_customization_job", jobIdentifier=job_arn)  # Completed
    call(east, "list_model_customization_jobs", maxResults=1)
    model_arn = job["outputModelArn"]
    call(east, "get_custom_model", modelIdentifier=model_arn)
    call(east, "list_custom_models", maxResults=1)
    # A failed job and a stopped job.
    failed = call(
        east, "create_model_customization_job", jobName=unique("shape"), customModelName=unique("shape"),
        roleArn=sandbox.role(s3=False), baseModelIdentifier="amazon.nova-lite-v1:0:300k",
        trainingDataConfig={"s3Uri": train}, outputDataConfig={"s3Uri": f"s3://{bucket}/out/"},
    )["jobArn"]
    wait_for(lambda: east.get_model_customization_job(jobIdentifier=failed), "status", ("Failed",))
    call(east, "get_model_customization_job", jobIdentifier=failed)
    stopped = east.create_model_customization_job(
        jobName=unique("shape"), customModelName=unique("shape"), roleArn=role,
        baseModelIdentifier="amazon.nova-lite-v1:0:300k", trainingDataConfig={"s3Uri": train},
        outputDataConfig={"s3Uri": f"s3://{bucket}/out/"},
    )["jobArn"]
    call(east, "stop_model_customization_job", jobIdentifier=stopped)
    call(east, "get_model_customization_job", jobIdentifier=stopped)

    # Tags.
    call(east, "tag_resource", resourceARN=model_arn, tags=[{"key": "a", "value": "b"}])
    call(east, "list_tags_for_resource", resourceARN=model_arn)
    call(east, "untag_resource", resourceARN=model_arn, tagKeys=["a"])

    # Deployment (Nova custom model).
    dep_arn = call(east, "create_custom_model_deployment", modelDeploymentName=unique("dep"),
                   modelArn=model_arn)["customModelDeploymentArn"]
    wait_for(lambda: east.get_custom_model_deployment(customModelDeploymentIdentifier=dep_arn), "status", ("Active",))
    call(east, "update_custom_model_deployment", customModelDeploymentIdentifier=dep_arn, modelArn=model_arn)
    call(east, "get_custom_model_deployment", customModelDeploymentIdentifier=dep_arn)
    call(east, "list_custom_model_deployments")
    wait_for(lambda: east.get_custom_model_deployment(customModelDeploymentIdentifier=dep_arn)["updateDetails"],
             "updateStatus", ("UpdateCompleted",))
    call(rt_east, "converse", modelId=dep_arn, messages=[{"role": "user", "content": [{"text": "Revenue of segment 3?"}]}])
    call(rt_east, "invoke_model", modelId=dep_arn, body=json.dumps(
        {"messages": [{"role": "user", "content": [{"text": "Revenue of segment 3?"}]}]}))
    call(rt_east, "count_tokens", modelId="amazon.nova-lite-v1:0",
         input={"converse": {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}})
    call(east, "delete_custom_model_deployment", customModelDeploymentIdentifier=dep_arn)

    # Provisioned throughput (Llama custom model, us-west-2).
    wbucket = sandbox.bucket("us-west-2")
    wtrain = sandbox.put_jsonl(wbucket, "train.jsonl", [prompt_completion(i) for i in range(100)], "us-west-2")
    wjob = west.create_model_customization_job(
        jobName=unique("shape"), customModelName=unique("shape"), roleArn=role,
        baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k", trainingDataConfig={"s3Uri": wtrain},
        outputDataConfig={"s3Uri": f"s3://{wbucket}/out/"}, hyperParameters={"epochCount": "1"},
    )["jobArn"]
    wmodel = wait_for(lambda: west.get_model_customization_job(jobIdentifier=wjob), "status", ("Completed", "Failed"))
    assert wmodel["status"] == "Completed", wmodel.get("failureMessage")
    pt_arn = call(west, "create_provisioned_model_throughput", modelUnits=1, provisionedModelName=unique("pt"),
                  modelId=wmodel["outputModelArn"])["provisionedModelArn"]
    call(west, "get_provisioned_model_throughput", provisionedModelId=pt_arn)  # Creating
    wait_for(lambda: west.get_provisioned_model_throughput(provisionedModelId=pt_arn), "status", ("InService",))
    committed = call(west, "create_provisioned_model_throughput", modelUnits=1, provisionedModelName=unique("pt"),
                     modelId="meta.llama3-1-8b-instruct-v1:0:128k", commitmentDuration="SixMonths")
    call(west, "get_provisioned_model_throughput", provisionedModelId=committed["provisionedModelArn"])
    call(west, "update_provisioned_model_throughput", provisionedModelId=pt_arn, desiredProvisionedModelName=unique("pt"))
    call(west, "list_provisioned_model_throughputs")
    call(rt_west, "invoke_model", modelId=pt_arn, body=json.dumps({"prompt": "Revenue of segment 3?", "max_gen_len": 64}))
    call(west, "delete_provisioned_model_throughput", provisionedModelId=pt_arn)
    call(west, "delete_custom_model", modelIdentifier=wmodel["outputModelArn"])

    # Batch inference.
    sandbox.put_jsonl(bucket, "batch/in.jsonl", [
        {"recordId": f"R{i}", "modelInput": {"messages": [{"role": "user", "content": [{"text": f"Item {i}?"}]}]}}
        for i in range(2)])
    batch = call(east, "create_model_invocation_job", jobName=unique("batch"), roleArn=role,
                 modelId="amazon.nova-micro-v1:0",
                 inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/batch/in.jsonl"}},
                 outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/batch/out/"}})["jobArn"]
    call(east, "get_model_invocation_job", jobIdentifier=batch)  # Submitted
    wait_for(lambda: east.get_model_invocation_job(jobIdentifier=batch), "status", ("Completed",))
    call(east, "get_model_invocation_job", jobIdentifier=batch)
    call(east, "list_model_invocation_jobs")
    other = east.create_model_invocation_job(
        jobName=unique("batch"), roleArn=role, modelId="amazon.nova-micro-v1:0",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/batch/in.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/batch/out/"}})["jobArn"]
    call(east, "stop_model_invocation_job", jobIdentifier=other)

    # Model evaluation job (LLM-as-a-judge on precomputed responses): complete, list, stop, delete.
    eval_data = sandbox.put_jsonl(bucket, "eval/d.jsonl", [
        {"prompt": "Revenue?", "referenceResponse": "12", "modelResponses": [{"response": "12", "modelIdentifier": "ft"}]}])
    eval_request = {
        "roleArn": role, "applicationType": "ModelEvaluation",
        "evaluationConfig": {"automated": {
            "datasetMetricConfigs": [{"taskType": "QuestionAndAnswer",
                                      "dataset": {"name": "d", "datasetLocation": {"s3Uri": eval_data}},
                                      "metricNames": ["Builtin.Correctness", "Builtin.Completeness"]}],
            "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": "amazon.nova-pro-v1:0"}]}}},
        "inferenceConfig": {"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "ft"}}]},
        "outputDataConfig": {"s3Uri": f"s3://{bucket}/eval/out/"},
    }
    ev = call(east, "create_evaluation_job", jobName=unique("ev").lower(), **eval_request)["jobArn"]
    call(east, "get_evaluation_job", jobIdentifier=ev)  # InProgress
    wait_for(lambda: east.get_evaluation_job(jobIdentifier=ev), "status", ("Completed",))
    call(east, "get_evaluation_job", jobIdentifier=ev)
    call(east, "list_evaluation_jobs")
    ev_stop = east.create_evaluation_job(jobName=unique("ev").lower(), **eval_request)["jobArn"]
    call(east, "stop_evaluation_job", jobIdentifier=ev_stop)
    call(east, "batch_delete_evaluation_job", jobIdentifiers=[ev, ev_stop])  # one deleted, one error (Stopping)

    # Custom Model Import: a fabricated Hugging Face folder (file names only, no weights).
    from tests.unit.test_sandbox_imports import tiny_model_folder

    folder = tiny_model_folder(sandbox.client("s3"), bucket, "cmi/")
    imp = call(east, "create_model_import_job", jobName=unique("imp"), importedModelName=unique("imp"), roleArn=role,
               modelDataSource={"s3DataSource": {"s3Uri": folder}})["jobArn"]
    call(east, "get_model_import_job", jobIdentifier=imp)  # InProgress
    imported = wait_for(lambda: east.get_model_import_job(jobIdentifier=imp), "status", ("Completed",))
    call(east, "get_model_import_job", jobIdentifier=imp)
    call(east, "list_model_import_jobs")
    call(east, "get_imported_model", modelIdentifier=imported["importedModelArn"])
    call(east, "list_imported_models")
    call(east, "delete_imported_model", modelIdentifier=imported["importedModelArn"])

    # Runtime on foundation models and profiles.
    call(rt_east, "converse", modelId="us.anthropic.claude-sonnet-4-6",
         messages=[{"role": "user", "content": [{"text": "Hello"}]}], inferenceConfig={"maxTokens": 30})
    call(rt_east, "invoke_model", modelId="amazon.titan-text-express-v1", body=json.dumps({"inputText": "Hi"}))
    call(east, "delete_custom_model", modelIdentifier=model_arn)

    assert call.violations() == []
    implemented = {
        botocore.xform_name(op) for op in east.meta.service_model.operation_names
        if hasattr(Bedrock, botocore.xform_name(op))
    }
    assert implemented - call.operations() == set()
    assert {"invoke_model", "converse", "count_tokens"} <= call.operations()
