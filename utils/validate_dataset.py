"""Validate a Bedrock customization dataset (JSONL) before it is uploaded.

One implementation, used in three places: this command line, notebook 02 before
upload, and the offline sandbox when a customization job reads its data::

    python -m utils.validate_dataset PATH --base-model MODEL_ID [--split train|validation]
                                     [--customization-type FINE_TUNING|CONTINUED_PRE_TRAINING]

Exit status: 0 valid, 1 invalid, 2 usage error (unknown model, missing file, bad
arguments, or a customization type the model does not support).

Each bad record is reported as ``PATH:LINE: message`` (LINE is 1-based); problems
with the whole file (encoding, record counts) as ``PATH: message``. Every problem
is reported, and the output is capped at :data:`MAX_PRINTED` lines.

Rules and limits come from the Amazon Bedrock user guide (record formats,
https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html; size and
record limits, https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html) and the
service's failure messages. The
format a model expects is looked up in :mod:`utils.models`, never hard-coded here.

Token counts are *estimates* made offline without the models' tokenizers
(:func:`estimate_tokens`): ``max(ceil(chars / 3), ceil(words * 1.5))``. AWS plans
with about 6 characters per token, and English text with BPE tokenizers runs at
about 4; dividing by 3 follows the conservative third-party Claude validators
and also covers digit-heavy tables. The word term catches text made of very short
words or numbers, where characters under-count. The estimate therefore errs
towards flagging a record that Bedrock might still accept, which costs a trim,
instead of passing one that fails a two-hour job.

Library API (used by notebook 02 and the sandbox)::

    report = validate_bytes(data, base_model, split="train",
                            customization_type="FINE_TUNING", filename="train.jsonl")
    report.ok, report.problems, report.records, report.token_max, report.token_mean
    report.failure_message()   # Bedrock-style failureMessage for the job
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from utils import models

FINE_TUNING = "FINE_TUNING"
CONTINUED_PRE_TRAINING = "CONTINUED_PRE_TRAINING"
CUSTOMIZATION_TYPES = (FINE_TUNING, CONTINUED_PRE_TRAINING)
SPLITS = ("train", "validation")

MAX_PRINTED = 50  # problems printed by the CLI before "... N more"

TOKEN_FORMULA = "max(ceil(chars/3), ceil(words*1.5))"
TOKEN_METHOD = f"offline estimate {TOKEN_FORMULA}, conservative (AWS plans with ~6 chars/token)"

# Problem kinds, in the order Bedrock checks them (used by failure_message()).
KIND_ENCODING = "encoding"
KIND_JSONL = "jsonl"
KIND_FORMAT = "format"
KIND_CONTENT = "content"
KIND_TOKENS = "tokens"
KIND_COUNT = "count"
_KIND_ORDER = (KIND_ENCODING, KIND_JSONL, KIND_FORMAT, KIND_CONTENT, KIND_TOKENS, KIND_COUNT)

# Nova rejects training text containing these strings
# (https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html).
NOVA_RESERVED = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")
# Third-party Claude validators reject these (uncertain; not in AWS docs): warnings only.
CLAUDE_SUSPECT = ("\nHuman:", "\nAssistant:")

IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
VIDEO_FORMATS = ("mov", "mkv", "mp4", "webm", "flv", "mpeg", "mpg", "wmv", "three_gp")

_FORMAT_TEMPLATES: dict[str, str] = {
    models.FORMAT_PROMPT_COMPLETION: '{"prompt": "<input text>", "completion": "<output text>"}',
    models.FORMAT_CLAUDE_MESSAGES: (
        '{"system": "<optional system prompt>", "messages": [{"role": "user", "content": '
        '"<user text>"}, {"role": "assistant", "content": "<assistant text>"}]}'
    ),
    models.FORMAT_CONVERSATION: (
        '{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "<optional system '
        'prompt>"}], "messages": [{"role": "user", "content": [{"text": "<user text>"}]}, '
        '{"role": "assistant", "content": [{"text": "<assistant text>"}]}]}'
    ),
    models.FORMAT_CONTINUED_PRETRAINING: '{"input": "<input text>"}',
}

_FORMAT_NAMES: dict[str, str] = {
    models.FORMAT_PROMPT_COMPLETION: "prompt/completion",
    models.FORMAT_CLAUDE_MESSAGES: "Claude 3 Haiku messages",
    models.FORMAT_CONVERSATION: "bedrock-conversation-2024",
    models.FORMAT_CONTINUED_PRETRAINING: "continued pre-training {input}",
}

_FAMILY_NAMES: dict[str, str] = {
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


class UsageError(ValueError):
    """The request itself is wrong (unknown model, unsupported type, bad split): exit 2."""


@dataclass(frozen=True)
class Problem:
    """One problem. ``line`` is the 1-based line in the file, or None for file-level problems."""

    line: int | None
    message: str
    kind: str = KIND_FORMAT
    # Bedrock's failureMessage for this problem, when it is more specific than the kind's default.
    bedrock: str | None = None

    def render(self, path: str) -> str:
        """``PATH:LINE: message`` or ``PATH: message``."""
        return f"{path}:{self.line}: {self.message}" if self.line else f"{path}: {self.message}"


@dataclass(frozen=True)
class Limits:
    """Per-family limits for one model, split and customization type."""

    min_records: int | None = None
    max_records: int | None = None
    count_note: str = ""
    max_input: int | None = None
    max_output: int | None = None
    max_total: int | None = None
    token_note: str = ""


@dataclass
class ValidationReport:
    """The verdict on one dataset file."""

    filename: str
    base_model: str
    data_format: str
    split: str = "train"
    customization_type: str = FINE_TUNING
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    records: int = 0
    token_max: int = 0
    token_mean: float = 0.0
    token_method: str = TOKEN_METHOD

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings do not count)."""
        return not self.problems

    def summary(self) -> str:
        """One line: verdict, records and token estimates."""
        fmt = _FORMAT_NAMES.get(self.data_format, self.data_format)
        head = "OK" if self.ok else f"INVALID ({len(self.problems)} problem(s))"
        return (
            f"{head}: {self.records} records, {fmt} format for {self.base_model} "
            f"({self.split}, {self.customization_type}); tokens per record max {self.token_max}, "
            f"mean {self.token_mean:.1f} [{self.token_method}]"
        )

    def lines(self, path: str | None = None, limit: int | None = MAX_PRINTED) -> list[str]:
        """Printable problem lines, capped at ``limit`` with a '... N more' line."""
        where = path or self.filename
        shown = self.problems if limit is None else self.problems[:limit]
        out = [p.render(where) for p in shown]
        if len(self.problems) > len(shown):
            out.append(f"{where}: ... {len(self.problems) - len(shown)} more problem(s) not shown")
        return out

    def failure_message(self) -> str:
        """The failureMessage Bedrock would give the job, for the most basic problem.

        Bedrock checks parsing before formats, formats before token limits, so the
        problem chosen is the first in that order (then by line), not the first printed.
        Messages follow the service's own failure messages where AWS documents one.
        """
        if self.ok:
            return ""
        rank = {kind: i for i, kind in enumerate(_KIND_ORDER)}
        first = min(
            self.problems,
            key=lambda p: (rank.get(p.kind, len(rank)), p.line if p.line is not None else 0),
        )
        if first.bedrock:
            return first.bedrock
        if first.kind in (KIND_ENCODING, KIND_JSONL):
            return (
                f"Unable to parse Amazon S3 file: {self.filename}. Data files must conform to JSONL format."
            )
        if first.kind in (KIND_FORMAT, KIND_CONTENT):
            template = _FORMAT_TEMPLATES.get(self.data_format, "")
            return f"Input data at {self.filename} must follow '{template}' format"
        return first.message


