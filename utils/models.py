"""The one dated model registry of the series.

Every model ID the notebooks and ``utils`` use lives here, named by role
(student, teacher, judges, comparison models). Nothing else in the series
hard-codes a model ID: look it up with :func:`get` or :func:`profile`.

Facts come from the Amazon Bedrock user guide (supported models,
https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html; customization,
https://docs.aws.amazon.com/bedrock/latest/userguide/custom-model-supported.html; lifecycle,
https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html), researched 2026-11-21. Lifecycles change: notebook 01's preflight re-checks
every ID against ``get_foundation_model`` in the target region before use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

VERIFIED_ON = "2026-11-21"


@dataclass(frozen=True)
class HyperParameter:
    """One customization hyperparameter: Bedrock takes every value as a string."""

    name: str
    kind: type  # int or float
    default: float
    minimum: float
    maximum: float

    def range_text(self) -> str:
        """``1..5`` or ``1e-06..0.0001``: the allowed range as messages show it."""
        return f"{_num(self.minimum)}..{_num(self.maximum)}"

    def api_value(self, value: Any, model: str = "") -> str:
        """``value`` as the string Bedrock expects, or ValueError naming the allowed range.

        Integer hyperparameters take whole numbers only (``3``, ``3.0`` or ``"3"``):
        ``3.7``, ``"3.7"`` and booleans are refused, never truncated, because the job
        would then train with a setting nobody chose.
        """
        where = f" for {model}" if model else ""
        kind = "a whole number" if self.kind is int else "a number"
        wanted = f"{self.name} must be {kind} in {self.range_text()}{where}"
        number: float
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{wanted}, not {value!r} ({type(value).__name__})")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except ValueError:
            raise ValueError(f"{wanted}, not {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{wanted}, not {value!r}")
        if self.kind is int and not number.is_integer():
            low, high = math.floor(number), math.ceil(number)
            raise ValueError(f"{wanted}, not {value!r}: it would not be rounded for you; use {low} or {high}")
        if not self.minimum <= number <= self.maximum:
            raise ValueError(f"{self.name}={value!r} is out of range{where}: {self.range_text()}")
        return str(int(number)) if self.kind is int else repr(number)


# Providers whose serverless models are not sold through AWS Marketplace: no product ID and no
# subscription, so their access needs no aws-marketplace action. Every other provider's model
# (Anthropic, Cohere, AI21, ...) starts a Marketplace subscription on its first call. Source:
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-access-product-ids.html (checked
# 2026-12-06: "Amazon, DeepSeek, Mistral AI, Meta, Qwen, OpenAI").
NOT_ON_MARKETPLACE = frozenset({"amazon", "deepseek", "mistral ai", "meta", "qwen", "openai"})


@dataclass(frozen=True)
class ModelSpec:
    """A Bedrock model as the series uses it."""

    key: str  # short registry name, e.g. "nova-lite"
    name: str  # human name
    provider: str
    model_id: str  # on-demand / in-region ID
    family: str  # format and hyperparameter family, see FAMILY_* below
    body: str  # InvokeModel body family: anthropic | nova | llama | titan
    customization_id: str | None = None  # ID to fine-tune, e.g. "amazon.nova-lite-v1:0:300k"
    customization_regions: tuple[str, ...] = ()
    # Geo prefixes of system-defined inference profiles, in order of preference.
    profile_prefixes: tuple[str, ...] = ()
    requires_profile: bool = False  # the in-region ID is rejected on demand
    deployment: str | None = None  # how a custom model is served: on_demand | provisioned
    price_key: str | None = None  # key into utils.costs price table
    status: str = "ACTIVE"  # ACTIVE | LEGACY | RETIRED
    end_of_life: str | None = None  # ISO date, where known
    notes: str = ""

    @property
    def retired(self) -> bool:
        return self.status == "RETIRED"

    @property
    def on_marketplace(self) -> bool:
        """True when the model is sold through AWS Marketplace (its first call starts a subscription)."""
        return self.provider.lower() not in NOT_ON_MARKETPLACE

    def profile_id(self, prefix: str | None = None) -> str:
        """The inference-profile ID, e.g. ``us.anthropic.claude-sonnet-4-6``."""
        if not self.profile_prefixes:
            return self.model_id
        chosen = prefix or self.profile_prefixes[0]
        return f"{chosen}.{self.model_id}"

    def invocation_id(self) -> str:
        """The ID to invoke on demand before run-time resolution (preflight refines it)."""
        return self.profile_id() if self.requires_profile else self.model_id


# Data-format families (shared with utils.validate_dataset and the sandbox).
FORMAT_CONVERSATION = "bedrock-conversation-2024"  # Nova, Llama 3.2+, Llama 3.3
FORMAT_PROMPT_COMPLETION = "prompt-completion"  # Titan, Cohere, Llama 3.1, Llama 2
FORMAT_CLAUDE_MESSAGES = "claude-messages"  # Claude 3 Haiku
FORMAT_CONTINUED_PRETRAINING = "continued-pretraining"  # {"input": ...}

# family -> data format for FINE_TUNING
FAMILY_FORMATS: dict[str, str] = {
    "nova": FORMAT_CONVERSATION,
    "nova2": FORMAT_CONVERSATION,
    "llama3.1": FORMAT_PROMPT_COMPLETION,
    "llama3.2": FORMAT_CONVERSATION,
    "llama3.3": FORMAT_CONVERSATION,
    "llama2": FORMAT_PROMPT_COMPLETION,
    "titan": FORMAT_PROMPT_COMPLETION,
    "cohere": FORMAT_PROMPT_COMPLETION,
    "claude3": FORMAT_CLAUDE_MESSAGES,
}

_LLAMA_HP = (
    HyperParameter("epochCount", int, 5, 1, 10),
    HyperParameter("batchSize", int, 1, 1, 1),
    HyperParameter("learningRate", float, 1.0e-4, 5.0e-6, 0.1),
)
_NOVA_HP = (
    HyperParameter("epochCount", int, 2, 1, 5),
    HyperParameter("learningRate", float, 1.0e-5, 1.0e-6, 1.0e-4),
    HyperParameter("learningRateWarmupSteps", int, 10, 0, 100),
)

# family -> hyperparameters. Names outside this table are rejected. Ranges checked on 2026-12-06 against
# https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html (Nova),
# https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama31.html (Llama 3.1),
# https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-titan-text.html (Titan Text Lite/Express),
# https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-anth-claude-3.html (Claude 3 Haiku).
HYPERPARAMETERS: dict[str, tuple[HyperParameter, ...]] = {
    "claude3": (
        HyperParameter("epochCount", int, 2, 1, 10),
        HyperParameter("batchSize", int, 32, 4, 256),
        HyperParameter("learningRateMultiplier", float, 1.0, 0.1, 2.0),
        HyperParameter("earlyStoppingThreshold", float, 0.001, 0.0, 0.1),
        HyperParameter("earlyStoppingPatience", int, 2, 1, 10),
    ),
    "llama3.1": _LLAMA_HP,
    "llama3.2": _LLAMA_HP,
    "llama3.3": _LLAMA_HP,  # no page of its own: the Llama 3.1 ranges are our assumption (uncertain)
    "llama2": _LLAMA_HP,
    "titan": (
        HyperParameter("epochCount", int, 5, 1, 10),
        HyperParameter("batchSize", int, 1, 1, 64),
        HyperParameter("learningRate", float, 1.0e-5, 0.0, 1.0),
        HyperParameter("learningRateWarmupSteps", int, 5, 0, 250),
    ),
    "nova": _NOVA_HP,
    # Nova 2 Lite SFT: the docs list the Nova v1 names (uncertain; re-check).
    "nova2": _NOVA_HP,
    "cohere": (
        HyperParameter("epochCount", int, 1, 1, 100),
        HyperParameter("batchSize", int, 8, 8, 8),
        HyperParameter("learningRate", float, 1.0e-5, 5.0e-6, 0.1),
        HyperParameter("earlyStoppingThreshold", float, 0.01, 0.0, 0.1),
        HyperParameter("earlyStoppingPatience", int, 6, 1, 10),
        HyperParameter("evalPercentage", float, 20, 5, 50),
    ),
}


# Base models whose ranges differ from their family's. Titan Text Premier shares the Titan page
# with Express/Lite but has narrower ranges there: epochCount 1-5 (default 2), batchSize fixed
# at 1, learningRate 1e-7..1e-5 (default 1e-6), learningRateWarmupSteps 0-20 (default 5)
# (https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-titan-text.html, checked 2026-12-06).
_TITAN_PREMIER_HP = (
    HyperParameter("epochCount", int, 2, 1, 5),
    HyperParameter("batchSize", int, 1, 1, 1),
    HyperParameter("learningRate", float, 1.0e-6, 1.0e-7, 1.0e-5),
    HyperParameter("learningRateWarmupSteps", int, 5, 0, 20),
)
MODEL_HYPERPARAMETERS: dict[str, tuple[HyperParameter, ...]] = {
    "amazon.titan-text-premier-v1:0:32k": _TITAN_PREMIER_HP,
    "amazon.titan-text-premier-v1:0:32K": _TITAN_PREMIER_HP,
}

MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        # --- Amazon Nova (us-east-1) ------------------------------------------------
        ModelSpec(
            "nova-micro", "Amazon Nova Micro", "Amazon", "amazon.nova-micro-v1:0", "nova", "nova",
            customization_id="amazon.nova-micro-v1:0:128k", customization_regions=("us-east-1",),
            profile_prefixes=("us",), deployment="on_demand", price_key="nova-micro",
        ),
        ModelSpec(
            "nova-lite", "Amazon Nova Lite", "Amazon", "amazon.nova-lite-v1:0", "nova", "nova",
            customization_id="amazon.nova-lite-v1:0:300k", customization_regions=("us-east-1",),
            profile_prefixes=("us",), deployment="on_demand", price_key="nova-lite",
        ),
        ModelSpec(
            "nova-pro", "Amazon Nova Pro", "Amazon", "amazon.nova-pro-v1:0", "nova", "nova",
            customization_id="amazon.nova-pro-v1:0:300k", customization_regions=("us-east-1",),
            profile_prefixes=("us",), deployment="on_demand", price_key="nova-pro",
        ),
        ModelSpec(
            "nova-2-lite", "Amazon Nova 2 Lite", "Amazon", "amazon.nova-2-lite-v1:0", "nova2", "nova",
            customization_id="amazon.nova-2-lite-v1:0:256k", customization_regions=("us-east-1",),
            profile_prefixes=("us", "global"), requires_profile=True, deployment="provisioned",
            notes="On-demand deployment of customized Nova 2 Lite is unverified (uncertain; our assumption).",
        ),
        # --- Meta Llama (customization in us-west-2) --------------------------------
        ModelSpec(
            "llama3-1-8b", "Meta Llama 3.1 8B Instruct", "Meta", "meta.llama3-1-8b-instruct-v1:0",
            "llama3.1", "llama", customization_id="meta.llama3-1-8b-instruct-v1:0:128k",
            customization_regions=("us-west-2",), profile_prefixes=("us",),
            deployment="provisioned", price_key="llama3.1-8b",
        ),
        ModelSpec(
            "llama3-1-70b", "Meta Llama 3.1 70B Instruct", "Meta", "meta.llama3-1-70b-instruct-v1:0",
            "llama3.1", "llama", customization_id="meta.llama3-1-70b-instruct-v1:0:128k",
            customization_regions=("us-west-2",), profile_prefixes=("us",),
            deployment="provisioned", price_key="llama3.1-70b",
        ),
        ModelSpec(
            "llama3-3-70b", "Meta Llama 3.3 70B Instruct", "Meta", "meta.llama3-3-70b-instruct-v1:0",
            "llama3.3", "llama", customization_id="meta.llama3-3-70b-instruct-v1:0:128k",
            customization_regions=("us-west-2",), profile_prefixes=("us",), requires_profile=True,
            deployment="provisioned", price_key="llama3.3-70b",
        ),
        # --- Anthropic Claude (inference profiles) -----------------------------------
        ModelSpec(
            "claude-sonnet-4-6", "Anthropic Claude Sonnet 4.6", "Anthropic",
            "anthropic.claude-sonnet-4-6", "claude4", "anthropic",
            profile_prefixes=("us", "global"), requires_profile=True, price_key="claude-sonnet-4-6",
        ),
        ModelSpec(
            "claude-haiku-4-5", "Anthropic Claude Haiku 4.5", "Anthropic",
            "anthropic.claude-haiku-4-5-20251001-v1:0", "claude4", "anthropic",
            profile_prefixes=("us", "global"), requires_profile=True,
            notes="Not customizable on Bedrock unless get_foundation_model lists FINE_TUNING.",
        ),
        # --- Amazon Titan ------------------------------------------------------------
        ModelSpec(
            "titan-text-express", "Amazon Titan Text G1 - Express", "Amazon",
            "amazon.titan-text-express-v1", "titan", "titan",
            customization_id="amazon.titan-text-express-v1:0:8k",
            customization_regions=("us-east-1", "us-west-2"), deployment="provisioned",
            price_key="titan-text-express",
        ),
        # --- The seeds' 2024 models: retired on Bedrock, replayable in the sandbox -----
        ModelSpec(
            "claude-3-haiku", "Anthropic Claude 3 Haiku", "Anthropic",
            "anthropic.claude-3-haiku-20240307-v1:0", "claude3", "anthropic",
            customization_id="anthropic.claude-3-haiku-20240307-v1:0:200k",
            customization_regions=("us-west-2",), deployment="provisioned",
            price_key="claude-3-haiku", status="RETIRED", end_of_life="2026-09-10",
        ),
        ModelSpec(
            "claude-3-sonnet", "Anthropic Claude 3 Sonnet", "Anthropic",
            "anthropic.claude-3-sonnet-20240229-v1:0", "claude3", "anthropic",
            price_key="claude-3-sonnet", status="RETIRED", end_of_life="2026-07-30",
        ),
        ModelSpec(
            "llama3-70b", "Meta Llama 3 70B Instruct", "Meta", "meta.llama3-70b-instruct-v1:0",
            "llama3", "llama", price_key="llama3-70b", status="RETIRED",
            notes="Missing from every 2026 catalog; no EOL date found.",
        ),
    )
}

# Retired model -> its current replacement (our choice by role; lifecycle page above).
REPLACEMENTS: dict[str, str] = {
    "claude-3-haiku": "nova-lite",
    "claude-3-sonnet": "claude-sonnet-4-6",
    "llama3-70b": "llama3-3-70b",
}


# ---- Base models Bedrock can customize, by the ID a customization job takes -----------------
# The customizable variant of a model carries its context size (``amazon.nova-lite-v1:0:300k``);
# the on-demand ID (``amazon.nova-lite-v1:0``) is refused by CreateModelCustomizationJob.
# Sources: https://docs.aws.amazon.com/bedrock/latest/userguide/custom-model-supported.html
# (current and archived versions) and the ``:<context>`` IDs of the Provisioned Throughput table
# on https://docs.aws.amazon.com/bedrock/latest/userguide/model-ids.html. Retired and legacy
# models stay listed so that historical data can still be checked.

FINE_TUNING = "FINE_TUNING"
CONTINUED_PRE_TRAINING = "CONTINUED_PRE_TRAINING"


@dataclass(frozen=True)
class Customizable:
    """A base model Bedrock can customize, as a customization job names it."""

    customization_id: str
    name: str
    family: str  # key of FAMILY_FORMATS and HYPERPARAMETERS
    types: tuple[str, ...] = (FINE_TUNING,)
    status: str = "ACTIVE"  # ACTIVE | LEGACY | RETIRED
    notes: str = ""


_TITAN_TYPES = (FINE_TUNING, CONTINUED_PRE_TRAINING)

CUSTOMIZABLE: dict[str, Customizable] = {
    entry.customization_id: entry
    for entry in (
        *(
            Customizable(
                spec.customization_id, spec.name, spec.family,
                _TITAN_TYPES if spec.family == "titan" else (FINE_TUNING,), spec.status,
            )
            for spec in MODELS.values()
            if spec.customization_id
        ),
        *(
            Customizable(f"meta.llama3-2-{size}-instruct-v1:0:128k", f"Meta Llama 3.2 {size.upper()} Instruct",
                         "llama3.2", status="RETIRED", notes="End of life 2026-07-07.")
            for size in ("1b", "3b", "11b", "90b")
        ),
        Customizable("amazon.titan-text-lite-v1:0:4k", "Amazon Titan Text G1 - Lite", "titan", _TITAN_TYPES,
                     status="LEGACY", notes="Gone from the newest customization table (uncertain)."),
        # Spelled ``32k`` and ``32K`` in public sources; which one Bedrock lists is uncertain.
        Customizable("amazon.titan-text-premier-v1:0:32k", "Amazon Titan Text Premier", "titan",
                     status="LEGACY", notes="Fine-tuning only (no continued pre-training)."),
        Customizable("amazon.titan-text-premier-v1:0:32K", "Amazon Titan Text Premier", "titan",
                     status="LEGACY", notes="Fine-tuning only (no continued pre-training)."),
        Customizable("cohere.command-text-v14:7:4k", "Cohere Command", "cohere", status="LEGACY"),
        Customizable("cohere.command-light-text-v14:7:4k", "Cohere Command Light", "cohere", status="LEGACY"),
        Customizable("meta.llama2-13b-v1:0:4k", "Meta Llama 2 13B", "llama2", status="RETIRED"),
        Customizable("meta.llama2-70b-v1:0:4k", "Meta Llama 2 70B", "llama2", status="RETIRED"),
    )
}

FAMILY_NAMES: dict[str, str] = {
    "claude3": "Claude 3 Haiku",
    "llama3.1": "Llama 3.1",
    "llama3.2": "Llama 3.2",
    "llama3.3": "Llama 3.3",
    "llama2": "Llama 2",
    "titan": "Titan Text",
    "cohere": "Cohere Command",
    "nova": "Amazon Nova",
    "nova2": "Amazon Nova 2",
}


@dataclass(frozen=True)
class Profile:
    """A named set of models by role, with the region they run in."""

    name: str
    region: str
    student: str
    teacher: str
    judges: tuple[str, ...]
    comparison: tuple[str, ...] = ()
    retired: bool = False
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def roles(self) -> dict[str, str]:
        """Role name -> model key, for every model the profile uses."""
        roles = {"student": self.student, "teacher": self.teacher}
        roles.update({f"judge_{i + 1}": key for i, key in enumerate(self.judges)})
        roles.update({f"comparison_{i + 1}": key for i, key in enumerate(self.comparison)})
        return roles


PROFILES: dict[str, Profile] = {
    "current": Profile(
        name="current",
        region="us-east-1",
        student="nova-lite",
        # Nova Pro rather than Claude Sonnet 4.6 as teacher: utils/costs.py has a dated price
        # for it (Sonnet 4.6 is a gap), and Nova Pro -> Nova Lite is a documented teacher/
        # student pair. Pass teacher="claude-sonnet-4-6" in notebook 03 to switch.
        teacher="nova-pro",
        judges=("claude-sonnet-4-6", "llama3-3-70b"),
        # 06's "more advanced model": Nova Pro, a larger current model of the student's family
        # with a dated price (Claude Sonnet 4.6 also works: 06's comparison_model parameter).
        comparison=("nova-pro",),
        description=(
            "Nova Lite v1 student with on-demand deployment (no hourly throughput); "
            "Nova Pro teacher; Claude Sonnet 4.6 and Llama 3.3 70B judges."
        ),
    ),
    "seed-2024": Profile(
        name="seed-2024",
        region="us-west-2",
        student="claude-3-haiku",
        teacher="claude-3-sonnet",
        judges=("claude-3-sonnet", "llama3-70b"),
        retired=True,
        description=(
            "The seeds' original 2024 experiment. Retired on Bedrock: replay it only in the "
            "sandbox's historical catalog (WORKSHOP_SANDBOX_CATALOG=2024)."
        ),
    ),
}

DEFAULT_PROFILE = "current"


def get(key_or_id: str) -> ModelSpec:
    """Look a model up by registry key, model ID, customization ID or profile ID."""
    if key_or_id in MODELS:
        return MODELS[key_or_id]
    for spec in MODELS.values():
        ids = {spec.model_id, spec.customization_id}
        ids.update(spec.profile_id(p) for p in spec.profile_prefixes)
        if key_or_id in ids:
            return spec
    raise KeyError(
        f"Unknown model {key_or_id!r}. Known keys: {', '.join(sorted(MODELS))}. "
        "Add new models to utils/models.py, the series' only model registry."
    )


def profile(name: str = DEFAULT_PROFILE) -> Profile:
    """A named profile: ``current`` (default) or the retired ``seed-2024``."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"Unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


