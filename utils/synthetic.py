"""Synthetic Q&A pairs from a teacher model, grounded in each training sample's documents.

The design follows AWS's post "Fine-tune LLMs with synthetic data for context-based Q&A using
Amazon Bedrock" (2025): for every original **training** sample the teacher reads that sample's
reference documents and writes ``n`` new question/answer pairs (three by default) as JSON records
with ``question``, ``answer`` and ``topic``, told to look at different parts of the documents
and to pick topics other than the original question's. ``N`` originals therefore give at most
``n × N`` synthetic pairs, and exactly that many are requested.

The pipeline, each step a function here:

1. :func:`teacher_items` - one prompt per training sample (test questions are never shown).
2. :class:`TeacherCall` - one call per item through :func:`utils.engine.run_calls`, with InvokeModel
   and the model's native body (or Converse), and the parse step inside the call
   (:func:`parse_reply`): a reply with fewer valid records than asked raises
   :class:`utils.engine.RetryableOutput`, the engine retries it a bounded number of times and then
   records the item as failed with the reason. Nothing unparseable is stored as a success.
3. :func:`run_batch` - the same items as one Bedrock batch inference job (the scale path), read
   back from ``.jsonl.out`` files joined on ``recordId`` and parsed by the same function.
4. :func:`filter_pairs` - quality filters, each reporting what it removed: well-formed, length
   bounds, grounded in the documents, not a near-duplicate of an original, test or earlier
   synthetic question (MinHash LSH from ``datasketch``, confirmed by exact shingled Jaccard).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils import aws, engine, invoke
from utils.engine import RetryableOutput

KEYS = ("question", "answer", "topic")
DEFAULT_PAIRS = 3

TEACHER_SYSTEM = (
    "You write training data for an assistant that answers questions about AWS services "
    "from reference documents."
)

# The seed post's generation prompt, paraphrased: a variety of topics, different parts of the
# documents, topics other than the original question's, JSON records with question/answer/topic.
# The answer instruction is the seed's own: use and paraphrase the documents where they answer
# the question, otherwise rely on your own knowledge and memory. (The grounding filter later
# removes answers the documents do not support.) The instructions avoid a "Question:" label and
# question marks, so that the only question in the prompt is the original one.
TEACHER_PROMPT = """Here are the reference documents of one training sample:
<documents>
{documents}
</documents>

Original question: {question}

Think about the variety of topics these documents cover and look at different parts of them. Then write {n} new question and answer pairs about topics other than the original question's, each pair on a different topic.
- Each question is a single line that a cloud engineer could ask, and it ends with a question mark.
- Answer each question as well as you can. Where the documents contain the answer, use and paraphrase their information and cite the documents you use as [n]. Otherwise rely on your own knowledge and memory.
- The topic is a short label of two to four words.

