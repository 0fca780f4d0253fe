"""The judge stand-in: pairwise (``[[A]]``/``[[B]]``/``[[C]]``) and single-answer rating verdicts
from the answers' overlap with the reference and the context (:func:`judge`), with a tie margin and
a position bias per judge family."""

from __future__ import annotations

import math
import re
from collections import Counter

from utils.sandbox.messages import Prompt
from utils.sandbox.standins.behaviour import ModelBehaviour
from utils.sandbox.standins.reading import Request, read_request
from utils.sandbox.standins.text import content_words

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
