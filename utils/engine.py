"""The shared engine for many model calls: paced to the quota, adaptive, checkpointed, resumable.

Synthetic data generation, evaluation and judging all call a model once per item. They
share :func:`run_calls`::

    rows = run_calls(questions, call=answer_one, checkpoint="runs/eval/base.jsonl",
                     model_id=model_id, max_tokens=512, desc="base model")

* **Pacing.** With ``model_id``, the engine reads the account's tokens-per-minute and
  requests-per-minute quotas for that model from Service Quotas (by quota code, then by
  name: AWS renamed these quotas), and starts calls evenly spaced just under them
  (``quota_fraction``, default 95 %). Each call reserves its input tokens plus
  ``max_tokens`` times the model's output-token burndown rate, as Bedrock reserves quota
  at the start of a request (https://docs.aws.amazon.com/bedrock/latest/userguide/quotas-token-burndown.html);
  a row that reports its real usage gives the unused part back. ``rpm=``/``tpm=`` set the
  limits by hand instead. Without either, the engine learns the ceiling from throttling.
  The quota lookup, the pacer and the concurrency window live in :mod:`utils.pacing`
  (re-exported here).
* **Adaptive concurrency (AIMD).** The number of calls in flight starts small, doubles
  per round trip until the first ``ThrottlingException`` and then grows additively; each
  round of throttling shrinks it by a quarter, never below what the measured rate needs.
  ``max_workers`` is only the upper bound.
* **Retries.** Throttled calls go back in the queue with jittered exponential backoff
  (``throttle_retries``); ``ModelTimeoutException``, ``ServiceUnavailableException``,
  ``InternalServerException``, connection errors and per-call ``timeout`` likewise
  (``transient_retries``), on top of botocore's own retries. A call that raises
  :class:`RetryableOutput` (an unusable reply, e.g. unparseable) is called again up to
  ``output_retries`` times. ``retry_on`` gives chosen error codes ``extra_attempts``.
* **Checkpoints.** Each success is appended to the checkpoint file as soon as it
  finishes (one JSON object per line, flushed), so a crash or a kernel restart loses at
  most the calls in flight. Only a dict returned by ``call`` is ever stored as a success.
  An item that runs out of retries, or fails otherwise, becomes a row
  ``{"id": ..., "error": "ThrottlingException: ...", "error_kind": ..., "attempts": n}``;
  error rows are reported, not done: the next run tries them again. Rerunning skips every
  item whose key already has a successful row, so nothing is paid for twice.
* **Progress.** A tqdm bar with rate and ETA, and the in-flight window, throttles,
  retries and failures in its postfix. :func:`last_stats` returns the figures of the
  latest run (pass ``stats=RunStats()`` to keep your own).

:class:`UsageTally` adds up input/output tokens per model from Converse ``usage`` or the
InvokeModel token-count headers.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import math
import os
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.aws import error_code  # re-exported: engine.error_code
from utils.pacing import (  # re-exported: engine.quota_limits, engine.Limits ...
    Concurrency,
    Limits,
    Pacer,
    burndown_rate,
    quota_limits,
)

__all__ = [
    "RetryableOutput", "run_calls", "load_checkpoint", "pending", "item_id", "error_code", "UsageTally",
    "usage_from_response", "usage_from_body", "OUTPUT_RETRIES", "Limits", "quota_limits", "burndown_rate", "Pacer", "Concurrency", "RunStats",
    "last_stats", "client_config",
]

log = logging.getLogger(__name__)


class RetryableOutput(Exception):
    """Raised by a `call` whose reply is unusable (e.g. unparseable); the engine retries the item a bounded
    number of times, then records it as failed with `kind` and the message. Never stored as a success."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"

Key = str | int

