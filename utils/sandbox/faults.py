"""Fault injection and rate limits for the sandbox runtime.

The server calls :meth:`Faults.before_call` before a model runs. It enforces
per-model token buckets for requests per minute (RPM) and tokens per minute
(TPM), which answer HTTP 429 ``ThrottlingException`` like Bedrock, and draws
random ``ThrottlingException`` (429), ``ServiceUnavailableException`` (503) and
``ModelTimeoutException`` (408) at configured rates. The HTTP codes are those of
the InvokeModel error list
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html#API_runtime_InvokeModel_Errors),
so botocore's real retry logic is exercised: 429 and 503 are retried by default,
408 is not.

A bucket holds up to one minute of its limit but starts with only ``burst`` of it
(a fraction, default 0.05), so a client that fires a minute's worth of requests
at once is throttled within the first second and has to pace itself. How much
burst Bedrock itself allows is not documented: the small default is our
assumption, chosen so that client-side pacing is exercised.

Randomness comes from ``random.Random`` instances seeded by ``seed``: one
stream for faults, one for malformed output and one for latency jitter. Each
``before_call`` that passes the buckets draws exactly one number, so a given
seed and call order always give the same sequence of faults.

Profiles: ``"off"`` (the default: no limits, no faults, zero latency, for
tests) and ``"realistic"`` (for benchmarks and rehearsals). Setting
``profile`` first resets every knob to that profile's values; other keys in
the same call then override them.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

THROTTLING_MESSAGE = "Too many requests, please wait before trying again."
TOKENS_THROTTLING_MESSAGE = "Too many tokens, please wait before trying again."
SERVICE_UNAVAILABLE_MESSAGE = "Bedrock is unable to process your request."
MODEL_TIMEOUT_MESSAGE = "Model has timed out in processing the request. Try your request again."

PROFILES: dict[str, dict[str, Any]] = {
    "off": {
        "profile": "off",
        "rpm": None,
        "tpm": None,
        "service_unavailable_rate": 0.0,
        "model_timeout_rate": 0.0,
        "malformed_output_rate": 0.0,
        "throttling_rate": 0.0,
        "burst": 0.05,
        "latency_ms": 0,
        "latency_jitter": 0.0,
        "seed": 0,
    },
    # Rough on-demand quotas of a fresh account (our assumption: AWS says new accounts
    # may get less than the published defaults, https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html);
    # rare transient faults; a few hundred ms per call.
    "realistic": {
        "profile": "realistic",
        "rpm": 50,
        "tpm": 100_000,
        "service_unavailable_rate": 0.01,
        "model_timeout_rate": 0.002,
        "malformed_output_rate": 0.005,
        "throttling_rate": 0.0,
        "burst": 0.05,
        "latency_ms": 400,
        "latency_jitter": 0.5,
        "seed": 0,
    },
}

_RATE_KEYS = ("service_unavailable_rate", "model_timeout_rate", "malformed_output_rate", "throttling_rate", "burst")
Limit = int | dict[str, int | None] | None


class Fault(Exception):
    """An injected service error: ``code``, HTTP ``status`` and ``message``."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"Fault({self.code!r}, {self.status}, {self.message!r})"


class _Bucket:
    """A token bucket holding up to ``capacity``, refilled at ``capacity`` per minute.

    It starts at ``burst`` x ``capacity`` (not full): see the module docstring.
    """

    def __init__(self, capacity: int, now: float, burst: float = 1.0) -> None:
        self.capacity = float(capacity)
        self.level = float(capacity) * burst
        self.stamp = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.level = min(self.capacity, self.level + elapsed * self.capacity / 60.0)
        self.stamp = now

    def can_take(self, amount: float) -> bool:
        # A request larger than the whole bucket passes only when the bucket is full.
        return self.level >= min(amount, self.capacity)

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)


def _limit_for(limit: Limit, model_id: str) -> int | None:
    if isinstance(limit, dict):
        value = limit.get(model_id, limit.get("*"))
        return None if value is None else int(value)
    return limit


