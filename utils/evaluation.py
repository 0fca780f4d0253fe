"""Evaluation metrics the workshop reports: token F1/EM, token statistics, judge statistics.

Implements the official scorers' rules (SQuAD v1.1 ``evaluate-v1.1.py``,
https://rajpurkar.github.io/SQuAD-explorer/; TAT-QA, https://github.com/NExTplusplus/TAT-QA). Conventions:

* per-item metrics return **fractions in [0, 1]**;
* corpus-level metrics return **0-100**.

Three token-F1 families live here, deliberately named apart:

``squad_*``
    SQuAD v1.1 official semantics: whole-string normalisation, multiset overlap,
    a list of golds means *alternatives* (max over them).
``tatqa_*``
    TAT-QA official-scorer behaviour (NExTplusplus/TAT-QA ``tatqa_metric.py`` /
    ``tatqa_utils.py``, commit 870accc), quirks included: set overlap, per-token
    number parsing, Hungarian span alignment, 2-decimal rounding, scale rescaling,
    sort-and-join at question level, F1 := EM for arithmetic/count questions.
``aws_blog_f1``
    The hybrid rule that reproduces the AWS/Anthropic blog's worked example
    (6/9, 6/11). A demonstration only: it is not a proper F1.

Nothing here calls a model or touches the network.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Verdict = Literal["A", "B", "tie"]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)

# --------------------------------------------------------------------------------------
# SQuAD v1.1 (the official evaluate-v1.1.py: normalize_answer, f1_score, exact_match_score)
# --------------------------------------------------------------------------------------


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 ``normalize_answer``: lowercase, drop ASCII punctuation, articles, extra spaces.

    Punctuation is deleted, not replaced by a space: ``"1,000.50"`` becomes ``"100050"``.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0 (both empty counts as a match)."""
    return float(squad_normalize(prediction) == squad_normalize(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 token F1 with a multiset (``Counter``) intersection; not rounded.

    Returns 0.0 when nothing overlaps, including when both sides are empty (v1.1 rule;
    SQuAD v2.0 would return 1.0 there).
    """
    pred_tokens = squad_normalize(prediction).split()
    gold_tokens = squad_normalize(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction: str, golds: str | Sequence[str]) -> tuple[float, float]:
    """``(em, f1)`` for one question; a list of golds means *alternatives*.

    EM and F1 are each the max over the alternatives, independently.
    """
    alternatives = [golds] if isinstance(golds, str) else list(golds)
    if not alternatives:
        raise ValueError("squad_scores needs at least one gold answer")
    em = max(squad_exact_match(prediction, g) for g in alternatives)
    f1 = max(squad_f1(prediction, g) for g in alternatives)
    return em, f1


def squad_corpus_scores(
    predictions: Mapping[Any, str], golds: Mapping[Any, str | Sequence[str]]
) -> dict[str, float]:
    """Corpus EM/F1 (0-100) over **all gold questions**; a missing prediction scores 0."""
    if not golds:
        raise ValueError("squad_corpus_scores needs at least one gold question")
    em_total = f1_total = 0.0
    for qid, gold in golds.items():
        if qid in predictions and predictions[qid] is not None:
            em, f1 = squad_scores(predictions[qid], gold)
            em_total += em
            f1_total += f1
    n = len(golds)
    return {"em": 100.0 * em_total / n, "f1": 100.0 * f1_total / n, "n": n}


# --------------------------------------------------------------------------------------
# TAT-QA official behaviour (NExTplusplus/TAT-QA tatqa_metric.py, tatqa_utils.py)
# --------------------------------------------------------------------------------------

_EXCLUDE_IN_NUM = frozenset("'\"\\$€£¥%(),[]")
_NUMBER = re.compile(r"([+-]?\d+(\.\d+)?)|([+-]?\.\d+)")
_WORD_SCALE = re.compile(r"([\d.]+\s?[a-zA-Z]+)")
_NEGATIVE = re.compile(r"(\([\d.\s]+\))")
_PERCENT = re.compile(r"([\d.\s]+%)")


def tatqa_scale_factor(scale: str) -> float:
    """``scale_to_num``: thousand 1e3, million 1e6, billion 1e9, percent 0.01 (hundred 100), else 1."""
    scale = (scale or "").lower()
    if "hundred" in scale:
        return 100
    if "thousand" in scale:
        return 1000
    if "million" in scale:
        return 1000000
    if "billion" in scale:
        return 1000000000
    if "percent" in scale:
        return 0.01
    return 1


def _clean_num(text: str) -> str:
    return "".join(ch for ch in str(text) if ch not in _EXCLUDE_IN_NUM)


def tatqa_is_number(text: str) -> bool:
    """The official ``is_number``: first word parses as a float (after stripping ``$ , % ( )``...);

    a second word, if present, must contain a scale word (``"1.2 million"`` is numeric,
    ``"2019 revenue"`` is not).
    """
    words = " ".join(_clean_num(w) for w in text.split()).split()
    if not words:
        return False
    try:
        number = float(words[0])
    except ValueError:
        return False
    if math.isnan(number):
        return False
    if len(words) >= 2 and tatqa_scale_factor(words[1]) == 1:
        return False
    return True


def tatqa_parse_number(text: str) -> int | float | None:
    """The official ``to_number``: first number × word scale × sign (parentheses) × percent.

    Rounded to 4 decimals; ``None`` if no ``\\d+(\\.\\d+)?`` number is found (``".5"``, ``"inf"``).
    Examples: ``"18.3%"`` → 0.183, ``"(134.12)"`` → -134.12, ``"$1,073.3"`` → 1073.3,
    ``"1.2 million"`` → 1200000.0, ``"2019"`` → 2019 (an int).
    """
    groups = _NUMBER.findall(_clean_num(text))
    if not groups or groups[0][0] == "":
        return None
    raw = groups[0][0]
    number: int | float = float(raw) if "." in raw else int(raw)
    scale_val: float = 1
    for match in _WORD_SCALE.finditer(text):
        scale_val = tatqa_scale_factor(match.group(0).lower())
        break
    negative = -1 if _NEGATIVE.findall(text.strip()) else 1
    percent = 0.01 if _PERCENT.findall(text.strip()) else 1
    return round(number * scale_val * negative * percent, 4)


def _tatqa_normalize_token(token: str) -> str:
    token = token.lower()
    if not tatqa_is_number(token):  # remove_punc
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if tatqa_is_number(token):  # normalize_number (sees the punctuation-stripped token)
        token = str(tatqa_parse_number(token))
    token = _ARTICLES.sub(" ", token)
    return " ".join(token.split())


def tatqa_normalize(text: str) -> str:
    """The official TAT-QA ``normalize_answer`` (§1.4).

    Splits on single spaces only and normalises each token alone: lowercase; strip ASCII
    punctuation unless the token is numeric; numeric tokens become ``str(parse_number)``;
    drop a/an/the; drop empty tokens. ``"(134.12)"`` → ``"-134.12"``, ``"18.3 %"`` → ``"18.3"``,
    ``"state-of-the-art"`` → ``"stateoftheart"``. Word scales are *not* applied here.
    """
    parts = [_tatqa_normalize_token(token) for token in text.split(" ")]
    return " ".join(part for part in parts if part.strip()).strip()


def _set_f1(predicted: set[str], gold: set[str]) -> float:
    intersection = len(gold & predicted)
    precision = intersection / len(predicted) if predicted else 1.0
    recall = intersection / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def tatqa_em_f1(
    prediction: str | Sequence[str], gold: str | Sequence[str]
) -> tuple[float, float]:
    """String-level TAT-QA ``get_metrics`` (§1.5): ``(em, f1)``, F1 rounded to 2 decimals.

    A list means **all spans are required** (multi-span): spans are aligned one-to-one by the
    Hungarian algorithm on set-F1, unmatched spans score 0, and F1 is the mean over
    ``max(#gold, #pred)``. EM needs equal sets of normalised spans and equal list lengths.
    Two empty strings score (1.0, 1.0).
    """
    from scipy.optimize import linear_sum_assignment

    pred_spans = [prediction] if isinstance(prediction, str) else list(prediction)
    gold_spans = [gold] if isinstance(gold, str) else list(gold)
    if not pred_spans and not gold_spans:
        raise ValueError("tatqa_em_f1: both span lists are empty (the official code returns NaN)")
    pred_norm = [tatqa_normalize(span) for span in pred_spans]
    gold_norm = [tatqa_normalize(span) for span in gold_spans]
    same = set(pred_norm) == set(gold_norm) and len(pred_norm) == len(gold_norm)
    em = 1.0 if same else 0.0

    pred_bags = [set(span.split()) for span in pred_norm]
    gold_bags = [set(span.split()) for span in gold_norm]
    scores = np.zeros((len(gold_bags), len(pred_bags)))
    for gi, gold_bag in enumerate(gold_bags):
        for pi, pred_bag in enumerate(pred_bags):
            scores[gi, pi] = _set_f1(pred_bag, gold_bag)
    rows, cols = linear_sum_assignment(-scores)
    aligned = np.zeros(max(len(gold_bags), len(pred_bags)))
    for row, col in zip(rows, cols, strict=True):
        aligned[row] = max(aligned[row], scores[row, col])
    # np.round (round-half-even on value*100), exactly what round(np.float64, 2) does upstream.
    f1 = float(np.round(np.mean(aligned), 2))
    return em, f1


def tatqa_answer_string(values: Sequence[Any], scale: str) -> str:
    """The official ``get_answer_str``: sort, rescale numbers by ``scale``, join into ONE string.

    Numbers become ``"%.4f" % (round(x, 2) * scale_factor)`` (or ``"%.4f" % x`` when the text
    has a ``%``); text gets ``" " + scale`` appended when a scale is given.
    """
    parts = []
    for value in sorted(values):  # raw sort, as upstream
        text = str(value)
        number = tatqa_parse_number(text) if tatqa_is_number(text) else None
        if number is not None:
            if "%" in text:
                text = f"{number:.4f}"
            else:
                text = f"{round(number, 2) * tatqa_scale_factor(scale):.4f}"
        elif scale:
            text = f"{text} {scale}"
        parts.append(text)
    return " ".join(parts)


def tatqa_gold_answers(gold_qa: Mapping[str, Any]) -> list[str]:
    """The official ``extract_gold_answers``: the list of gold strings for a question."""
    answer_type, answer = gold_qa["answer_type"], gold_qa["answer"]
    if answer_type in ("span", "multi-span"):
        if not isinstance(answer, list):
            raise ValueError(f"{answer_type} answers must be lists, got {answer!r}")
        return list(answer)
    if answer_type == "count":
        return [str(int(answer))]
    return [str(answer)]


def tatqa_question_score(
    gold_qa: Mapping[str, Any], prediction: Any, pred_scale: str = ""
) -> tuple[float, float]:
    """Question-level TAT-QA score (``TaTQAEmAndF1.__call__``, §1.6): ``(em, f1)`` in [0, 1].

    ``gold_qa`` needs ``answer``, ``answer_type`` and ``scale``. Behaviour, as upstream:

    * a falsy prediction (``None``, ``""``, ``[]``, ``0``, ``0.0``) scores 0;
    * gold and prediction are each sorted and joined into ONE string, numbers rescaled by
      their scale (so a scale mismatch scores 0, and predictions are rounded to 2 decimals
      before scaling);
    * a single unscaled numeric prediction also tries its raw value (``0.2212`` can match
      gold ``22.12`` percent);
    * the best candidate by (EM, F1) wins; F1 := EM for arithmetic and count questions.

    A correct but verbose free-text answer usually scores 0 here (the scorer compares parsed spans):
    extract an (answer, scale) pair first, or report ``squad_f1`` against reference text.
    """
    if not prediction:
        return 0.0, 0.0
    gold_answers = tatqa_gold_answers(gold_qa)
    if not gold_answers:
        return 0.0, 0.0
    pred_scale = pred_scale or ""
    gold_str = tatqa_answer_string(gold_answers, gold_qa["scale"])
    preds = prediction if isinstance(prediction, list) else [prediction]
    candidates = [tatqa_answer_string(preds, pred_scale)]
    if len(preds) == 1:  # add_percent_pred
        raw = str(preds[0])
        if not pred_scale and "%" not in raw and tatqa_is_number(raw):
            number = tatqa_parse_number(raw)
            if number is not None:
                candidates.append(f"{number:.4f}")
    em, f1 = max(tatqa_em_f1(candidate, gold_str) for candidate in candidates)
    if gold_qa["answer_type"] in ("arithmetic", "count"):
        f1 = em
    return float(em), float(f1)


def tatqa_corpus_scores(
    gold_contexts: Iterable[Mapping[str, Any]],
    predictions: Mapping[str, Sequence[Any]],
) -> dict[str, float]:
    """``tatqa_eval.py``: EM, F1 and scale score (0-100) over **all gold questions**.

    ``predictions`` maps question uid → ``[answer, scale]``. A missing uid scores 0. The scale
    score counts questions with a non-empty prediction whose scale equals the gold scale.
    """
    em_total = f1_total = scale_total = 0.0
    n = 0
    for context in gold_contexts:
        for qa in context["questions"]:
            n += 1
            answer, scale = predictions.get(qa["uid"], (None, None))
            em, f1 = tatqa_question_score(qa, answer, scale or "")
            em_total += em
            f1_total += f1
            if answer and tatqa_gold_answers(qa) and (scale or "") == qa["scale"]:
                scale_total += 1
    if n == 0:
        raise ValueError("tatqa_corpus_scores: the gold contexts hold no questions")
    return {
        "em": 100.0 * em_total / n,
        "f1": 100.0 * f1_total / n,
        "scale": 100.0 * scale_total / n,
        "n": n,
    }


def tatqa_reference_text(gold_qa: Mapping[str, Any]) -> str:
    """A fixed reference text for free-text scoring (§5.3 b).

    Gold spans joined with ``" "`` in stored order, then ``" " + scale`` if the scale is set.
    """
    answer = gold_qa["answer"]
    spans = [str(a) for a in answer] if isinstance(answer, list) else [str(answer)]
    text = " ".join(spans)
    return f"{text} {gold_qa['scale']}" if gold_qa.get("scale") else text


# --------------------------------------------------------------------------------------
# The AWS blog example: a named demonstration, not a metric (our attribution, uncertain:
# https://aws.amazon.com/blogs/machine-learning/best-practices-and-lessons-for-fine-tuning-anthropics-claude-3-haiku-on-amazon-bedrock/)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsBlogF1:
    """The blog's counts: distinct shared lowercased words over raw token counts."""

    matches: int
    n_generated: int
    n_reference: int
    precision: float
    recall: float
    f1: float  # fraction; the blog prints f1 × 100


def aws_blog_f1(generated: str, reference: str) -> AwsBlogF1:
    """Reproduce the AWS/Anthropic blog's F1 worked example (DEMONSTRATION ONLY).

    Lowercased whitespace tokens, no article or punctuation removal; matches = number of
    *distinct* shared words; precision/recall divide by the *total* token counts. On
    "The cat sits on the mat in the sun" vs "The cat sits on the soft mat under the warm
    sun" this gives 6/9, 6/11 and F1 = 60.00 (the blog's "59.90" is a rounding slip).
    Not a proper F1: a string with a repeated word scores < 1 against itself.
    """
    gen = generated.lower().split()
    ref = reference.lower().split()
    matches = len(set(gen) & set(ref))
    precision = matches / len(gen) if gen else 0.0
    recall = matches / len(ref) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if matches else 0.0
    return AwsBlogF1(matches, len(gen), len(ref), precision, recall, f1)


# --------------------------------------------------------------------------------------
# Token statistics (§5.4)
# --------------------------------------------------------------------------------------


def token_count_stats(counts: Sequence[int | float]) -> dict[str, float]:
    """Summary of per-response token counts.

    ``std`` is the **sample** std (ddof=1, like pandas ``.std()``; NaN when n < 2);
    ``std_population`` is ddof=0 (numpy's default). Median of an even-length list is the
    mean of the two middle values.
    """
    values = np.asarray(list(counts), dtype=float)
    n = int(values.size)
    if n == 0:
        raise ValueError("token_count_stats needs at least one count")
    return {
        "n": n,
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "std": float(values.std(ddof=1)) if n >= 2 else math.nan,
        "std_population": float(values.std(ddof=0)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def percent_reduction(base_mean: float, new_mean: float) -> float:
    """``(base − new) / base × 100``: positive means fewer tokens than the base."""
    if base_mean == 0:
        raise ValueError("percent_reduction: base_mean is 0, the reduction is undefined")
    return (base_mean - new_mean) / base_mean * 100.0


# --------------------------------------------------------------------------------------
# Judge and human statistics (§4, §5.5)
# --------------------------------------------------------------------------------------

_VERDICT_TAG = re.compile(r"\[\[\s*([ABC])\s*\]\]", re.IGNORECASE)
_VERDICTS = ("A", "B", "tie")


def parse_verdict(text: str | None) -> Verdict | None:
    """Read a FastChat-style pairwise verdict: ``[[A]]`` → "A", ``[[B]]`` → "B", ``[[C]]`` → "tie".

    Returns ``None`` (an error, to drop upstream) when no tag is present or when the text
    contains *conflicting* tags, e.g. a judge that restates the output format.
    """
    if not text:
        return None
    tags = {tag.upper() for tag in _VERDICT_TAG.findall(text)}
    if len(tags) != 1:
        return None
    tag = tags.pop()
    return "tie" if tag == "C" else tag  # type: ignore[return-value]


def _check_verdict(verdict: str) -> None:
    if verdict not in _VERDICTS:
        raise ValueError(f"verdict must be one of {_VERDICTS}, got {verdict!r}")


def unswap(verdict: Verdict) -> Verdict:
    """Map a verdict from the swapped-order call back to model identity: A↔B, tie stays."""
    _check_verdict(verdict)
    return {"A": "B", "B": "A", "tie": "tie"}[verdict]  # type: ignore[return-value]


def combine_swapped(v_original: Verdict, v_swapped_raw: Verdict) -> Verdict:
    """MT-Bench conservative rule: a win only if both orders agree, otherwise a tie.

    ``v_swapped_raw`` is the verdict of the call where the answers were shown in swapped
    order, as the judge wrote it. (win, tie) also becomes a tie.
    """
    _check_verdict(v_original)
    v2 = unswap(v_swapped_raw)
    return v_original if v_original == v2 and v_original != "tie" else "tie"


def _clean(verdicts: Iterable[Verdict | None]) -> list[Verdict]:
    cleaned = [v for v in verdicts if v is not None]
    for v in cleaned:
        _check_verdict(v)
    return cleaned


def win_rate_excluding_ties(
    verdicts: Iterable[Verdict | None], model: Literal["A", "B"] = "A"
) -> float | None:
    """``wins / (wins + losses) × 100`` for ``model``; ``None`` if every verdict is a tie.

    ``None`` entries (unparseable judge outputs) are dropped. Report ``tie_rate`` alongside.
    """
    cleaned = _clean(verdicts)
    decided = [v for v in cleaned if v != "tie"]
    if not decided:
        return None
    return 100.0 * sum(v == model for v in decided) / len(decided)


def tie_rate(verdicts: Iterable[Verdict | None]) -> float | None:
    """Share of ties × 100 among the (non-``None``) verdicts; ``None`` if there are none."""
    cleaned = _clean(verdicts)
    if not cleaned:
        return None
    return 100.0 * sum(v == "tie" for v in cleaned) / len(cleaned)


def win_rate_ties_half(
    verdicts: Iterable[Verdict | None], model: Literal["A", "B"] = "A"
) -> float | None:
    """``(wins + 0.5 × ties) / all × 100`` (FastChat ``win_rate_adjusted``, AlpacaEval)."""
    cleaned = _clean(verdicts)
    if not cleaned:
        return None
    wins = sum(v == model for v in cleaned)
    ties = sum(v == "tie" for v in cleaned)
    return 100.0 * (wins + 0.5 * ties) / len(cleaned)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for the proportion k/n, as fractions clipped to [0, 1].

    For judge win rates use n = the number of non-tie verdicts. 15/20 → (0.531, 0.888).
    The normal quantile comes from the standard library (``statistics.NormalDist.inv_cdf``,
    docs.python.org/3/library/statistics.html#statistics.NormalDist.inv_cdf), the same value as
    ``scipy.stats.norm.ppf`` without importing scipy.stats (most of a second of CPU).
    """
    from statistics import NormalDist

    if n <= 0:
        raise ValueError("wilson_interval needs n > 0")
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n, got k={k}, n={n}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 (k = n) the bound is exactly 0 (1); floating point can miss it by 1e-17.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    paired_with: Sequence[float] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval, deterministic for a given ``seed``.

    Resamples items with replacement. With ``paired_with`` (the other arm, same items in the
    same order) it is a **paired** bootstrap of ``statistic(values) − statistic(paired_with)``
    using the same resampled indices for both arms.
    """
    data = np.asarray(values, dtype=float)
    n = data.size
    if n == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    other = None
    if paired_with is not None:
        other = np.asarray(paired_with, dtype=float)
        if other.shape != data.shape:
            raise ValueError("paired_with must have the same length as values")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, size=(n_resamples, n))
    stats = np.empty(n_resamples)
    for i, idx in enumerate(indices):
        stat = statistic(data[idx])
        if other is not None:
            stat -= statistic(other[idx])
        stats[i] = stat
    alpha = (1 - confidence) / 2
    low, high = np.percentile(stats, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def _pairs(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[Any, Any]]:
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items ({len(a)} vs {len(b)})")
    return list(zip(a, b, strict=True))


def percent_agreement(
    a: Sequence[Any], b: Sequence[Any], exclude_ties: bool = False
) -> float | None:
    """Share of items where two raters agree, × 100; ``None`` if no items remain.

    ``exclude_ties=True`` drops items where either rater said "tie" (MT-Bench setup S2);
    ``False`` counts tie as a label (S1).
    """
    pairs = _pairs(a, b)
    if exclude_ties:
        pairs = [(x, y) for x, y in pairs if x != "tie" and y != "tie"]
    if not pairs:
        return None
    return 100.0 * sum(x == y for x, y in pairs) / len(pairs)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's κ = (p_o − p_e) / (1 − p_e), p_e from each rater's label frequencies.

    NaN when p_e = 1 (both raters used one and the same label throughout).
    """
    pairs = _pairs(a, b)
    if not pairs:
        raise ValueError("cohen_kappa needs at least one item")
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    count_a, count_b = Counter(a), Counter(b)
    p_e = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if p_e == 1:
        return math.nan
    return (p_o - p_e) / (1 - p_e)


def kappa_label(kappa: float) -> str:
    """Landis & Koch (1977) label for a κ value."""
    if math.isnan(kappa):
        return "undefined"
    if kappa < 0:
        return "poor"
    for upper, label in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if kappa <= upper:
            return label
    return "almost perfect"


def sign_test_pvalue(wins: int, losses: int) -> float:
    """Two-sided sign test on non-tie verdicts: ``binomtest(wins, wins + losses, 0.5)``."""
    from scipy.stats import binomtest

    if wins + losses == 0:
        raise ValueError("sign test needs at least one non-tie verdict")
    return float(binomtest(wins, wins + losses, 0.5).pvalue)
