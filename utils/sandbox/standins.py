"""Deterministic stand-in models for the offline sandbox.

These are **stand-ins, not language models**. They exist so that the workshop
can run end to end offline, and they are built so that every answer comes from
the request (and, for a fine-tuned model, from its training data), never from
constants chosen to make charts look good. See ``utils/sandbox/README.md``,
section "Stand-in models", for the behaviours in prose.

Entry points:

- :func:`count_tokens` -- the sandbox's offline token estimate;
- :func:`generate` -- answer a :class:`~utils.sandbox.bodies.Prompt` as a base or
  custom model; the same request always gives the same answer;
- :func:`malformed` -- garble a completion when the malformed-output fault fires.

:func:`generate` chooses a mode from the prompt:

1. a pairwise judge prompt (``[[A]]``/``[[B]]``/``[[C]]``) or a single-answer
   rating prompt (``[[rating]]``) -> :func:`judge`;
2. a request for JSON records with named keys -> :func:`json_records`;
3. a custom model -> :func:`custom_answer` (retrieval over its training pairs
   plus the answer length and style it learned);
4. otherwise a base model's verbose, extractive answer -> :func:`base_answer`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from utils.sandbox.messages import Completion, Prompt  # shared types (also imported from here)


@dataclass
class ModelBehaviour:
    """What a stand-in needs to know about the model it imitates."""

    model_id: str  # base model id (for a custom model: its base model's id)
    kind: str = "base"  # "base" | "custom"
    training_pairs: list[tuple[str, str]] = field(default_factory=list)  # (prompt text, answer text)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    name: str = ""
    # What the customization job's training did (``training.TrainingResult.outcome()``), if known.
    training: dict[str, Any] | None = None
    # Retrieval index and learned style of ``training_pairs``; built once per custom model and shared.
    index: TrainedIndex | None = None


# =========================================================================== tokens and words


def count_tokens(text: str) -> int:
    """Conservative offline token estimate: ``ceil(max(words * 4 / 3, chars / 4))``.

    Real BPE tokenizers give about 0.75 words or 4 characters per token for
    English; taking the larger of the two estimates errs on the high side for
    code, numbers and JSON, so cost and quota estimates are not optimistic.
    """
    if not text:
        return 0
    words = len(text.split())
    return max(-(-words * 4 // 3), -(-len(text) // 4))


def prompt_tokens(prompt: Prompt) -> int:
    """Input tokens of a request: its texts plus 4 tokens of framing per message and 3 per reply."""
    total = count_tokens(prompt.system) + (4 if prompt.system else 0)
    total += sum(count_tokens(text) + 4 for _, text in prompt.messages)
    return total + 3


STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't
    down during each few for from further had hadn't has hasn't have haven't having he her here hers herself
    him himself his how i i'm if in into is isn't it it's its itself just let's me more most mustn't my myself
    no nor not of off on once only or other ought our ours ourselves out over own same shan't she should
    shouldn't so some such than that that's the their theirs them themselves then there there's these they
    this those through to too under until up upon us very was wasn't we were weren't what what's when where
    which while who whom why will with won't would wouldn't you your yours yourself yourselves may might
    must shall one ones use used using via per etc e.g i.e please tell give explain describe according
    based provided context question answer document documents doc following information""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:['.\-][a-z0-9]+)*")


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 5 and word.endswith("est"):
        return word[:-3]
    if len(word) > 5 and word.endswith("er"):
        return word[:-2]
    if len(word) > 4 and word.endswith("e"):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-case word tokens."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """Stemmed lower-case tokens without stopwords: the unit of every overlap score here."""
    return [_stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big")


def _pick(options: tuple[str, ...], *keys: str) -> str:
    """A deterministic choice seeded by a hash of ``keys`` (no global RNG)."""
    return options[_digest(*keys) % len(options)]


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


# =========================================================================== shared helpers


def _finish(text: str, prompt: Prompt) -> Completion:
    """Apply stop sequences and ``max_tokens``; count tokens."""
    stop_reason, matched = "end_turn", None
    cut = len(text)
    for stop in prompt.stop_sequences:
        index = text.find(stop) if stop else -1
        if 0 <= index < cut:
            cut, matched = index, stop
    if matched is not None:
        text, stop_reason = text[:cut].rstrip(), "stop_sequence"
    limit = max(1, prompt.max_tokens)
    if count_tokens(text) > limit:
        stop_reason, matched = "max_tokens", None
        tokens = re.split(r"(\s+)", text)
        low, high = 0, len(tokens)
        while low < high:  # longest prefix of tokens within the limit
            mid = (low + high + 1) // 2
            if count_tokens("".join(tokens[:mid])) <= limit:
                low = mid
            else:
                high = mid - 1
        text = "".join(tokens[:low]).rstrip()
        while text and count_tokens(text) > limit:
            text = text[:-1]
        if not text:
            text = tokens[0][: max(1, 3 * limit)] if tokens else ""
            while count_tokens(text) > limit and len(text) > 1:
                text = text[:-1]
    return Completion(text, prompt_tokens(prompt), count_tokens(text), stop_reason, matched)


_LOWER_FIRST = frozenset(
    "the a an this these those it its each all every most some many when if in for to by on with there "
    "after before during while once although because you we they users customers".split()
)


def _lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    if first.lower() in _LOWER_FIRST and first[:1].isupper() and (first[1:].islower() or len(first) == 1):
        return sentence[0].lower() + sentence[1:]
    return sentence


def _with_period(sentence: str) -> str:
    sentence = sentence.strip()
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def _cite(sentence: str, doc: int | None) -> str:
    sentence = _with_period(sentence)
    if doc is None or re.search(rf"\[{doc}\]", sentence):
        return sentence
    return f"{sentence[:-1].rstrip()} [{doc}]{sentence[-1]}"


def _topic(question: str, fallback: str = "this topic") -> str:
    """The longest run of consecutive content words in the question, in its own wording."""
    tokens = re.findall(r"[A-Za-z0-9][\w.\-']*", question)
    best: list[str] = []
    run: list[str] = []
    for token in tokens:
        if token.lower() in STOPWORDS or token.lower() in ("what", "how", "why", "which", "who", "when", "where"):
            run = []
            continue
        run.append(token)
        if len(run) > len(best):
            best = list(run)
    return " ".join(best[:5]) if best else fallback


def _relevant(request: Request, limit: int) -> list[tuple[float, Unit]]:
    """The top units for the question; falls back to the instruction text for the query."""
    query = request.question or request.user_text
    ranked = [(s, u) for s, u in rank_units(request.units, query) if s > 0]
    if not ranked:
        return []
    best = ranked[0][0]
    return [(s, u) for s, u in ranked if s >= 0.35 * best][:limit]


# =========================================================================== length instructions

_NUMBER_WORD = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a single|a|single)"
_SENTENCES_ASK = re.compile(rf"\b(?:in|with|using|of|as)\s+(?:only\s+|at most\s+|no more than\s+|exactly\s+)?"
                            rf"({_NUMBER_WORD})\s+(?:short\s+|brief\s+|concise\s+)?sentences?\b", re.IGNORECASE)
_WORDS_ASK = re.compile(r"\b(?:in|with|using|of)\s+(?:at most\s+|no more than\s+|under\s+|fewer than\s+|"
                        r"less than\s+|exactly\s+|about\s+)?(\d+)\s+words?\b", re.IGNORECASE)
_NUMBER_ONLY_ASK = re.compile(r"\b(?:only|just)\s+(?:the|a)\s+(?:number|figure|value|amount)\b|"
                              r"\b(?:number|figure|value)\s+only\b", re.IGNORECASE)
_CONCISE_ASK = re.compile(r"\b(?:be (?:very )?(?:concise|brief)|concisely|briefly|short answer|keep it short|"
                          r"(?:answer|respond|reply) (?:in )?(?:short|brief))\b", re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"[$€£]?\d[\d,]*(?:\.\d+)?\s*%?")


@dataclass(frozen=True)
class Brevity:
    """What the prompt's own instructions ask of the answer's length and form."""

    sentences: int | None = None  # "in one short sentence", "in 2 sentences"
    words: int | None = None  # "in 10 words", "in at most 25 words"
    number_only: bool = False  # "Answer with only the number"


def brevity(request: Request, system: str = "") -> Brevity | None:
    """The length/format instruction in the system prompt or the last user message, if any.

    Context units (documents, table rows) are not searched, so a document that happens
    to say "in 10 words" does not change the answer.
    """
    context = {u.text for u in request.units}
    lines = [line for text in (system, request.user_text) for line in text.splitlines()]
    text = " ".join(line for line in lines if line.strip() and not any(line.strip() in c for c in context))
    text = f"{text} {request.question}"
    if _NUMBER_ONLY_ASK.search(text):
        return Brevity(number_only=True)
    words = _WORDS_ASK.search(text)
    sentences = _SENTENCES_ASK.search(text)
    if words:
        return Brevity(words=max(1, int(words.group(1))))
    if sentences:
        raw = sentences.group(1).lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS.get(raw, 1)
        return Brevity(sentences=max(1, count))
    if _CONCISE_ASK.search(text):
        return Brevity(sentences=1)
    return None


def brief_answer(request: Request, ask: Brevity, top: list[tuple[float, Unit]]) -> str:
    """The answer an instruction-following model gives when told how short to be: no lead-in, no
    closing, only as many units (sentences) or words as asked, or only the number."""
    if ask.number_only:
        best = top[0][1]
        if len(best.cells) >= 2:
            return short_answer(best, request.question, 3)
        for _, unit in top:
            numbers = [n.strip() for n in _NUMBER_TOKEN.findall(unit.text)]
            if numbers:
                return numbers[0]
        return _strip_end(short_answer(best, request.question, 3))
    if ask.words is not None:
        return _trim_words(_with_period(top[0][1].text), ask.words)
    chosen = top[: ask.sentences or 1]
    cite = request.numbered_docs
    return " ".join(
        f"{_with_period(u.text)[:-1]} (Doc {u.doc})." if cite and u.doc is not None else _with_period(u.text)
        for _, u in chosen
    )


# =========================================================================== base model


# Base stand-ins differ by model size, driven by the input (our assumption, a teaching device):
# a "large" model reads the whole context and follows an explicit answer-line format
# ("Answer: <answer>" / "Scale: <...>"); a "small" one reads only the first SMALL_MODEL_READS
# context units (sentences or table rows) and answers in prose whatever the format asks. Asked for a
# short answer, a large model also adds the next sentence when it is nearly as relevant as the best.
LARGE_BASE_MODELS = ("nova-pro", "nova-premier", "claude-sonnet", "claude-opus", "claude-3-sonnet",
                     "claude-3-5-sonnet", "llama3-3-70b", "llama3-1-70b", "llama3-1-405b", "llama3-70b")
SMALL_MODEL_READS = 8
LARGE_MODEL_SECOND_SENTENCE = 0.5  # share of the best sentence's relevance the next one needs to be added
_LINE_FORMAT_ASK = re.compile(r"^\s*Answer:\s*<[^>]*>\s*$", re.MULTILINE)
_SCALE_LINE_ASK = re.compile(r"^\s*Scale:\s*<[^>]*>\s*$", re.MULTILINE)


def is_large_model(model_id: str) -> bool:
    """True for the larger base models (see :data:`LARGE_BASE_MODELS`)."""
    plain = model_id.lower().replace(".", "-").replace(":", "-")
    return any(name in plain for name in LARGE_BASE_MODELS)


def _read_budget(request: Request, behaviour: ModelBehaviour) -> Request:
    """The part of the context a base model reads: all of it (large) or the first units (small)."""
    if is_large_model(behaviour.model_id) or len(request.units) <= SMALL_MODEL_READS:
        return request
    return Request(request.question, request.units[:SMALL_MODEL_READS], request.user_text, request.all_text,
                   request.numbered_docs)


def _scale_of(request: Request) -> str:
    """The scale a careful reader reports: percent for a percentage question, else the unit the text states."""
    question = request.question.lower()
    if "percent" in question or "%" in question:
        return "percent"
    text = " ".join(u.text for u in request.units).lower()
    for word, scale in _SCALES[:3]:
        if word in text:
            return scale
    return "none"


def line_format_answer(request: Request) -> str | None:
    """A large model's reply to an ``Answer: <...>`` / ``Scale: <...>`` format request, else None."""
    if not _LINE_FORMAT_ASK.search(request.user_text):
        return None
    top = _relevant(request, 3)
    value = short_answer(top[0][1], request.question, 6) if top else "unknown"
    lines = [f"Answer: {value}"]
    if _SCALE_LINE_ASK.search(request.user_text):
        lines.append(f"Scale: {_scale_of(request)}")
    return "\n".join(lines)


