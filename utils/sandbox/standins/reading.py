"""Reading a prompt: the question, the instructions and the context units (sentences, table rows,
documents) it holds (:func:`read_request`), and how relevant each unit is to the question
(:func:`rank_units`)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass

from utils.sandbox.messages import Prompt
from utils.sandbox.standins.text import content_words, words

# =========================================================================== reading a prompt


@dataclass(frozen=True)
class Unit:
    """One retrievable piece of context: a sentence or a table row."""

    text: str
    doc: int | None  # document number when the prompt numbers its documents
    position: int
    kind: str = "sentence"  # "sentence" | "row"
    cells: tuple[tuple[str, str], ...] = ()  # (header, value) pairs of a table row


@dataclass
class Request:
    """A prompt split into question, context units and the instruction text."""

    question: str
    units: list[Unit]
    user_text: str
    all_text: str
    numbered_docs: bool


_DOC_START = re.compile(r"^\s*(?:\*\*)?(?:Doc(?:ument)?|Source|Passage)\s*#?\s*(\d+)\s*(?:\*\*)?\s*[:.)\]-]\s*|^\s*\[(\d+)\]\s*",
                        re.IGNORECASE)
_INLINE_DOC = re.compile(r"(?<=\S)[ \t]+(?=Doc(?:ument)? \d+:\s)")
_QUESTION_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:question|q|query|user question|user)\s*[:：]\s*(.*\S)?\s*$",
                             re.IGNORECASE)
_LABEL_ONLY = re.compile(r"^\s*(?:answer|a|assistant|response|bot|context|documents?|reference documents?)\s*[:：]?\s*$",
                         re.IGNORECASE)
_CONTEXT_LABEL = re.compile(r"^\s*(?:context|passage|reference|background)\s*[:：]\s*", re.IGNORECASE)
_INSTRUCTION = re.compile(
    r"^\s*(?:write|return|answer|use|respond|cite|provide|give|generate|create|list|output|format|include|"
    r"do not|don't|never|always|please|make sure|ensure|each answer|each question|you are|you must|you will|"
    r"only|here (?:are|is)|below (?:are|is)|the following|keep|be concise|think|consider|reply|"
    r"if (?:they|the (?:documents?|context|text|table)|no|none))\b",
    re.IGNORECASE,
)
_FORMAT_ASK = re.compile(r"\bjson\b.*\b(?:return|respond|output|format|reply|produce|write|array|object)\b|"
                         r"\b(?:return|respond|output|format|reply|produce|write)\b.*\bjson\b", re.IGNORECASE)
_ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|etc|vs|approx|Mr|Ms|Dr|No|Fig|U\.S)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[*`])")


def _split_sentences(text: str) -> list[str]:
    protected = _ABBREVIATIONS.sub(lambda m: m.group(0).replace(".", "\u2024"), text)
    parts = _SENTENCE_END.split(protected)
    return [p.replace("\u2024", ".").strip() for p in parts if p.strip()]


def _clean_inline(text: str) -> str:
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\*\*|__|`", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _header_word(header: str) -> str:
    return header if header[:2].isupper() else header[:1].lower() + header[1:]


def _join(items: list[str]) -> str:
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


Row = tuple[str, tuple[tuple[str, str], ...]]


def _row_sentence(header: list[str], cells: list[str]) -> Row:
    """A table row as a sentence ("For X, h1 is v1 and h2 is v2.") plus its (header, value) cells."""
    pairs = tuple((h, c) for h, c in zip(header, cells, strict=False) if c)
    if not pairs:
        return "", ()
    if len(pairs) == 1:
        return f"{pairs[0][0]}: {pairs[0][1]}.", pairs
    rest = [f"{_header_word(h)} is {c}" for h, c in pairs[1:] if h]
    if not rest:
        return ", ".join(c for _, c in pairs) + ".", pairs
    return f"For {pairs[0][1]}, {_join(rest)}.", pairs


def _tables(text: str) -> tuple[str, list[Row]]:
    """Pull markdown, HTML and JSON tables out of ``text``; return (rest, rows)."""
    rows: list[Row] = []

    def html_table(match: re.Match[str]) -> str:
        header: list[str] = []
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(0), flags=re.DOTALL | re.IGNORECASE):
            cells = [_clean_inline(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr,
                                                          flags=re.DOTALL | re.IGNORECASE)]
            if not header:
                header = cells
            else:
                rows.append(_row_sentence(header, cells))
        return "\n"

    text = re.sub(r"<table.*?</table>", html_table, text, flags=re.DOTALL | re.IGNORECASE)

    out_lines: list[str] = []
    header = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("|") and stripped.count("|") >= 2:
            cells = [_clean_inline(c) for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?", c) or not c for c in cells):
                continue
            if not header:
                header = cells
            else:
                rows.append(_row_sentence(header, cells))
            continue
        header = []
        out_lines.append(line)
    text = "\n".join(out_lines)

    decoder = json.JSONDecoder()
    pieces: list[str] = []
    i = 0
    while i < len(text):
        match = re.compile(r"(?m)^[ \t]*[\[{]").search(text, i)
        if not match:
            pieces.append(text[i:])
            break
        start = match.end() - 1
        try:
            data, end = decoder.raw_decode(text, start)
        except ValueError:
            pieces.append(text[i:match.end()])
            i = match.end()
            continue
        pieces.append(text[i:start])
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict):
                keys = [str(k) for k in item]
                rows.append(_row_sentence(keys, [_clean_inline(json.dumps(v) if isinstance(v, dict | list)
                                                               else str(v)) for v in item.values()]))
            elif isinstance(item, str | int | float):
                rows.append((f"{item}.", ()))
        i = end
    return "".join(pieces), [r for r in rows if r[0]]


_BLOCK_START = re.compile(r"^\s*(?:[-*+•]\s|\d+[.)]\s|#|\||>|```)")


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines of a paragraph (markdown documents wrap at ~100 columns).

    A line continues the previous one unless either is blank, it starts a list item,
    heading, table row or quote, or it starts a new document label (``Doc 2:``).
    """
    out: list[str] = []
    for line in text.split("\n"):
        previous = out[-1] if out else ""
        continues = (
            previous.strip() and line.strip() and not _BLOCK_START.match(line)
            and not _DOC_START.match(line) and not _LABEL_ONLY.match(line)
            and not previous.lstrip().startswith(("#", "|"))
        )
        if continues:
            out[-1] = previous.rstrip() + " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


