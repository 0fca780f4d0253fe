"""Custom Model Import: bring weights trained elsewhere (e.g. Llama on SageMaker) into Amazon Bedrock.

Steps, as https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-import-model.html
describes them: check the S3 folder (:func:`check_layout`), create the import job
(:func:`ensure_import`, after :func:`utils.costs.estimate_import` and the guard), wait for it
(:func:`wait_for_import`), then invoke the imported model by its ARN in its native completion
format (:func:`complete`, the BedrockCompletion body ``prompt``/``max_gen_len`` -> ``generation``,
https://docs.aws.amazon.com/bedrock/latest/userguide/invoke-imported-model.html).

A cold imported model answers ``ModelNotReadyException`` while Bedrock restores it;
:func:`complete` retries with exponential backoff and says so (the docs advise retrying; a copy
should serve within about five minutes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.state import WorkshopState, tag_list

# config.json ``architectures`` classes (or ``model_type``) Custom Model Import supports
# (model-customization-import-model.html, "Supported architectures", read 2026-12; AWS adds
# architectures over time, so a name missing here may still import: uncertain).
SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "llama", "MllamaForConditionalGeneration": "mllama",
    "MistralForCausalLM": "mistral", "MixtralForCausalLM": "mixtral",
    "T5ForConditionalGeneration": "t5", "GPTBigCodeForCausalLM": "gpt_bigcode",
    "Qwen2ForCausalLM": "qwen2", "Qwen2VLForConditionalGeneration": "qwen2_vl",
    "Qwen2_5_VLForConditionalGeneration": "qwen2_5_vl", "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe", "GptOssForCausalLM": "gpt_oss",
}
COLD_START_CODE = "ModelNotReadyException"


class ImportLayoutError(ValueError):
    """The S3 folder cannot be imported; the message lists what is missing and how to fix it."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


@dataclass(frozen=True)
class Layout:
    s3_uri: str
    architecture: str  # config.json's architectures[0] (or model_type)
    model_type: str
    weights: tuple[str, ...]
    weight_bytes: int


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ImportLayoutError(f"import_s3_uri={uri!r} is not an S3 folder URI (s3://bucket/prefix/).")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, (prefix if not prefix or prefix.endswith("/") else prefix + "/")


def check_layout(s3_uri: str, *, region: str | None = None, client: Any = None) -> Layout:
    """Check the Hugging Face layout Bedrock needs before any job is created.

    Required directly under the prefix: ``config.json``, ``tokenizer_config.json``,
    ``tokenizer.json`` or ``tokenizer.model``, and ``*.safetensors`` weights; ``config.json``
    must name a supported architecture.
    """
    s3 = client or aws.client("s3", region)
    bucket, prefix = _split(s3_uri)
    sizes: dict[str, int] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                sizes[obj["Key"][len(prefix):]] = int(obj.get("Size", 0))
    except ClientError as err:
        raise ImportLayoutError(f"Cannot list {s3_uri}: {aws.error(err)[1]}. Check the bucket name and your "
                                "s3:ListBucket permission.") from err
    missing = [f for f in ("config.json", "tokenizer_config.json") if f not in sizes]
    if "tokenizer.json" not in sizes and "tokenizer.model" not in sizes:
        missing.append("tokenizer.json (or tokenizer.model)")
    weights = tuple(sorted(k for k in sizes if k.endswith(".safetensors") and "/" not in k))
    if not weights:
        missing.append("*.safetensors weights")
    if missing:
        raise ImportLayoutError(
            f"{s3_uri} is missing {', '.join(missing)}. Save the model with Hugging Face "
            "`save_pretrained(..., safe_serialization=True)` plus its tokenizer, and upload the folder.")
    try:
        config = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "config.json")["Body"].read())
    except ValueError as err:
        raise ImportLayoutError(f"{s3_uri}config.json is not valid JSON.") from err
    architectures = config.get("architectures") or []
    model_type = str(config.get("model_type") or "")
    supported = [a for a in architectures if a in SUPPORTED_ARCHITECTURES]
    if not supported and not (not architectures and model_type in SUPPORTED_ARCHITECTURES.values()):
        raise ImportLayoutError(
            f"{s3_uri}config.json names architecture {architectures or model_type or 'none'}, which Custom Model "
            f"Import does not list as supported ({', '.join(sorted(SUPPORTED_ARCHITECTURES))}).")
    return Layout(s3_uri, supported[0] if supported else model_type, model_type, weights,
                  sum(sizes[w] for w in weights))


