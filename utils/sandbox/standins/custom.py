"""The custom (fine-tuned) model stand-in: retrieval over its training pairs plus the answer length
and style it learned (:func:`custom_answer`), as strongly as its training allows
(:func:`effective_epochs`, :func:`style_adherence`)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from statistics import median

from utils.sandbox.messages import Prompt
from utils.sandbox.standins.answers import (
    _SCALES,
    _cite,
    _lower_first,
    _relevant,
    _topic,
    _trim_words,
    _with_period,
    short_answer,
)
from utils.sandbox.standins.base import base_answer
from utils.sandbox.standins.behaviour import ModelBehaviour
from utils.sandbox.standins.reading import Request, Unit, read_request
from utils.sandbox.standins.text import content_words

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
