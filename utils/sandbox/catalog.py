"""The sandbox's dated Bedrock service catalog: foundation models and inference profiles.

Two catalogs exist:

* ``current`` (the default) mirrors Bedrock as of :data:`CURRENT_AS_OF`, from
  AWS's model pages (https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html,
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html). Retired models (Claude 3 Haiku, Claude 3 Sonnet,
  Llama 3 70B, Llama 3.2, ...) are **absent**, as on the real service.
* ``2024`` is the historical catalog the seeds' experiment ran on (Claude 3 Haiku
  fine-tuning in us-west-2, Claude 3 Sonnet and Llama 3 70B on demand), so it can be
  replayed offline with ``WORKSHOP_SANDBOX_CATALOG=2024``.

This module is the *service's* view, written independently of the workshop's own
registry (:mod:`utils.models`) so that the notebooks' preflight checks test
something real. Lifecycle start dates are launch dates as far as we know them;
they are informative only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CURRENT_AS_OF = "2026-11-21"
CATALOGS = ("current", "2024")

# Regions the sandbox serves. Geographic inference profiles (``us.``) route inside
# the US regions; ``global.`` profiles may route anywhere (we list the US regions
# plus a few others as destinations, which is all a client sees).
US_REGIONS = ("us-east-1", "us-east-2", "us-west-2")
GLOBAL_DESTINATIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1")

FT = "FINE_TUNING"
CPT = "CONTINUED_PRE_TRAINING"
DIST = "DISTILLATION"
ON_DEMAND = "ON_DEMAND"
PROVISIONED = "PROVISIONED"
# Models that can only be invoked through an inference profile report this value
# (it is outside botocore's enum, as on the real service).
INFERENCE_PROFILE = "INFERENCE_PROFILE"

# Runtime message for an in-region ID of a profile-only model (what the service answers; see
# https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html).
ON_DEMAND_NOT_SUPPORTED = (
    "Invocation of model ID {model_id} with on-demand throughput isn't supported. Retry your "
    "request with the ID or ARN of an inference profile that contains this model."
)
INVALID_MODEL_IDENTIFIER = "The provided model identifier is invalid."
END_OF_LIFE = (
    "This model version has reached the end of its life. Please refer to the AWS "
    "documentation for more details."
)


@dataclass(frozen=True)
class FoundationModel:
    """One foundation model (or customizable variant) as ``GetFoundationModel`` reports it."""

    model_id: str
    name: str
    provider: str
    body: str  # InvokeModel body family: anthropic | nova | llama | titan
    regions: tuple[str, ...]
    inference_types: tuple[str, ...] = (ON_DEMAND,)
    customizations: tuple[str, ...] = ()
    input_modalities: tuple[str, ...] = ("TEXT",)
    output_modalities: tuple[str, ...] = ("TEXT",)
    streaming: bool = True
    status: str = "ACTIVE"  # ACTIVE | LEGACY
    start_of_life: str | None = None  # ISO dates
    legacy_time: str | None = None
    public_extended_access_time: str | None = None
    end_of_life: str | None = None
    # Geographic prefixes of system-defined inference profiles for this model.
    profile_prefixes: tuple[str, ...] = ()
    # For a customizable ``:<context>`` variant: the model it is a variant of.
    base_id: str | None = None

    @property
    def requires_profile(self) -> bool:
        return INFERENCE_PROFILE in self.inference_types

    @property
    def on_demand(self) -> bool:
        return ON_DEMAND in self.inference_types

    @property
    def provisioned(self) -> bool:
        return PROVISIONED in self.inference_types

    def arn(self, region: str) -> str:
        return f"arn:aws:bedrock:{region}::foundation-model/{self.model_id}"


@dataclass(frozen=True)
class InferenceProfile:
    """A system-defined cross-region inference profile (``us.<model>``, ``global.<model>``)."""

    prefix: str
    model: FoundationModel
    destinations: tuple[str, ...]
    created: str = "2024-08-27"

    @property
    def profile_id(self) -> str:
        return f"{self.prefix}.{self.model.model_id}"

    @property
    def name(self) -> str:
        geo = "Global" if self.prefix == "global" else self.prefix.upper()
        return f"{geo} {self.model.provider} {self.model.name}"

    def arn(self, region: str, account: str) -> str:
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/{self.profile_id}"


def _variants(base: FoundationModel, suffix: str, customizations: tuple[str, ...],
              regions: tuple[str, ...]) -> FoundationModel:
    """The customizable ``:<context>`` variant of ``base``: provisioned-only, customizable."""
    return FoundationModel(
        model_id=f"{base.model_id}:{suffix}", name=base.name, provider=base.provider,
        body=base.body, regions=regions, inference_types=(PROVISIONED,),
        customizations=customizations, input_modalities=base.input_modalities,
        output_modalities=base.output_modalities, streaming=base.streaming, status=base.status,
        start_of_life=base.start_of_life, legacy_time=base.legacy_time,
        public_extended_access_time=base.public_extended_access_time,
        end_of_life=base.end_of_life, base_id=base.model_id,
    )


# ---- the current catalog (2026-11-21) -----------------------------------------------------

_NOVA_MICRO = FoundationModel(
    "amazon.nova-micro-v1:0", "Nova Micro", "Amazon", "nova", US_REGIONS,
    start_of_life="2024-12-03", profile_prefixes=("us",),
)
_NOVA_LITE = FoundationModel(
    "amazon.nova-lite-v1:0", "Nova Lite", "Amazon", "nova", US_REGIONS,
    input_modalities=("TEXT", "IMAGE"), start_of_life="2024-12-03", profile_prefixes=("us",),
)
_NOVA_PRO = FoundationModel(
    "amazon.nova-pro-v1:0", "Nova Pro", "Amazon", "nova", US_REGIONS,
    input_modalities=("TEXT", "IMAGE"), start_of_life="2024-12-03", profile_prefixes=("us",),
)
_NOVA_2_LITE = FoundationModel(
    "amazon.nova-2-lite-v1:0", "Nova 2 Lite", "Amazon", "nova", US_REGIONS,
    inference_types=(INFERENCE_PROFILE,), input_modalities=("TEXT", "IMAGE"),
    start_of_life="2025-12-02", profile_prefixes=("us", "global"),
)
_LLAMA31_8B = FoundationModel(
    "meta.llama3-1-8b-instruct-v1:0", "Llama 3.1 8B Instruct", "Meta", "llama", US_REGIONS,
    start_of_life="2024-07-23", profile_prefixes=("us",),
)
_LLAMA31_70B = FoundationModel(
    "meta.llama3-1-70b-instruct-v1:0", "Llama 3.1 70B Instruct", "Meta", "llama", US_REGIONS,
    start_of_life="2024-07-23", profile_prefixes=("us",),
)
_LLAMA33_70B = FoundationModel(
    "meta.llama3-3-70b-instruct-v1:0", "Llama 3.3 70B Instruct", "Meta", "llama", US_REGIONS,
    inference_types=(INFERENCE_PROFILE,), start_of_life="2024-12-19", profile_prefixes=("us",),
)
_SONNET_46 = FoundationModel(
    "anthropic.claude-sonnet-4-6", "Claude Sonnet 4.6", "Anthropic", "anthropic", US_REGIONS,
    inference_types=(INFERENCE_PROFILE,), input_modalities=("TEXT", "IMAGE"),
    start_of_life="2026-02-17", profile_prefixes=("us", "global"),
)
_HAIKU_45 = FoundationModel(
    "anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "Anthropic", "anthropic",
    US_REGIONS, inference_types=(INFERENCE_PROFILE,), input_modalities=("TEXT", "IMAGE"),
    start_of_life="2025-10-15", profile_prefixes=("us", "global"),
)
_TITAN_EXPRESS = FoundationModel(
    "amazon.titan-text-express-v1", "Titan Text G1 - Express", "Amazon", "titan",
    ("us-east-1", "us-west-2"), start_of_life="2023-09-28",
)

_CURRENT: tuple[FoundationModel, ...] = (
    _NOVA_MICRO, _variants(_NOVA_MICRO, "128k", (FT, DIST), ("us-east-1",)),
    _NOVA_LITE, _variants(_NOVA_LITE, "300k", (FT, DIST), ("us-east-1",)),
    _NOVA_PRO, _variants(_NOVA_PRO, "300k", (FT, DIST), ("us-east-1",)),
    _NOVA_2_LITE, _variants(_NOVA_2_LITE, "256k", (FT,), ("us-east-1",)),
    _LLAMA31_8B, _variants(_LLAMA31_8B, "128k", (FT, DIST), ("us-west-2",)),
    _LLAMA31_70B, _variants(_LLAMA31_70B, "128k", (FT, DIST), ("us-west-2",)),
    _LLAMA33_70B, _variants(_LLAMA33_70B, "128k", (FT, DIST), ("us-west-2",)),
    _SONNET_46, _HAIKU_45,
    _TITAN_EXPRESS, _variants(_TITAN_EXPRESS, "0:8k", (FT, CPT), ("us-east-1", "us-west-2")),
)

# ---- the historical 2024 catalog ------------------------------------------------------------

_CLAUDE3_HAIKU = FoundationModel(
    "anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", "Anthropic", "anthropic",
    US_REGIONS, input_modalities=("TEXT", "IMAGE"), start_of_life="2024-03-13",
    profile_prefixes=("us",),
)
_CLAUDE3_SONNET = FoundationModel(
    "anthropic.claude-3-sonnet-20240229-v1:0", "Claude 3 Sonnet", "Anthropic", "anthropic",
    ("us-east-1", "us-west-2"), input_modalities=("TEXT", "IMAGE"), start_of_life="2024-03-04",
    profile_prefixes=("us",),
)
_LLAMA3_70B = FoundationModel(
    "meta.llama3-70b-instruct-v1:0", "Llama 3 70B Instruct", "Meta", "llama",
    ("us-east-1", "us-west-2"), start_of_life="2024-04-23",
)
_LLAMA3_8B = FoundationModel(
    "meta.llama3-8b-instruct-v1:0", "Llama 3 8B Instruct", "Meta", "llama",
    ("us-east-1", "us-west-2"), start_of_life="2024-04-23",
)

_2024: tuple[FoundationModel, ...] = (
    _CLAUDE3_HAIKU, _variants(_CLAUDE3_HAIKU, "200k", (FT,), ("us-west-2",)),
    _CLAUDE3_SONNET, _LLAMA3_70B, _LLAMA3_8B,
    _LLAMA31_8B, _variants(_LLAMA31_8B, "128k", (FT,), ("us-west-2",)),
    _LLAMA31_70B, _variants(_LLAMA31_70B, "128k", (FT,), ("us-west-2",)),
    _NOVA_MICRO, _variants(_NOVA_MICRO, "128k", (FT,), ("us-east-1",)),
    _NOVA_LITE, _variants(_NOVA_LITE, "300k", (FT,), ("us-east-1",)),
    _NOVA_PRO, _variants(_NOVA_PRO, "300k", (FT,), ("us-east-1",)),
    _TITAN_EXPRESS, _variants(_TITAN_EXPRESS, "0:8k", (FT, CPT), ("us-east-1", "us-west-2")),
)

_MODELS: dict[str, tuple[FoundationModel, ...]] = {"current": _CURRENT, "2024": _2024}

# Models that reached end of life before CURRENT_AS_OF
# (https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html). In the current catalog
# they are absent from every listing; invoking one answers with the end-of-life error.
RETIRED: dict[str, str] = {
    "anthropic.claude-3-haiku-20240307-v1:0": "2026-09-10",
    "anthropic.claude-3-haiku-20240307-v1:0:200k": "2026-09-10",
    "anthropic.claude-3-sonnet-20240229-v1:0": "2026-07-30",
    "anthropic.claude-3-5-sonnet-20240620-v1:0": "2026-07-30",
    "anthropic.claude-3-5-sonnet-20241022-v2:0": "2026-07-30",
    "anthropic.claude-3-5-haiku-20241022-v1:0": "2026-06-19",
    "anthropic.claude-3-7-sonnet-20250219-v1:0": "2026-04-28",
    "anthropic.claude-sonnet-4-20250514-v1:0": "2026-10-14",
    "meta.llama3-70b-instruct-v1:0": "",
    "meta.llama3-8b-instruct-v1:0": "",
    "meta.llama3-2-1b-instruct-v1:0": "2026-07-07",
    "meta.llama3-2-3b-instruct-v1:0": "2026-07-07",
    "meta.llama3-2-11b-instruct-v1:0": "2026-07-07",
    "meta.llama3-2-90b-instruct-v1:0": "2026-07-07",
    "meta.llama3-1-405b-instruct-v1:0": "2026-07-07",
    "amazon.nova-premier-v1:0": "2026-09-14",
}


# ---- per-model request limits (runtime) -------------------------------------------------------

# Largest output length one request may ask for (max_tokens / maxTokens / max_new_tokens /
# max_gen_len), by base model ID; customizable variants and custom models use their base's cap.
# Sources: Claude 3 Haiku / Claude 3 Sonnet 4096 (Anthropic model comparison table; the
# Bedrock model cards); Llama 3.x max_gen_len 2048
# (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html); Titan Text Express
# maxTokenCount 8192 (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-text.html). UNCERTAIN: Nova 10000 (Nova
# user guide "maximum output"; not confirmed for Nova 2 Lite), Claude Sonnet 4.6 and Claude
# Haiku 4.5 64000 (Anthropic's models overview; Bedrock's cap not confirmed). Re-check live.
OUTPUT_TOKEN_CAPS: dict[str, int] = {
    "anthropic.claude-3-haiku-20240307-v1:0": 4096,
    "anthropic.claude-3-sonnet-20240229-v1:0": 4096,
    "anthropic.claude-sonnet-4-6": 64000,  # uncertain
    "anthropic.claude-haiku-4-5-20251001-v1:0": 64000,  # uncertain
    "amazon.nova-micro-v1:0": 10000,  # uncertain
    "amazon.nova-lite-v1:0": 10000,  # uncertain
    "amazon.nova-pro-v1:0": 10000,  # uncertain
    "amazon.nova-2-lite-v1:0": 10000,  # uncertain
    "meta.llama3-8b-instruct-v1:0": 2048,
    "meta.llama3-70b-instruct-v1:0": 2048,
    "meta.llama3-1-8b-instruct-v1:0": 2048,
    "meta.llama3-1-70b-instruct-v1:0": 2048,
    "meta.llama3-3-70b-instruct-v1:0": 2048,
    "amazon.titan-text-express-v1": 8192,
}

# Models that accept ``temperature`` or ``top_p`` but not both (Anthropic's Bedrock notes
# and its migration guide, https://docs.claude.com/en/docs/about-claude/models/migrating-to-claude-4).
SINGLE_SAMPLING_PARAMETER = frozenset({"anthropic.claude-sonnet-4-6", "anthropic.claude-haiku-4-5-20251001-v1:0"})


def _base_id(model_id: str, table: Any) -> str | None:
    """The entry of ``table`` a model ID (or a customizable variant ``<base>:<ctx>``) belongs to."""
    for base in table:
        if model_id == base or model_id.startswith(base + ":"):
            return base
    return None


def output_token_cap(model_id: str) -> int | None:
    """The per-request output cap of a model (see :data:`OUTPUT_TOKEN_CAPS`), None if unknown."""
    base = _base_id(model_id, OUTPUT_TOKEN_CAPS)
    return None if base is None else OUTPUT_TOKEN_CAPS[base]


def single_sampling_parameter(model_id: str) -> bool:
    """Whether the model rejects ``temperature`` together with ``top_p``."""
    return _base_id(model_id, SINGLE_SAMPLING_PARAMETER) is not None


def _iso(date: str | None) -> str | None:
    return f"{date}T00:00:00Z" if date else None


class Catalog:
    """One dated catalog, with per-model lifecycle overrides (the ``legacy_models`` knob)."""

    def __init__(self, name: str = "current", legacy: dict[str, dict[str, str]] | None = None) -> None:
        if name not in _MODELS:
            raise ValueError(f"catalog must be one of {CATALOGS}, got {name!r}")
        self.name = name
        self.legacy = dict(legacy or {})
        self._models = {m.model_id: m for m in _MODELS[name]}

    # ---- foundation models ----------------------------------------------------------------
    def models(self, region: str) -> list[FoundationModel]:
        """The models this region offers, in catalog order."""
        return [m for m in self._models.values() if region in m.regions]

    def model(self, region: str, identifier: str) -> FoundationModel | None:
        """A model of this region by ID or foundation-model ARN, or ``None``."""
        model_id = identifier
        if identifier.startswith("arn:"):
            parts = identifier.split(":", 5)
            if len(parts) < 6 or not parts[5].startswith("foundation-model/"):
                return None
            if parts[3] and parts[3] != region:
                return None
            model_id = parts[5][len("foundation-model/"):]
        found = self._models.get(model_id)
        return found if found is not None and region in found.regions else None

    def is_retired(self, identifier: str) -> bool:
        bare = identifier.rsplit("foundation-model/", 1)[-1]
        return bare in RETIRED and bare not in self._models

    def _override(self, model: FoundationModel) -> dict[str, str] | None:
        """The ``legacy_models`` entry of a model, or of the model a ``:<context>`` variant belongs to."""
        if model.model_id in self.legacy:
            return self.legacy[model.model_id]
        if model.base_id is not None and model.base_id in self.legacy:
            return self.legacy[model.base_id]
        return None

    def status(self, model: FoundationModel) -> str:
        """ACTIVE or LEGACY, honouring the ``legacy_models`` override (a base model's covers its variants)."""
        return "LEGACY" if self._override(model) is not None else model.status

    def lifecycle(self, model: FoundationModel) -> dict[str, Any]:
        override = self._override(model)
        out: dict[str, Any] = {"status": self.status(model)}
        dates = {
            "startOfLifeTime": model.start_of_life,
            "legacyTime": model.legacy_time,
            "publicExtendedAccessTime": model.public_extended_access_time,
            "endOfLifeTime": model.end_of_life,
        }
        if override is not None:
            dates.update({k: v for k, v in override.items() if k in dates})
        out.update({k: _iso(v) for k, v in dates.items() if v})
        return out

    def summary(self, model: FoundationModel, region: str) -> dict[str, Any]:
        """The ``FoundationModelSummary`` / ``FoundationModelDetails`` of a model."""
        return {
            "modelArn": model.arn(region),
            "modelId": model.model_id,
            "modelName": model.name,
            "providerName": model.provider,
            "inputModalities": list(model.input_modalities),
            "outputModalities": list(model.output_modalities),
            "responseStreamingSupported": model.streaming,
            "customizationsSupported": list(model.customizations),
            "inferenceTypesSupported": list(model.inference_types),
            "modelLifecycle": self.lifecycle(model),
        }

    # ---- inference profiles ---------------------------------------------------------------
    def profiles(self, region: str) -> list[InferenceProfile]:
        """System-defined profiles callable from ``region``."""
        out: list[InferenceProfile] = []
        for model in self._models.values():
            if region not in model.regions:
                continue
            for prefix in model.profile_prefixes:
                dest = GLOBAL_DESTINATIONS if prefix == "global" else US_REGIONS
                if prefix == "us" and region not in US_REGIONS:
                    continue
                out.append(InferenceProfile(prefix, model, dest))
        return out

    def profile(self, region: str, identifier: str) -> InferenceProfile | None:
        """A profile by ID (``us.<model>``) or ARN, or ``None``."""
        profile_id = identifier
        if identifier.startswith("arn:"):
            parts = identifier.split(":", 5)
            if len(parts) < 6 or not parts[5].startswith("inference-profile/"):
                return None
            if parts[3] != region:
                return None
            profile_id = parts[5][len("inference-profile/"):]
        for candidate in self.profiles(region):
            if candidate.profile_id == profile_id:
                return candidate
        return None

    def profile_summary(self, profile: InferenceProfile, region: str, account: str) -> dict[str, Any]:
        created = _iso(profile.created)
        return {
            "inferenceProfileName": profile.name,
            "description": (
                f"Routes requests to {profile.model.provider} {profile.model.name} in "
                f"{', '.join(profile.destinations)}."
            ),
            "createdAt": created,
            "updatedAt": created,
            "inferenceProfileArn": profile.arn(region, account),
            "models": [{"modelArn": profile.model.arn(dest)} for dest in profile.destinations],
            "inferenceProfileId": profile.profile_id,
            "status": "ACTIVE",
            "type": "SYSTEM_DEFINED",
        }