# --------------------------------------------------------------------------------------
# Token estimate
# --------------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Conservative offline token estimate: ``max(ceil(chars/3), ceil(words*1.5))``."""
    if not text:
        return 0
    return max(math.ceil(len(text) / 3), math.ceil(len(text.split()) * 1.5))


# --------------------------------------------------------------------------------------
# Limits per family
# --------------------------------------------------------------------------------------


def _context_tokens(model_id: str) -> int | None:
    """The context size in a customization ID's suffix, e.g. ``...:0:128k`` -> 128,000."""
    match = re.search(r":(\d+)k$", model_id)
    return int(match.group(1)) * 1000 if match else None


def limits_for(
    base_model: str, split: str = "train", customization_type: str = FINE_TUNING, batch_size: int = 1
) -> Limits:
    """Record-count and per-record token limits (Bedrock quotas page and the data-preparation pages)."""
    family = models.family_of(base_model)
    bare = base_model.rsplit("/", 1)[-1].lower()
    train = split == "train"
    if family == "claude3":
        return Limits(
            min_records=32 if train else None,
            max_records=10_000 if train else 1_000,
            count_note="Claude 3 Haiku: 32-10,000 training records, at most 1,000 validation records",
            max_total=32_000,
            token_note="Claude 3 Haiku allows 32,000 tokens per record",
        )
    if family in ("llama3.1", "llama3.2", "llama3.3"):
        total = 10_000 if (family == "llama3.2" and "90b" in bare) else 16_000
        return Limits(
            min_records=100 if train else None,
            max_records=10_000,
            count_note="Llama 3.x: 100-10,000 records in training + validation together",
            max_input=16_000 if family == "llama3.1" else None,
            max_output=16_000 if family == "llama3.1" else None,
            max_total=total,
            token_note=f"Llama 3.x allows input + output <= {total:,} tokens",
        )
    if family == "titan":
        if "premier" in bare:
            if customization_type == CONTINUED_PRE_TRAINING:
                raise UsageError(
                    f"{base_model} (Titan Text Premier) supports FINE_TUNING only, not CONTINUED_PRE_TRAINING"
                )
            total = 4_096
            note = "Titan Text Premier: 4,096 tokens at batch size 1 (larger batches not available)"
        elif "lite" in bare:
            total = 4_096 if batch_size <= 2 else 2_048
            note = f"Titan Text Lite: {total:,} tokens per record at batch size {batch_size}"
        else:
            total = 4_096 if batch_size <= 1 else 2_048
            note = f"Titan Text Express: {total:,} tokens per record at batch size {batch_size}"
        cpt = customization_type == CONTINUED_PRE_TRAINING
        return Limits(
            max_records=100_000 if cpt else 10_000,
            count_note=(
                "Titan quota: sum of training and validation records "
                f"{'100,000 for CONTINUED_PRE_TRAINING' if cpt else '10,000 for FINE_TUNING'} (default)"
            ),
            max_input=total,
            max_output=None if cpt else total,
            max_total=None if cpt else total,
            token_note=note,
        )
    if family == "cohere":
        return Limits(
            max_records=10_000 if train else 1_000,
            count_note="Cohere Command: at most 10,000 training and 1,000 validation records",
            max_input=4_096,
            max_output=2_048,
            token_note="Cohere Command: input <= 4,096 and output <= 2,048 tokens",
        )
    if family in ("nova", "nova2"):
        return Limits(
            min_records=8 if train else None,
            max_records=20_000,
            count_note="Amazon Nova: 8-20,000 records (aws-samples validator; uncertain)",
            max_total=_context_tokens(base_model),
            token_note="Nova: no per-record limit is documented; checked against the model's context size",
        )
    return Limits(
        max_total=_context_tokens(base_model),
        token_note="checked against the model's context size (no documented per-record limit)",
    )


