"""Tokens and words, shared by every stand-in: the sandbox's offline token estimate
(:func:`count_tokens`, :func:`prompt_tokens`), stop words, stems and content words."""

from __future__ import annotations

import hashlib
import re

from utils.sandbox.messages import Prompt

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
