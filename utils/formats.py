"""Turn prompts and answers into the JSONL records each Bedrock base model expects.

The base model chooses the format (:func:`utils.models.data_format`):

==========================  ==========================================================
``prompt-completion``       ``{"prompt", "completion"}``: Titan, Cohere, Llama 3.1
``claude-messages``         ``{"system"?, "messages": [{role, content: str}]}``: Claude 3 Haiku
``bedrock-conversation``    ``{"schemaVersion", "system": [{text}], "messages": [{role,
                            content: [{text}]}]}``: Nova, Llama 3.2+, Llama 3.3
``continued-pretraining``   ``{"input"}``: Titan continued pre-training
==========================  ==========================================================

Also here: the seed's prompt/completion -> messages converter, a general converter
between formats (:func:`convert_record`, with :func:`parse_record` as its inverse),
the seed's RAG-style prompt (:func:`rag_prompt`), and TAT-QA rendering
(:func:`tatqa_prompt`, :func:`tatqa_completion`). Everything is pure: no I/O.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from utils import models

SCHEMA_VERSION = "bedrock-conversation-2024"

#: A conversation turn: ``("user" | "assistant", text)``.
Turn = tuple[str, str]

TABLE_FORMATS = ("markdown", "html", "json")
TATQA_SCALES = ("", "thousand", "million", "billion", "percent")

DEFAULT_RAG_SYSTEM = (
    "You are a helpful assistant that answers questions about AWS services. "
    "Keep answers short and cite the reference documents you used as [n]."
)


# --------------------------------------------------------------------------------------
# Record builders, one per format
# --------------------------------------------------------------------------------------


def _turns(turns: Iterable[Turn | Mapping[str, Any]]) -> list[Turn]:
    """Normalise turns given as (role, text) tuples or {role, content} mappings."""
    out: list[Turn] = []
    for turn in turns:
        if isinstance(turn, Mapping):
            role, content = turn["role"], turn["content"]
            if isinstance(content, list):
                content = "\n".join(b["text"] for b in content if "text" in b)
            out.append((str(role), str(content)))
        else:
            role, text = turn
            out.append((str(role), str(text)))
    if not out:
        raise ValueError("a conversation needs at least one user turn and one assistant turn")
    return out


def single_turn(prompt: str, completion: str) -> list[Turn]:
    """``[("user", prompt), ("assistant", completion)]``."""
    return [("user", prompt), ("assistant", completion)]


def prompt_completion_record(prompt: str, completion: str, system: str | None = None) -> dict[str, str]:
    """``{"prompt", "completion"}``. The format has no system field: ``system`` is prepended."""
    if system:
        prompt = f"{system}\n\n{prompt}"
    return {"prompt": prompt, "completion": completion}


def claude_messages_record(
    turns: Sequence[Turn | Mapping[str, Any]], system: str | None = None
) -> dict[str, Any]:
    """Claude 3 Haiku: ``{"system"?, "messages": [{"role", "content": str}, ...]}`` (multi-turn)."""
    record: dict[str, Any] = {}
    if system:
        record["system"] = system
    record["messages"] = [{"role": role, "content": text} for role, text in _turns(turns)]
    return record


def conversation_record(
    turns: Sequence[Turn | Mapping[str, Any]], system: str | None = None
) -> dict[str, Any]:
    """``bedrock-conversation-2024`` (Nova, Llama 3.2+/3.3), with content blocks (multi-turn)."""
    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if system:
        record["system"] = [{"text": system}]
    record["messages"] = [{"role": role, "content": [{"text": text}]} for role, text in _turns(turns)]
    return record


def cpt_record(text: str) -> dict[str, str]:
    """Continued pre-training (Titan): ``{"input": text}``."""
    return {"input": text}


def format_conversation(
    turns: Sequence[Turn | Mapping[str, Any]], base_model: str, system: str | None = None
) -> dict[str, Any]:
    """A (possibly multi-turn) conversation in ``base_model``'s fine-tuning format.

    prompt/completion models take one exchange only: a longer conversation raises ValueError.
    """
    fmt = models.data_format(base_model)
    if fmt == models.FORMAT_CLAUDE_MESSAGES:
        return claude_messages_record(turns, system)
    if fmt == models.FORMAT_CONVERSATION:
        return conversation_record(turns, system)
    if fmt == models.FORMAT_PROMPT_COMPLETION:
        norm = _turns(turns)
        if [r for r, _ in norm] != ["user", "assistant"]:
            raise ValueError(
                f"{base_model} uses prompt/completion records: give exactly one user turn and "
                "one assistant turn (multi-turn needs Claude 3 Haiku, Nova or Llama 3.2+)"
            )
        return prompt_completion_record(norm[0][1], norm[1][1], system)
    raise ValueError(f"no fine-tuning format for {base_model} ({fmt})")


def format_record(prompt: str, completion: str, base_model: str, system: str | None = None) -> dict[str, Any]:
    """One prompt/answer pair in the fine-tuning format ``base_model`` expects."""
    return format_conversation(single_turn(prompt, completion), base_model, system)


def to_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    """JSON Lines: one compact object per line, UTF-8 text kept as is, ending in a newline."""
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    return "\n".join(lines) + "\n" if lines else ""


def from_jsonl(text: str) -> list[dict[str, Any]]:
    """Inverse of :func:`to_jsonl` (blank lines are skipped)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------
# Converters
# --------------------------------------------------------------------------------------


def prompt_completion_to_messages(record: Mapping[str, str], system: str | None = None) -> dict[str, Any]:
    """The seed's converter: ``{"prompt", "completion"}`` -> Claude 3 Haiku messages record."""
    return claude_messages_record(single_turn(record["prompt"], record["completion"]), system)