Return exactly {n} JSON objects in JSON Lines format, one object per line, with the keys "question", "answer" and "topic", and nothing else."""


def teacher_prompt(documents: str | Sequence[str], question: str, n: int = DEFAULT_PAIRS) -> str:
    """The teacher prompt for one training sample (documents as a ``Doc 1: …`` bundle or a list)."""
    from utils.formats import number_documents

    bundle = documents if isinstance(documents, str) else number_documents(documents)
    return TEACHER_PROMPT.format(documents=bundle.strip(), question=question.strip(), n=n)


def teacher_items(
    samples: Iterable[Mapping[str, Any]], teacher_id: str, *, n: int = DEFAULT_PAIRS, max_tokens: int = 2000,
    api: str = "invoke", system: str = TEACHER_SYSTEM,
) -> list[dict[str, Any]]:
    """One engine item per training sample: ``{"id", "sample", "prompt"}``.

    ``samples`` are the training rows (``document``, ``question``); ``sample`` is the row's
    position. The ``id`` hashes everything that determines the reply, so a rerun replays
    the checkpoint and a changed prompt, teacher or setting calls again.
    """
    if n < 1:
        raise ValueError(f"pairs per sample must be at least 1, got {n}")
    items = []
    for position, row in enumerate(samples):
        prompt = teacher_prompt(row["document"], row["question"], n)
        items.append({
            "id": engine.item_id(teacher_id, api, system, prompt, max_tokens, n),
            "sample": position,
            "prompt": prompt,
        })
    return items


# ======================================================================================
# The parse step
# ======================================================================================

#: Parse-failure kinds, counted per reply.
PARSE_KINDS = {
    "no_json": "the reply holds no JSON object or array",
    "invalid_json": "a JSON fragment does not parse (truncated or malformed)",
    "not_an_object": "an array item is not a JSON object",
    "missing_key": "a record lacks a required key, or its value is not text",
    "empty_value": "a required value is blank",
    "extra_records": "more records than asked (the extra ones are dropped)",
    "too_few": "fewer valid records than asked",
}

_DECODER = json.JSONDecoder()


@dataclass
class ParseResult:
    """Records found in one reply, and the problems met on the way (kind -> count)."""

    records: list[dict[str, str]]
    issues: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return "too_few" not in self.issues and bool(self.records)


_OPEN = re.compile(r"[\[{]")


def _json_values(text: str) -> tuple[list[Any], int]:
    """Every top-level JSON value in ``text`` (JSON Lines, arrays, fenced blocks, prose around
    them), and how many fragments failed to parse. A broken array is salvaged object by object."""
    values: list[Any] = []
    failures = 0
    position = 0
    while True:
        match = _OPEN.search(text, position)
        if match is None:
            return values, failures
        start = match.start()
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            # A broken "[" is only counted when no object follows to salvage; a broken "{" always is.
            if text[start] == "{" or "{" not in text[start + 1:]:
                failures += 1
            position = start + 1
            continue
        position = end
        if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
            continue  # a citation such as [1] in prose around the JSON
        values.append(value)


def _clean(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None


def parse_reply(text: str, n: int | None = None, keys: Sequence[str] = KEYS) -> ParseResult:
    """The valid records of a teacher reply, at most ``n``, with every problem counted.

    Accepts JSON Lines, a JSON array, fenced code blocks and prose before or after the JSON.
    A record needs every key in ``keys`` with non-blank text (key names are matched without
    regard to case); other keys are ignored. Exact repeats within the reply count once.
    """
    result = ParseResult([])
    values, failures = _json_values(text or "")
    if failures:
        result.issues["invalid_json"] += 1
    if not values and not failures:
        result.issues["no_json"] += 1
    candidates: list[Any] = []
    for value in values:
        if isinstance(value, list):
            candidates.extend(value)
        elif isinstance(value, dict) and not any(k.lower() in keys for k in value) and len(value) == 1 \
                and isinstance(next(iter(value.values())), list):
            candidates.extend(next(iter(value.values())))  # {"pairs": [...]}
        else:
            candidates.append(value)
    seen: set[str] = set()
    for candidate in candidates:
        if not isinstance(candidate, dict):
            result.issues["not_an_object"] += 1
            continue
        lowered = {str(k).strip().lower(): v for k, v in candidate.items()}
        cleaned = {key: _clean(lowered.get(key)) for key in keys}
        if any(value is None for value in cleaned.values()):
            result.issues["missing_key"] += 1
            continue
        if any(not value for value in cleaned.values()):
            result.issues["empty_value"] += 1
            continue
        signature = json.dumps(cleaned, sort_keys=True)
        if signature in seen:
            continue
        seen.add(signature)
        result.records.append(cleaned)  # type: ignore[arg-type]
    if n is not None:
        if len(result.records) > n:
            result.issues["extra_records"] += len(result.records) - n
            result.records = result.records[:n]
        if len(result.records) < n:
            result.issues["too_few"] += 1
    return result


def failure_kind(parsed: ParseResult) -> str:
    """The reason a reply is unusable, for :class:`RetryableOutput`."""
    if not parsed.records and parsed.issues.get("no_json"):
        return "no_json"
    if not parsed.records and parsed.issues.get("invalid_json"):
        return "invalid_json"
    return "too_few"


def _describe(parsed: ParseResult, n: int, text: str, stop_reason: str = "") -> str:
    issues = ", ".join(f"{kind}={count}" for kind, count in sorted(parsed.issues.items()))
    cut = f"; stop reason {stop_reason}" if stop_reason in ("max_tokens", "length", "LENGTH") else ""
    preview = " ".join((text or "").split())[:80]
    return f"{len(parsed.records)} valid records of {n} asked ({issues}){cut}; reply starts {preview!r}"


# ======================================================================================
# The call (on demand)
# ======================================================================================


class TeacherCall:
    """``call(item)`` for :func:`utils.engine.run_calls`: ask, parse, return or raise.

    ``api="invoke"`` sends the model's native InvokeModel body (as the seed does);
    ``api="converse"`` uses the Converse API. A reply with fewer than ``n`` valid records raises
    :class:`RetryableOutput`; a successful row carries the tokens and parse issues of every
    attempt of its item in this process, and :meth:`failed_usage` the tokens spent on items
    that never succeeded, so the cost tally misses nothing that was billed.

    The temperature is above zero on purpose: a retry at temperature 0 would mostly repeat the
    same unusable reply.
    """

    def __init__(
        self, model_id: str, body_family: str, *, n: int = DEFAULT_PAIRS, api: str = "invoke",
        system: str = TEACHER_SYSTEM, max_tokens: int = 2000, temperature: float = 0.7, client: Any = None,
        region: str | None = None,
    ) -> None:
        if api not in ("invoke", "converse"):
            raise ValueError(f"api must be 'invoke' or 'converse', got {api!r}")
        self.model_id, self.body_family, self.n, self.api = model_id, body_family, n, api
        self.system, self.max_tokens, self.temperature = system, max_tokens, temperature
        self.client = client or aws.client("bedrock-runtime", region)
        self._lock = threading.Lock()
        self._attempts: dict[str, dict[str, Any]] = {}

    def ask(self, prompt: str) -> invoke.Reply:
        if self.api == "converse":
            return invoke.converse(self.model_id, prompt, system=self.system, max_tokens=self.max_tokens,
                                   temperature=self.temperature, client=self.client)
        return invoke.invoke(self.model_id, self.body_family, prompt, system=self.system,
                             max_tokens=self.max_tokens, temperature=self.temperature, client=self.client)

    def __call__(self, item: Mapping[str, Any]) -> dict[str, Any]:
        reply = self.ask(item["prompt"])
        parsed = parse_reply(reply.text, self.n)
        with self._lock:
            spent = self._attempts.setdefault(
                item["id"], {"attempts": 0, "input_tokens": 0, "output_tokens": 0, "issues": Counter()})
            spent["attempts"] += 1
            spent["input_tokens"] += reply.input_tokens or 0
            spent["output_tokens"] += reply.output_tokens or 0
            spent["issues"].update(parsed.issues)
            if not parsed.ok:
                raise RetryableOutput(failure_kind(parsed), _describe(parsed, self.n, reply.text, reply.stop_reason))
            del self._attempts[item["id"]]
        return {
            "sample": item["sample"], "records": parsed.records, "attempts": spent["attempts"],
            "input_tokens": spent["input_tokens"], "output_tokens": spent["output_tokens"],
            "parse_issues": dict(spent["issues"]), "stop_reason": reply.stop_reason, "via": self.api,
        }

    def failed_usage(self) -> dict[str, int]:
        """Tokens and attempts spent in this process on items that have not succeeded."""
        with self._lock:
            rows = list(self._attempts.values())
        return {
            "attempts": sum(r["attempts"] for r in rows),
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
        }


# ======================================================================================
# Results of a run: counts and pairs
# ======================================================================================


def pairs_from_rows(rows: Iterable[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The parsed pairs of successful rows, each with its sample's ``document`` and index."""
    pairs = []
    for row in rows:
        if row.get("error"):
            continue
        sample = samples[row["sample"]]
        for record in row.get("records", []):
            pairs.append({**record, "sample": row["sample"], "document": sample["document"],
                          "original_question": sample["question"]})
    return pairs


