"""Quotas and pacing for :func:`utils.engine.run_calls`: what the account may send, and how fast to send it.

* :func:`quota_limits` reads the account's tokens-per-minute and requests-per-minute quotas for a
  model from Service Quotas (by quota code, then by name: AWS renamed these quotas), and
  :func:`burndown_rate` says how many quota tokens one output token consumes;
* :class:`Pacer` spaces call starts to at most ``rpm`` requests and ``tpm`` tokens per minute;
* :class:`Concurrency` adapts the number of calls in flight (AIMD).

Pacer and Concurrency are pure (the clock is passed in). ``utils.engine`` re-exports every name
here (``engine.quota_limits``, ``engine.Limits`` ...), and calls :func:`quota_limits` through its own
module, so a test that replaces ``engine.quota_limits`` still steers :func:`~utils.engine.run_calls`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from utils.aws import error_code

# The quota warning keeps the engine's logger name: it is the engine's message.
log = logging.getLogger("utils.engine")


# --------------------------------------------------------------------------------------
# Quotas: what the account may send
# --------------------------------------------------------------------------------------

# Geographic prefixes of system-defined inference profiles ("us." + the model ID).
_GEO_PREFIXES = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov"})

# Output tokens count 5x against the TPM quota for Claude 3.7 Sonnet and the Claude 4.x
# family ("How tokens are counted in Amazon Bedrock",
# https://docs.aws.amazon.com/bedrock/latest/userguide/quotas-token-burndown.html, which lists
# Claude Opus 4 / Sonnet 4 and later; aws-samples/sample-quota-dashboard-for-amazon-bedrock
# lib/bedrock-registries.ts sets 5 for Claude 3.7 Sonnet and every Claude 4.x). Models not
# named there (e.g. Claude Sonnet 4.6) are matched by the pattern: uncertain, our assumption.
_BURNDOWN_5X = re.compile(r"^anthropic\.claude-(?:3-7-sonnet|(?:opus|sonnet|haiku)-\d)")

# Quota codes (tokens per minute, requests per minute) by (registry key in utils.models, scope),
# from aws-samples/sample-quota-dashboard-for-amazon-bedrock lib/bedrock-registries.ts. Other
# models (e.g. Claude Sonnet 4.6, whose codes no public source lists) are found by name.
QUOTA_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("nova-micro", "on-demand"): ("L-CFA4FA0D", "L-E118F160"),
    ("nova-micro", "cross-region"): ("L-DC7FF66C", "L-3F110E0F"),
    ("nova-lite", "on-demand"): ("L-70423BF8", "L-E386A278"),
    ("nova-lite", "cross-region"): ("L-7C42E72A", "L-89F8391A"),
    ("nova-pro", "on-demand"): ("L-CE33604C", "L-F2717A44"),
    ("nova-pro", "cross-region"): ("L-C0326783", "L-ED46B8C5"),
    ("nova-2-lite", "cross-region"): ("L-C6F5908D", "L-F06F1187"),
    ("nova-2-lite", "global"): ("L-71C69B70", "L-D5F39C2F"),
    ("claude-haiku-4-5", "cross-region"): ("L-58BE175A", "L-CCA5DF70"),
    ("claude-haiku-4-5", "global"): ("L-9A11C666", "L-E5084BBA"),
    ("claude-3-haiku", "on-demand"): ("L-8CE99163", "L-2DC80978"),
    ("claude-3-sonnet", "on-demand"): ("L-4C35BB2A", "L-F406804E"),
    ("llama3-1-8b", "on-demand"): ("L-9E79C230", "L-19A2ED6C"),
    ("llama3-1-70b", "on-demand"): ("L-48E55E59", "L-ECA5B974"),
    ("llama3-3-70b", "cross-region"): ("L-0E7AA8B7", "L-DEDE703C"),
    ("titan-text-express", "on-demand"): ("L-44992E63", "L-9EAB0D12"),
}

# Current names: "On-demand model inference tokens per minute for Amazon Nova Pro",
# "Cross-region model inference requests per minute for Anthropic Claude Sonnet 4 V1",
# "Global cross-region model inference tokens per minute for ...". Older pages say
# "On-demand InvokeModel tokens per minute for ${model}"
# (https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html).
_RATE_QUOTA_NAME = re.compile(
    r"^(?:(?P<scope>on-demand|cross-region|global cross-region)\s+)?(?:model inference|invokemodel)\s+"
    r"(?P<kind>tokens|requests)\s+per\s+minute\s+for\s+(?P<model>.+)$",
    re.IGNORECASE,
)
_NAME_NOISE = frozenset({"amazon", "anthropic", "meta", "mistral", "cohere", "ai21", "deepseek", "openai", "v1",
                         "v2", "-"})


@dataclass(frozen=True)
class Limits:
    """What the engine paces to: requests and tokens per minute (None = unknown) and where they came from."""

    rpm: float | None = None
    tpm: float | None = None
    burndown: float = 1.0  # each output token counts this many times against ``tpm``
    source: str = "none: the ceiling is learned from throttling"


def burndown_rate(model_id: str) -> float:
    """How many quota tokens one output token consumes (5 for Claude 3.7 / 4.x, else 1)."""
    _, base = _scope_of(model_id)
    return 5.0 if base and _BURNDOWN_5X.match(base) else 1.0


def _scope_of(model_id: str) -> tuple[str | None, str | None]:
    """``(scope, base model ID)``: scope is on-demand, cross-region or global; None for custom/provisioned."""
    ident = model_id
    if ident.startswith("arn:"):
        resource = ident.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        if kind not in ("foundation-model", "inference-profile"):
            return None, None  # custom model deployment, provisioned throughput: no on-demand quota
        ident = rest
    prefix, dot, rest = ident.partition(".")
    if dot and prefix == "global":
        return "global", rest
    if dot and prefix in _GEO_PREFIXES:
        return "cross-region", rest
    return "on-demand", ident


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"\s+", text.lower().strip()) if w} - _NAME_NOISE


def _registry(base: str) -> Any:
    """The series' registry entry for a base model ID, or None."""
    from utils import models

    try:
        return models.get(base)
    except KeyError:
        return None