def replacement(key: str) -> ModelSpec | None:
    """The current replacement for a retired model, if the registry names one."""
    new = REPLACEMENTS.get(get(key).key)
    return MODELS[new] if new else None


def family_of(model_id: str) -> str:
    """Format/hyperparameter family of any customization or model ID, retired ones included.

    Lenient: it also names the family of on-demand and look-alike IDs, for callers that
    only need a body or hyperparameter family. To check that an ID can be fine-tuned,
    use :func:`customizable`, which refuses anything but a customization model ID.
    """
    try:
        return get(model_id).family
    except KeyError:
        pass
    bare = _arn_base(model_id).rsplit("/", 1)[-1]
    if bare in CUSTOMIZABLE:
        return CUSTOMIZABLE[bare].family
    family = _family_by_prefix(bare)
    if family is None:
        raise KeyError(f"No customization family is known for {model_id!r}")
    return family


class UnknownCustomizationModel(ValueError):
    """Not an ID Bedrock customizes; the message names the valid customization IDs."""

    def _render_traceback_(self) -> list[str]:
        """In Jupyter (IPython), show the one-line message instead of a traceback."""
        return [f"{type(self).__name__}: {self}"]


# Geographic prefixes of system-defined inference profiles (``us.amazon.nova-lite-v1:0``).
_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.", re.IGNORECASE)