def run_summary(rows: Sequence[Mapping[str, Any]], n: int) -> dict[str, Any]:
    """Counts of one generation run: requested, parsed, failed samples and every issue kind."""
    failed = [row for row in rows if row.get("error")]
    issues: Counter = Counter()
    for row in rows:
        issues.update(row.get("parse_issues") or {})
    failures = Counter(row.get("error_kind") or _error_class(row["error"]) for row in failed)
    return {
        "samples": len(rows),
        "requested": n * len(rows),
        "parsed": sum(len(row.get("records", [])) for row in rows if not row.get("error")),
        "failed_samples": len(failed),
        "failure_kinds": dict(sorted(failures.items())),
        "parse_issues": dict(sorted(issues.items())),
        "retried_replies": sum(max(0, int(row.get("attempts", 1)) - 1) for row in rows if not row.get("error")),
    }


def _error_class(error: str) -> str:
    return str(error).split(":", 1)[0] or "error"


def usage_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(input, output) tokens recorded on successful rows (every attempt of each item)."""
    good = [row for row in rows if not row.get("error")]
    return sum(int(r.get("input_tokens") or 0) for r in good), sum(int(r.get("output_tokens") or 0) for r in good)


# ======================================================================================
# Quality filters
# ======================================================================================

_STOPWORDS = frozenset(
    "a an the and or but if then so of to in on at by for with from as into about over under is are was "
    "were be been being it its this that these those there here can could will would should may might "
    "must do does did done has have had not no yes you your we our they their he she him her them i me my "
    "what which who whom whose when where why how than also only just such each any all both more most "
    "other some very use used using".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[.'\-][a-z0-9]+)*")


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_tokens(text: str) -> list[str]:
    """Lower-case content words, light suffix stripping, citations like [1] dropped."""
    text = re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", text.lower())
    return [_stem(w) for w in _WORD.findall(text) if w not in _STOPWORDS and len(w) > 1]


def grounding(answer: str, documents: str) -> float:
    """Share of the answer's distinct content words that occur in the documents (0..1)."""
    words = set(content_tokens(answer))
    if not words:
        return 0.0
    return len(words & set(content_tokens(documents))) / len(words)


def normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def shingles(text: str, size: int = 5) -> set[str]:
    """Character ``size``-grams of the normalised text (the whole text if it is shorter)."""
    norm = normalise(text)
    if len(norm) <= size:
        return {norm} if norm else set()
    return {norm[i:i + size] for i in range(len(norm) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


class NearDuplicateIndex:
    """Questions seen so far, to find near-duplicates by shingled Jaccard similarity.

    Candidates come from MinHash LSH (``datasketch.MinHashLSH``, a lower threshold so that
    nothing at the real threshold is missed in practice), then the exact Jaccard of the
    shingle sets decides. Without ``datasketch`` every stored question is compared exactly,
    which gives the same answers, only slower on large sets.
    """

    def __init__(self, threshold: float = 0.7, shingle_size: int = 5, num_perm: int = 128) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"the near-duplicate threshold must be in (0, 1], got {threshold}")
        self.threshold, self.shingle_size, self.num_perm = threshold, shingle_size, num_perm
        self._entries: dict[str, tuple[str, str, set[str]]] = {}  # key -> (label, text, shingles)
        try:
            from datasketch import MinHashLSH
        except ImportError:  # the exact comparison below is the fallback
            self._lsh = None
        else:
            self._lsh = MinHashLSH(threshold=max(0.05, threshold - 0.25), num_perm=num_perm)

    def _minhash(self, grams: set[str]):
        from datasketch import MinHash

        sketch = MinHash(num_perm=self.num_perm)  # fixed default seed: deterministic
        for gram in grams:
            sketch.update(gram.encode("utf-8"))
        return sketch

    def add(self, text: str, label: str) -> None:
        key = f"{len(self._entries)}"
        grams = shingles(text, self.shingle_size)
        self._entries[key] = (label, text, grams)
        if self._lsh is not None and grams:
            self._lsh.insert(key, self._minhash(grams))

    def match(self, text: str) -> tuple[str, str, float] | None:
        """(label, stored text, Jaccard) of the most similar stored question at or above the threshold."""
        grams = shingles(text, self.shingle_size)
        if not grams:
            return None
        keys = self._lsh.query(self._minhash(grams)) if self._lsh is not None else list(self._entries)
        best = None
        for key in keys:
            label, stored, other = self._entries[key]
            score = jaccard(grams, other)
            if score >= self.threshold and (best is None or score > best[2]):
                best = (label, stored, score)
        return best

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class FilterSettings:
    """Thresholds of the quality filters (the defaults are our choice; tune them on your data)."""

    min_grounding: float = 0.5  # share of the answer's content words found in the documents
    near_duplicate: float = 0.7  # shingled Jaccard at or above which two questions are the same
    question_words: tuple[int, int] = (3, 50)
    answer_words: tuple[int, int] = (3, 300)


FILTERS = {
    "well_formed": "the question is one line ending in '?', no markup or stray tokens",
    "length": "question and answer word counts within bounds",
    "grounded": "enough of the answer's content words occur in the sample's documents",
    "near_duplicate": "not a near-duplicate of a test, original or earlier synthetic question",
}

_MARKUP = re.compile(r"<\|[^|>]*\|>|```|^\s*[\[{]|[{}]\s*$")


def _well_formed(pair: Mapping[str, Any]) -> str | None:
    question, answer = pair["question"], pair["answer"]
    if "\n" in question.strip():
        return "question spans several lines"
    if not question.rstrip().endswith("?"):
        return "question does not end with '?'"
    if _MARKUP.search(question) or _MARKUP.search(answer):
        return "markup or stray tokens in the text"
    return None


def _length(pair: Mapping[str, Any], settings: FilterSettings) -> str | None:
    for key, (low, high) in (("question", settings.question_words), ("answer", settings.answer_words)):
        count = len(pair[key].split())
        if not low <= count <= high:
            return f"{key} has {count} words (bounds {low}-{high})"
    return None


@dataclass
class FilterReport:
    """What each filter removed, in order, and the pairs kept."""

    kept: list[dict[str, Any]]
    removed: dict[str, list[dict[str, Any]]]  # filter -> pairs, each with "reason"
    parsed: int

    def counts(self) -> dict[str, int]:
        return {name: len(self.removed.get(name, [])) for name in FILTERS}

    def table(self):  # -> pandas.DataFrame
        """One row per filter: what it checks, how many pairs it removed, one example."""
        import pandas as pd

        rows, remaining = [], self.parsed
        for name, description in FILTERS.items():
            removed = self.removed.get(name, [])
            remaining -= len(removed)
            example = f"{removed[0]['question'][:70]!r}: {removed[0]['reason']}" if removed else ""
            rows.append({"filter": name, "checks": description, "removed": len(removed),
                         "left": remaining, "example": example})
        return pd.DataFrame(rows)


def filter_pairs(
    pairs: Sequence[Mapping[str, Any]], *, original_questions: Iterable[str] = (), test_questions: Iterable[str] = (),
    settings: FilterSettings = FilterSettings(),
) -> FilterReport:
    """Run the quality filters in order; a pair removed by one filter is not seen by the next.

    ``pairs`` carry ``question``, ``answer``, ``topic`` and ``document`` (the sample's documents).
    The near-duplicate check compares each question with the test questions first (a leak),
    then the original training questions, then the synthetic questions kept before it.
    """
    removed: dict[str, list[dict[str, Any]]] = {name: [] for name in FILTERS}
    index = NearDuplicateIndex(settings.near_duplicate)
    for question in test_questions:
        index.add(question, "test")
    for question in original_questions:
        index.add(question, "original")
    kept: list[dict[str, Any]] = []
    for pair in pairs:
        reason = _well_formed(pair)
        name = "well_formed"
        if reason is None:
            name, reason = "length", _length(pair, settings)
        if reason is None:
            score = grounding(pair["answer"], pair["document"])
            if score < settings.min_grounding:
                name, reason = "grounded", f"grounding {score:.2f} < {settings.min_grounding}"
        if reason is None:
            match = index.match(pair["question"])
            if match:
                label, stored, score = match
                name, reason = "near_duplicate", f"{label} question {stored[:60]!r} (Jaccard {score:.2f})"
        if reason is not None:
            removed[name].append({**pair, "reason": reason})
            continue
        kept.append(dict(pair))
        index.add(pair["question"], "synthetic")
    return FilterReport(kept, removed, len(pairs))


def topic_counts(pairs: Iterable[Mapping[str, Any]], top: int = 15) -> list[tuple[str, int]]:
    """Pairs per topic label (case and spacing folded), the ``top`` most common, then "other"."""
    counts = Counter(" ".join(str(pair.get("topic", "")).lower().split()) or "(none)" for pair in pairs)
    common = counts.most_common(top)
    rest = sum(counts.values()) - sum(count for _, count in common)
    return common + ([("other", rest)] if rest else [])


def topic_terms(pairs: Iterable[Mapping[str, Any]], top: int = 15) -> list[tuple[str, int]]:
    """How many pairs' topic labels mention each term (lower-cased content words), most common first.

    Teachers label topics in free text, so exact labels rarely repeat; their words do
    ("versioning", "iam", "throughput"), which makes this the readable topic distribution.
    """
    counts: Counter = Counter()
    for pair in pairs:
        words = {w for w in _WORD.findall(str(pair.get("topic", "")).lower()) if w not in _STOPWORDS and len(w) > 1}
        counts.update(words)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]


