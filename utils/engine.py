"""The shared engine for many model calls: bounded concurrency, JSONL checkpoints, resume.

Synthetic data generation, evaluation and judging all call a model once per item. They
share :func:`run_calls`::

    rows = run_calls(questions, call=answer_one, checkpoint="runs/eval/base.jsonl",
                     max_workers=4, desc="base model")

* Each result is appended to the checkpoint file as soon as it finishes (one JSON object
  per line, flushed), so a crash or a kernel restart loses at most the calls in flight.
* Rerunning skips every item whose key already has a successful row and returns the
  stored result, so nothing is paid for twice and nothing is duplicated.
* An exception in one item does not stop the run: it becomes a row
  ``{"id": ..., "error": "ThrottlingException: ..."}``, and the item is retried on the
  next run.
* Retries and backoff come from botocore (``Config(retries={"mode": "adaptive"})`` on the
  caller's client). ``retry_on`` adds a few jittered attempts for chosen error codes,
  e.g. a ``ThrottlingException`` that survived botocore's own retries.

:class:`UsageTally` adds up input/output tokens per model from Converse ``usage`` or the
InvokeModel token-count headers.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from utils.aws import error_code  # re-exported: engine.error_code

__all__ = [
    "run_calls", "load_checkpoint", "pending", "item_id", "error_code", "UsageTally", "usage_from_response",
    "usage_from_body", "RetryableOutput",
]

INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"

Key = str | int


class RetryableOutput(Exception):
    """Raised by a `call` whose reply is unusable (e.g. unparseable); the engine retries the item a bounded
    number of times, then records it as failed with `kind` and the message. Never stored as a success."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- unusable replies (RetryableOutput): bounded retries, then a failure row with its kind ---
OUTPUT_RETRIES = 2  # extra attempts for an unusable reply before the item is recorded as failed


def _failure_row(key: str, item_key: Key, exc: Exception) -> dict[str, Any]:
    row: dict[str, Any] = {key: item_key, "error": f"{type(exc).__name__}: {exc}"}
    if isinstance(exc, RetryableOutput):
        row["error_kind"] = exc.kind
    return row
# --- end of the RetryableOutput handling ---


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


def _call_with_retries(
    call: Callable[[dict], dict],
    item: dict,
    retry_on: tuple[str, ...],
    extra_attempts: int,
    base_delay: float,
) -> dict:
    attempt = 0
    output_attempt = 0
    while True:
        try:
            return call(item)
        except RetryableOutput:
            if output_attempt >= OUTPUT_RETRIES:
                raise
            output_attempt += 1
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is a retryable code
            if attempt >= extra_attempts or error_code(exc) not in retry_on:
                raise
            # "Full jitter" backoff: uniform in [0, base × 2^attempt].
            time.sleep(random.uniform(0, base_delay * 2**attempt))
            attempt += 1


def run_calls(
    items: Iterable[dict],
    call: Callable[[dict], dict],
    checkpoint: str | Path,
    key: str = "id",
    max_workers: int = 4,
    desc: str = "",
    progress: bool = True,
    retry_on: tuple[str, ...] = (),
    extra_attempts: int = 3,
    retry_base_delay: float = 2.0,
) -> list[dict]:
    """Run ``call(item)`` for every item not yet done, checkpointing each result as JSONL.

    Args:
        items: dicts, each with a unique ``item[key]`` (str or int).
        call: returns a JSON-serialisable dict for one item. It should not raise for
            expected outcomes; unexpected exceptions are captured per item.
        checkpoint: the JSONL file to append to (parent folders are created).
        key: the item field that identifies it; every row written carries it.
        max_workers: at most this many calls run at once (keep it low: the account's
            tokens-per-minute quota, not the thread count, is the real limit).
        desc, progress: the tqdm progress bar.
        retry_on: botocore error codes (or exception class names) that get up to
            ``extra_attempts`` more tries with jittered exponential backoff.

    Returns:
        One row per input item, in input order: the stored or new result (with ``key``
        set), or ``{key: ..., "error": "<ExceptionClass>: message"}``. Error rows are not
        "done": the next run retries them.

    Raises:
        ValueError: two items share a key.
        TypeError: an item has no usable key.
    """
    from tqdm.auto import tqdm

    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
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
    pending = [(k, item) for k, item in zip(keys, item_list, strict=True) if k not in results]

    if pending:
        lock = threading.Lock()
        _ensure_trailing_newline(path)
        bar = tqdm(total=len(keys), initial=len(results), desc=desc or None, disable=not progress)
        with path.open("a", encoding="utf-8") as handle:

            def work(item_key: Key, item: dict) -> dict:
                try:
                    row = _call_with_retries(call, item, retry_on, extra_attempts, retry_base_delay)
                    if not isinstance(row, Mapping):
                        raise TypeError(f"call returned {type(row).__name__}, expected a dict")
                    row = {**row, key: item_key}
                except Exception as exc:  # noqa: BLE001 - captured per item, retried next run
                    row = _failure_row(key, item_key, exc)
                line = json.dumps(row, ensure_ascii=False, default=str)
                with lock:
                    handle.write(line + "\n")
                    handle.flush()
                return row

            executor = ThreadPoolExecutor(max_workers=max_workers)
            queue = iter(pending)
            in_flight: dict[Future, Key] = {}
            errors = 0
            try:
                # A sliding window: at most max_workers calls are submitted at any time, so an
                # interrupt leaves nothing queued and every finished call is already on disk.
                while True:
                    while len(in_flight) < max_workers:
                        next_item = next(queue, None)
                        if next_item is None:
                            break
                        in_flight[executor.submit(work, *next_item)] = next_item[0]
                    if not in_flight:
                        break
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        item_key = in_flight.pop(future)
                        row = future.result()  # re-raises only BaseException (a crash/interrupt)
                        results[item_key] = row
                        errors += _is_error(row)
                        bar.update(1)
                        if errors:
                            bar.set_postfix(errors=errors)
            finally:
                executor.shutdown(wait=True, cancel_futures=True)
                bar.close()
    return [results[k] for k in keys]


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
