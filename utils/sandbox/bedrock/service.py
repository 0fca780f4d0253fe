"""The emulated Bedrock service: the shared store, the knobs, and one object per resource family.

:class:`Bedrock` is what ``server.py`` serves. It owns the :class:`~.store.Store` (every
resource, tag, token and usage counter, under one lock), the configuration, the catalog, the
fault injector and the moto bridge, and it routes each operation to the family that owns the
resource (the one-line methods below are the whole API, in service-model names, so the server
can dispatch with ``getattr(bedrock, xform_name(operation))``).

Lifecycles advance from wall-clock time multiplied by the ``time_scale`` knob: :meth:`advance`
runs on every request and from a light background ticker, and writes artifacts (metric CSVs,
batch outputs) *before* it publishes the status that announces them.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from utils.sandbox import account_access
from utils.sandbox.bedrock.access import Access
from utils.sandbox.bedrock.batch import Batch
from utils.sandbox.bedrock.config import Config, idempotency_knob, legacy_knob
from utils.sandbox.bedrock.custom_models import CustomModels
from utils.sandbox.bedrock.customization import Customization
from utils.sandbox.bedrock.deployments import Deployments
from utils.sandbox.bedrock.errors import log_internal
from utils.sandbox.bedrock.evaluation import Evaluation
from utils.sandbox.bedrock.foundation import FoundationModels
from utils.sandbox.bedrock.imports import Imports
from utils.sandbox.bedrock.moto_bridge import MotoBridge
from utils.sandbox.bedrock.provisioned import ProvisionedThroughputs
from utils.sandbox.bedrock.runtime import InvokeResult, Runtime, Target
from utils.sandbox.bedrock.store import Store
from utils.sandbox.bedrock.tagging import Tagging
from utils.sandbox.catalog import Catalog

P = dict[str, Any]


class Bedrock:
    """All Bedrock state of one sandbox and every emulated operation."""

    def __init__(self, config: Config | None = None, moto: MotoBridge | None = None) -> None:
        from utils.sandbox.faults import Faults

        self.config = config or Config()
        self.moto = moto or MotoBridge()
        self.access = Access(self.moto)
        self.faults = Faults()
        self.catalog = Catalog(self.config.catalog, self.config.legacy_models)
        # Model access on a fresh account and the caller-permission knobs (account_access.py).
        self.account_access = account_access.AccountAccess()
        self.store = Store()
        self.foundation = FoundationModels(self)
        self.customization = Customization(self)
        self.custom_models = CustomModels(self)
        self.provisioned = ProvisionedThroughputs(self)
        self.deployments = Deployments(self)
        self.batch = Batch(self)
        self.imports = Imports(self)
        self.evaluation = Evaluation(self)
        self.tagging = Tagging(self)
        self.runtime = Runtime(self)

    # ---- shared state -------------------------------------------------------------------------
    @property
    def lock(self) -> Any:
        return self.store.lock

    @property
    def account(self) -> str:
        return self.moto.account

    @property
    def models(self) -> Any:
        """Custom models by ARN."""
        return self.store.models

    @property
    def tags(self) -> dict[str, dict[str, str]]:
        return self.store.tags

    def arn(self, region: str, resource: str) -> str:
        """The ARN of a Bedrock resource of this account (``resource`` = ``type/id``)."""
        return f"arn:aws:bedrock:{region}:{self.account}:{resource}"

    # ---- admin --------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.store.clear()
            self.faults.reset()
            self.moto.reset()
            self.account_access.reset()

    def configure(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """Apply admin knobs; unknown keys or bad values raise ``ValueError`` and change nothing.

        Every knob is validated before any is applied, so a rejected request never leaves
        a half-applied configuration.
        """
        from utils.sandbox.faults import Faults

        with self.lock:
            config = replace(self.config, legacy_models=dict(self.config.legacy_models))
            fault_updates: list[dict[str, Any]] = []
            access_updates: dict[str, Any] = {}
            for key, value in knobs.items():
                if key == "catalog":
                    Catalog(str(value))  # ValueError for an unknown catalog
                    config.catalog = str(value)
                elif key == "time_scale":
                    scale = float(value)
                    if scale < 0:
                        raise ValueError("time_scale must be >= 0")
                    config.time_scale = scale
                elif key == "batch_min_records":
                    config.batch_min_records = max(0, int(value))
                elif key == "legacy_models":
                    config.legacy_models = legacy_knob(value)
                elif key == "concurrent_customization_jobs":
                    if isinstance(value, bool) or int(value) != value or int(value) < 1:
                        raise ValueError("concurrent_customization_jobs must be a whole number >= 1")
                    config.concurrent_customization_jobs = int(value)
                elif key == "idempotency_tokens":
                    config.idempotency_tokens = idempotency_knob(value)
                elif key == "faults":
                    fault_updates.append(value if isinstance(value, dict) else {"profile": value})
                elif key == "latency":
                    fault_updates.append({"latency_ms": float(value) * 1000.0})
                elif key == "latency_ms":
                    fault_updates.append({"latency_ms": value})
                elif key in account_access.KNOBS:
                    access_updates[key] = account_access.AccountAccess.validate(key, value)
                else:
                    raise ValueError(f"unknown sandbox knob {key!r}")
            faults = None
            if fault_updates:
                faults = Faults()
                faults.configure(self.faults.settings())
                for update in fault_updates:
                    faults.configure(update)
            catalog = Catalog(config.catalog, config.legacy_models)
            # Everything is valid: apply.
            self.config, self.catalog = config, catalog
            self.account_access.update(access_updates)
            if faults is not None:
                self.faults.configure(faults.settings())
            return self.settings()

    def settings(self) -> dict[str, Any]:
        return {**self.config.as_dict(), **self.account_access.settings(), "faults": self.faults.settings()}

    def usage_snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of the per-model usage counters, taken under the lock."""
        with self.lock:
            return {model: dict(counts) for model, counts in self.store.usage.items()}

    # ---- lifecycle ------------------------------------------------------------------------------
    def advance(self, now: float | None = None) -> None:
        """Move every resource along its lifecycle up to ``now``."""
        now = time.time() if now is None else now
        store = self.store
        with self.lock:
            for job in list(store.jobs.values()):
                self.customization.advance(job, now)
            for resource in [*store.throughputs.values(), *store.deployments.values()]:
                try:
                    resource.advance(now)
                except Exception as exc:  # noqa: BLE001 - one resource must not break every request
                    log_internal(resource.arn, exc)
            self.imports.advance(now)
            self.evaluation.advance(now)
            due = [batch for batch in list(store.batch_jobs.values()) if self.batch.advance(batch, now)]
        # Batch records run outside the lock (a big job must not stall other requests); the
        # results are published under it.
        for batch in due:
            self.batch.execute(batch)

    # ---- runtime --------------------------------------------------------------------------------
    def resolve_runtime(self, region: str, model_id: str) -> Target:
        return self.runtime.resolve_runtime(region, model_id)

    def invoke(self, region: str, model_id: str, request: bytes | dict[str, Any], *, converse: bool = False,
               faults: bool = True) -> InvokeResult:
        return self.runtime.invoke(region, model_id, request, converse=converse, faults=faults)

    def count_tokens(self, region: str, model_id: str, body: bytes) -> dict[str, Any]:
        return self.runtime.count_tokens(region, model_id, body)

    # ---- operations (bedrock service model names), each served by its family -------------------
    def list_foundation_models(self, region: str, p: P) -> P:
        return self.foundation.list_foundation_models(region, p)

    def get_foundation_model(self, region: str, p: P) -> P:
        return self.foundation.get_foundation_model(region, p)

    def get_foundation_model_availability(self, region: str, p: P) -> P:
        return self.foundation.get_foundation_model_availability(region, p)

    def list_inference_profiles(self, region: str, p: P) -> P:
        return self.foundation.list_inference_profiles(region, p)

    def get_inference_profile(self, region: str, p: P) -> P:
        return self.foundation.get_inference_profile(region, p)

    def create_model_customization_job(self, region: str, p: P) -> P:
        return self.customization.create_model_customization_job(region, p)

    def get_model_customization_job(self, region: str, p: P) -> P:
        return self.customization.get_model_customization_job(region, p)

    def list_model_customization_jobs(self, region: str, p: P) -> P:
        return self.customization.list_model_customization_jobs(region, p)

    def stop_model_customization_job(self, region: str, p: P) -> P:
        return self.customization.stop_model_customization_job(region, p)

    def get_custom_model(self, region: str, p: P) -> P:
        return self.custom_models.get_custom_model(region, p)

    def list_custom_models(self, region: str, p: P) -> P:
        return self.custom_models.list_custom_models(region, p)

    def delete_custom_model(self, region: str, p: P) -> P:
        return self.custom_models.delete_custom_model(region, p)

    def create_provisioned_model_throughput(self, region: str, p: P) -> P:
        return self.provisioned.create_provisioned_model_throughput(region, p)

    def get_provisioned_model_throughput(self, region: str, p: P) -> P:
        return self.provisioned.get_provisioned_model_throughput(region, p)

    def list_provisioned_model_throughputs(self, region: str, p: P) -> P:
        return self.provisioned.list_provisioned_model_throughputs(region, p)

    def update_provisioned_model_throughput(self, region: str, p: P) -> P:
        return self.provisioned.update_provisioned_model_throughput(region, p)

    def delete_provisioned_model_throughput(self, region: str, p: P) -> P:
        return self.provisioned.delete_provisioned_model_throughput(region, p)

    def create_custom_model_deployment(self, region: str, p: P) -> P:
        return self.deployments.create_custom_model_deployment(region, p)

    def get_custom_model_deployment(self, region: str, p: P) -> P:
        return self.deployments.get_custom_model_deployment(region, p)

    def list_custom_model_deployments(self, region: str, p: P) -> P:
        return self.deployments.list_custom_model_deployments(region, p)

    def update_custom_model_deployment(self, region: str, p: P) -> P:
        return self.deployments.update_custom_model_deployment(region, p)

    def delete_custom_model_deployment(self, region: str, p: P) -> P:
        return self.deployments.delete_custom_model_deployment(region, p)

    def create_model_invocation_job(self, region: str, p: P) -> P:
        return self.batch.create_model_invocation_job(region, p)

    def get_model_invocation_job(self, region: str, p: P) -> P:
        return self.batch.get_model_invocation_job(region, p)

    def list_model_invocation_jobs(self, region: str, p: P) -> P:
        return self.batch.list_model_invocation_jobs(region, p)

    def stop_model_invocation_job(self, region: str, p: P) -> P:
        return self.batch.stop_model_invocation_job(region, p)

    def tag_resource(self, region: str, p: P) -> P:
        return self.tagging.tag_resource(region, p)

    def untag_resource(self, region: str, p: P) -> P:
        return self.tagging.untag_resource(region, p)

    def list_tags_for_resource(self, region: str, p: P) -> P:
        return self.tagging.list_tags_for_resource(region, p)

    def create_model_import_job(self, region: str, p: P) -> P:
        return self.imports.create_model_import_job(region, p)

    def get_model_import_job(self, region: str, p: P) -> P:
        return self.imports.get_model_import_job(region, p)

    def list_model_import_jobs(self, region: str, p: P) -> P:
        return self.imports.list_model_import_jobs(region, p)

    def get_imported_model(self, region: str, p: P) -> P:
        return self.imports.get_imported_model(region, p)

    def list_imported_models(self, region: str, p: P) -> P:
        return self.imports.list_imported_models(region, p)

    def delete_imported_model(self, region: str, p: P) -> P:
        return self.imports.delete_imported_model(region, p)

    def create_evaluation_job(self, region: str, p: P) -> P:
        return self.evaluation.create_evaluation_job(region, p)

    def get_evaluation_job(self, region: str, p: P) -> P:
        return self.evaluation.get_evaluation_job(region, p)

    def list_evaluation_jobs(self, region: str, p: P) -> P:
        return self.evaluation.list_evaluation_jobs(region, p)

    def stop_evaluation_job(self, region: str, p: P) -> P:
        return self.evaluation.stop_evaluation_job(region, p)

    def batch_delete_evaluation_job(self, region: str, p: P) -> P:
        return self.evaluation.batch_delete_evaluation_job(region, p)