def require_role(role_arn: str) -> str:
    """The import job's service role, or :class:`ImportLayoutError` saying what it needs."""
    if not role_arn.startswith("arn:aws") or ":role/" not in role_arn:
        raise ImportLayoutError(
            f"import_role_arn={role_arn!r}: set it to a role that trusts bedrock.amazonaws.com with aws:SourceArn "
            "arn:aws:bedrock:<region>:<account>:model-import-job/* and may s3:GetObject/s3:ListBucket the folder "
            "(https://docs.aws.amazon.com/bedrock/latest/userguide/model-import-iam-role.html). 01's customization "
            "role trusts customization jobs only.")
    return role_arn


def ensure_import(job_name: str, model_name: str, role_arn: str, s3_uri: str, state: WorkshopState, *,
                  client: Any = None) -> str:
    """Create the import job unless the imported model or the job already exists; returns the job ARN.

    Both the job and the imported model carry the workshop tags; the model goes into the ledger
    (kind ``imported-model``) as soon as it exists, so 07_cleanup deletes it.
    """
    bedrock = client or aws.client("bedrock", state.region)
    for page in bedrock.get_paginator("list_model_import_jobs").paginate(nameContains=job_name):
        for job in page.get("modelImportJobSummaries", []):
            if job["jobName"] == job_name and job["status"] != "Failed":
                return job["jobArn"]
    tags = tag_list(state.workshop_id, key="key", value="value")
    return bedrock.create_model_import_job(
        jobName=job_name, importedModelName=model_name, roleArn=role_arn,
        modelDataSource={"s3DataSource": {"s3Uri": s3_uri}}, jobTags=tags, importedModelTags=tags,
    )["jobArn"]


def wait_for_import(job_arn: str, state: WorkshopState, *, poll_s: float = 30, timeout_s: float = 3600,
                    client: Any = None) -> str:
    """The imported model's ARN once the job is ``Completed`` (recorded in the ledger); a ``Failed``
    job raises with its ``failureMessage``."""
    bedrock = client or aws.client("bedrock", state.region)
    try:
        job = aws.poll_until(lambda: bedrock.get_model_import_job(jobIdentifier=job_arn), "Completed",
                             failed=("Failed",), poll_s=poll_s, timeout_s=timeout_s)
    except RuntimeError as err:
        raise ImportLayoutError(f"Import job {job_arn} failed: {err}. Fix the folder it names and rerun "
                                "(a failed job is replaced by a new one).") from err
    arn = job["importedModelArn"]
    state.record("imported-model", arn, "05_deployment", billable=True)
    return arn


def cold_start_client(region: str | None = None) -> Any:
    """A runtime client that does not retry ModelNotReadyException itself, so :func:`complete` can
    back off visibly (botocore's standard mode would retry it silently, 3 attempts)."""
    return aws.client("bedrock-runtime", region, config=aws.retry_config(retries={"mode": "standard",
                                                                                   "total_max_attempts": 1}))


def complete(model_arn: str, prompt: str, *, max_gen_len: int = 256, temperature: float = 0.1, top_p: float = 0.9,
             attempts: int = 8, first_wait_s: float = 5.0, max_wait_s: float = 60.0,
             sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = print,
             client: Any = None) -> dict[str, Any]:
    """One completion from an imported model (BedrockCompletion format), retrying the cold start.

    Returns the response body plus ``latency_ms`` and ``cold_retries``.
    """
    runtime = client or cold_start_client()
    body = json.dumps({"prompt": prompt, "max_gen_len": max_gen_len, "temperature": temperature, "top_p": top_p})
    wait = first_wait_s
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            response = runtime.invoke_model(modelId=model_arn, body=body, contentType="application/json",
                                            accept="application/json")
        except ClientError as err:
            if aws.error_code(err) != COLD_START_CODE or attempt == attempts:
                raise
            log(f"attempt {attempt}: the model is cold (ModelNotReadyException); Bedrock is loading it. "
                f"Retrying in {wait:g} s.")
            sleep(wait)
            wait = min(max_wait_s, wait * 2)
            continue
        payload = json.loads(response["body"].read())
        payload["latency_ms"] = int((time.perf_counter() - started) * 1000)
        payload["cold_retries"] = attempt - 1
        return payload
    raise AssertionError("unreachable")
