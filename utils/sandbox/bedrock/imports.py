"""Custom Model Import: import jobs, imported models and their cold start.

Operations (botocore ``bedrock`` service model): CreateModelImportJob, GetModelImportJob,
ListModelImportJobs, GetImportedModel, ListImportedModels, DeleteImportedModel.

An import job runs ``InProgress -> Completed | Failed`` (``lifecycle.IMPORT_JOB``). The S3
folder is checked when the job is created, as the service reads it
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-import-model.html,
"Import source"): Hugging Face weights ``*.safetensors``, ``config.json``,
``tokenizer_config.json`` and ``tokenizer.json`` or ``tokenizer.model``, with an architecture
Bedrock supports. A folder that breaks a rule produces a job that ends ``Failed`` with a
``failureMessage`` naming the rule (the exact wording of Bedrock's messages is our assumption;
AWS documents the rules, not the messages). A completed job creates the imported model
(``imported-model/<12 characters>``).

Imported models are served on demand by their ARN with the BedrockCompletion body
(``prompt``/``max_gen_len`` -> ``generation``, the Llama body shape). A freshly imported model
is cold: its first :data:`COLD_START_CALLS` runtime calls answer ``ModelNotReadyException``
while "Bedrock restores it" (https://docs.aws.amazon.com/bedrock/latest/userguide/invoke-imported-model.html,
"ModelNotReadyException"); the count is our choice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from utils.model_import import SUPPORTED_ARCHITECTURES
from utils.sandbox.bedrock import lifecycle
from utils.sandbox.bedrock.errors import ApiError, conflict, not_found, validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import (
    Table,
    idempotent,
    iso,
    listing,
    matching,
    new_id,
    split_s3,
    tag_dict,
)

# The architectures Custom Model Import lists as supported: the same documented table the
# client-side check uses (one list, so the two cannot drift apart).
SUPPORTED_MODEL_TYPES = frozenset(SUPPORTED_ARCHITECTURES.values())
# Converse (instructSupported) is not available for these (invoke-imported-model.html).
NO_INSTRUCT = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3", "qwen3_moe", "gpt_oss"})
COLD_START_CALLS = 3  # = botocore's standard-mode attempts, so a default client's first call fails visibly
MAX_WEIGHTS_BYTES = 200 * 1024**3  # text models (model-customization-import-model.html)


@dataclass
class ImportedModel:
    arn: str
    name: str
    region: str
    job_arn: str
    job_name: str
    s3_uri: str
    architecture: str
    instruct: bool
    created: float
    cold_calls_left: int = COLD_START_CALLS

    def to_dict(self) -> dict[str, Any]:
        """GetImportedModel."""
        return {
            "modelArn": self.arn, "modelName": self.name, "jobName": self.job_name, "jobArn": self.job_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": self.s3_uri}}, "creationTime": iso(self.created),
            "modelArchitecture": self.architecture, "instructSupported": self.instruct,
            # Custom Model Units per copy: 1 for a tiny stand-in (AWS sizes real models; our choice).
            "customModelUnits": {"customModelUnitsPerModelCopy": 1, "customModelUnitsVersion": "1.0"},
        }

    def summary(self) -> dict[str, Any]:
        """ListImportedModels."""
        return {"modelArn": self.arn, "modelName": self.name, "creationTime": iso(self.created),
                "instructSupported": self.instruct, "modelArchitecture": self.architecture}


@dataclass
class ImportJob:
    arn: str
    name: str
    region: str
    model_name: str
    role_arn: str
    s3_uri: str
    created: float
    ends_at: float
    architecture: str = ""
    failure: str | None = None  # decided at create; published when the job ends
    status: str = lifecycle.IMPORT_JOB.source
    ended: float | None = None
    model_arn: str | None = None
    model_tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """GetModelImportJob."""
        out: dict[str, Any] = {
            "jobArn": self.arn, "jobName": self.name, "importedModelName": self.model_name,
            "roleArn": self.role_arn, "modelDataSource": {"s3DataSource": {"s3Uri": self.s3_uri}},
            "status": self.status, "creationTime": iso(self.created),
            "lastModifiedTime": iso(self.ended or self.created),
        }
        if self.ended is not None:
            out["endTime"] = iso(self.ended)
        if self.model_arn:
            out["importedModelArn"] = self.model_arn
        if self.status == "Failed" and self.failure:
            out["failureMessage"] = self.failure
        return out

    def summary(self) -> dict[str, Any]:
        """ListModelImportJobs."""
        out = {k: v for k, v in self.to_dict().items()
               if k in ("jobArn", "jobName", "status", "lastModifiedTime", "creationTime", "endTime",
                        "importedModelArn", "importedModelName")}
        return out


def layout_problem(keys: list[str], prefix: str, read: Any) -> tuple[str | None, str]:
    """(failure message or None, architecture) of the folder ``prefix`` whose object keys are ``keys``.

    ``read(key)`` returns an object's bytes. Files are looked for directly under the prefix,
    as the Hugging Face layout has them.
    """
    names = {key[len(prefix):].lstrip("/"): key for key in keys}
    missing = [f for f in ("config.json", "tokenizer_config.json") if f not in names]
    if "tokenizer.json" not in names and "tokenizer.model" not in names:
        missing.append("tokenizer.json (or tokenizer.model)")
    weights = [n for n in names if n.endswith(".safetensors")]
    if not weights:
        missing.append("*.safetensors weights")
    if missing:
        return (f"The model files are incomplete: {', '.join(missing)} not found in the S3 location. "
                "Custom Model Import needs the Hugging Face layout: config.json, tokenizer_config.json, "
                "tokenizer.json or tokenizer.model, and the weights in .safetensors format."), ""
    try:
        config = json.loads(read(names["config.json"]) or b"")
        if not isinstance(config, dict):
            raise ValueError("not an object")
    except ValueError:
        return "The config.json file is not valid JSON.", ""
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list):
        architectures = [architectures]
    model_type = str(config.get("model_type") or "")
    for arch in architectures:
        if arch in SUPPORTED_ARCHITECTURES:
            return None, SUPPORTED_ARCHITECTURES[arch]
    if not architectures and model_type in SUPPORTED_MODEL_TYPES:
        return None, model_type
    named = ", ".join(map(str, architectures)) or model_type or "none given"
    return (f"The model architecture {named} is not supported. Supported architectures: "
            f"{', '.join(sorted(SUPPORTED_ARCHITECTURES))}."), ""


class Imports(Family):
    def tables(self) -> tuple[Table[ImportJob], Table[ImportedModel]]:
        """The two tables, kept on the shared store (cleared with it)."""
        return self.store.import_jobs, self.store.imported_models

    # ---- jobs -----------------------------------------------------------------------------------
    @idempotent("jobArn")
    def create_model_import_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        jobs, imported = self.tables()
        if jobs.named(region, p["jobName"]):
            raise validation(f"A model import job with the name {p['jobName']} already exists.")
        if imported.named(region, p["importedModelName"]) or any(
                j.model_name == p["importedModelName"] and j.status == "InProgress" for j in jobs.in_region(region)):
            raise conflict(f"An imported model with the name {p['importedModelName']} already exists.")
        _, job_arn = self.new_job(region, "model-import-job", p["roleArn"])
        uri = ((p.get("modelDataSource") or {}).get("s3DataSource") or {}).get("s3Uri", "")
        try:
            bucket, prefix = split_s3(uri)
        except (ValueError, AttributeError) as exc:
            raise validation(f"The S3 URI {uri} is not valid.") from exc
        if self.moto.bucket_region(bucket) is None:
            raise validation(f"The S3 bucket {bucket} doesn't exist or the role can't access it.")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        failure, architecture = layout_problem(
            self.moto.list_keys(bucket, prefix), prefix, lambda key: self.moto.get_object(bucket, key))
        if failure is None:  # the role must read the folder (the same S3 checks as a customization job)
            _, failure = self.access.check_read(self.moto.role(p["roleArn"]), region, f"s3://{bucket}/{prefix}config.json")
        now = time.time()
        job = jobs.add(ImportJob(
            arn=job_arn, name=p["jobName"], region=region,
            model_name=p["importedModelName"], role_arn=p["roleArn"], s3_uri=uri, created=now,
            ends_at=lifecycle.IMPORT_JOB.due(now, self.config.time_scale), architecture=architecture,
            failure=failure, model_tags=tag_dict(p.get("importedModelTags") or []),
        ))
        if p.get("jobTags"):
            self.store.tags[job.arn] = tag_dict(p["jobTags"])
        return {"jobArn": job.arn}

    def advance(self, now: float) -> None:
        """Finish due jobs (called under the store's lock)."""
        jobs, imported = self.tables()
        for job in list(jobs.values()):
            if job.status != lifecycle.IMPORT_JOB.source or now < job.ends_at:
                continue
            job.ended = job.ends_at
            if job.failure:
                job.status = "Failed"
                continue
            model = imported.add(ImportedModel(
                arn=self.arn(job.region, f"imported-model/{new_id()}"), name=job.model_name, region=job.region,
                job_arn=job.arn, job_name=job.name, s3_uri=job.s3_uri, architecture=job.architecture,
                instruct=job.architecture not in NO_INSTRUCT, created=job.ends_at,
            ))
            if job.model_tags:
                self.store.tags[model.arn] = dict(job.model_tags)
            job.model_arn, job.status = model.arn, lifecycle.IMPORT_JOB.target

    def get_model_import_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.tables()[0].find(region, p["jobIdentifier"]).to_dict()

    def list_model_import_jobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            items = matching(self.tables()[0].in_region(region), p)
            return listing("modelImportJobSummaries", items, p, ImportJob.summary)

    # ---- imported models ------------------------------------------------------------------------
    def get_imported_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.tables()[1].find(region, p["modelIdentifier"]).to_dict()

    def list_imported_models(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            items = matching(self.tables()[1].in_region(region), p, status_attr=None)
            return listing("modelSummaries", items, p, ImportedModel.summary)

    def delete_imported_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            imported = self.tables()[1]
            self.delete(imported, imported.find(region, p["modelIdentifier"]))
            return {}

    # ---- runtime --------------------------------------------------------------------------------
    def runtime_model(self, region: str, model_id: str) -> ImportedModel:
        """The imported model an ARN names, once warm; raises while it is cold (the first calls)."""
        with self.store.lock:
            model = self.tables()[1].get(model_id)
            if model is None or model.region != region:
                raise not_found(f"Could not find imported model {model_id}.")
            if model.cold_calls_left > 0:
                model.cold_calls_left -= 1
                raise ApiError("ModelNotReadyException",
                               "Model is not ready for inference. Wait and try your request again.")
            return model