# ======================================================================================
# Cost estimate (on demand or batch)
# ======================================================================================


def estimate(
    teacher_key: str, input_tokens: int, output_tokens: int, *, batch: bool = False,
    price_overrides: Mapping[str, float] | None = None, region: str = "us-east-1",
):
    """The teacher's token cost. For batch, the dated batch price where ``utils.costs`` lists one,
    else the on-demand price (an upper bound: AWS lists batch at about half for select models),
    and the estimate's notes say which."""
    from utils import costs

    if not batch:
        return costs.estimate_inference(teacher_key, input_tokens, output_tokens,
                                        price_overrides=price_overrides, region=region)
    priced = costs.estimate_inference(teacher_key, input_tokens, output_tokens, batch=True,
                                      price_overrides=price_overrides, region=region)
    if priced.total is not None:
        priced.notes.append("Priced at the dated batch price (batch inference).")
        return priced
    fallback = costs.estimate_inference(teacher_key, input_tokens, output_tokens,
                                        price_overrides=price_overrides, region=region,
                                        description=f"{costs.price_model(teacher_key)} (batch job)")
    fallback.title = f"Batch inference at on-demand prices: {costs.price_model(teacher_key)}"
    fallback.notes.append(
        f"No dated batch price for {costs.price_model(teacher_key)} in utils/costs.py: estimated at the "
        "on-demand price, an upper bound (AWS lists batch at about 50% of on-demand for select models). "
        f"Pass price_overrides={{'batch_in_per_1k:{costs.price_model(teacher_key)}': ..., "
        f"'batch_out_per_1k:{costs.price_model(teacher_key)}': ...}} to use the batch price."
    )
    return fallback