def customizable(model_id: str) -> Customizable:
    """The catalog entry of a customization model ID, or of an ARN naming one.

    Accepted: ``amazon.nova-lite-v1:0:300k``, its foundation-model ARN, and a custom-model
    ARN (``…:custom-model/<customization ID>/<id>``, to fine-tune a custom model further).
    Anything else raises :class:`UnknownCustomizationModel` saying what to use instead: the
    customizable variant of an on-demand, inference-profile or registry ID, or the valid IDs
    that look like an unknown one (``amazon.nova-ultra-v9:0``).
    """
    bare = _arn_base(model_id)
    entry = CUSTOMIZABLE.get(bare)
    if entry is not None:
        return entry
    raise UnknownCustomizationModel(_customizable_hint(model_id, bare))


def _arn_base(model_id: str) -> str:
    """The model ID inside a foundation-model or custom-model ARN; other strings unchanged."""
    for marker in (":foundation-model/", ":custom-model/"):
        if model_id.startswith("arn:") and marker in model_id:
            return model_id.split(marker, 1)[1].split("/", 1)[0]
    return model_id


def _customizable_hint(model_id: str, bare: str) -> str:
    plain = _PROFILE_PREFIX.sub("", bare).lower()
    ids = list(CUSTOMIZABLE)
    variants = [cid for cid in ids if cid.lower().startswith(plain + ":")]
    try:
        spec: ModelSpec | None = get(bare)
    except KeyError:
        spec = None
    if not variants and spec is not None and spec.customization_id:
        variants = [spec.customization_id]
    if not variants and ":" in plain:  # the right model with another context suffix, or case
        base = plain.rsplit(":", 1)[0]
        variants = [cid for cid in ids if cid.lower() == plain or cid.lower().rsplit(":", 1)[0] == base]
    if variants:
        return (
            f"{model_id!r} is not a customization model ID; to fine-tune "
            f"{CUSTOMIZABLE[variants[0]].name}, use {' or '.join(variants)} (on-demand and "
            "inference-profile IDs are for invoking; a customization job takes the customizable "
            "variant, whose ID ends in its context size)"
        )
    if spec is not None:
        return (
            f"{spec.name} ({model_id!r}) cannot be customized on Amazon Bedrock; "
            f"valid customization IDs: {', '.join(ids)}"
        )
    # IDs of the same provider and model line: amazon.nova-ultra-v9:0 -> every amazon.nova* ID
    line = plain.split("-", 1)[0]
    alike = [cid for cid in ids if cid.lower().split("-", 1)[0] == line]
    return f"unknown base model {model_id!r} (not a customizable Bedrock model); valid customization IDs: {', '.join(alike or ids)}"