def combined_limits(base_model: str, customization_type: str = FINE_TUNING) -> Limits:
    """Limits on training + validation records *together* (Bedrock quotas page).

    Only ``min_records``, ``max_records`` and ``count_note`` are set. Used with
    ``validate_bytes(..., combined_counts=True)``, which then checks only the
    per-file limits that really are per file, and :func:`check_combined_counts`.
    """
    family = models.family_of(base_model)
    if family == "claude3":
        return Limits(max_records=10_000, count_note="Claude 3 Haiku: at most 10,000 records in total")
    if family in ("llama3.1", "llama3.2", "llama3.3"):
        return Limits(min_records=100, max_records=10_000,
                      count_note="Llama 3.x: 100-10,000 records in training + validation together")
    if family == "titan":
        cpt = customization_type == CONTINUED_PRE_TRAINING
        return Limits(
            max_records=100_000 if cpt else 10_000,
            count_note=f"Titan quota: sum of training and validation records {'100,000' if cpt else '10,000'} (default)",
        )
    if family in ("nova", "nova2"):
        return Limits(max_records=20_000, count_note="Amazon Nova: at most 20,000 records (uncertain)")
    return Limits()


def _per_file_limits(limits: Limits, base_model: str, split: str) -> Limits:
    """``limits`` without the record-count limits that :func:`combined_limits` checks across files."""
    family = models.family_of(base_model)
    if family in ("llama3.1", "llama3.2", "llama3.3", "titan"):
        return replace(limits, min_records=None, max_records=None)
    if family in ("nova", "nova2"):
        return replace(limits, max_records=None)
    return limits  # Claude 3 Haiku and Cohere: per-file limits (Claude's total is checked as well)


def check_combined_counts(
    base_model: str, train_records: int, validation_records: int, customization_type: str = FINE_TUNING
) -> list[Problem]:
    """Problems with the number of training + validation records together (none when within limits)."""
    limits = combined_limits(base_model, customization_type)
    total = train_records + validation_records
    note = f" ({limits.count_note})" if limits.count_note else ""
    where = f"{train_records:,} training + {validation_records:,} validation records"
    problems = []
    if limits.min_records is not None and total < limits.min_records:
        problems.append(Problem(
            None, f"{where} = {total:,}, fewer than the minimum of {limits.min_records:,}{note}; add records",
            KIND_COUNT,
            f"The training and validation datasets have {total} records in total; at least "
            f"{limits.min_records} are required",
        ))
    if limits.max_records is not None and total > limits.max_records:
        problems.append(Problem(
            None, f"{where} = {total:,}, more than the maximum of {limits.max_records:,}{note}; "
            "sample them down or request a quota increase",
            KIND_COUNT,
            f"The training and validation datasets have {total} records in total; at most "
            f"{limits.max_records} are allowed",
        ))
    return problems