# ======================================================================================
# Scale path: Bedrock batch inference
# ======================================================================================

BATCH_MIN_RECORDS_DEFAULT = 100  # "typically 100" per model; our assumption when the quota can't be read
_BATCH_QUOTA = re.compile(r"minimum number of records per batch inference job", re.IGNORECASE)
TERMINAL_BATCH = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")


def _model_words(name: str) -> str:
    return normalise(re.sub(r"^(Amazon|Anthropic|Meta)\s+", "", name))


def batch_min_records(model_name: str, region: str | None = None, client: Any = None) -> tuple[int, str]:
    """(minimum records per batch job for the model, where the number came from).

    Reads the per-model Service Quotas entry "Minimum number of records per batch inference
    job for <model>" (https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html), matched
    by name because the quota codes differ per model. Falls back to 100, the commonly
    documented value (our assumption), when the quota is not listed or cannot be read.
    """
    wanted = _model_words(model_name)
    generic = None  # a quota of that name without a model, if the account lists one
    try:
        quotas = client or aws.client("service-quotas", region)
        for page in quotas.get_paginator("list_service_quotas").paginate(ServiceCode="bedrock"):
            for quota in page.get("Quotas", []):
                name = quota.get("QuotaName", "")
                if not _BATCH_QUOTA.search(name):
                    continue
                if wanted and wanted in normalise(name):
                    return int(quota["Value"]), f"Service Quotas: {name} ({quota.get('QuotaCode', '')})"
                if " for " not in name:
                    generic = quota
    except Exception as exc:  # noqa: BLE001 - any failure to read the quota falls back to the default
        return BATCH_MIN_RECORDS_DEFAULT, f"default {BATCH_MIN_RECORDS_DEFAULT} (could not read Service Quotas: {aws.error_code(exc)})"
    if generic is not None:
        return int(generic["Value"]), f"Service Quotas: {generic['QuotaName']} ({generic.get('QuotaCode', '')})"
    return BATCH_MIN_RECORDS_DEFAULT, f"default {BATCH_MIN_RECORDS_DEFAULT} (no such quota listed for {model_name}; our assumption)"


def record_id(item: Mapping[str, Any]) -> str:
    """An 11-character alphanumeric ``recordId`` derived from the item's id (the documented form)."""
    return str(item["id"])[:11]


