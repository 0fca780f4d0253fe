"""Helpers that shape an answer, shared by the stand-ins: stop sequences and ``max_tokens``
(``_finish``), sentence case, periods and citations, the question's topic, the most relevant units,
and short spans and word limits (:func:`short_answer`)."""

from __future__ import annotations

import re

from utils.sandbox.messages import Completion, Prompt
from utils.sandbox.standins.reading import Request, Unit, rank_units
from utils.sandbox.standins.text import STOPWORDS, _stem, content_words, count_tokens, prompt_tokens

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


# =========================================================================== short spans and word limits

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}


def _strip_end(text: str) -> str:
    return text.strip().rstrip(".!;:,").strip()


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