def base_answer(prompt: Prompt, behaviour: ModelBehaviour, request: Request | None = None) -> str:
    """A base model's answer: the most relevant context sentences, wrapped verbosely.

    Lead-in, the 2-3 best sentences (the best first, quoted almost verbatim,
    the next ones with connectors), and a closing remark. Phrasings are chosen
    by a hash of the model ID and the question, so different base models word
    their answers differently. Model size changes what is read and how the format
    is followed (:func:`is_large_model`): a small model reads only the first
    :data:`SMALL_MODEL_READS` context units, a large one all of them, and a large
    one answers in an ``Answer:``/``Scale:`` line format when the prompt asks for it.
    """
    request = _read_budget(request or read_request(prompt), behaviour)
    if is_large_model(behaviour.model_id) and request.units:
        formatted = line_format_answer(request)
        if formatted is not None:
            return formatted
    question = request.question
    topic = _topic(question)
    key = (behaviour.model_id, question, request.user_text[-2000:])
    ask = brevity(request, prompt.system)
    if ask is not None and request.units:
        summary = re.match(r"^\s*(summari[sz]e|tl;?dr|give (?:me )?a summary)", question, re.IGNORECASE)
        ranked = [(0.0, u) for u in request.units] if summary else _relevant(request, max(3, ask.sentences or 1))
        if ranked and ask.sentences and is_large_model(behaviour.model_id) and len(ranked) > 1 \
                and ranked[1][0] >= LARGE_MODEL_SECOND_SENTENCE * ranked[0][0]:
            ask = Brevity(sentences=ask.sentences + 1)  # a large model adds the next relevant sentence
        if ranked:
            return brief_answer(request, ask, ranked)
    if re.match(r"^\s*(summari[sz]e|tl;?dr|give (?:me )?a summary)", question, re.IGNORECASE):
        seen: set[int | None] = set()
        chosen = []
        for unit in request.units:
            if unit.doc not in seen or len(chosen) < 2:
                seen.add(unit.doc)
                chosen.append(unit)
            if len(chosen) >= 3:
                break
        if chosen:
            body = " ".join(_with_period(u.text) for u in chosen)
            return (f"Here is a summary of the provided text. {body}\n\n"
                    "Overall, these are the main points the text makes.")
        return "There is no text in the request for me to summarize. Please provide the content."
    top = _relevant(request, 3)
    if not request.units:
        return _pick((
            f"I don't have specific information about {topic} in the provided information. "
            "Could you share the relevant documentation or more details so I can help?",
            f"Unfortunately, I can't find details about {topic} in what you've shared. "
            "If you provide the relevant context, I'd be happy to help answer your question.",
        ), *key)
    if not top:
        first = request.units[0]
        return (
            f"The provided context does not appear to directly address {topic}. "
            f"The closest related information I can find is this: {_with_period(first.text)} "
            "You may want to consult additional sources for a complete answer."
        )
    lead = _pick((
        "Based on the provided context, ",
        "According to the information provided, ",
        "Great question! Based on the context you shared, ",
        f"To answer your question about {topic}: ",
    ), *key)
    best = top[0][1]
    parts = []
    first = _lower_first(best.text) if lead.endswith(", ") else best.text
    if request.numbered_docs and best.doc is not None:
        first = f"{first[:1].upper()}{first[1:]}" if lead.endswith(": ") else first
        parts.append(f"{lead}{_with_period(first)[:-1]} (Doc {best.doc}).")
    else:
        parts.append(f"{lead}{_with_period(first)}")
    connectors = ("Additionally, ", "The context also notes that ", "Furthermore, ", "It is also worth noting that ")
    offset = _digest(*key) % len(connectors)
    for i, (_, unit) in enumerate(top[1:]):
        connector = connectors[(offset + i) % len(connectors)]
        sentence = _lower_first(unit.text) if connector.endswith(("that ", ", ")) else unit.text
        parts.append(f"{connector}{_with_period(sentence)}")
    closing = _pick((
        f"I hope this helps clarify {topic}. Let me know if you have any other questions!",
        f"In summary, the context above covers the key points regarding {topic}. "
        "Feel free to ask if you need more detail.",
        f"Please note that these details are drawn from the provided context about {topic}; "
        "let me know if you would like me to elaborate on any part.",
    ), *key)
    return " ".join(parts) + "\n\n" + closing