# Error codes by how the engine treats them. Throttling: back off and retry, shrink the
# window. Transient: jittered retry (botocore's standard mode does not retry
# ModelTimeoutException, HTTP 408). Class names cover botocore's connection errors and
# the engine's own per-call timeout.
THROTTLE_CODES = frozenset({
    "ThrottlingException", "TooManyRequestsException", "Throttling", "ThrottledException",
    "RequestLimitExceeded", "ServiceQuotaExceededException",
})
TRANSIENT_CODES = frozenset({
    "ModelTimeoutException", "ServiceUnavailableException", "ServiceUnavailable", "InternalServerException",
    "InternalFailure", "ModelNotReadyException", "RequestTimeout", "RequestTimeoutException",
    "ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError", "ConnectionClosedError",
    "CallTimeout",
})


OUTPUT_RETRIES = 2  # extra attempts for an unusable reply (RetryableOutput) before the item fails


class CallTimeout(Exception):
    """A call ran longer than ``timeout``: the engine stopped waiting for it (and retries the item)."""


def _check_key(value: Any, key: str) -> Key:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"item[{key!r}] must be a str or int, got {type(value).__name__}: {value!r}")
    return value


def _is_error(row: Mapping[str, Any]) -> bool:
    return bool(row.get("error"))


def item_id(*parts: Any) -> str:
    """A short, stable key for a call from everything that determines its answer.

    Use the model ID, the prompt and the settings: change any of them and the call is
    made again instead of replaying a stale checkpoint row.
    """
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).hexdigest()
    return digest[:16]


def pending(items: Iterable[dict[str, Any]], checkpoint: str | Path, key: str = "id") -> list[dict[str, Any]]:
    """The items a rerun of :func:`run_calls` would still call (no successful row yet)."""
    done = {k for k, row in load_checkpoint(checkpoint, key).items() if "error" not in row}
    return [item for item in items if item[key] not in done]


def load_checkpoint(checkpoint: str | Path, key: str = "id") -> dict[Key, dict[str, Any]]:
    """Rows of a checkpoint file by key: the first successful row, else the latest error row.

    A half-written last line (a crash mid-write) is ignored.
    """
    path = Path(checkpoint)
    rows: dict[Key, dict[str, Any]] = {}
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # truncated by a crash; the item is simply not done
            if not isinstance(row, dict) or key not in row:
                continue
            try:
                item_key = _check_key(row[key], key)
            except TypeError:
                continue
            previous = rows.get(item_key)
            if previous is None or _is_error(previous):
                rows[item_key] = row
    return rows


@dataclass
class RunStats:
    """Figures of one :func:`run_calls` run (filled in as it goes; read them after it returns)."""

    total: int = 0
    already_done: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    throttles: int = 0
    timeouts: int = 0
    retries: Counter = field(default_factory=Counter)  # by error kind
    failures: Counter = field(default_factory=Counter)  # by error kind
    peak_concurrency: int = 0
    concurrency: int = 0
    limits: Limits = field(default_factory=Limits)
    target_rpm: float | None = None
    target_tpm: float | None = None
    started: float = 0.0
    elapsed: float = 0.0

    @property
    def requests_per_minute(self) -> float:
        """Successful calls per minute over the run."""
        return 60.0 * self.succeeded / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        parts = [f"{self.succeeded} ok", f"{self.failed} failed", f"{self.already_done} from checkpoint",
                 f"{self.throttles} throttled", f"{self.requests_per_minute:.0f} calls/min",
                 f"peak {self.peak_concurrency} in flight"]
        if self.failures:
            parts.append("failures: " + ", ".join(f"{k}={v}" for k, v in sorted(self.failures.items())))
        return "; ".join(parts)


_LAST_STATS: RunStats | None = None


def last_stats() -> RunStats | None:
    """The :class:`RunStats` of the latest :func:`run_calls` in this process."""
    return _LAST_STATS


