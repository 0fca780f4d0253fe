"""The runtime: which model a ``modelId`` names, and InvokeModel / Converse / CountTokens.

A ``modelId`` may be a foundation-model ID or ARN (on-demand models), an inference-profile ID
or ARN, a provisioned-model ARN (InService) or a custom-model-deployment ARN (Active). Bodies
are parsed and rendered by ``bodies.py``; answers come from the stand-ins (``standins/``);
faults (``faults.py``) run before the model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from utils.sandbox.bedrock.custom_models import CustomModel
from utils.sandbox.bedrock.errors import ApiError, not_found, validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.catalog import (
    END_OF_LIFE,
    INVALID_MODEL_IDENTIFIER,
    ON_DEMAND_NOT_SUPPORTED,
    FoundationModel,
)

MALFORMED = "Malformed input request, please reformat your input and try again."

# CountTokens answers only for the Anthropic models AWS lists for it, addressed by their
# foundation-model ID or ARN (https://docs.aws.amazon.com/bedrock/latest/userguide/count-tokens.html,
# "Supported models and Regions for token counting"). Claude models launched only behind
# cross-Region inference profiles (Sonnet 4.6, Haiku 4.5) count tokens on the bedrock-mantle
# endpoint instead, per the same page. Every other model, every inference profile and every
# provisioned-model or deployment ARN gets a ValidationException. The list is uncertain: AWS
# updates it as models launch.
COUNT_TOKENS_MODELS = frozenset({
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-opus-4-20250514-v1:0",
})
COUNT_TOKENS_UNSUPPORTED = "The provided model doesn't support counting tokens."


@dataclass
class Target:
    """A resolved runtime model: how to parse its body and how its stand-in behaves."""

    body: str
    behaviour: Any  # standins.ModelBehaviour
    fault_key: str
    model_name: str


@dataclass
class InvokeResult:
    body: dict[str, Any]
    completion: Any  # standins.Completion
    latency_ms: int


class Runtime(Family):
    def resolve_runtime(self, region: str, model_id: str) -> Target:
        """The model a runtime ``modelId`` names, or the service's error for it."""
        store = self.store
        with store.lock:
            if model_id.startswith("arn:"):
                parts = model_id.split(":", 5)
                resource = parts[5] if len(parts) == 6 else ""
                kind = resource.split("/", 1)[0]
                if kind == "provisioned-model":
                    pt = store.throughputs.get(model_id)
                    if pt is None or pt.region != region:
                        raise not_found(f"Could not find provisioned model {model_id}.")
                    if pt.status not in ("InService", "Updating"):
                        raise validation(f"The provisioned model {model_id} is not in service (status {pt.status}).")
                    return self.target(pt.target, region, f"provisioned:{pt.arn}")
                if kind == "custom-model-deployment":
                    dep = store.deployments.get(model_id)
                    if dep is None or dep.region != region:
                        raise not_found(f"Could not find custom model deployment {model_id}.")
                    if dep.status != "Active":
                        raise validation(f"The custom model deployment {model_id} is not active (status {dep.status}).")
                    return self.target(dep.model, region, f"deployment:{dep.arn}")
                if kind == "imported-model":  # BedrockCompletion body (the Llama shape); cold at first
                    from utils.sandbox.standins import ModelBehaviour

                    imported = self.service.imports.runtime_model(region, model_id)
                    behaviour = ModelBehaviour(model_id=model_id, kind="base", name=imported.name)
                    return Target("llama", behaviour, f"imported:{imported.arn}", "imported-model")
                if kind == "custom-model":
                    if store.models.maybe(region, model_id) is None:
                        raise not_found(f"Could not find custom model {model_id}.")
                    raise validation("The provided model doesn't support on-demand throughput.")
                if kind == "inference-profile":
                    profile = self.catalog.profile(region, model_id)
                    if profile is None:
                        raise validation(INVALID_MODEL_IDENTIFIER)
                    return self.target(profile.model, region, profile.profile_id)
                if kind != "foundation-model":
                    raise validation(INVALID_MODEL_IDENTIFIER)
            profile = self.catalog.profile(region, model_id)
            if profile is not None:
                return self.target(profile.model, region, profile.profile_id)
            model = self.catalog.model(region, model_id)
            if model is None:
                if self.catalog.is_retired(model_id):
                    raise not_found(END_OF_LIFE)
                raise validation(INVALID_MODEL_IDENTIFIER)
            if model.requires_profile:
                raise validation(ON_DEMAND_NOT_SUPPORTED.format(model_id=model.model_id))
            if not model.on_demand:
                raise validation("The provided model doesn't support on-demand throughput.")
            return self.target(model, region, model.model_id)

    @staticmethod
    def target(target: CustomModel | FoundationModel, region: str, fault_key: str) -> Target:
        from utils.sandbox.standins import ModelBehaviour, build_index

        if isinstance(target, CustomModel):
            if target.index is None and target.training_pairs:
                target.index = build_index(target.training_pairs)  # once per custom model
            behaviour = ModelBehaviour(
                model_id=target.base.model_id, kind="custom", training_pairs=list(target.training_pairs),
                hyperparameters=dict(target.hyperparameters), name=target.name,
                training=target.training, index=target.index,
            )
            return Target(target.base.body, behaviour, fault_key, target.base.model_id)
        behaviour = ModelBehaviour(model_id=target.model_id, kind="base", name=target.name)
        return Target(target.body, behaviour, fault_key, target.model_id)

    def invoke(self, region: str, model_id: str, request: bytes | dict[str, Any], *, converse: bool = False,
               faults: bool = True) -> InvokeResult:
        """InvokeModel / Converse through the stand-ins; raises :class:`ApiError`."""
        from utils.sandbox import bodies, standins
        from utils.sandbox.faults import Fault

        target = self.service.resolve_runtime(region, model_id)
        if faults and target.behaviour.kind == "base":  # a runtime call (batch records pass faults=False)
            with self.store.lock:  # a fresh account's model access (account_access.AccountAccess)
                denied = self.service.account_access.invoke_denied(
                    target.model_name, time.time(), self.config.time_scale)
            if denied:
                raise ApiError("AccessDeniedException", denied, 403)
        try:
            if converse:
                payload = request if isinstance(request, dict) else json.loads(request or b"{}")
                prompt = bodies.parse_converse(payload)
            else:
                raw = request if isinstance(request, bytes) else json.dumps(request).encode()
                prompt = bodies.parse_invoke_body(target.body, raw)
                payload = json.loads(raw)
            bodies.check_model_limits(target.model_name, target.body, payload, converse=converse)
        except bodies.BodyError as exc:
            raise validation(str(exc)) from exc
        except ValueError as exc:
            raise validation(MALFORMED) from exc
        estimate = standins.prompt_tokens(prompt) + int(prompt.max_tokens or 0)
        latency = 0.0
        fault_source = self.service.faults
        if faults:
            try:
                fault_source.before_call(target.fault_key, estimate)
            except Fault as fault:
                raise ApiError(fault.code, fault.message, fault.status) from fault
            latency = fault_source.latency_seconds()
        started = time.monotonic()
        completion = standins.generate(prompt, target.behaviour)
        if faults:
            # Bedrock reserves input + max_tokens up front and charges what was used at the end.
            fault_source.settle(target.fault_key, estimate, completion.input_tokens + completion.output_tokens)
        if faults and fault_source.malformed_output():
            completion = standins.malformed(completion)
        with self.store.lock:
            counts = self.store.usage.setdefault(model_id, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
            counts["calls"] += 1
            counts["input_tokens"] += completion.input_tokens
            counts["output_tokens"] += completion.output_tokens
        if latency:
            time.sleep(latency)
        latency_ms = int((time.monotonic() - started) * 1000)
        if converse:
            body = bodies.render_converse(completion, latency_ms)
        else:
            body = bodies.render_invoke_body(target.body, completion, target.model_name)
        return InvokeResult(body=body, completion=completion, latency_ms=latency_ms)

    def count_tokens(self, region: str, model_id: str, body: bytes) -> dict[str, Any]:
        """CountTokens: the same count as the usage fields, the token headers and the TPM buckets."""
        import base64

        from utils.sandbox import bodies, standins

        bare = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") and ":foundation-model/" in model_id else model_id
        if bare not in COUNT_TOKENS_MODELS:
            raise validation(COUNT_TOKENS_UNSUPPORTED)
        target = self.service.resolve_runtime(region, model_id)
        try:
            request = json.loads(body or b"{}").get("input", {})
            if "invokeModel" in request:
                prompt = bodies.parse_invoke_body(target.body, base64.b64decode(request["invokeModel"]["body"]))
            elif "converse" in request:
                prompt = bodies.parse_converse(request["converse"])
            else:
                raise bodies.BodyError("input must contain invokeModel or converse")
        except (ValueError, KeyError, AttributeError) as exc:
            raise validation(str(exc) or "Malformed input request.") from exc
        return {"inputTokens": standins.prompt_tokens(prompt)}