# --------------------------------------------------------------------------------------
# Record checks
# --------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    base_model: str
    family: str
    fmt: str
    filename: str
    problems: list[Problem]
    warnings: list[Problem]
    line: int = 0

    @property
    def model_name(self) -> str:
        return _FAMILY_NAMES.get(self.family, self.family)

    def add(self, message: str, kind: str = KIND_FORMAT, bedrock: str | None = None) -> None:
        self.problems.append(Problem(self.line, message, kind, bedrock))

    def warn(self, message: str) -> None:
        self.warnings.append(Problem(self.line, message, KIND_CONTENT))


def _describe_shape(record: Mapping[str, Any]) -> str | None:
    """Name the format a record looks like, to explain a mismatch."""
    keys = set(record)
    if {"prompt", "completion"} & keys:
        return "prompt/completion keys"
    if "input" in keys and len(keys) == 1:
        return "the continued pre-training {input} key"
    if "messages" in keys:
        msgs = record.get("messages")
        if "schemaVersion" in keys:
            return "the bedrock-conversation-2024 format"
        if isinstance(msgs, list) and any(
            isinstance(m, dict) and isinstance(m.get("content"), list) for m in msgs
        ):
            return "messages with content blocks (bedrock-conversation-2024 style)"
        if isinstance(record.get("system"), list):
            return "a system list (bedrock-conversation-2024 style)"
        return "the Claude 3 Haiku messages format"
    return None


def _expects(ctx: _Ctx) -> str:
    return {
        models.FORMAT_PROMPT_COMPLETION: '{"prompt": "...", "completion": "..."}',
        models.FORMAT_CLAUDE_MESSAGES: "{system?, messages:[{role, content: string}, ...]}",
        models.FORMAT_CONVERSATION: (
            '{schemaVersion, system?: [{"text"}], messages:[{role, content: [{"text": ...}]}, ...]}'
        ),
        models.FORMAT_CONTINUED_PRETRAINING: '{"input": "..."}',
    }[ctx.fmt]


def _wrong_shape(ctx: _Ctx, record: Mapping[str, Any], own_keys: set[str]) -> bool:
    """Report a record written in another model's format; True if reported.

    A record holding any of its format's own keys gets the detailed field checks instead.
    """
    if set(record) & own_keys:
        return False
    shape = _describe_shape(record)
    if shape is None:
        return False
    advice = (
        " - convert it with utils.formats.convert_record"
        if ctx.fmt != models.FORMAT_CONTINUED_PRETRAINING
        else ""
    )
    ctx.add(
        f"record uses {shape}; {ctx.model_name} ({_FORMAT_NAMES[ctx.fmt]}) expects {_expects(ctx)}{advice}"
    )
    return True


def _extra_keys(ctx: _Ctx, obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    extra = sorted(set(obj) - set(allowed))
    if extra:
        ctx.add(
            f"{where} has unexpected key(s) {', '.join(map(repr, extra))}; "
            f"allowed: {', '.join(map(repr, allowed))}. Remove them"
        )


def _text_field(ctx: _Ctx, obj: Mapping[str, Any], key: str, where: str) -> str:
    """Check a required non-empty string field; return it ('' when bad)."""
    if key not in obj:
        ctx.add(f"{where} is missing the required key {key!r}")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        ctx.add(f"{where}: {key!r} must be a string, not {_type_name(value)}")
        return ""
    if not value.strip():
        ctx.add(f"{where}: {key!r} is empty; remove the record or fill it in", KIND_CONTENT)
    return value


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _check_prompt_completion(ctx: _Ctx, record: Mapping[str, Any]) -> tuple[str, str]:
    if _wrong_shape(ctx, record, {"prompt", "completion"}):
        return "", ""
    _extra_keys(ctx, record, ("prompt", "completion"), "record")
    prompt = _text_field(ctx, record, "prompt", "record")
    completion = _text_field(ctx, record, "completion", "record")
    return prompt, completion


def _check_cpt(ctx: _Ctx, record: Mapping[str, Any]) -> tuple[str, str]:
    if _wrong_shape(ctx, record, {"input"}):
        return "", ""
    _extra_keys(ctx, record, ("input",), "record")
    return _text_field(ctx, record, "input", "record"), ""


def _check_roles(ctx: _Ctx, roles: list[str | None]) -> None:
    if len(roles) < 2:
        ctx.add(
            f"'messages' has {len(roles)} message(s); at least 2 are needed "
            "(a user turn followed by an assistant turn)"
        )
        return
    if roles[0] != "user":
        ctx.add(f"the first message must have role 'user', not {roles[0]!r}")
    if roles[-1] != "assistant":
        ctx.add(f"the last message must have role 'assistant', not {roles[-1]!r}")
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1] and roles[i] in ("user", "assistant"):
            ctx.add(
                f"messages[{i}] repeats role {roles[i]!r}: roles must alternate user/assistant; "
                "merge consecutive turns of the same role"
            )
            break