def client_config(timeout: float = 120.0, max_attempts: int = 3, **overrides: Any):
    """A botocore ``Config`` for runtime clients driven by :func:`run_calls`.

    Standard retry mode with few attempts, so throttling reaches the engine (which paces
    and adapts) instead of being absorbed by botocore's adaptive mode; ``timeout`` is the
    per-request read timeout in seconds.
    """
    from botocore.config import Config

    settings: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": max_attempts},
        "connect_timeout": 10,
        "read_timeout": timeout,
        "max_pool_connections": 64,
        "user_agent_extra": "bedrock-finetuning-workshop",
    }
    settings.update(overrides)
    return Config(**settings)


# --------------------------------------------------------------------------------------
# run_calls
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Attempt:
    key: Key
    item: dict
    started: float
    tokens: float
    deadline: float
    abandoned: bool = False
    written: bool = False


def _estimate_input_tokens(item: Mapping[str, Any]) -> int:
    """A rough input-token estimate from the item's text (4 characters per token, rounded up)."""
    chars = sum(len(v) for v in item.values() if isinstance(v, str))
    return max(1, math.ceil(chars / 4))


def _row_usage(row: Mapping[str, Any]) -> tuple[int | None, int | None]:
    if "input_tokens" in row or "output_tokens" in row:
        return _int_or_none(row.get("input_tokens")), _int_or_none(row.get("output_tokens"))
    try:
        return usage_from_response(row)
    except (TypeError, ValueError):
        return None, None


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base x 2^attempt)]."""
    return random.uniform(0.0, min(cap, base * 2.0**attempt)) if base > 0 else 0.0


def _resolve_limits(model_id: str | None, rpm: float | None, tpm: float | None, region: str | None,
                    use_quotas: bool) -> Limits:
    burndown = burndown_rate(model_id) if model_id else 1.0
    if rpm or tpm:
        return Limits(rpm=rpm, tpm=tpm, burndown=burndown, source="arguments rpm/tpm")
    if model_id and use_quotas:
        return quota_limits(model_id, region)
    return Limits(burndown=burndown)


def run_calls(
    items: Iterable[dict],
    call: Callable[[dict], dict],
    checkpoint: str | Path,
    key: str = "id",
    max_workers: int = 64,
    desc: str = "",
    progress: bool = True,
    retry_on: tuple[str, ...] = (),
    extra_attempts: int = 3,
    retry_base_delay: float = 2.0,
    *,
    model_id: str | None = None,
    region: str | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    max_tokens: int | Callable[[dict], int] | None = None,
    input_tokens: Callable[[dict], int] | None = None,
    quota_fraction: float = 0.95,
    use_quotas: bool = True,
    throttle_retries: int = 10,
    transient_retries: int = 4,
    output_retries: int = OUTPUT_RETRIES,
    backoff_base: float = 0.5,
    backoff_cap: float = 20.0,
    timeout: float | None = 900.0,
    initial_workers: int = 4,
    stats: RunStats | None = None,
) -> list[dict]:
    """Run ``call(item)`` for every item not yet done: paced, adaptive, checkpointed as JSONL.

    Args:
        items: dicts, each with a unique ``item[key]`` (str or int).
        call: returns a JSON-serialisable dict for one item. Raise :class:`RetryableOutput`
            for an unusable reply; other exceptions are classified (throttling, transient,
            other) and captured per item.
        checkpoint: the JSONL file to append to (parent folders are created).
        key: the item field that identifies it; every row written carries it.
        max_workers: the most calls in flight; the engine finds the right number below it.
        desc, progress: the tqdm progress bar (off under pytest).
        retry_on, extra_attempts, retry_base_delay: error codes (or exception class names)
            that get ``extra_attempts`` more tries with jittered exponential backoff from
            ``retry_base_delay`` seconds, instead of their class's policy.
        model_id: the model or inference profile the calls invoke: its Service Quotas
            limits and burndown rate drive the pacing. ``region``: where to read them.
        rpm, tpm: requests / tokens per minute to pace to instead of the quotas.
        max_tokens: the output cap each call requests (an int or ``f(item)``): reserved
            against TPM x the burndown rate. ``input_tokens``: ``f(item)`` estimating the
            prompt's tokens (default: the item's text / 4).
        quota_fraction: pace to this share of the limits (just under them).
        throttle_retries, transient_retries, output_retries: retries per item by class.
        backoff_base, backoff_cap: jittered exponential backoff (seconds) for throttling
            (half the base) and transient errors.
        timeout: seconds after which a call in flight is abandoned and retried (None: wait).
        initial_workers: the starting window of the adaptive concurrency.
        stats: a :class:`RunStats` to fill (also available as :func:`last_stats`).

    Returns:
        One row per input item, in input order: the stored or new result (with ``key``
        set), or an error row ``{key: ..., "error": "<ExceptionClass>: message",
        "error_kind": ..., "attempts": n}``. Error rows are not "done": the next run
        retries them.

    Raises:
        ValueError: two items share a key, or a bad setting.
        TypeError: an item has no usable key.
    """
    global _LAST_STATS
    from tqdm.auto import tqdm

    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    if not 0 < quota_fraction <= 1:
        raise ValueError("quota_fraction must be in (0, 1]")
    item_list = list(items)
    keys: list[Key] = []
    seen: set[Key] = set()
    duplicates: list[Key] = []
    for index, item in enumerate(item_list):
        if not isinstance(item, Mapping) or key not in item:
            raise TypeError(f"item {index} has no {key!r} field: every item needs a unique key")
        item_key = _check_key(item[key], key)
        if item_key in seen and item_key not in duplicates:
            duplicates.append(item_key)
        seen.add(item_key)
        keys.append(item_key)
    if duplicates:
        shown = ", ".join(repr(k) for k in duplicates[:10])
        raise ValueError(
            f"Duplicate {key!r} values in items: {shown}"
            + (f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else "")
            + f". Each item needs a unique {key!r} so the checkpoint can tell them apart."
        )

    path = Path(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = load_checkpoint(path, key)
    results: dict[Key, dict] = {k: stored[k] for k in keys if k in stored and not _is_error(stored[k])}
    todo = [(k, item) for k, item in zip(keys, item_list, strict=True) if k not in results]
    stats = stats if stats is not None else RunStats()
    stats.total, stats.already_done = len(keys), len(results)
    _LAST_STATS = stats
    if todo:
        limits = _resolve_limits(model_id, rpm, tpm, region, use_quotas)
        stats.limits = limits
        _ensure_trailing_newline(path)
        quiet = not progress or "PYTEST_CURRENT_TEST" in os.environ
        bar = tqdm(total=len(keys), initial=len(results), desc=desc or None, disable=quiet)
        runner = _Runner(
            call=call, key=key, path=path, limits=limits, quota_fraction=quota_fraction, max_tokens=max_tokens,
            input_tokens=input_tokens or _estimate_input_tokens, retry_on=frozenset(retry_on),
            extra_attempts=extra_attempts, retry_base_delay=retry_base_delay, throttle_retries=throttle_retries,
            transient_retries=transient_retries, output_retries=output_retries, backoff_base=backoff_base,
            backoff_cap=backoff_cap, timeout=timeout, concurrency=Concurrency(max_workers, initial_workers),
            stats=stats, bar=bar, results=results,
        )
        try:
            runner.run(todo)
        finally:
            bar.close()
    return [results[k] for k in keys]


class _Runner:
    """One run of :func:`run_calls`: the dispatch loop (main thread) and the call threads."""

    def __init__(self, *, call: Callable[[dict], dict], key: str, path: Path, limits: Limits,
                 quota_fraction: float, max_tokens: int | Callable[[dict], int] | None,
                 input_tokens: Callable[[dict], int], retry_on: frozenset[str], extra_attempts: int,
                 retry_base_delay: float, throttle_retries: int, transient_retries: int, output_retries: int,
                 backoff_base: float, backoff_cap: float, timeout: float | None, concurrency: Concurrency,
                 stats: RunStats, bar: Any, results: dict[Key, dict]) -> None:
        self.call, self.key, self.path = call, key, path
        self.limits = limits
        self.max_tokens, self.input_tokens = max_tokens, input_tokens
        self.retry_on, self.extra_attempts, self.retry_base_delay = retry_on, extra_attempts, retry_base_delay
        self.budget = {"throttle": throttle_retries, "transient": transient_retries, "output": output_retries,
                       "custom": extra_attempts}
        self.backoff_base, self.backoff_cap, self.timeout = backoff_base, backoff_cap, timeout
        self.concurrency, self.stats, self.bar, self.results = concurrency, stats, bar, results
        self.clock = time.monotonic
        self.target_rpm = limits.rpm * quota_fraction if limits.rpm else None
        self.target_tpm = limits.tpm * quota_fraction if limits.tpm else None
        if self.target_tpm and max_tokens is None:
            log.warning("No max_tokens given: TPM pacing counts only the estimated input tokens. Pass "
                        "max_tokens= (the output cap of each call) so the reservation is counted.")
        stats.target_rpm, stats.target_tpm = self.target_rpm, self.target_tpm
        self.pacer = Pacer(self.target_rpm, self.target_tpm, self.clock())
        self.events: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.closed = False
        self.in_flight: dict[_Attempt, None] = {}
        self.tries: dict[Key, Counter] = {}
        self.fresh: deque[tuple[Key, dict]] = deque()  # items not tried yet, in input order
        self.retry: list[tuple[float, int, Key, dict]] = []  # heap of (not before, order, key, item)
        self.done_times: deque[float] = deque()
        self.latency = 0.0  # moving average of successful call durations
        # Without a limit it can pace to (no RPM quota, or a TPM quota but no max_tokens to count):
        # the request rate learned from throttling (None until the first).
        self.learn = not self.target_rpm or bool(self.target_tpm and max_tokens is None)
        self.learned_rps: float | None = None
        self.learned_at = 0.0

    # ---- per-item reservation --------------------------------------------------------------
    def _tokens(self, item: dict) -> float:
        if not self.target_tpm:
            return 0.0
        cap = self.max_tokens(item) if callable(self.max_tokens) else (self.max_tokens or 0)
        return float(self.input_tokens(item)) + float(cap) * self.limits.burndown

    # ---- call threads ----------------------------------------------------------------------
    def _attempt(self, attempt: _Attempt, handle: Any) -> None:
        try:
            row = self.call(attempt.item)
            if not isinstance(row, Mapping):
                raise TypeError(f"call returned {type(row).__name__}, expected a dict")
            row = {**row, self.key: attempt.key}
            line = json.dumps(row, ensure_ascii=False, default=str)
        except BaseException as exc:  # noqa: BLE001 - classified by the dispatch loop
            self.events.put((attempt, exc, self.clock()))
            return
        with self.lock:
            if attempt.abandoned or self.closed:
                return  # timed out or the run is over: the result is not recorded
            handle.write(line + "\n")
            handle.flush()
            attempt.written = True
        self.events.put((attempt, row, self.clock()))

    # ---- the dispatch loop -----------------------------------------------------------------
    def run(self, todo: list[tuple[Key, dict]]) -> None:
        self.stats.started = self.clock()
        self.fresh.extend(todo)
        with self.path.open("a", encoding="utf-8") as handle:
            self.handle = handle
            try:
                self._loop(handle)
            except BaseException:
                self._drain(grace=min(self.timeout or 60.0, 60.0))
                raise
            finally:
                with self.lock:
                    self.closed = True
                self.stats.elapsed = self.clock() - self.stats.started
                self.stats.concurrency = self.concurrency.limit

    def _loop(self, handle: Any) -> None:
        while self.fresh or self.retry or self.in_flight:
            now = self.clock()
            wake = now + 0.5
            self._expire(now)
            self._probe(now)
            while len(self.in_flight) < self.concurrency.limit:
                # A retry whose backoff is over goes first, then the next new item.
                due = bool(self.retry) and self.retry[0][0] <= now
                if due:
                    item_key, item = self.retry[0][2], self.retry[0][3]
                elif self.fresh:
                    item_key, item = self.fresh[0]
                else:
                    if self.retry:
                        wake = min(wake, self.retry[0][0])
                    break
                tokens = self._tokens(item)
                wait = self.pacer.delay(tokens, now)
                if wait > 0:
                    wake = min(wake, now + wait)
                    break
                if due:
                    heapq.heappop(self.retry)
                else:
                    self.fresh.popleft()
                self.pacer.take(tokens, now)
                deadline = now + self.timeout if self.timeout else float("inf")
                attempt = _Attempt(item_key, item, now, tokens, deadline)
                self.in_flight[attempt] = None
                self.stats.attempts += 1
                threading.Thread(target=self._attempt, args=(attempt, handle), daemon=True).start()
            self.stats.peak_concurrency = max(self.stats.peak_concurrency, len(self.in_flight))
            if self.in_flight:
                wake = min(wake, min(a.deadline for a in self.in_flight))
            self._wait_events(max(0.0, wake - self.clock()))

    def _wait_events(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(*event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _expire(self, now: float) -> None:
        for attempt in [a for a in self.in_flight if a.deadline <= now]:
            with self.lock:
                if attempt.written:
                    continue  # it finished just now: its event is on the way
                attempt.abandoned = True
            self._handle(attempt, CallTimeout(f"no answer after {self.timeout:g} s"), now)

    def _drain(self, grace: float) -> None:
        """After an interrupt: let the calls in flight finish (their rows get written), for up to ``grace`` s."""
        deadline = self.clock() + grace
        try:
            while self.in_flight and self.clock() < deadline:
                try:
                    attempt, outcome, finished = self.events.get(timeout=max(0.0, deadline - self.clock()))
                except queue.Empty:
                    break
                self.in_flight.pop(attempt, None)
                if isinstance(outcome, Mapping) and not attempt.abandoned:
                    self.results[attempt.key] = outcome
        except KeyboardInterrupt:
            pass

    def _handle(self, attempt: _Attempt, outcome: Any, finished: float) -> None:
        if attempt not in self.in_flight:
            return  # a late answer of an abandoned call
        del self.in_flight[attempt]
        if isinstance(outcome, Mapping):
            self._success(attempt, outcome, finished)
            return
        if not isinstance(outcome, Exception):
            raise outcome  # KeyboardInterrupt, SystemExit or a crash: stop the run
        self._failure(attempt, outcome, finished)

    def _success(self, attempt: _Attempt, row: Mapping[str, Any], finished: float) -> None:
        self.results[attempt.key] = dict(row)
        self.stats.succeeded += 1
        duration = max(0.0, finished - attempt.started)
        self.latency = duration if self.latency == 0 else 0.8 * self.latency + 0.2 * duration
        self.done_times.append(finished)
        self.concurrency.on_success(attempt.started)
        if attempt.tokens and self.target_tpm:
            used_in, used_out = _row_usage(row)
            if used_in is not None and used_out is not None:
                actual = used_in + used_out * self.limits.burndown
                self.pacer.refund(attempt.tokens - actual, finished)
        self._progress(advance=1)

    def _probe(self, now: float) -> None:
        """Without a known limit, raise the learned rate by 10 % a second while nothing is throttled."""
        if self.learned_rps is None:
            return
        if now - self.concurrency.last_decrease > max(1.0, self.latency):
            self.learned_rps *= 1.0 + 0.1 * max(0.0, now - self.learned_at)
            self._pace_learned()
        self.learned_at = now

    def _pace_learned(self) -> None:
        rpm = 60.0 * self.learned_rps if self.learned_rps else None
        if self.target_rpm:
            rpm = min(rpm, self.target_rpm) if rpm else self.target_rpm
        self.pacer.set_rates(rpm, self.target_tpm)

    def _measured_rate(self, now: float) -> float:
        """Successful calls per second over the last two round trips (at least one second)."""
        window = max(1.0, 2.0 * self.latency)
        while self.done_times and self.done_times[0] < now - window:
            self.done_times.popleft()
        return len(self.done_times) / window

    def _classify(self, exc: Exception) -> tuple[str, str]:
        """``(policy, kind)`` of a failed attempt."""
        if isinstance(exc, RetryableOutput):
            return "output", exc.kind
        code = error_code(exc)
        if code in self.retry_on:
            return "custom", code
        if code in THROTTLE_CODES:
            return "throttle", code
        if code in TRANSIENT_CODES:
            return "transient", code
        return "error", code

    def _failure(self, attempt: _Attempt, exc: Exception, finished: float) -> None:
        policy, kind = self._classify(exc)
        if isinstance(exc, CallTimeout):
            self.stats.timeouts += 1
        throttled = policy == "throttle" or (policy == "custom" and kind in THROTTLE_CODES)
        if throttled:
            self.stats.throttles += 1
            # Keep the window the rate just achieved needs at the measured latency.
            rate = self._measured_rate(finished)
            floor = rate * self.latency if self.latency else 1.0
            shrank = self.concurrency.on_throttle(attempt.started, finished, floor=math.ceil(floor))
            if shrank and self.learn and rate > 0:
                # Nothing to pace to: pace to the rate the service just admitted (it throttles above it).
                previous = self.learned_rps
                self.learned_rps = rate if previous is None else max(rate, 0.7 * previous)
                self.learned_at = finished
                self._pace_learned()
        tries = self.tries.setdefault(attempt.key, Counter())
        budget = self.budget.get(policy, 0)
        if tries[policy] < budget:
            if policy == "custom":
                delay = _backoff(tries[policy], self.retry_base_delay, float("inf"))
            elif policy == "throttle":
                delay = _backoff(tries[policy], self.backoff_base / 2, self.backoff_cap)
            elif policy == "transient":
                delay = _backoff(tries[policy], self.backoff_base, self.backoff_cap)
            else:
                delay = 0.0
            tries[policy] += 1
            self.stats.retries[kind] += 1
            heapq.heappush(self.retry, (finished + delay, next(_ORDER), attempt.key, attempt.item))
            self._progress(advance=0)
            return
        attempts = sum(tries.values()) + 1
        row = {self.key: attempt.key, "error": f"{type(exc).__name__}: {exc}", "error_kind": kind,
               "attempts": attempts}
        with self.lock:
            if not self.closed:
                self._write(row)
        self.results[attempt.key] = row
        self.stats.failed += 1
        self.stats.failures[kind] += 1
        self._progress(advance=1)

    def _write(self, row: dict) -> None:
        self.handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self.handle.flush()

    def _progress(self, advance: int) -> None:
        if advance:
            self.bar.update(advance)
        postfix = {"in_flight": len(self.in_flight), "throttled": self.stats.throttles}
        retries = sum(self.stats.retries.values())
        if retries:
            postfix["retries"] = retries
        if self.stats.failed:
            postfix["failed"] = self.stats.failed
        self.bar.set_postfix(postfix, refresh=False)


_ORDER = itertools.count()


def _ensure_trailing_newline(path: Path) -> None:
    """After a crash mid-write, start the next row on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
    if last != b"\n":
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n")