def parse_record(record: Mapping[str, Any]) -> tuple[str | None, list[Turn]]:
    """Any supported record -> ``(system, turns)``; the inverse of the record builders.

    A continued-pre-training record gives ``(None, [("user", input)])``.
    """
    if "messages" in record:
        system = record.get("system")
        if isinstance(system, list):
            system = "\n".join(b["text"] for b in system if "text" in b) or None
        return system or None, _turns(record["messages"])
    if "prompt" in record and "completion" in record:
        return None, single_turn(str(record["prompt"]), str(record["completion"]))
    if "input" in record:
        return None, [("user", str(record["input"]))]
    raise ValueError(
        f"unrecognised record keys {sorted(record)}; expected messages, prompt/completion or input"
    )


def convert_record(record: Mapping[str, Any], base_model: str) -> dict[str, Any]:
    """Rewrite a record of any supported format into ``base_model``'s format.

    For example a seed Claude 3 Haiku record becomes ``bedrock-conversation-2024`` for Nova.
    A system prompt is kept, or prepended to the prompt for prompt/completion models.
    """
    system, turns = parse_record(record)
    return format_conversation(turns, base_model, system)


# --------------------------------------------------------------------------------------
# Prompts: the seed's RAG-style prompt
# --------------------------------------------------------------------------------------


def number_documents(documents: Sequence[str]) -> str:
    """``["a", "b"]`` -> ``"Doc 1: a\\nDoc 2: b"``, the bundle style of data/aws_docs_qa.csv."""
    return "\n".join(f"Doc {i}: {doc.strip()}" for i, doc in enumerate(documents, start=1))


def rag_prompt(question: str, documents: str | Sequence[str]) -> str:
    """The seed's context-based Q&A prompt: reference documents, question, and instructions.

    ``documents`` is a bundle string ("Doc 1: ... Doc 2: ...") or a list of passages.
    """
    bundle = documents if isinstance(documents, str) else number_documents(documents)
    return (
        "Below are reference documents, each introduced as Doc n.\n\n"
        f"<documents>\n{bundle.strip()}\n</documents>\n\n"
        f"Question: {question.strip()}\n\n"
        "Use the documents when they are relevant to the question, and cite the ones you use "
        "as [n]. If they do not contain the answer, say so briefly instead of guessing. "
        "Answer in one to three sentences."
    )


# --------------------------------------------------------------------------------------
# TAT-QA rendering
# --------------------------------------------------------------------------------------


def render_table(table: Sequence[Sequence[Any]], table_format: str = "markdown") -> str:
    """Render a TAT-QA table (2-D list of cell strings) as markdown, HTML or JSON."""
    rows = [[str(cell).strip() for cell in row] for row in table]
    if table_format == "json":
        return json.dumps(rows, ensure_ascii=False)
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    if table_format == "markdown":

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        out = [line(rows[0]), "| " + " | ".join(["---"] * width) + " |"]
        out.extend(line(row) for row in rows[1:])
        return "\n".join(out)
    if table_format == "html":
        body = "".join(
            "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row) + "</tr>"
            for tag, row in (("th" if i == 0 else "td", row) for i, row in enumerate(rows))
        )
        return f"<table>{body}</table>"
    raise ValueError(f"table_format must be one of {TABLE_FORMATS}, not {table_format!r}")


def parse_markdown_table(text: str) -> list[list[str]]:
    """Inverse of ``render_table(..., "markdown")`` (for round-trip tests and notebooks)."""
    rows: list[list[str]] = []
    for i, line in enumerate(text.strip().splitlines()):
        if i == 1:
            continue  # the --- separator
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def tatqa_prompt(
    context: Mapping[str, Any], question: str | Mapping[str, Any], table_format: str = "markdown"
) -> str:
    """Table, paragraphs, question and an instruction to answer concisely with a scale."""
    q = question["question"] if isinstance(question, Mapping) else question
    paragraphs = sorted(context.get("paragraphs", []), key=lambda p: p.get("order", 0))
    text = "\n\n".join(p["text"].strip() for p in paragraphs)
    return (
        f"Table:\n{render_table(context['table']['table'], table_format)}\n\n"
        f"Text:\n{text}\n\n"
        f"Question: {q.strip()}\n\n"
        "Answer from the table and text. Be concise: give only the answer (a number, or the exact "
        "words from the table or text; separate several items with '; '), without units or "
        "explanation. Reply in exactly two lines:\n"
        "Answer: <answer>\n"
        "Scale: <none, thousand, million, billion or percent>"
    )


def tatqa_answer_text(answer: Any) -> str:
    """A TAT-QA gold answer as text: spans joined by '; ', numbers without trailing .0."""
    if isinstance(answer, list):
        return "; ".join(str(a) for a in answer)
    if isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    return str(answer)


def tatqa_completion(question: Mapping[str, Any]) -> str:
    """The fine-tuning target for a TAT-QA question, in the two-line form of :func:`tatqa_prompt`."""
    scale = question.get("scale") or "none"
    return f"Answer: {tatqa_answer_text(question['answer'])}\nScale: {scale}"


def parse_tatqa_completion(text: str) -> tuple[str, str]:
    """``"Answer: 12.5\\nScale: million"`` -> ``("12.5", "million")``; scale '' when none or absent."""
    answer_match = re.search(r"Answer:\s*(.*)", text)
    scale_match = re.search(r"Scale:\s*([A-Za-z]*)", text)
    answer = answer_match.group(1).strip() if answer_match else text.strip()
    scale = scale_match.group(1).strip().lower() if scale_match else ""
    return answer, "" if scale in ("", "none") else scale
