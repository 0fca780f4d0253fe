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

One module per stand-in family, plus the helpers they share (every name below is also
importable from this package, as ``utils.sandbox.standins.<name>``):

- :mod:`.behaviour` -- :class:`ModelBehaviour`, what a stand-in knows about its model;
- :mod:`.text` -- tokens, stop words, stems and content words;
- :mod:`.reading` -- reading a prompt into its question and context units, and ranking them;
- :mod:`.answers` -- shaping an answer: stop sequences, ``max_tokens``, citations, short spans;
- :mod:`.base` -- the base model (extractive; length instructions; model size);
- :mod:`.teacher` -- JSON records from the context (synthetic data);
- :mod:`.judge` -- the pairwise and rating judge;
- :mod:`.custom` -- the custom (fine-tuned) model: retrieval plus learned style.
"""

from __future__ import annotations

from utils.sandbox.messages import Completion, Prompt  # shared types (also imported from here)
from utils.sandbox.standins.answers import _finish, short_answer
from utils.sandbox.standins.base import (
    LARGE_BASE_MODELS,
    LARGE_MODEL_SECOND_SENTENCE,
    SMALL_MODEL_READS,
    Brevity,
    base_answer,
    brevity,
    brief_answer,
    is_large_model,
    line_format_answer,
)
from utils.sandbox.standins.behaviour import ModelBehaviour
from utils.sandbox.standins.custom import (
    Style,
    TrainedIndex,
    build_index,
    custom_answer,
    effective_epochs,
    learn_style,
    memorization_threshold,
    nearest_training_pair,
    structured_answer,
    style_adherence,
)
from utils.sandbox.standins.judge import (
    JUDGE_POSITION_BIAS,
    JUDGE_STYLE,
    JUDGE_TIE_MARGIN,
    POSITION_BIAS_ENV,
    is_judge_prompt,
    judge,
    judge_family,
    judge_score,
    position_bias,
)
from utils.sandbox.standins.reading import Request, Row, Unit, rank_units, read_request
from utils.sandbox.standins.teacher import json_records, json_request, question_for, unit_topic
from utils.sandbox.standins.text import STOPWORDS, content_words, count_tokens, prompt_tokens, words

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


# Every public name of the stand-ins, importable from the package as before it was split.
__all__ = [
    "base_answer", "Brevity", "brevity", "brief_answer", "build_index", "Completion", "content_words",
    "count_tokens", "custom_answer", "effective_epochs", "generate", "is_judge_prompt", "is_large_model",
    "json_records", "json_request", "judge", "judge_family", "JUDGE_POSITION_BIAS", "judge_score",
    "JUDGE_STYLE", "JUDGE_TIE_MARGIN", "LARGE_BASE_MODELS", "LARGE_MODEL_SECOND_SENTENCE", "learn_style",
    "line_format_answer", "malformed", "memorization_threshold", "ModelBehaviour",
    "nearest_training_pair", "position_bias", "POSITION_BIAS_ENV", "Prompt", "prompt_tokens",
    "question_for", "rank_units", "read_request", "Request", "Row", "short_answer", "SMALL_MODEL_READS",
    "STOPWORDS", "structured_answer", "Style", "style_adherence", "TrainedIndex", "Unit", "unit_topic",
    "words",
]