def _find_by_name(quotas: list[dict[str, Any]], scope: str, kind: str, name: str) -> dict[str, Any] | None:
    """The rate quota for ``name`` in ``scope``: every word of the name, fewest extra words wins."""
    wanted = _words(name)
    best: tuple[int, dict[str, Any]] | None = None
    for quota in quotas:
        match = _RATE_QUOTA_NAME.match(str(quota.get("QuotaName", "")).strip())
        if not match or match["kind"].lower() != kind:
            continue
        quota_scope = (match["scope"] or "on-demand").lower().replace("global cross-region", "global")
        if quota_scope != scope:
            continue
        words = _words(match["model"])
        if wanted <= words and (best is None or len(words - wanted) < best[0]):
            best = (len(words - wanted), quota)
    return best[1] if best else None


def quota_limits(model_id: str, region: str | None = None, *, client: Any = None,
                 model_name: str | None = None) -> Limits:
    """The account's tokens/requests-per-minute quotas for ``model_id`` from Service Quotas.

    ``model_id`` may be a model ID, an inference-profile ID (``us.`` / ``global.`` prefix:
    the cross-Region quotas apply) or an ARN. Looks each quota up by its code, then by
    name (``model_name``, default: the series' registry name for the model). A quota that
    cannot be read, or reads 0, is None (the engine then learns the ceiling from throttling).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    scope, base = _scope_of(model_id)
    burndown = burndown_rate(model_id)
    if scope is None or base is None:
        return Limits(burndown=burndown, source=f"none: {model_id} has no on-demand quota")
    if client is None:
        from utils import aws

        client = aws.client("service-quotas", region)
    spec = _registry(base)
    codes = QUOTA_CODES.get((spec.key, scope)) if spec else None
    name = model_name or (spec.name if spec else None)
    found: dict[str, tuple[float | None, str]] = {}
    listed: list[dict[str, Any]] | None = None
    try:
        for index, kind in enumerate(("tokens", "requests")):
            quota = None
            if codes:
                try:
                    quota = client.get_service_quota(ServiceCode="bedrock", QuotaCode=codes[index])["Quota"]
                except ClientError as exc:
                    if error_code(exc) != "NoSuchResourceException":
                        raise
            if quota is None and name:
                if listed is None:
                    paginator = client.get_paginator("list_service_quotas")
                    listed = [q for page in paginator.paginate(ServiceCode="bedrock") for q in page.get("Quotas", [])]
                quota = _find_by_name(listed, scope, kind, name)
            if quota is not None:
                value = float(quota.get("Value") or 0)
                found[kind] = (value if value > 0 else None, f"{quota.get('QuotaCode')} {quota.get('QuotaName')!r}")
    except (ClientError, BotoCoreError) as exc:
        log.warning("Could not read Service Quotas for %s (%s); the engine will learn the ceiling from "
                    "throttling.", model_id, error_code(exc))
        return Limits(burndown=burndown, source=f"none: Service Quotas unavailable ({error_code(exc)})")
    tpm, tpm_source = found.get("tokens", (None, ""))
    rpm, rpm_source = found.get("requests", (None, ""))
    if tpm is None and rpm is None:
        return Limits(burndown=burndown, source=f"none: no {scope} rate quota found for {model_id}")
    source = "; ".join(part for part in (tpm_source and f"TPM {tpm_source}", rpm_source and f"RPM {rpm_source}")
                       if part)
    return Limits(rpm=rpm, tpm=tpm, burndown=burndown, source=f"Service Quotas: {source}")


# --------------------------------------------------------------------------------------
# Pacing and adaptive concurrency (pure: the clock is passed in, so tests need no sleeping)
# --------------------------------------------------------------------------------------


class Pacer:
    """Spaces call starts to at most ``rpm`` requests and ``tpm`` tokens per minute.

    A generic cell-rate algorithm per meter: each meter holds the earliest time the next
    call may start; a call of cost ``c`` moves it on by ``c / rate``. The request meter
    starts one interval ahead (a bucket that starts empty, like the service's may). A
    start that comes a little late (the dispatcher's wake-up jitter) may catch up by at
    most ``CATCH_UP`` seconds, so the long-run rate is the target and never more.
    """

    CATCH_UP = 0.1

    def __init__(self, rpm: float | None, tpm: float | None, now: float) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._next_request = now + (60.0 / rpm if rpm else 0.0)
        self._next_token = now

    def delay(self, tokens: float, now: float) -> float:
        """Seconds until a call reserving ``tokens`` may start (0 = now)."""
        wait = self._next_request - now if self.rpm else 0.0
        if self.tpm and tokens > 0:
            wait = max(wait, self._next_token - now)
        return max(0.0, wait)

    def take(self, tokens: float, now: float) -> None:
        """Record a start at ``now`` reserving ``tokens``."""
        if self.rpm:
            interval = 60.0 / self.rpm
            self._next_request = max(self._next_request, now - min(interval, self.CATCH_UP)) + interval
        if self.tpm and tokens > 0:
            cost = 60.0 * tokens / self.tpm
            self._next_token = max(self._next_token, now - min(cost, self.CATCH_UP)) + cost

    def refund(self, tokens: float, now: float) -> None:
        """Give back reserved tokens a call did not use."""
        if self.tpm and tokens > 0:
            self._next_token = max(now, self._next_token - 60.0 * tokens / self.tpm)

    def set_rates(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm = rpm, tpm


class Concurrency:
    """Additive-increase / multiplicative-decrease of the number of calls in flight.

    Slow start (one more per success, i.e. doubling per round trip) until the first
    throttle; then one more per round trip. A throttle shrinks the window by ``beta``
    once per round trip (throttles of calls started before the last decrease are the
    same congestion event), but never below ``floor`` (the window the currently measured
    or paced rate needs at the measured latency), nor below 1.
    """

    def __init__(self, maximum: int, initial: int = 4, beta: float = 0.75) -> None:
        self.maximum = max(1, int(maximum))
        self.window = float(min(self.maximum, max(1, initial)))
        self.beta = beta
        self.slow_start = True
        self.last_decrease = float("-inf")
        self.decreases = 0

    @property
    def limit(self) -> int:
        return max(1, min(self.maximum, int(self.window)))

    def on_success(self, started: float) -> None:
        if started < self.last_decrease:
            return
        self.window += 1.0 if self.slow_start else 1.0 / self.window
        self.window = min(self.window, float(self.maximum))

    def on_throttle(self, started: float, now: float, floor: float = 1.0) -> bool:
        """React to a throttle of a call started at ``started``; True if the window shrank."""
        if started < self.last_decrease:
            return False
        self.slow_start = False
        self.window = max(1.0, min(float(self.maximum), max(floor, self.window * self.beta)))
        self.last_decrease = now
        self.decreases += 1
        return True