def _check_claude(ctx: _Ctx, record: Mapping[str, Any]) -> tuple[str, str]:
    if _wrong_shape(ctx, record, {"messages"}):
        return "", ""
    if "schemaVersion" in record:
        ctx.add(
            "record has 'schemaVersion': that is the bedrock-conversation-2024 format (Nova, Llama 3.2+); "
            "Claude 3 Haiku expects {system?, messages:[{role, content: string}]}"
        )
    _extra_keys(ctx, record, ("system", "messages"), "record")
    inputs: list[str] = []
    if "system" in record:
        system = record["system"]
        if isinstance(system, list):
            ctx.add(
                "'system' is a list of blocks; for Claude 3 Haiku it must be a plain string "
                "(the list form is bedrock-conversation-2024)"
            )
        elif not isinstance(system, str):
            ctx.add(f"'system' must be a string, not {_type_name(system)}")
        else:
            inputs.append(system)
    messages = record.get("messages")
    if "messages" not in record:
        ctx.add("record is missing the required key 'messages'")
        return " ".join(inputs), ""
    if not isinstance(messages, list):
        ctx.add(f"'messages' must be a list, not {_type_name(messages)}")
        return " ".join(inputs), ""
    roles: list[str | None] = []
    texts: list[str] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            ctx.add(f"{where} must be an object with 'role' and 'content', not {_type_name(msg)}")
            roles.append(None)
            texts.append("")
            continue
        _extra_keys(ctx, msg, ("role", "content"), where)
        role = msg.get("role")
        if role not in ("user", "assistant"):
            ctx.add(
                f"{where}: role must be 'user' or 'assistant', not {role!r}"
                + (" (put system text in the top-level 'system' string)" if role == "system" else "")
            )
        roles.append(role if isinstance(role, str) else None)
        content = msg.get("content")
        if "content" not in msg:
            ctx.add(f"{where} is missing 'content'")
            text = ""
        elif isinstance(content, list):
            ctx.add(
                f"{where}: content is a list of blocks; Claude 3 Haiku expects a plain string "
                '(content blocks [{"text": ...}] are the bedrock-conversation-2024 format)'
            )
            text = ""
        elif not isinstance(content, str):
            ctx.add(f"{where}: content must be a string, not {_type_name(content)}")
            text = ""
        else:
            text = content
            if not content.strip():
                ctx.add(f"{where}: content is empty; remove the turn or fill it in", KIND_CONTENT)
        texts.append(text)
        for suspect in CLAUDE_SUSPECT:
            if suspect in text:
                ctx.warn(f"{where} contains {suspect.strip()!r}, which some validators reject (uncertain)")
    _check_roles(ctx, roles)
    # input = system and every turn but the final assistant answer; output = that answer
    if texts:
        inputs.extend(texts[:-1])
        return "\n".join(inputs), texts[-1]
    return "\n".join(inputs), ""


def _text_only(ctx: _Ctx) -> bool:
    bare = ctx.base_model.rsplit("/", 1)[-1].lower()
    if ctx.family == "nova":
        return "micro" in bare
    if ctx.family == "llama3.2":
        return not ("11b" in bare or "90b" in bare)
    return ctx.family not in ("nova2",)


def _check_media(ctx: _Ctx, block: Mapping[str, Any], kind: str, where: str) -> None:
    media = block[kind]
    formats = IMAGE_FORMATS if kind == "image" else VIDEO_FORMATS
    if not isinstance(media, dict):
        ctx.add(f"{where}: {kind!r} must be an object with 'format' and 'source'")
        return
    if media.get("format") not in formats:
        ctx.add(f"{where}: {kind} format must be one of {', '.join(formats)}, not {media.get('format')!r}")
    source = media.get("source")
    uri = source.get("s3Location", {}).get("uri") if isinstance(source, dict) else None
    if not (isinstance(uri, str) and uri.startswith("s3://")):
        ctx.add(f'{where}: {kind} needs "source": {{"s3Location": {{"uri": "s3://..."}}}}')