def batch_input(
    items: Sequence[Mapping[str, Any]], body_family: str, *, api: str = "invoke", system: str = TEACHER_SYSTEM,
    max_tokens: int = 2000, temperature: float = 0.7,
) -> str:
    """The batch job's input: one ``{"recordId", "modelInput"}`` line per item.

    ``modelInput`` is the InvokeModel body of the model family (or, for ``api="converse"``,
    a Converse request body; the job then needs ``modelInvocationType="Converse"``).
    https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html
    """
    ids = [record_id(item) for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("two items share a recordId prefix; their ids are not unique")
    lines = []
    for rid, item in zip(ids, items, strict=True):
        if api == "converse":
            body: dict[str, Any] = {
                "messages": [{"role": "user", "content": [{"text": item["prompt"]}]}],
                "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
            }
            if system:
                body["system"] = [{"text": system}]
        else:
            body = invoke.native_body(body_family, item["prompt"], system=system, max_tokens=max_tokens,
                                      temperature=temperature)
        lines.append(json.dumps({"recordId": rid, "modelInput": body}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _reply_text(body_family: str, api: str, output: Mapping[str, Any]) -> tuple[str, str]:
    if api == "converse":
        blocks = output["output"]["message"]["content"]
        return "".join(b.get("text", "") for b in blocks), output.get("stopReason", "")
    return invoke.native_text(body_family, dict(output))


def batch_rows(
    items: Sequence[Mapping[str, Any]], output_lines: Iterable[Mapping[str, Any]], *, body_family: str,
    n: int, api: str = "invoke",
) -> list[dict[str, Any]]:
    """Join batch output lines to the items on ``recordId`` and parse each reply.

    One row per item, in item order, shaped like :class:`TeacherCall` rows: a success with its
    records, or ``{"id", "error", "error_kind"}`` (a record error, an unusable reply, or a record
    missing from the output). Output order is not relied on.
    """
    by_record = {record_id(item): item for item in items}
    if len(by_record) != len(items):
        raise ValueError("two items share a recordId prefix; their ids are not unique")
    found: dict[str, dict[str, Any]] = {}
    for line in output_lines:
        rid = str(line.get("recordId", ""))
        item = by_record.get(rid)
        if item is None or rid in found:
            continue
        if "modelOutput" not in line:
            error = line.get("error") or {}
            found[rid] = {"id": item["id"], "sample": item["sample"], "error_kind": "batch_record_error",
                          "error": f"BatchRecordError: {error.get('errorCode', '')} {error.get('errorMessage', '')}".strip()}
            continue
        output = line["modelOutput"]
        try:
            text, stop = _reply_text(body_family, api, output)
        except (KeyError, TypeError, IndexError) as exc:
            found[rid] = {"id": item["id"], "sample": item["sample"], "error_kind": "unexpected_body",
                          "error": f"RetryableOutput: the modelOutput has no text ({type(exc).__name__}: {exc})"}
            continue
        parsed = parse_reply(text, n)
        input_tokens, output_tokens = engine.usage_from_response(output)
        if not parsed.ok:
            found[rid] = {"id": item["id"], "sample": item["sample"], "error_kind": failure_kind(parsed),
                          "parse_issues": dict(parsed.issues), "input_tokens": input_tokens, "output_tokens": output_tokens,
                          "error": f"RetryableOutput: {_describe(parsed, n, text, stop)}"}
            continue
        found[rid] = {"id": item["id"], "sample": item["sample"], "records": parsed.records, "attempts": 1,
                      "input_tokens": input_tokens or 0, "output_tokens": output_tokens or 0,
                      "parse_issues": dict(parsed.issues), "stop_reason": stop, "via": "batch"}
    rows = []
    for item in items:
        rid = record_id(item)
        rows.append(found.get(rid) or {"id": item["id"], "sample": item["sample"], "error_kind": "missing_from_output",
                                       "error": f"BatchRecordMissing: no output line for recordId {rid}"})
    return rows


@dataclass
class BatchJob:
    """What :func:`run_batch` did: the job, its final description, the manifest and the rows."""

    job_arn: str
    status: str
    rows: list[dict[str, Any]]
    manifest: dict[str, Any]
    output_uri: str
    description: dict[str, Any] = field(default_factory=dict)


def batch_job_name(prefix: str, items: Sequence[Mapping[str, Any]]) -> str:
    """A deterministic job name: the same pending items find the same job on a rerun."""
    digest = engine.item_id(*[item["id"] for item in items])[:12]
    name = re.sub(r"[^a-zA-Z0-9\-]+", "-", prefix).strip("-")[: 63 - 13]
    return f"{name}-{digest}"


def run_batch(
    items: Sequence[Mapping[str, Any]], *, model_id: str, body_family: str, n: int, role_arn: str, bucket: str,
    checkpoint: str | Path, job_prefix: str, api: str = "invoke", system: str = TEACHER_SYSTEM,
    max_tokens: int = 2000, temperature: float = 0.7, region: str | None = None,
    input_prefix: str = "batch-input/", output_prefix: str = "batch-output/", poll_seconds: float = 60,
    timeout_s: float = 24 * 3600, tags: Mapping[str, str] | None = None,
    on_job: Callable[[str], None] | None = None, log: Callable[[str], None] = print,
) -> BatchJob:
    """Run the pending items as one batch inference job and return every item's row.

    Steps (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference.html): write
    the ``recordId``/``modelInput`` JSONL under ``input_prefix``, ``create_model_invocation_job``
    with the batch service role (or find the job a previous run created for the same items),
    poll until it ends, read ``<output>/<jobId>/<file>.jsonl.out`` and ``manifest.json.out``,
    join on ``recordId`` and parse like the on-demand path. New rows are appended to the same
    ``checkpoint`` as :func:`utils.engine.run_calls` uses, so a rerun (batch or on demand) only
    calls the items that have no successful row.
    """
    from utils import s3

    pending = engine.pending(items, checkpoint)
    done = engine.load_checkpoint(checkpoint)
    if not pending:
        return BatchJob("", "Completed", [done[item["id"]] for item in items], {}, "")
    name = batch_job_name(job_prefix, pending)
    bedrock = aws.client("bedrock", region)
    input_key = f"{input_prefix}{name}/records.jsonl"
    output_uri = s3.uri(bucket, f"{output_prefix}{name}/")
    job_arn = _existing_job(bedrock, name)
    if job_arn is None:
        s3.upload_bytes(bucket, input_key, batch_input(pending, body_family, api=api, system=system,
                                                       max_tokens=max_tokens, temperature=temperature),
                        content_type="application/jsonl", region=region)
        request: dict[str, Any] = {
            "jobName": name, "roleArn": role_arn, "modelId": model_id, "clientRequestToken": name,
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": s3.uri(bucket, input_key), "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}},
        }
        if api == "converse":
            request["modelInvocationType"] = "Converse"
        if tags:
            request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        job_arn = bedrock.create_model_invocation_job(**request)["jobArn"]
        log(f"created batch job {name}: {len(pending)} records")
    else:
        log(f"found batch job {name} from an earlier run")
    if on_job:
        on_job(job_arn)
    description = _wait_for_job(bedrock, job_arn, poll_seconds=poll_seconds, timeout_s=timeout_s, log=log)
    status = description["status"]
    job_id = job_arn.rsplit("/", 1)[-1]
    lines: list[dict[str, Any]] = []
    manifest: dict[str, Any] = {}
    if status in ("Completed", "PartiallyCompleted"):
        base = s3.uri(bucket, f"{output_prefix}{name}/{job_id}/")
        for key in s3.list_keys(base, region=region):
            text = s3.read_text(s3.uri(bucket, key), region=region)
            if key.endswith("manifest.json.out"):
                manifest = json.loads(text)
            elif key.endswith(".jsonl.out"):
                lines.extend(json.loads(line) for line in text.splitlines() if line.strip())
    rows = batch_rows(pending, lines, body_family=body_family, n=n, api=api)
    if status not in ("Completed", "PartiallyCompleted"):
        reason = description.get("message") or "no message"
        rows = [{"id": row["id"], "sample": row["sample"], "error_kind": f"batch_job_{status.lower()}",
                 "error": f"BatchJob{status}: {reason}"} for row in rows]
    _append(checkpoint, rows)
    stored = engine.load_checkpoint(checkpoint)
    return BatchJob(job_arn, status, [stored[item["id"]] for item in items], manifest, output_uri, description)


def _existing_job(bedrock: Any, name: str) -> str | None:
    """The ARN of a job with this exact name that did not fail or stop (a rerun reuses it)."""
    for job in bedrock.list_model_invocation_jobs(nameContains=name).get("invocationJobSummaries", []):
        if job.get("jobName") == name and job.get("status") not in ("Failed", "Stopped", "Expired", "Stopping"):
            return job["jobArn"]
    return None


def _wait_for_job(bedrock: Any, job_arn: str, *, poll_seconds: float, timeout_s: float,
                  log: Callable[[str], None]) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = ""
    delays = aws.poll_delays(poll_seconds)  # short first, backing off to poll_seconds
    while True:
        description = bedrock.get_model_invocation_job(jobIdentifier=job_arn)
        status = description["status"]
        if status != last:
            counts = ""
            if "totalRecordCount" in description:
                counts = (f" ({description.get('processedRecordCount', 0)}/{description['totalRecordCount']} "
                          f"processed, {description.get('errorRecordCount', 0)} errors)")
            log(f"batch job status: {status}{counts}")
            last = status
        if status in TERMINAL_BATCH:
            return description
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"Batch job still {status} after {timeout_s:.0f} s. It keeps running: rerun this cell to "
                "keep waiting (the same job is found again), or stop it in 07_cleanup."
            )
        time.sleep(next(delays))


def _append(checkpoint: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    path = Path(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(dict(row), ensure_ascii=False, default=str) + "\n" for row in rows)
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        text = "\n" + text
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