def _units_from(text: str, doc: int | None, start: int) -> list[Unit]:
    rest, rows = _tables(text)
    units = [Unit(r, doc, start + i, "row", cells) for i, (r, cells) in enumerate(rows)]
    position = start + len(units)
    for line in _unwrap(rest).split("\n"):
        line = _CONTEXT_LABEL.sub("", line)
        line = re.sub(r"^\s*(?:[-*+•]|\d+[.)])\s+", "", line)
        if not line.strip() or line.lstrip().startswith("#") or _LABEL_ONLY.match(line):
            continue
        for sentence in _split_sentences(_clean_inline(line)):
            if sentence.endswith(":") or _INSTRUCTION.match(sentence) or _FORMAT_ASK.search(sentence):
                continue
            if len(words(sentence)) < 3:
                continue
            units.append(Unit(sentence, doc, position))
            position += 1
    return units


def _extract_question(user_text: str) -> tuple[str, str]:
    """(question, the user text without it)."""
    lines = user_text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        match = _QUESTION_LABEL.match(lines[i])
        if match:
            question = (match.group(1) or "").strip()
            j = i + 1
            while not question and j < len(lines):
                question, j = lines[j].strip(), j + 1
            return question, "\n".join(lines[:i] + lines[j if not match.group(1) else i + 1:])
    sentences = _split_sentences(user_text.replace("\n", " \n "))
    for sentence in reversed(sentences):
        if sentence.rstrip().endswith("?"):
            tail = sentence.split("\n")[-1].strip()
            return tail, user_text.replace(tail, " ", 1)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].strip()
        if line and not _LABEL_ONLY.match(line) and not _DOC_START.match(line):
            return line, "\n".join(lines[:i] + lines[i + 1:])
    return "", user_text


def read_request(prompt: Prompt) -> Request:
    """Split a prompt into the question (last question-like line) and context units."""
    user_texts = [text for role, text in prompt.messages if role == "user"]
    user_text = user_texts[-1] if user_texts else ""
    question, rest = _extract_question(user_text)
    earlier = [text for text in (prompt.system, *[t for _, t in prompt.messages[:-1]]) if text]
    context = "\n\n".join([*earlier, rest])
    # Documents: a line starting "Doc N:" (or "[N]") opens document N until the next one.
    units: list[Unit] = []
    current: int | None = None
    buffer: list[str] = []
    numbered = False

    def flush() -> None:
        if buffer:
            units.extend(_units_from("\n".join(buffer), current, len(units)))
            buffer.clear()

    context = _INLINE_DOC.sub("\n", context)
    previous_blank = False
    for line in context.split("\n"):
        match = _DOC_START.match(line)
        ends_doc = re.match(r"^\s*</\w+>\s*$", line) or (previous_blank and (
            _INSTRUCTION.match(line) or re.match(r"^\s*(?:Table|Text|Question)\s*:", line)))
        previous_blank = not line.strip()
        if ends_doc and not match:
            flush()
            current = None
        if match:
            flush()
            current = int(match.group(1) or match.group(2))
            numbered = True
            line = line[match.end():]
        elif current is not None and not line.strip():
            buffer.append(line)
            continue
        buffer.append(line)
    flush()
    all_text = "\n".join([prompt.system, *[t for _, t in prompt.messages]])
    return Request(question, units, user_text, all_text, numbered)


def rank_units(units: list[Unit], query: str) -> list[tuple[float, Unit]]:
    """Units scored by IDF-weighted overlap with ``query`` (best first; ties keep document order)."""
    query_words = set(content_words(query))
    bags = [set(content_words(u.text)) for u in units]
    n = len(units)
    df: Counter[str] = Counter(w for bag in bags for w in bag)
    scored = []
    for unit, bag in zip(units, bags, strict=True):
        overlap = query_words & bag
        score = sum(math.log((n + 1) / (df[w] + 0.5)) + 1.0 for w in overlap)
        score /= 1.0 + 0.1 * math.sqrt(len(bag))
        scored.append((score, unit))
    scored.sort(key=lambda item: (-item[0], item[1].position))
    return scored