def _check_blocks(ctx: _Ctx, content: Any, where: str, role: str | None) -> tuple[str, set[str]]:
    """Check a content-block list; return its text and the media kinds it holds."""
    if isinstance(content, str):
        ctx.add(
            f"{where}: content is a plain string; bedrock-conversation-2024 expects a list of "
            'content blocks like [{"text": "..."}] (plain strings are the Claude 3 Haiku format)'
        )
        return content, set()
    if not isinstance(content, list):
        ctx.add(
            f'{where}: content must be a list of blocks like [{{"text": "..."}}], not {_type_name(content)}'
        )
        return "", set()
    if not content:
        ctx.add(f'{where}: content is an empty list; add a {{"text": ...}} block', KIND_CONTENT)
        return "", set()
    texts: list[str] = []
    media: set[str] = set()
    for j, block in enumerate(content):
        bwhere = f"{where}.content[{j}]"
        if not isinstance(block, dict):
            ctx.add(f'{bwhere} must be an object like {{"text": "..."}}, not {_type_name(block)}')
            continue
        kinds = [k for k in ("text", "image", "video") if k in block]
        extra = sorted(set(block) - {"text", "image", "video"})
        if extra:
            ctx.add(
                f"{bwhere} has unexpected key(s) {', '.join(map(repr, extra))}; "
                "a block holds exactly one of 'text', 'image' or 'video'"
            )
        if len(kinds) != 1:
            if not extra:
                ctx.add(f"{bwhere} must hold exactly one of 'text', 'image' or 'video'")
            continue
        kind = kinds[0]
        if kind == "text":
            value = block["text"]
            if not isinstance(value, str):
                ctx.add(f"{bwhere}: 'text' must be a string, not {_type_name(value)}")
            elif not value.strip():
                ctx.add(f"{bwhere}: text is empty; remove the block or fill it in", KIND_CONTENT)
            else:
                texts.append(value)
            continue
        media.add(kind)
        if role == "assistant":
            ctx.add(f"{bwhere}: assistant turns cannot contain {kind}s; move media to a user turn")
        elif _text_only(ctx):
            ctx.add(f"{bwhere}: {ctx.base_model} accepts text only; remove the {kind} block")
        elif kind == "video" and ctx.family.startswith("llama"):
            ctx.add(f"{bwhere}: Llama accepts images, not video")
        _check_media(ctx, block, kind, bwhere)
    return "\n".join(texts), media


def _check_conversation(ctx: _Ctx, record: Mapping[str, Any]) -> tuple[str, str]:
    if _wrong_shape(ctx, record, {"schemaVersion", "messages"}):
        return "", ""
    _extra_keys(ctx, record, ("schemaVersion", "system", "messages"), "record")
    if "schemaVersion" not in record:
        ctx.add(
            'record is missing \'schemaVersion\'; add "schemaVersion": "bedrock-conversation-2024"'
            + (
                " (without it, this looks like the Claude 3 Haiku format)"
                if isinstance(record.get("messages"), list)
                else ""
            )
        )
    elif not isinstance(record["schemaVersion"], str):
        ctx.add("'schemaVersion' must be a string such as \"bedrock-conversation-2024\"")
    inputs: list[str] = []
    if "system" in record:
        system = record["system"]
        if isinstance(system, str):
            ctx.add(
                "'system' is a plain string; bedrock-conversation-2024 expects a list like "
                '[{"text": "..."}] (a string is the Claude 3 Haiku format)'
            )
            inputs.append(system)
        elif not isinstance(system, list):
            ctx.add(f'\'system\' must be a list like [{{"text": "..."}}], not {_type_name(system)}')
        else:
            if ctx.family.startswith("llama") and len(system) > 1:
                ctx.add(f"'system' has {len(system)} blocks; Llama accepts at most one")
            for j, block in enumerate(system):
                where = f"system[{j}]"
                if not isinstance(block, dict):
                    ctx.add(f'{where} must be an object like {{"text": "..."}}, not {_type_name(block)}')
                    continue
                _extra_keys(ctx, block, ("text",), where)
                inputs.append(_text_field(ctx, block, "text", where))
    if "messages" not in record:
        ctx.add("record is missing the required key 'messages'")
        return "\n".join(inputs), ""
    messages = record["messages"]
    if not isinstance(messages, list):
        ctx.add(f"'messages' must be a list, not {_type_name(messages)}")
        return "\n".join(inputs), ""
    roles: list[str | None] = []
    texts: list[str] = []
    media: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            ctx.add(f"{where} must be an object with 'role' and 'content', not {_type_name(msg)}")
            roles.append(None)
            texts.append("")
            continue
        _extra_keys(ctx, msg, ("role", "content"), where)
        role = msg.get("role")
        if role not in ("user", "assistant"):
            ctx.add(
                f"{where}: role must be 'user' or 'assistant', not {role!r}"
                + (" (put system text in the top-level 'system' list)" if role == "system" else "")
            )
        roles.append(role if isinstance(role, str) else None)
        if "content" not in msg:
            ctx.add(f"{where} is missing 'content'")
            texts.append("")
            continue
        text, kinds = _check_blocks(ctx, msg["content"], where, role if isinstance(role, str) else None)
        media |= kinds
        texts.append(text)
    if {"image", "video"} <= media:
        ctx.add("record mixes images and video; a sample may hold one kind of media only")
    _check_roles(ctx, roles)
    if ctx.family in ("nova", "nova2"):
        everything = inputs + texts
        found = sorted({s for s in NOVA_RESERVED for t in everything if s in t})
        if found:
            ctx.add(
                f"text contains Nova's reserved string(s) {', '.join(map(repr, found))}; "
                "rephrase them (e.g. 'User -' or drop the label), Nova rejects such data",
                KIND_CONTENT,
            )
    if texts:
        inputs.extend(texts[:-1])
        return "\n".join(inputs), texts[-1]
    return "\n".join(inputs), ""