# --------------------------------------------------------------------------------------
# Token usage
# --------------------------------------------------------------------------------------


def usage_from_response(
    resp: Mapping[str, Any], body: Mapping[str, Any] | None = None,
) -> tuple[int | None, int | None]:
    """``(input_tokens, output_tokens)`` of a Bedrock response; ``None`` for a count that is absent.

    Reads Converse ``usage`` (``inputTokens``/``outputTokens``), then the InvokeModel
    headers ``x-amzn-bedrock-input-token-count`` / ``-output-token-count`` in
    ``ResponseMetadata.HTTPHeaders``. A count the headers do not carry is taken from the
    parsed InvokeModel ``body`` when given (see :func:`usage_from_body`), since proxies and
    some deployments drop the headers while the model's body still reports usage.
    A parsed body passed as ``resp`` works too.
    """
    usage = resp.get("usage")
    if isinstance(usage, Mapping):
        for in_name, out_name in (("inputTokens", "outputTokens"), ("input_tokens", "output_tokens")):
            if in_name in usage or out_name in usage:
                return _int_or_none(usage.get(in_name)), _int_or_none(usage.get(out_name))
    headers = (resp.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    lowered = {str(name).lower(): value for name, value in headers.items()}
    counts = (_int_or_none(lowered.get(INPUT_TOKENS_HEADER)), _int_or_none(lowered.get(OUTPUT_TOKENS_HEADER)))
    if body is not None and None in counts:
        from_body = usage_from_body(body)
        counts = (counts[0] if counts[0] is not None else from_body[0],
                  counts[1] if counts[1] is not None else from_body[1])
    return counts


# Where each model family's InvokeModel response body reports token usage: Nova and Anthropic
# in ``usage`` (https://docs.aws.amazon.com/nova/latest/userguide/using-invoke-api.html,
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html),
# Llama at the top level (model-parameters-meta.html), Titan Text as inputTextTokenCount plus
# results[].tokenCount (model-parameters-titan-text.html).
def usage_from_body(body: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(input_tokens, output_tokens)`` from a parsed InvokeModel response body, else ``None``s."""
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        for in_name, out_name in (("inputTokens", "outputTokens"), ("input_tokens", "output_tokens")):
            if in_name in usage or out_name in usage:
                return _int_or_none(usage.get(in_name)), _int_or_none(usage.get(out_name))
    if "prompt_token_count" in body or "generation_token_count" in body:
        return _int_or_none(body.get("prompt_token_count")), _int_or_none(body.get("generation_token_count"))
    if "inputTextTokenCount" in body:
        results = body.get("results") or []
        counts = [r.get("tokenCount") for r in results if isinstance(r, Mapping) and r.get("tokenCount") is not None]
        return _int_or_none(body.get("inputTextTokenCount")), (sum(int(c) for c in counts) if counts else None)
    return None, None


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


class UsageTally:
    """Thread-safe running totals of calls and tokens per model.

    Share one tally between the worker threads of :func:`run_calls`::

        tally = UsageTally()
        def call(item):
            resp = client.converse(modelId=model_id, messages=...)
            tally.add_response(model_id, resp)
            ...
        tally.to_frame()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, dict[str, int]] = {}

    def add(self, model: str, input_tokens: int | None, output_tokens: int | None, calls: int = 1) -> None:
        """Count ``calls`` calls; missing token counts are tallied as ``calls_without_usage``."""
        with self._lock:
            row = self._totals.setdefault(
                model, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "calls_without_usage": 0}
            )
            row["calls"] += calls
            row["input_tokens"] += input_tokens or 0
            row["output_tokens"] += output_tokens or 0
            if input_tokens is None or output_tokens is None:
                row["calls_without_usage"] += calls

    def add_response(self, model: str, resp: Mapping[str, Any]) -> tuple[int | None, int | None]:
        """Tally one response (see :func:`usage_from_response`) and return its counts."""
        counts = usage_from_response(resp)
        self.add(model, *counts)
        return counts

    def totals(self) -> dict[str, dict[str, int]]:
        """A copy of the per-model totals."""
        with self._lock:
            return {model: dict(row) for model, row in self._totals.items()}

    def to_frame(self):  # -> pandas.DataFrame (pandas imported lazily)
        """One row per model: calls, input_tokens, output_tokens, calls_without_usage."""
        import pandas as pd

        columns = ["model", "calls", "input_tokens", "output_tokens", "calls_without_usage"]
        rows = [{"model": model, **row} for model, row in sorted(self.totals().items())]
        return pd.DataFrame(rows, columns=columns)
