"""The base model stand-in: a verbose, extractive answer (:func:`base_answer`), read according to the
model's size, and as short as the prompt's own length instructions ask (:func:`brevity`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from utils.sandbox.messages import Prompt
from utils.sandbox.standins.answers import (
    _NUMBER_WORDS,
    _SCALES,
    _lower_first,
    _relevant,
    _strip_end,
    _topic,
    _trim_words,
    _with_period,
    short_answer,
)
from utils.sandbox.standins.behaviour import ModelBehaviour
from utils.sandbox.standins.reading import Request, Unit, read_request
from utils.sandbox.standins.text import _digest, _pick

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