_CHECKERS = {
    models.FORMAT_PROMPT_COMPLETION: _check_prompt_completion,
    models.FORMAT_CLAUDE_MESSAGES: _check_claude,
    models.FORMAT_CONVERSATION: _check_conversation,
    models.FORMAT_CONTINUED_PRETRAINING: _check_cpt,
}


def _check_tokens(ctx: _Ctx, limits: Limits, text_in: str, text_out: str) -> int:
    tin, tout = estimate_tokens(text_in), estimate_tokens(text_out)
    total = tin + tout
    hint = f"({limits.token_note}; estimate: {TOKEN_FORMULA}). Shorten or split the record"
    if limits.max_input and tin > limits.max_input:
        ctx.add(
            f"input is ~{tin:,} tokens, over the limit of {limits.max_input:,} {hint}",
            KIND_TOKENS,
            f"Maximum input token count {tin} exceeds limit of {limits.max_input}",
        )
    elif limits.max_output and tout > limits.max_output:
        ctx.add(
            f"output is ~{tout:,} tokens, over the limit of {limits.max_output:,} {hint}",
            KIND_TOKENS,
            f"Maximum output token count {tout} exceeds limit of {limits.max_output}",
        )
    elif limits.max_total and total > limits.max_total:
        ctx.add(
            f"record is ~{total:,} tokens (input + output), over the limit of {limits.max_total:,} {hint}",
            KIND_TOKENS,
            f"Max sum of input and output token length {total} exceeds total limit of {limits.max_total}",
        )
    return total


def _resolve(base_model: str, customization_type: str, split: str) -> tuple[str, str]:
    """(family, data format) for the request, or UsageError."""
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if customization_type not in CUSTOMIZATION_TYPES:
        raise UsageError(
            f"customization type must be one of {', '.join(CUSTOMIZATION_TYPES)}, not {customization_type!r}"
        )
    try:
        family = models.family_of(base_model)
    except KeyError as exc:
        raise UsageError(
            f"unknown base model {base_model!r}; use a customization model ID such as "
            "those in utils/models.py (e.g. the registry's customization_id values)"
        ) from exc
    if customization_type == CONTINUED_PRE_TRAINING:
        if family != "titan":
            raise UsageError(
                f"{base_model} does not support CONTINUED_PRE_TRAINING on Bedrock; only Titan Text "
                "models do. Use FINE_TUNING, or pick a Titan Text base model"
            )
        return family, models.FORMAT_CONTINUED_PRETRAINING
    return family, models.FAMILY_FORMATS[family]


def validate_bytes(
    data: bytes,
    base_model: str,
    split: str = "train",
    customization_type: str = FINE_TUNING,
    filename: str = "train.jsonl",
    batch_size: int = 1,
    combined_counts: bool = False,
) -> ValidationReport:
    """Validate a JSONL file's bytes for ``base_model``; raise UsageError for a bad request.

    ``combined_counts=True`` leaves out the record-count limits that apply to training
    and validation records together; check those with :func:`check_combined_counts`.
    """
    family, fmt = _resolve(base_model, customization_type, split)
    limits = limits_for(base_model, split, customization_type, batch_size)
    if combined_counts:
        limits = _per_file_limits(limits, base_model, split)
    report = ValidationReport(filename, base_model, fmt, split, customization_type)
    ctx = _Ctx(base_model, family, fmt, filename, report.problems, report.warnings)
    checker = _CHECKERS[fmt]

    if not data.strip():
        report.problems.append(
            Problem(None, "file is empty; a dataset needs at least one JSON object per line", KIND_JSONL)
        )
        return report
    if data.startswith(b"\xef\xbb\xbf"):
        report.problems.append(
            Problem(
                None,
                "file starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM",
                KIND_ENCODING,
            )
        )
        data = data[3:]

    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the newline that ends the last line
    bad_utf8: list[int] = []
    totals: list[int] = []
    for number, raw in enumerate(raw_lines, start=1):
        ctx.line = number
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_utf8.append(number)
            report.records += 1
            continue
        if not text.strip():
            ctx.add(
                "blank line; every line must hold one JSON object (delete blank lines, "
                "including extra ones at the end)",
                KIND_JSONL,
            )
            continue
        report.records += 1
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = (
                " (one record per line: pretty-printed JSON is not JSONL)"
                if text.strip() in "{[" or exc.msg.startswith("Expecting property name")
                else ""
            )
            ctx.add(f"not valid JSON: {exc.msg} at column {exc.colno}{hint}", KIND_JSONL)
            continue
        if not isinstance(record, dict):
            ctx.add(
                f"line holds {_type_name(record)}, not a JSON object; each line must be one {{...}} record",
                KIND_JSONL,
            )
            continue
        text_in, text_out = checker(ctx, record)
        totals.append(_check_tokens(ctx, limits, text_in, text_out))
    if bad_utf8:
        shown = ", ".join(map(str, bad_utf8[:10])) + (" ..." if len(bad_utf8) > 10 else "")
        report.problems.append(
            Problem(
                None,
                f"not valid UTF-8 on line(s) {shown}; re-save the file with UTF-8 encoding",
                KIND_ENCODING,
            )
        )

    if totals:
        report.token_max = max(totals)
        report.token_mean = sum(totals) / len(totals)
    _check_count(report, limits)
    report.problems.sort(key=lambda p: (p.line is not None, p.line or 0))
    return report