def _family_by_prefix(model_id: str) -> str | None:
    rules = (
        ("amazon.nova-2", "nova2"),
        ("amazon.nova-", "nova"),
        ("meta.llama3-1-", "llama3.1"),
        ("meta.llama3-2-", "llama3.2"),
        ("meta.llama3-3-", "llama3.3"),
        ("meta.llama2-", "llama2"),
        ("amazon.titan-text-", "titan"),
        ("cohere.command-", "cohere"),
        ("anthropic.claude-3-haiku", "claude3"),
    )
    lowered = model_id.lower()
    return next((family for prefix, family in rules if lowered.startswith(prefix)), None)


def data_format(model_id: str) -> str:
    """The fine-tuning JSONL format the base model expects."""
    return FAMILY_FORMATS[family_of(model_id)]


def hyperparameters(model_id: str) -> tuple[HyperParameter, ...]:
    """The hyperparameters Bedrock accepts for this base model (its own ranges, else its family's)."""
    own = MODEL_HYPERPARAMETERS.get(_arn_base(model_id).rsplit("/", 1)[-1])
    return own if own is not None else HYPERPARAMETERS[family_of(model_id)]


def default_hyperparameters(model_id: str) -> dict[str, str]:
    """Bedrock's defaults for the family, as the strings the API expects."""
    return {hp.name: _fmt(hp.kind(hp.default)) for hp in hyperparameters(model_id)}


def _fmt(value: float) -> str:
    return str(value) if not isinstance(value, float) else repr(value)


def _num(value: float) -> str:
    """1 for 1.0, 1e-06 for 1e-6: a range bound as people write it."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
