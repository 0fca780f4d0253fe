"""Synthetic Q&A pairs from a teacher model, grounded in reference documents.

The spine's version: one prompt per document, JSON records parsed defensively,
duplicates dropped, every call checkpointed through :mod:`utils.engine`, so a rerun
resumes instead of paying twice. Filtering by a judge and scaling to batch inference build on the same pieces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from utils.formats import number_documents

TEACHER_SYSTEM = (
    "You write training data for a question-answering assistant. You only use facts "
    "stated in the reference documents you are given."
)

TEACHER_PROMPT = """Here are reference documents:
{documents}

Write {n} new question and answer pairs that a cloud engineer could ask about these documents.
Each answer must be supported by the documents and cite them like [1].
Return a JSON array of {n} objects with keys "question" and "answer", and nothing else."""


def teacher_prompt(documents: list[str], n: int) -> str:
    """The teacher prompt for one bundle of documents (numbered ``Doc 1: …``)."""
    return TEACHER_PROMPT.format(documents=number_documents(documents), n=n)


def parse_records(text: str, keys: tuple[str, ...] = ("question", "answer")) -> list[dict[str, str]]:
    """JSON records with the required keys from a model reply; tolerant of prose around the JSON."""
    match = re.search(r"\[.*\]", text, flags=re.DOTALL)
    if not match:
        return []
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    records = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and all(isinstance(item.get(k), str) and item[k].strip() for k in keys):
            records.append({k: item[k].strip() for k in keys})
    return records


def deduplicate(records: list[dict[str, Any]], existing_questions: set[str] = frozenset()) -> list[dict[str, Any]]:
    """Drop records whose normalised question was already seen (in the data or earlier records)."""
    seen = {_normal(q) for q in existing_questions}
    unique = []
    for record in records:
        key = _normal(record["question"])
        if key and key not in seen:
            seen.add(key)
            unique.append(record)
    return unique


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def load_documents(folder: str | Path) -> dict[str, str]:
    """Reference documents (``*.md``/``*.txt``) by file stem, sorted for determinism."""
    paths = sorted(Path(folder).glob("*.md")) + sorted(Path(folder).glob("*.txt"))
    return {path.stem: path.read_text(encoding="utf-8") for path in paths}