def _check_limit(key: str, value: Any) -> Limit:
    if value is None:
        return None
    if isinstance(value, dict):
        for model, item in value.items():
            if not isinstance(model, str):
                raise ValueError(f"{key}: model keys must be strings")
            _check_limit(f"{key}[{model}]", item)
        return dict(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, a per-model dict, or null")
    return value


_LATEST: weakref.ref[Faults] | None = None


def _remember(faults: Faults) -> None:
    global _LATEST
    _LATEST = weakref.ref(faults)


def latest() -> Faults | None:
    """The most recently created or configured :class:`Faults` still alive, if any.

    Service Quotas (``quotas.py``) reports these limits when the server does not pass
    its own instance; with one sandbox per process (the usual case) they are the same.
    """
    return _LATEST() if _LATEST is not None else None


class Faults:
    """Per-model token buckets plus seeded random faults and latency.

    ``clock`` (seconds, monotonic) is injectable so tests can move time.
    Thread-safe: the server may call it from several request threads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._settings: dict[str, Any] = dict(PROFILES["off"])
        self._reset_state()
        _remember(self)

    def _reset_state(self) -> None:
        seed = int(self._settings["seed"])
        self._fault_rng = random.Random(seed)
        self._malformed_rng = random.Random(seed + 1)
        self._latency_rng = random.Random(seed + 2)
        self._request_buckets: dict[str, _Bucket] = {}
        self._token_buckets: dict[str, _Bucket] = {}

    def configure(self, settings: dict[str, Any]) -> None:
        """Apply knobs; a ``profile`` key first resets everything to that profile.

        Accepted keys: ``profile`` ("off"|"realistic"), ``rpm`` and ``tpm`` (an int
        applied to each model, a ``{model_id | "*": int | None}`` dict, or None for
        unlimited), ``burst`` (0..1, the fraction of a minute's limit a bucket starts
        with), ``throttling_rate``, ``service_unavailable_rate``, ``model_timeout_rate``,
        ``malformed_output_rate`` (0..1), ``latency_ms`` (>= 0), ``latency_jitter``
        (0..1, a +/- fraction of ``latency_ms``) and ``seed`` (int). Buckets and
        random streams restart on every call. Raises ``ValueError`` on bad input.
        """
        new: dict[str, Any] = dict(self._settings)
        if "profile" in settings:
            profile = settings["profile"]
            if profile not in PROFILES:
                raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
            new = dict(PROFILES[profile])
        for key, value in settings.items():
            if key == "profile":
                continue
            if key not in PROFILES["off"]:
                raise ValueError(f"unknown fault setting {key!r}")
            if key in ("rpm", "tpm"):
                new[key] = _check_limit(key, value)
            elif key in _RATE_KEYS or key == "latency_jitter":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ValueError(f"{key} must be a number between 0 and 1")
                new[key] = float(value)
            elif key == "latency_ms":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError("latency_ms must be a number >= 0")
                new[key] = value
            elif key == "seed":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("seed must be an integer")
                new[key] = value
        if new["throttling_rate"] + new["service_unavailable_rate"] + new["model_timeout_rate"] > 1:
            raise ValueError("throttling_rate + service_unavailable_rate + model_timeout_rate must not exceed 1")
        with self._lock:
            self._settings = new
            self._reset_state()
        _remember(self)

    def reset(self) -> None:
        """Restart the buckets and random streams (settings are kept): a seed replays its faults."""
        with self._lock:
            self._reset_state()

    def settings(self) -> dict[str, Any]:
        """The current knobs (a JSON-serializable copy)."""
        with self._lock:
            return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._settings.items()}

    def _bucket(self, store: dict[str, _Bucket], model_id: str, capacity: int, now: float) -> _Bucket:
        bucket = store.get(model_id)
        if bucket is None or bucket.capacity != capacity:
            bucket = store[model_id] = _Bucket(capacity, now, float(self._settings["burst"]))
        bucket.refill(now)
        return bucket

    def before_call(self, model_id: str, estimated_tokens: int) -> None:
        """Admit one call to ``model_id`` or raise :class:`Fault`.

        Order: the RPM bucket, then the TPM bucket (``estimated_tokens`` = input
        tokens plus requested max output, as Bedrock reserves). A call that passes
        both draws one random number: below ``throttling_rate`` it is throttled
        (429) and consumes nothing; otherwise it consumes from both buckets and the
        same draw may give ServiceUnavailable (503) / ModelTimeout (408).
        """
        with self._lock:
            s = self._settings
            now = self._clock()
            rpm = _limit_for(s["rpm"], model_id)
            tpm = _limit_for(s["tpm"], model_id)
            req_bucket = self._bucket(self._request_buckets, model_id, rpm, now) if rpm else None
            tok_bucket = self._bucket(self._token_buckets, model_id, tpm, now) if tpm else None
            tokens = max(0, int(estimated_tokens))
            if req_bucket is not None and not req_bucket.can_take(1):
                raise Fault("ThrottlingException", 429, THROTTLING_MESSAGE)
            if tok_bucket is not None and not tok_bucket.can_take(tokens):
                raise Fault("ThrottlingException", 429, TOKENS_THROTTLING_MESSAGE)
            draw = self._fault_rng.random()
            throttling = s["throttling_rate"]
            if draw < throttling:
                raise Fault("ThrottlingException", 429, THROTTLING_MESSAGE)
            draw -= throttling
            if req_bucket is not None:
                req_bucket.take(1)
            if tok_bucket is not None:
                tok_bucket.take(tokens)
            unavailable = s["service_unavailable_rate"]
            if draw < unavailable:
                raise Fault("ServiceUnavailableException", 503, SERVICE_UNAVAILABLE_MESSAGE)
            if draw < unavailable + s["model_timeout_rate"]:
                raise Fault("ModelTimeoutException", 408, MODEL_TIMEOUT_MESSAGE)

    def settle(self, model_id: str, reserved: int, used: float) -> None:
        """Return to ``model_id``'s TPM bucket what an admitted call reserved but did not use.

        Bedrock reserves input + ``max_tokens`` when a request starts and charges input +
        output x the burndown rate when it ends
        (https://docs.aws.amazon.com/bedrock/latest/userguide/quotas-token-burndown.html). The
        runtime calls this after the model answers; a bucket never holds more than its capacity.
        """
        with self._lock:
            bucket = self._token_buckets.get(model_id)
            if bucket is not None and reserved > used:
                bucket.level = min(bucket.capacity, bucket.level + (reserved - used))

    def limits(self, model_id: str) -> tuple[int | None, int | None]:
        """``(rpm, tpm)`` configured for ``model_id`` (a model or inference-profile ID); None = unlimited."""
        with self._lock:
            return _limit_for(self._settings["rpm"], model_id), _limit_for(self._settings["tpm"], model_id)

    def malformed_output(self) -> bool:
        """Whether this call's model output should be garbled (seeded draw)."""
        with self._lock:
            return self._malformed_rng.random() < self._settings["malformed_output_rate"]

    def latency_seconds(self) -> float:
        """Seconds the server should wait before answering (``latency_ms`` +/- jitter)."""
        with self._lock:
            base = float(self._settings["latency_ms"]) / 1000.0
            jitter = float(self._settings["latency_jitter"])
            if base <= 0:
                return 0.0
            if jitter <= 0:
                return base
            return max(0.0, base * (1.0 + jitter * (2.0 * self._latency_rng.random() - 1.0)))