def _check_count(report: ValidationReport, limits: Limits) -> None:
    n = report.records
    if n == 0:
        return
    note = f" ({limits.count_note})" if limits.count_note else ""
    if limits.min_records is not None and n < limits.min_records:
        report.problems.append(
            Problem(
                None,
                f"{n} records in this {report.split} file, fewer than the minimum of {limits.min_records:,}{note}; "
                "add records",
                KIND_COUNT,
                f"The {report.split} dataset {report.filename} has {n} records; at least "
                f"{limits.min_records} are required",
            )
        )
    if limits.max_records is not None and n > limits.max_records:
        report.problems.append(
            Problem(
                None,
                f"{n:,} records in this {report.split} file, more than the maximum of {limits.max_records:,}{note}; "
                "sample it down or request a quota increase",
                KIND_COUNT,
                f"The {report.split} dataset {report.filename} has {n} records; at most "
                f"{limits.max_records} are allowed",
            )
        )


def validate_file(
    path: str | Path,
    base_model: str,
    split: str = "train",
    customization_type: str = FINE_TUNING,
    batch_size: int = 1,
) -> ValidationReport:
    """Validate a JSONL file on disk (FileNotFoundError if it does not exist)."""
    p = Path(path)
    return validate_bytes(p.read_bytes(), base_model, split, customization_type, p.name, batch_size)


def validate_records(
    records: Sequence[Any],
    base_model: str,
    split: str = "train",
    customization_type: str = FINE_TUNING,
    filename: str = "train.jsonl",
    batch_size: int = 1,
) -> ValidationReport:
    """Validate in-memory records (line N = records[N-1]) exactly as the JSONL they would become."""
    lines: list[bytes] = []
    unserializable: list[Problem] = []
    for i, record in enumerate(records, start=1):
        try:
            lines.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            unserializable.append(Problem(i, f"record cannot be written as JSON: {exc}", KIND_JSONL))
            lines.append(b"null")
    data = b"\n".join(lines) + (b"\n" if lines else b"")
    report = validate_bytes(data, base_model, split, customization_type, filename, batch_size)
    if unserializable:
        bad = {p.line for p in unserializable}
        report.problems = sorted(
            [p for p in report.problems if p.line not in bad] + unserializable,
            key=lambda p: (p.line is not None, p.line or 0),
        )
    return report


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 like argparse, but keep our wording
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _Parser(
        prog="python -m utils.validate_dataset",
        description="Validate a Bedrock customization dataset (JSONL) for a base model.",
    )
    parser.add_argument("path", help="the JSONL file to check")
    parser.add_argument(
        "--base-model", required=True,
        help="customization model ID, one of: "
        + ", ".join(sorted(spec.customization_id for spec in models.MODELS.values() if spec.customization_id)),
    )
    parser.add_argument("--split", default="train", choices=SPLITS)
    parser.add_argument("--customization-type", default=FINE_TUNING, choices=CUSTOMIZATION_TYPES)
    parser.add_argument(
        "--batch-size", type=int, default=1, help="Titan token limits depend on it (default 1)"
    )
    args = parser.parse_args(argv)
    path = Path(args.path)
    if not path.is_file():
        print(f"{args.path}: error: no such file", file=sys.stderr)
        return 2
    try:
        report = validate_file(path, args.base_model, args.split, args.customization_type, args.batch_size)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{args.path}: error: cannot read file: {exc}", file=sys.stderr)
        return 2
    for line in report.lines(args.path):
        print(line)
    for warning in report.warnings[:10]:
        print(f"{warning.render(args.path)} (warning)")
    print(f"{args.path}: {report.summary()}")
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
