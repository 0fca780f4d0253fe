"""Reading the JSONL data sets of customization and batch jobs.

Record parsing (:func:`records`), the (prompt, answer) pairs a custom model's stand-in
learns from (:func:`pairs_and_texts`), and the data checks that fail a customization job
with Bedrock's failureMessage (:func:`validate_data`, :func:`validate_combined_counts`).
"""

from __future__ import annotations

import json
from typing import Any

from utils import models as registry
from utils.sandbox import training


def records(data: bytes) -> list[dict[str, Any]]:
    """JSON objects of a JSONL file (blank lines skipped); ValueError if a line is not JSON."""
    out = []
    for line in data.decode("utf-8-sig").splitlines():
        if line.strip():
            value = json.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


def _text(content: Any) -> str:
    """Text of a message's content: a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return ""


def pairs_and_texts(recs: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[str]]:
    """(prompt, answer) pairs and all text of records in any supported format.

    prompt/completion; Claude ``{system, messages}``; ``bedrock-conversation-2024``;
    continued pre-training ``{input}``. Multi-turn records give one pair per
    user -> assistant exchange; a trailing user turn (distillation prompts) gives a
    pair with an empty answer.
    """
    pairs: list[tuple[str, str]] = []
    texts: list[str] = []
    for rec in recs:
        if "prompt" in rec or "completion" in rec:
            prompt, answer = str(rec.get("prompt", "")), str(rec.get("completion", ""))
            pairs.append((prompt, answer))
            texts += [prompt, answer]
            continue
        if "input" in rec and "messages" not in rec:
            texts.append(str(rec["input"]))
            continue
        system = rec.get("system")
        texts.append(_text(system) if not isinstance(system, str) else system)
        pending: str | None = None
        for message in rec.get("messages", []) if isinstance(rec.get("messages"), list) else []:
            if not isinstance(message, dict):
                continue
            content = _text(message.get("content"))
            texts.append(content)
            if message.get("role") == "user":
                pending = content if pending is None else pending + "\n" + content
            elif message.get("role") == "assistant" and pending is not None:
                pairs.append((pending, content))
                pending = None
        if pending is not None:
            pairs.append((pending, ""))
    return pairs, [t for t in texts if t]


def validate_data(base_model_id: str, customization_type: str, hyperparameters: dict[str, str], uri: str,
                  data: bytes, split: str) -> tuple[str | None, int]:
    """(Bedrock's failureMessage for an invalid data file or None, its record count).

    Record-count limits that apply to training + validation together are left to
    :func:`validate_combined_counts`.
    """
    filename = uri.rsplit("/", 1)[-1]
    if customization_type in ("FINE_TUNING", "CONTINUED_PRE_TRAINING"):
        # The same validator as notebook 02 and the CLI.
        from utils.validate_dataset import UsageError, validate_bytes

        hp = training.effective_hyperparameters(registry.family_of(base_model_id), hyperparameters)
        try:
            report = validate_bytes(
                data, base_model_id, split=split, customization_type=customization_type,
                filename=filename, batch_size=int(hp.get("batchSize", 1)), combined_counts=True,
            )
        except UsageError as exc:
            return str(exc), 0
        return (None if report.ok else report.failure_message()), report.records
    # Distillation prompts: JSONL with user turns (Bedrock writes the answers).
    invalid = f"Unable to parse Amazon S3 file: {filename}. Data files must conform to JSONL format."
    try:
        recs = records(data)
    except ValueError:
        return invalid, 0
    if not recs:
        return invalid, 0
    for rec in recs:
        if not isinstance(rec.get("messages"), list) or not rec["messages"]:
            return (
                f"Input data at {filename} must follow '{{\"schemaVersion\": \"bedrock-conversation-2024\", "
                "\"system\": [{\"text\": \"<system>\"}], \"messages\": [{\"role\": \"user\", "
                "\"content\": [{\"text\": \"<prompt>\"}]}]}' format"
            ), len(recs)
    return None, len(recs)


def validate_combined_counts(base_model_id: str, customization_type: str, train: int, validation: int) -> str | None:
    """failureMessage when training + validation records together break the model's limits."""
    if customization_type not in ("FINE_TUNING", "CONTINUED_PRE_TRAINING"):
        return None
    from utils.validate_dataset import check_combined_counts

    problems = check_combined_counts(base_model_id, train, validation, customization_type)
    return (problems[0].bedrock or problems[0].message) if problems else None