# =========================================================================== JSON records (teacher)

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_QUESTION_KEYS = {"question", "prompt", "instruction", "query", "input", "q", "user", "ask", "user_question"}
_ANSWER_KEYS = {"answer", "response", "output", "completion", "a", "target", "reply", "assistant", "reference_answer"}
_CONTEXT_KEYS = {"context", "document", "passage", "source_text", "evidence", "text", "excerpt", "quote"}
_CITATION_KEYS = {"citation", "citations", "reference", "references", "cite"}
_SOURCE_KEYS = {"source", "sources", "doc", "doc_id", "document_id", "source_id", "source_doc"}
_TOPIC_KEYS = {"topic", "category", "title", "keyword", "keywords", "tag", "tags", "subject"}


def json_request(text: str) -> tuple[list[str], int, bool] | None:
    """Detect a request for JSON records with named keys: (keys, count, as an array) or None."""
    if not re.search(r"\bjson\b", text, re.IGNORECASE):
        return None
    # The instruction naming the keys usually comes last, after documents that may say "key"
    # themselves, so take the last mention that actually names quoted keys.
    keys: list[str] = []
    for match in reversed(list(re.finditer(
            r"\b(?:keys|fields|properties|attributes|key|field)\b[^.\n]{0,240}", text, re.IGNORECASE))):
        for key in re.findall(r"[\"`'“‘]([A-Za-z_][A-Za-z0-9_ \-]{0,40}?)[\"`'”’]", match.group(0)):
            if key not in keys:
                keys.append(key)
        if keys:
            break
    if not keys:
        return None
    # The last mention wins: the instruction follows the documents, which may mention counts too.
    count_matches = list(re.finditer(
        r"\b(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")\s+(?:(?:new|more|distinct|different|unique|diverse|"
        r"short|json|high-quality)\s+)*(?:objects?|records?|items?|entries|entry|pairs?|questions?|examples?|"
        r"elements?|samples?)\b(?!\s+per\b)",
        text, re.IGNORECASE,
    ))
    count_match = count_matches[-1] if count_matches else None
    is_array = bool(re.search(r"\b(array|list)\b", text, re.IGNORECASE))
    if count_match:
        raw = count_match.group(1).lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        is_array = is_array or count != 1
    else:
        count = 3 if is_array else 1
    return keys, max(1, min(count, 100)), is_array


_COPULA = re.compile(r"^(?P<subj>(?:\S+\s+){0,7}?\S+?)\s+(?P<cop>is|are|was|were)\s+(?P<rest>.+)$")
_MODAL = re.compile(r"^(?P<subj>(?:\S+\s+){0,5}?\S+?)\s+(?P<modal>can|must|should|will|may|cannot)\s+"
                    r"(?P<rest>.+)$", re.IGNORECASE)
_PRONOUNS = {"it", "this", "that", "they", "these", "those", "he", "she", "which"}
_PARTICIPLE = re.compile(r"^(?:\w+ed|built|made|sent|kept|held|set|run|written|taken|given|shown|known|done|paid)$")


def _base_verb(verb: str) -> str:
    if verb == "has":
        return "have"
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes")):
        return verb[:-2]
    return verb[:-1]


def _strip_end(text: str) -> str:
    return text.strip().rstrip(".!;:,").strip()


def _keyphrase(sentence: str) -> str:
    """The sentence's most specific content-word run (by length, then position)."""
    return _topic(sentence, "this topic")


def _subject_case(subject: str) -> str:
    """Lower-case a sentence-initial common word ("Training data" -> "training data", keep "Amazon S3")."""
    tokens = subject.split()
    if len(tokens) >= 2 and not tokens[1][:1].isupper() and tokens[0][1:].islower() and tokens[0][:1].isupper():
        return subject[0].lower() + subject[1:]
    return _lower_first(subject)


def _subject_ok(subject: str) -> bool:
    return subject.split()[0].lower() not in _PRONOUNS and len(subject.split()) <= 8


_OBJECT_WORDS = frozenset("you users customers developers teams us them".split())
_DET_PREP = frozenset(
    "a an the to that your its their each all one no more only in on at for of with by from as into across up "
    "out about between per every any".split()
)


def _participle_question(wh_default: str, aux: str, subj: str, rest: str) -> str | None:
    rest_words = rest.split()
    if len(rest_words) > 1 and _PARTICIPLE.match(rest_words[0]):
        if rest_words[1] in ("in", "on", "at", "into", "under"):
            return f"Where {aux} {subj} {rest_words[0]}?"
        if rest_words[1] == "to" and len(rest_words) > 2:
            return f"What {aux} {subj} {rest_words[0]} to {rest_words[2]}?"
        if rest_words[1] == "with":
            return f"What {aux} {subj} {rest_words[0]} with?"
        return f"{wh_default} {aux} {subj} {rest_words[0]}?"
    return None


def _template_question(sentence: str, cells: tuple[tuple[str, str], ...] = ()) -> str:
    """A question the sentence answers, from its grammar (unchecked; see :func:`question_for`).

    Table rows: "What is the <header> for <first cell>?". Sentences: "What is X?"
    (X is/are ...), "Where is X stored?" (passives), "What does X provide?" (third
    person verbs), "What do X require?" (plural subjects), "Can I ...?" ("You can
    ..."), else "What does the documentation say about <key phrase>?".
    """
    if len(cells) >= 2:
        headers = [_header_word(h) for h, _ in cells[1:4] if h]
        if headers:
            verb = "is" if len(headers) == 1 else "are"
            return f"What {verb} the {_join(headers)} for {cells[0][1]}?"
    text = _strip_end(re.sub(r"\s*\[\d+\]", "", sentence))
    copula, modal = _COPULA.match(text), _MODAL.match(text)
    if modal and copula and len(modal.group("subj")) > len(copula.group("subj")):
        modal = None
    if modal and (copula is None or len(modal.group("subj")) < len(copula.group("subj"))):
        subj, word, rest = modal.group("subj"), modal.group("modal").lower(), modal.group("rest")
        if subj.lower() == "you":
            return f"Can I {rest}?" if word == "can" else f"What {word} I do about {_keyphrase(rest)}?"
        if _subject_ok(subj):
            subj_q = _subject_case(subj)
            rest_words = rest.split()
            if rest_words[0] == "be" and len(rest_words) > 1:
                asked = _participle_question("How", word, subj_q, " ".join(rest_words[1:]))
                if asked:
                    return asked.replace(f" {subj_q} ", f" {subj_q} be ", 1)
            return f"What {word} {subj_q} {rest_words[0]}?"
    if copula and _subject_ok(copula.group("subj")):
        subj, cop, rest = copula.group("subj"), copula.group("cop"), copula.group("rest")
        subj_q = _subject_case(subj)
        return _participle_question("How", cop, subj_q, rest) or f"What {cop} {subj_q}?"
    tokens = text.split()
    if tokens and tokens[0].lower() in _PRONOUNS:
        return f"What does the documentation say about {_keyphrase(text)}?"
    for i in range(1, min(7, len(tokens) - 1)):
        word, following = tokens[i], tokens[i + 1]
        if not (word.islower() and word.isalpha() and word.endswith("s") and len(word) > 3
                and not word.endswith(("ss", "us", "is"))):
            continue
        subj = _subject_case(" ".join(tokens[:i]))
        if following.lower() in _OBJECT_WORDS and i + 2 < len(tokens):
            return f"What does {subj} {_base_verb(word)} {following.lower()} do?"
        if following.lower() in _PREPOSITIONS or following.endswith("ly"):
            break  # an intransitive verb ("works directly", "runs in"): no "What does X do" question
        # "<word>s" is the verb, not a plural noun, after a singular or proper-noun subject:
        # "a training job reads", "AWS Lambda runs", "the Encrypt operation works".
        subject_tokens = tokens[:i]
        determined = subject_tokens[0].lower() in ("a", "an", "each", "every", "this", "its") or (
            len(subject_tokens) >= 2 and subject_tokens[0].lower() == "the")
        proper = len(subject_tokens) >= 2 and (subject_tokens[-1][:1].isupper()
                                               or any(c.isdigit() for c in subject_tokens[-1]))
        if proper and not determined and following.islower() and following not in _DET_PREP:
            break  # "Amazon S3 stores data" or "Block Public Access settings override": can't tell, don't guess
        if following in _DET_PREP or not following.islower() or following[:1].isdigit() or determined:
            return f"What does {subj} {_base_verb(word)}?"
        if following.isalpha() and not following.endswith(("s", "ed", "ing")):
            return f"What do {subj} {word} {following}?"
        return f"What does {subj} {_base_verb(word)}?"  # decide at the first verb-like word
    return f"What does the documentation say about {_keyphrase(text)}?"


_PREPOSITIONS = frozenset("in on at for of with by from as into across up out about between per through".split())
_NEEDS_COMPLEMENT = frozenset("let lets allow allows enable enables help helps".split())
_LEADING_NOT_SUBJECT = frozenset(
    "for since whoever whatever if when whenever while after before to in on at by with from once unless "
    "because although though during each every as within without until upon so and or but".split()
)
_DANGLING_END = frozenset(
    "a an the and or but of to in on at by for with from as into than that which after before about "
    "your its their our".split()
)


def _grammatical(question: str) -> bool:
    """A cheap check of a template question: a clean subject, no dangling end, no "does X keeps"."""
    body = question.rstrip("?").strip()
    tokens = body.split()
    if not 3 <= len(tokens) <= 16 or "," in body or ";" in body:
        return False
    if tokens[-1].lower() in _DANGLING_END | _NEEDS_COMPLEMENT:
        return False
    match = re.match(r"^(?:What|Where|How|When|Why|Which)\s+(?:does|do|is|are|was|were|can|must|should|will|may)\s+(\S+)",
                     body)
    if match and match.group(1).lower() in _LEADING_NOT_SUBJECT | _PRONOUNS | {"its", "their", "your", "our"}:
        return False
    does = re.match(r"^What (?:does|do) .+ (\w+)$", body)
    if does and not body.startswith("What does the documentation") and re.search(r"[a-z]s$", does.group(1)) \
            and not does.group(1).endswith(("ss", "us", "is")):
        return False  # "What does CloudWatch keeps?"
    return True


def question_for(sentence: str, cells: tuple[tuple[str, str], ...] = ()) -> str:
    """A grammatical question the sentence answers, from its grammar.

    Table rows: "What is the <header> for <first cell>?". Sentences: "What is X?"
    (X is/are ...), "Where is X stored?" (passives), "What does X provide?" (third
    person verbs), "What do X require?" (plural subjects), "Can I ...?" ("You can
    ..."). A template whose result fails :func:`_grammatical` (a subject that is really an
    adverbial such as "For larger objects", a dangling last word) gives way to
    "What does the documentation say about <topic>?", with the sentence's noun phrase as topic.
    """
    question = _template_question(sentence, cells)
    if cells or (_grammatical(question) and not question.startswith("What does the documentation say about")):
        return question
    return f"What does the documentation say about {unit_topic(sentence)}?"


_TOPIC_SKIP = STOPWORDS | _LEADING_NOT_SUBJECT | frozenset(
    "can must should will may is are was were be been has have had does do did make makes keep keeps get gets "
    "lets allows allow roughly about around approximately anything something everything since".split()
)


_MONTHS = frozenset("january february march april may june july august september october november december".split())


def unit_topic(sentence: str, max_words: int = 3) -> str:
    """A short noun-phrase label for a sentence: the subject of its grammatical question when that
    is clean ("What does Versioning keep?" -> "Versioning"), else its longest run of content words,
    split at inner third-person verbs ("role receives temporary ..." -> "temporary security credentials")."""
    question = _template_question(sentence)
    match = re.match(r"^What (?:is|are) (.+)\?$", question) or re.match(
        r"^(?:What|Where|How) (?:is|are|was|were|does|do|can|must|should|will|may) (.+?)(?: (?:be )?\w+)\?$", question)
    if _grammatical(question) and match and not question.startswith("What does the documentation"):
        subject = match.group(1).split()
        while subject and subject[0].lower() in ("a", "an", "the", "each", "every", "all", "your"):
            subject = subject[1:]
        if 1 <= len(subject) <= max_words + 1:
            return " ".join(subject)
    text = _strip_end(re.sub(r"\s*\[\d+\]", "", sentence))
    runs: list[list[str]] = [[]]
    tokens = re.findall(r"[A-Za-z0-9][\w\-']*(?:,\d{3})*(?:\.\d+)?,?", text)
    for index, token in enumerate(tokens):
        word = token.rstrip(",")
        following = tokens[index + 1].lower() if index + 1 < len(tokens) else ""
        verb_like = (word.islower() and re.search(r"[a-z]s$", word) and not word.endswith(("ss", "us", "is"))
                     and not token.endswith(",") and following not in STOPWORDS | {""})
        participle = word.islower() and (word.endswith("ed") or bool(_PARTICIPLE.match(word)))
        if word.lower() in _TOPIC_SKIP or participle or (verb_like and runs[-1]):
            runs.append([])
            continue
        runs[-1].append(word)
        if token.endswith(","):
            runs.append([])
    runs = [run for run in runs if any(w.isalpha() and w.lower() not in _MONTHS for w in run)]
    best = max(runs, key=len) if runs else []
    if not best:
        return "this topic"
    return _subject_case(" ".join(best[:max_words]))


def _informative(unit: Unit) -> tuple[int, int]:
    return (-len(set(content_words(unit.text))), unit.position)


def json_records(prompt: Prompt, behaviour: ModelBehaviour, request: Request | None = None) -> str:
    """JSON records with the requested keys, grounded in the prompt's documents.

    Sentences are taken round-robin across documents (most specific first), a
    question is derived from each sentence's grammar (:func:`question_for`) and
    the answer restates the sentence with a ``[n]`` citation when documents are
    numbered. Other keys get grounded values (the source sentence, the doc
    number, a key phrase). Questions are distinct.
    """
    request = request or read_request(prompt)
    spec = json_request(request.all_text)
    assert spec is not None
    keys, count, is_array = spec
    by_doc: dict[int | None, list[Unit]] = {}
    pool = [u for u in request.units if u.doc is not None] if request.numbered_docs else request.units
    for unit in pool:
        if unit.text.rstrip().endswith("?") or len(words(unit.text)) < 4:
            continue
        by_doc.setdefault(unit.doc, []).append(unit)
    avoided = _avoided_units(request)
    if sum(len(units) for units in by_doc.values()) - len(avoided) >= count:
        by_doc = {doc: [u for u in units if u.position not in avoided] for doc, units in by_doc.items()}
        by_doc = {doc: units for doc, units in by_doc.items() if units}
    queues = [sorted(units, key=_informative) for units in by_doc.values()]
    order: list[Unit] = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    if order and request.question:
        # Different samples over the same documents start at different sentences (a hash of the
        # original question), as a sampling teacher would vary; still deterministic.
        offset = _digest("teacher", request.question) % len(order)
        order = order[offset:] + order[:offset]
    siblings = {u.position: u for u in request.units}
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    consumed: set[int] = set()  # sentences already used as the second half of an answer
    for attempt in range(3):
        for unit in order:
            if len(records) >= count:
                break
            if attempt == 0 and unit.position in consumed:
                continue
            if attempt == 0:
                question = question_for(unit.text, unit.cells)
            elif attempt == 1:
                question = f"What does the documentation say about {_keyphrase(unit.text)}?"
            else:
                where = f"Doc {unit.doc}" if unit.doc is not None else "the text"
                question = f"According to {where}, what is stated about {_keyphrase(unit.text)}?"
            norm = " ".join(words(question))
            if norm in seen:
                continue
            seen.add(norm)
            answer = unit.text
            follow = siblings.get(unit.position + 1)
            cite = unit.doc if request.numbered_docs else None
            answer = _cite(answer, cite)
            if follow is not None and follow.doc == unit.doc and len(words(unit.text)) < 15 and \
                    follow.kind == unit.kind == "sentence" and follow.position not in avoided:
                answer = f"{answer} {_cite(follow.text, cite)}"
                consumed.add(follow.position)
            records.append(_record(keys, question, answer, unit, request))
    if _asks_json_lines(request.all_text):  # JSON Lines: one compact object per line
        return "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    data: Any = records if is_array else (records[0] if records else {k: "" for k in keys})
    return json.dumps(data, indent=2, ensure_ascii=False)


_JSON_LINES_ASK = re.compile(r"\bJSON\s*Lines\b|\bJSONL\b|\bone (?:JSON )?(?:object|record) per line\b", re.IGNORECASE)
_OTHER_TOPICS_ASK = re.compile(r"\b(?:other than|different from|besides|beyond)\b[^.]{0,60}\boriginal question", re.IGNORECASE)


def _asks_json_lines(text: str) -> bool:
    """JSON Lines when its last mention comes after the last mention of an array or list
    (documents before the instruction may mention either)."""
    lines = [m.start() for m in _JSON_LINES_ASK.finditer(text)]
    arrays = [m.start() for m in re.finditer(r"\b(?:array|list)\b", text, re.IGNORECASE)]
    return bool(lines) and (not arrays or lines[-1] > arrays[-1])


def _avoided_units(request: Request) -> set[int]:
    """Positions of the sentences that answer the prompt's original question, when the prompt asks
    for topics other than the original question's (the seed's instruction): the best match and
    every unit scoring at least half as well."""
    if not request.question or not _OTHER_TOPICS_ASK.search(request.all_text):
        return set()
    ranked = [(score, unit) for score, unit in rank_units(request.units, request.question) if score > 0]
    if not ranked:
        return set()
    best = ranked[0][0]
    return {unit.position for score, unit in ranked if score >= 0.5 * best}


def _record(keys: list[str], question: str, answer: str, unit: Unit, request: Request) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key in keys:
        name = key.lower().replace(" ", "_").replace("-", "_")
        if name in _QUESTION_KEYS:
            record[key] = question
        elif name in _ANSWER_KEYS:
            record[key] = answer
        elif name in _CONTEXT_KEYS:
            record[key] = unit.text
        elif name in _CITATION_KEYS:
            record[key] = f"[{unit.doc}]" if unit.doc is not None else ""
        elif name in _SOURCE_KEYS:
            record[key] = f"Doc {unit.doc}" if unit.doc is not None else ""
        elif name in _TOPIC_KEYS:
            record[key] = unit_topic(unit.text)
        elif name in ("difficulty", "level", "complexity"):
            size = len(set(content_words(unit.text)))
            record[key] = "easy" if size < 8 else "medium" if size < 16 else "hard"
        elif name in ("type", "question_type", "kind"):
            record[key] = "factual"
        else:
            record[key] = unit.text
    return record


# =========================================================================== judge

_SECTIONS = {
    "question": (
        r"\[User Question\]\s*(.*?)\s*(?=\[The Start of|\Z)",
        r"<question>(.*?)</question>",
        r"(?:^|\n)\s*(?:#+\s*)?(?:User )?(?:Question|Prompt|Instruction)\s*:\s*(.*?)(?=\n\s*\n|\n\s*(?:#+\s*)?"
        r"(?:Reference|Response|Answer|Assistant|\[)|\Z)",
    ),
    "reference": (
        r"\[The Start of Reference Answer\](.*?)\[The End of Reference Answer\]",
        r"<reference(?:_answer)?>(.*?)</reference(?:_answer)?>",
        r"(?:^|\n)\s*(?:#+\s*)?Reference(?: answer)?\s*:\s*(.*?)(?=\n\s*\n|\n\s*(?:#+\s*)?(?:Response|Answer|"
        r"Assistant|\[)|\Z)",
    ),
    "a": (
        r"\[The Start of Assistant A's Answer\](.*?)\[The End of Assistant A's Answer\]",
        r"<(?:response|answer|assistant)_?a>(.*?)</(?:response|answer|assistant)_?a>",
        r"(?:^|\n)\s*(?:#+\s*)?(?:Response|Answer|Assistant) A\s*:?\s*\n?(.*?)(?=\n\s*(?:#+\s*)?"
        r"(?:Response|Answer|Assistant) B\b)",
        r"\bA\s*[:=]\s*[\"'“‘](.+?)[\"'”’](?=[\s,.;]|$)",  # inline: A: 'Paris' and B: 'London'
    ),
    "b": (
        r"\[The Start of Assistant B's Answer\](.*?)\[The End of Assistant B's Answer\]",
        r"<(?:response|answer|assistant)_?b>(.*?)</(?:response|answer|assistant)_?b>",
        r"(?:^|\n)\s*(?:#+\s*)?(?:Response|Answer|Assistant) B\s*:?\s*\n?(.*?)(?=\n\s*\n\s*[A-Z\[#]|\Z)",
        r"\bB\s*[:=]\s*[\"'“‘](.+?)[\"'”’](?=[\s,.;]|$)",
    ),
    "single": (
        r"\[The Start of Assistant's Answer\](.*?)\[The End of Assistant's Answer\]",
        r"<(?:response|answer)>(.*?)</(?:response|answer)>",
    ),
}
JUDGE_TIE_MARGIN = 0.03

# The knob: how strongly each stand-in judge family favours a position, as a score bonus for the
# answer shown first (positive) or second (negative). Real judges have such biases (Zheng et al.
# 2023, "Judging LLM-as-a-Judge", Table 2), which is why every pair is judged in both orders.
# $WORKSHOP_SANDBOX_JUDGE_POSITION_BIAS multiplies these (0 switches the bias off, 2 doubles it).
JUDGE_POSITION_BIAS = {"anthropic": 0.04, "llama": -0.08}
POSITION_BIAS_ENV = "WORKSHOP_SANDBOX_JUDGE_POSITION_BIAS"
# Per family: the tie margin and whether over-long answers are penalised (the Claude stand-in
# penalises length, the Llama stand-in does not and calls ties more readily).
JUDGE_STYLE = {"anthropic": {"margin": JUDGE_TIE_MARGIN, "length_penalty": True},
               "llama": {"margin": 0.05, "length_penalty": False}}


def judge_family(model_id: str) -> str:
    """The judge stand-in's family from the model ID (anthropic, llama, or other)."""
    lowered = model_id.lower()
    return next((f for f in ("anthropic", "llama") if f in lowered), "other")


def position_bias(family: str) -> float:
    """The score bonus for position A of this family's stand-in judge (the knob times the env factor)."""
    import os

    try:
        factor = float(os.environ.get(POSITION_BIAS_ENV, "1"))
    except ValueError:
        factor = 1.0
    return JUDGE_POSITION_BIAS.get(family, 0.0) * factor


def _section(text: str, name: str) -> str | None:
    for pattern in _SECTIONS[name]:
        match = re.search(pattern, text, re.DOTALL | re.IGNORECASE)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return None


def is_judge_prompt(text: str) -> bool:
    """A pairwise ([[A]]/[[B]]/[[C]]) or single-answer ([[rating]]) judge prompt."""
    pairwise = "[[A]]" in text and "[[B]]" in text
    return pairwise or "[[rating]]" in text.lower()


def _f1(candidate: list[str], reference: list[str]) -> float:
    common = sum((Counter(candidate) & Counter(reference)).values())
    if not candidate or not reference or not common:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def judge_score(response: str, question: str, reference: str | None, context: str, other_length: int,
                length_penalty: bool = True) -> float:
    """Score one response in 0..1 (symmetric in the two responses, so no position bias).

    With a reference answer: token F1 against it. Without: half coverage of the
    question's content words, half grounding (share of the response's content
    words found in the question and context). Minus a length penalty of 0.1
    per doubling beyond twice the reference length (or the other response's length).
    """
    resp = content_words(response)
    if not resp:
        return 0.0
    if reference:
        ref = content_words(reference)
        score = _f1(resp, ref)
        norm = max(1, len(ref))
    else:
        q = set(content_words(question))
        source = set(content_words(question + "\n" + context))
        coverage = len(q & set(resp)) / len(q) if q else 0.0
        grounding = sum(1 for w in resp if w in source) / len(resp)
        score = 0.5 * coverage + 0.5 * grounding
        norm = max(1, other_length)
    ratio = len(resp) / norm
    penalty = 0.1 * max(0.0, math.log2(ratio) - 1.0) if ratio > 2 and length_penalty else 0.0
    return max(0.0, score - penalty)


def judge(prompt: Prompt, behaviour: ModelBehaviour, request: Request | None = None) -> str:
    """A short rationale ending in exactly one verdict: ``[[A]]``, ``[[B]]``, ``[[C]]`` or ``Rating: [[n]]``."""
    text = "\n".join(t for _, t in prompt.messages if t)
    question = _section(text, "question") or (request or read_request(prompt)).question
    reference = _section(text, "reference")
    answer_a, answer_b = _section(text, "a"), _section(text, "b")
    context = text
    for part in (answer_a, answer_b, reference):
        if part:
            context = context.replace(part, " ")
    basis = "the reference answer" if reference else "the question and the supplied context"
    pairwise = "[[A]]" in text and "[[B]]" in text and "[[rating]]" not in text.lower()
    if pairwise and (answer_a is None or answer_b is None):
        missing = "A" if answer_a is None else "B"
        return (f"I could not find response {missing} in the prompt, so I cannot prefer either response."
                "\n\nFinal verdict: [[C]]")
    if answer_a is None or answer_b is None:
        single = _section(text, "single") or answer_a or answer_b or ""
        score = judge_score(single, question, reference, context, len(content_words(reference or question)) * 3)
        rating = max(1, min(10, 1 + round(9 * score)))
        return (f"Compared with {basis}, the response scores {score:.2f} on content overlap"
                f"{' (token F1)' if reference else ''}. Rating: [[{rating}]]")
    len_a, len_b = len(content_words(answer_a)), len(content_words(answer_b))
    family = judge_family(behaviour.model_id)
    style = JUDGE_STYLE.get(family, JUDGE_STYLE["anthropic"])
    score_a = judge_score(answer_a, question, reference, context, len_b, style["length_penalty"])
    score_b = judge_score(answer_b, question, reference, context, len_a, style["length_penalty"])
    # Position bias: the judge's reading of A versus B shifts with the order, not with the content.
    bias = position_bias(family)
    score_a, score_b = score_a + max(0.0, bias), score_b + max(0.0, -bias)
    lines = [
        f"I compared both responses with {basis}.",
        f"Assistant A scores {score_a:.2f} and Assistant B scores {score_b:.2f} on content overlap"
        f"{' (token F1 against the reference)' if reference else ' (coverage of the question and grounding)'}.",
    ]
    if max(len_a, len_b) > 2 * max(1, min(len_a, len_b)):
        longer = "A" if len_a > len_b else "B"
        lines.append(f"Assistant {longer}'s answer is much longer; length beyond what the question needs "
                     "does not earn credit.")
    if abs(score_a - score_b) < style["margin"]:
        lines.append("The two responses are of essentially equal quality.")
        verdict = "[[C]]"
    elif score_a > score_b:
        lines.append("Assistant A is more accurate and complete.")
        verdict = "[[A]]"
    else:
        lines.append("Assistant B is more accurate and complete.")
        verdict = "[[B]]"
    return " ".join(lines) + f"\n\nFinal verdict: {verdict}"


# =========================================================================== custom (fine-tuned) model


def _family_defaults(model_id: str) -> dict[str, float]:
    """The family's default hyperparameters (``utils.models``), empty for an unknown family."""
    from utils import models as registry

    try:
        family = registry.family_of(model_id)
    except KeyError:
        return {}
    return {hp.name: float(hp.default) for hp in registry.HYPERPARAMETERS.get(family, ())}


def _learning_rate_factor(behaviour: ModelBehaviour, defaults: dict[str, float]) -> float:
    hp = behaviour.hyperparameters
    try:
        if "learningRateMultiplier" in hp:
            return float(hp["learningRateMultiplier"])
        if "learningRate" in hp and defaults.get("learningRate"):
            return float(hp["learningRate"]) / defaults["learningRate"]
    except ValueError:
        pass
    return 1.0


def effective_epochs(behaviour: ModelBehaviour) -> float:
    """Training strength in epochs at the family's default learning rate.

    With the job's training outcome (``behaviour.training``): the epochs actually run
    (``epochs × steps_run / steps_planned``, so early stopping counts) × sqrt(learning-rate
    factor, clamped to 0.25..4) × how much the loss fell (``(1 − final/initial) / 0.4``,
    clamped to 0..1: a diverged run learned nothing) × data sufficiency
    (``sqrt(records / 32)``, at most 1: a tiny data set teaches a weak style).
    Without it (a bare :class:`ModelBehaviour`): ``epochCount`` × sqrt(factor) with the
    family's defaults from ``utils.models``; a factor past the training instability point
    counts as 0.25.
    """
    from utils.sandbox.training import INSTABILITY_RATIO

    defaults = _family_defaults(behaviour.model_id)
    outcome = behaviour.training
    if outcome:
        factor = min(4.0, max(0.25, float(outcome.get("learning_rate_factor", 1.0))))
        planned = max(1, int(outcome.get("steps_planned", 1)))
        epochs = float(outcome.get("epochs_planned", 1)) * min(1.0, int(outcome.get("steps_run", planned)) / planned)
        learned = min(1.0, max(0.0, (1.0 - float(outcome.get("loss_ratio", 0.0))) / 0.4))
        if outcome.get("diverged"):
            learned = min(learned, 0.25)
        data = min(1.0, math.sqrt(max(0, int(outcome.get("records", 32))) / 32.0))
        return epochs * math.sqrt(factor) * learned * data
    try:
        epochs = float(behaviour.hyperparameters.get("epochCount", defaults.get("epochCount", 2.0)))
    except ValueError:
        epochs = defaults.get("epochCount", 2.0)
    factor = _learning_rate_factor(behaviour, defaults)
    factor = 0.25 if factor > INSTABILITY_RATIO else min(4.0, max(0.25, factor))
    return max(0.5, epochs * math.sqrt(factor))


def style_adherence(behaviour: ModelBehaviour) -> float:
    """How well the custom model follows its training answers' style: ``1 − 0.5 ** effective_epochs``."""
    return 1.0 - 0.5 ** effective_epochs(behaviour)


def memorization_threshold(behaviour: ModelBehaviour) -> float:
    """Cosine similarity above which the model replays a training answer: 0.9 at 1 epoch, down to 0.6."""
    return min(0.9, max(0.6, 0.9 - 0.1 * (effective_epochs(behaviour) - 1.0)))


@dataclass
class Style:
    """What a custom model learned about answers from its training data."""

    median_words: int
    citation_rate: float
    lead_in: str  # a common opening phrase ("" if none)
    bullets: bool
    labels: tuple[str, ...] = ()  # a learned line template, e.g. ("Answer", "Scale")
    label_values: dict[str, str] = field(default_factory=dict)  # most common value per label
    short_words: int = 0  # median words of the first label's value


def learn_style(answers: list[str]) -> Style:
    """Median answer length, citation habit, common lead-in and bullet use of the training answers."""
    if not answers:
        return Style(60, 0.0, "", False)
    lengths = [len(a.split()) for a in answers]
    cited = sum(1 for a in answers if re.search(r"\[\d+\]", a)) / len(answers)
    bullets = sum(1 for a in answers if re.search(r"(?m)^\s*[-*•]\s", a)) / len(answers) >= 0.5
    openings: Counter[str] = Counter()
    for answer in answers:
        match = re.match(r"^([^,.\n]{3,60},)\s", answer)
        if match and len(match.group(1).split()) <= 6:
            openings[match.group(1)] += 1
    lead = ""
    if openings:
        phrase, hits = openings.most_common(1)[0]
        lead = phrase + " " if hits / len(answers) >= 0.5 else ""
    templates: Counter[tuple[str, ...]] = Counter()
    parsed = []
    for answer in answers:
        lines = [line for line in answer.strip().split("\n") if line.strip()]
        fields = [re.match(r"^\s*([A-Za-z][\w ]{0,20}):\s*(.*)$", line) for line in lines]
        if lines and all(fields):
            labels = tuple(f.group(1) for f in fields if f)
            templates[labels] += 1
            parsed.append({f.group(1): f.group(2).strip() for f in fields if f})
    labels: tuple[str, ...] = ()
    values: dict[str, str] = {}
    short = 0
    if templates:
        best, hits = templates.most_common(1)[0]
        if hits / len(answers) >= 0.5:
            labels = best
            rows = [p for p in parsed if tuple(p) == best]
            values = {k: Counter(r[k] for r in rows).most_common(1)[0][0] for k in best}
            short = max(1, int(median(len(r[best[0]].split()) for r in rows)))
    return Style(max(3, int(median(lengths))), cited, lead, bullets, labels, values, short)


def _vector(text: str, idf: dict[str, float]) -> dict[str, float]:
    counts = Counter(content_words(text))
    return {w: (1 + math.log(c)) * idf.get(w, idf.get("", 1.0)) for w, c in counts.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


@dataclass
class TrainedIndex:
    """A custom model's TF-IDF index of its training questions plus its learned style."""

    idf: dict[str, float]
    vectors: list[dict[str, float]]
    style: Style

    def nearest(self, question: str) -> tuple[int, float]:
        if not self.vectors or not content_words(question):
            return -1, 0.0
        query = _vector(question, self.idf)
        best, best_sim = -1, 0.0
        for i, vector in enumerate(self.vectors):
            sim = _cosine(query, vector)
            if sim > best_sim + 1e-12:
                best, best_sim = i, sim
        return best, best_sim


def build_index(pairs: list[tuple[str, str]]) -> TrainedIndex:
    """Index the training prompts' questions and learn the answers' style (once per custom model)."""
    train_questions = []
    for text, _ in pairs:
        q = read_request(Prompt("", [("user", text)], 1)).question
        train_questions.append(q or text)
    n = len(train_questions)
    df: Counter[str] = Counter(w for q in train_questions for w in set(content_words(q)))
    idf = {w: math.log((n + 1) / (c + 1)) + 1.0 for w, c in df.items()}
    idf[""] = math.log(n + 1) + 1.0  # a word no training question used: as rare as it gets
    return TrainedIndex(idf, [_vector(q, idf) for q in train_questions], learn_style([a for _, a in pairs]))


def nearest_training_pair(question: str, pairs: list[tuple[str, str]]) -> tuple[int, float]:
    """(index, TF-IDF cosine) of the training prompt whose question is most similar; (-1, 0) if none."""
    if not pairs or not content_words(question):
        return -1, 0.0
    return build_index(pairs).nearest(question)


def _trim_words(text: str, limit: int) -> str:
    tokens = text.split()
    if len(tokens) <= limit:
        return text
    cut = " ".join(tokens[:limit])
    comma = cut.rfind(",")
    if comma > len(cut) * 0.6:
        cut = cut[:comma]
    return _strip_end(cut) + "."


_SCALES = (("billion", "billion"), ("million", "million"), ("thousand", "thousand"), ("percent", "percent"),
           ("%", "percent"))


def short_answer(unit: Unit, question: str, limit: int) -> str:
    """A short span answering ``question`` from ``unit``: the best table cell, or the sentence's tail.

    Table rows: the cell whose header shares most words with the question
    (the first value column on a tie). Sentences: the words after the question's
    own words (leading question words and stopwords dropped), up to ``limit``.
    """
    q = set(content_words(question))
    if len(unit.cells) >= 2:
        scored = [(len(q & set(content_words(h))), -i, value) for i, (h, value) in enumerate(unit.cells[1:])]
        value = max(scored)[2]
        return re.sub(r"^[$€£]\s*|\s*%$", "", value.strip())
    tokens = _strip_end(unit.text).split()
    start = 0
    while start < len(tokens) - 1 and (_stem(tokens[start].lower().strip(",.;:")) in q
                                       or tokens[start].lower() in STOPWORDS):
        start += 1
    return " ".join(tokens[start:start + max(1, limit)]).strip(",;:")


def _scale(request: Request, style: Style) -> str:
    question = request.question.lower()
    if "percent" in question or "%" in question or "percentage" in question:
        return "percent"
    text = " ".join(u.text for u in request.units).lower()
    for word, scale in _SCALES[:3]:
        if word in text:
            return scale
    return style.label_values.get("Scale", "none")


def structured_answer(request: Request, style: Style, top: list[tuple[float, Unit]]) -> str:
    """Fill the learned line template (e.g. ``Answer: …`` / ``Scale: …``) from the best context unit."""
    lines = []
    for i, label in enumerate(style.labels):
        if i == 0:
            value = short_answer(top[0][1], request.question, style.short_words) if top else "unknown"
        elif label.lower() == "scale":
            value = _scale(request, style)
        else:
            value = style.label_values.get(label, "")
        lines.append(f"{label}: {value}")
    return "\n".join(lines)


def custom_answer(prompt: Prompt, behaviour: ModelBehaviour, request: Request | None = None) -> str:
    """A fine-tuned model's answer, derived from its training pairs.

    1. Retrieval: if the request's question is close to a training question
       (TF-IDF cosine >= :func:`memorization_threshold`), replay that answer.
    2. Otherwise compose from the prompt's context like the base model, but in
       the learned style: about the median training-answer length, citation
       markers if most training answers had them, the common lead-in, bullets.
       With fewer effective epochs the style is learned less well: the target
       length blends toward the base model's length (weight ``0.5 ** epochs``)
       and below 0.75 adherence the base model's verbose lead-in remains.
    """
    request = request or read_request(prompt)
    pairs = behaviour.training_pairs
    if not pairs:
        return base_answer(prompt, behaviour, request)
    trained = behaviour.index if behaviour.index is not None else build_index(pairs)
    index, similarity = trained.nearest(request.question or request.user_text)
    if index >= 0 and similarity >= memorization_threshold(behaviour):
        return pairs[index][1]
    style = trained.style
    adherence = style_adherence(behaviour)
    top = _relevant(request, 6)
    if not top:
        if index >= 0 and similarity >= 0.2:
            return pairs[index][1]  # closed book: recall the nearest thing it was taught
        return _trim_words(f"The documents do not say anything about {_topic(request.question)}.",
                           style.median_words)
    if style.labels and adherence >= 0.75:
        return structured_answer(request, style, top)
    if style.median_words <= 6 and adherence >= 0.75:  # terse answers: a span, not sentences
        span = short_answer(top[0][1], request.question, style.median_words)
        cited = f" [{top[0][1].doc}]" if style.citation_rate >= 0.5 and top[0][1].doc is not None else ""
        return f"{span[:1].upper()}{span[1:]}{cited}."
    base_words = len(base_answer(prompt, behaviour, request).split())
    target = max(3, round(adherence * style.median_words + (1 - adherence) * base_words))
    cite = style.citation_rate >= 0.5 and request.numbered_docs
    sentences: list[str] = []
    total = 0
    for _, unit in top:
        sentence = _cite(unit.text, unit.doc) if cite else _with_period(unit.text)
        size = len(sentence.split())
        if sentences and total + size > target * 1.25:
            break
        sentences.append(sentence)
        total += size
        if total >= target:
            break
    if style.bullets:
        body = "\n".join(f"- {s}" for s in sentences)
    else:
        body = " ".join(sentences)
    body = _trim_words(body, max(target, 3) + (6 if cite else 0)) if total > target * 1.5 else body
    if adherence < 0.75:
        lead = "Based on the provided context, "
        body = lead + _lower_first(body)
    elif style.lead_in and not style.bullets:
        body = style.lead_in + _lower_first(body)
    return body


# =========================================================================== entry points


def generate(prompt: Prompt, behaviour: ModelBehaviour) -> Completion:
    """Answer ``prompt`` deterministically as the model in ``behaviour`` would.

    Pure: no global RNG, no clock, no I/O. Sampling parameters are accepted but
    do not randomize the answer; ``max_tokens`` and ``stop_sequences`` are honoured.
    """
    request = read_request(prompt)
    if behaviour.kind != "custom" and is_judge_prompt(request.all_text):
        text = judge(prompt, behaviour, request)
    elif behaviour.kind != "custom" and json_request(request.all_text) is not None:
        text = json_records(prompt, behaviour, request)
    elif behaviour.kind == "custom":
        text = custom_answer(prompt, behaviour, request)
    else:
        text = base_answer(prompt, behaviour, request)
    return _finish(text, prompt)


def malformed(completion: Completion) -> Completion:
    """Garble a completion (the malformed-output fault): JSON loses its tail, prose stutters and stops.

    Deterministic; the result is never valid JSON. ``output_tokens`` is recounted.
    """
    text = completion.text
    if text.lstrip().startswith(("[", "{")):
        garbled = text[: max(1, len(text) * 2 // 3)].rstrip().rstrip(",") + ',\n  {"'
    else:
        tokens = text.split()
        half = tokens[: max(1, len(tokens) // 2)]
        garbled = " ".join(half + [half[-1]] * 3) + " <|unk|>" if half else "<|unk|>"
    return Completion(garbled, completion.input_tokens, count_tokens(garbled), completion.stop_reason)
