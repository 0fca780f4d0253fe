"""Pairwise LLM-as-a-judge and the human check for notebook 06.

* The judge prompt (:data:`JUDGE_SYSTEM`, :func:`judge_prompt`) follows FastChat's reference-guided
  pairwise prompt (``lm-sys/FastChat`` ``fastchat/llm_judge/data/judge_prompts.jsonl``,
  ``pair-v2``): the verdict is read from the text (``[[A]]``, ``[[B]]``, ``[[C]]`` for a tie)
  with :func:`utils.evaluation.parse_verdict`; no tool use is forced.
* Every pair is judged in both orders (:func:`judge_items`) and combined with
  :func:`utils.evaluation.combine_swapped` (MT-Bench's conservative rule: a win only when both
  orders agree). :func:`summarise` reports, per judge and comparison, the win rate of ``a``
  excluding ties with a Wilson 95 % interval, the tie rate, the position-disagreement rate, the
  mean answer length of each side and the parse failures (counted, never dropped silently).
* :class:`JudgeSpec` lists a judge's model IDs in order (inference profiles first). A
  ``ValidationException`` on one ID falls back to the next, and the row records the fallback.
  Only sampling parameters the model accepts are sent: ``temperature`` alone (Claude Sonnet 4.6
  rejects ``temperature`` together with ``topP``:
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html).
* The human check: :func:`human_pairs` (blind, random order and sides), :class:`LabelStore` (one
  JSON line per label, written as given, so a restarted kernel resumes), :func:`label_panel`
  (ipywidgets) and :func:`human_agreement` (percent agreement with and without ties, Cohen's kappa
  with its Landis-Koch label).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from utils import costs, engine, evaluation, models, validate_dataset

# The seed's comparisons (FT-N+3N vs base, vs FT-N, vs FT-4N) plus FT-N vs base: (a, b), a first.
COMPARISONS: tuple[tuple[str, str], ...] = (("ft_n_3n", "base"), ("ft_n_3n", "ft_n"), ("ft_n_3n", "ft_4n"), ("ft_n", "base"))
JUDGE_KEYS = ("claude-sonnet-4-6", "llama3-3-70b")
JUDGE_MAX_TOKENS = 512

JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. Your evaluation should consider correctness and helpfulness. You will "
    "be given a reference answer, assistant A's answer, and assistant B's answer. Your job is to evaluate which "
    "assistant's answer is better. Begin your evaluation by comparing both assistants' answers with the reference "
    "answer. Identify and correct any mistakes. Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length of the responses to "
    "influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. After "
    "providing your explanation, output your final verdict by strictly following this format: \"[[A]]\" if "
    "assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
)


def judge_prompt(question: str, reference: str, answer_a: str, answer_b: str) -> str:
    """The user turn of the pairwise judge call (FastChat ``pair-v2`` with a reference answer)."""
    return (
        f"[User Question]\n{question.strip()}\n\n"
        f"[The Start of Reference Answer]\n{reference.strip()}\n[The End of Reference Answer]\n\n"
        f"[The Start of Assistant A's Answer]\n{answer_a.strip()}\n[The End of Assistant A's Answer]\n\n"
        f"[The Start of Assistant B's Answer]\n{answer_b.strip()}\n[The End of Assistant B's Answer]\n\n"
        "Final verdict format: [[A]], [[B]] or [[C]]."
    )


# Sampling parameters per Converse body family: temperature only, which every judge accepts.
SAMPLING: dict[str, dict[str, float]] = {"anthropic": {"temperature": 0.0}, "llama": {"temperature": 0.0},
                                         "nova": {"temperature": 0.0}}


@dataclass(frozen=True)
class JudgeSpec:
    """One judge: a display name, its family, and the model IDs to try in order."""

    name: str
    family: str
    model_ids: tuple[str, ...]
    price_key: str = ""

    @property
    def sampling(self) -> dict[str, float]:
        return dict(SAMPLING.get(self.family, {"temperature": 0.0}))


def judge_spec(key: str, resolved: Mapping[str, str] | None = None) -> JudgeSpec:
    """A registry model as a judge: 01's resolved ID (if any), then each inference profile, then the in-region ID.

    ``resolved`` is 01's ``resolved_ids`` (keyed by role: ``judge_1``, ...); the IDs of this model are
    taken from it whatever their role (a registry key as the key also works).
    """
    spec = models.get(key)
    ids = [resolved[key]] if resolved and resolved.get(key) else []
    ids += [value for value in (resolved or {}).values()
            if isinstance(value, str) and (value == spec.model_id or value.endswith(f".{spec.model_id}"))]
    ids += [spec.profile_id(p) for p in spec.profile_prefixes]
    if not spec.requires_profile:
        ids.append(spec.model_id)
    return JudgeSpec(spec.name, spec.body, tuple(dict.fromkeys(ids)), spec.key)


def available_comparisons(arms: Iterable[str]) -> list[tuple[str, str]]:
    """The comparisons whose two arms both answered."""
    have = set(arms)
    return [(a, b) for a, b in COMPARISONS if a in have and b in have]


def judge_items(answers: pd.DataFrame, comparisons: Sequence[tuple[str, str]], judges: Sequence[JudgeSpec],
                max_pairs: int = 0) -> list[dict]:
    """Two engine items per (judge, comparison, question): order ``ab`` (a shown as A) and ``ba``.

    ``answers`` has columns qid, arm, question, reference, prediction (one dataset, one mode).
    ``max_pairs`` caps the questions per comparison (0: all).
    """
    wide = answers.pivot_table(index="qid", columns="arm", values="prediction", aggfunc="first")
    meta = answers.drop_duplicates("qid").set_index("qid")
    items = []
    for a, b in comparisons:
        qids = [q for q in wide.index if pd.notna(wide.at[q, a]) and pd.notna(wide.at[q, b])] if {a, b} <= set(wide) else []
        qids = qids[:max_pairs] if max_pairs else qids
        for judge in judges:
            for qid in qids:
                for order in ("ab", "ba"):
                    first, second = (a, b) if order == "ab" else (b, a)
                    prompt = judge_prompt(meta.at[qid, "question"], meta.at[qid, "reference"],
                                          wide.at[qid, first], wide.at[qid, second])
                    # The id names the pair and order too: identical answers give identical prompts in both orders.
                    items.append({"id": engine.item_id(judge.model_ids[0], JUDGE_SYSTEM, prompt, JUDGE_MAX_TOKENS,
                                                       qid, a, b, order),
                                  "judge": judge.name, "a": a, "b": b, "qid": qid, "order": order, "prompt": prompt,
                                  "len_a": len(str(wide.at[qid, a]).split()), "len_b": len(str(wide.at[qid, b]).split())})
    return items


def estimate(items: Sequence[dict], judges: Sequence[JudgeSpec], price_overrides: Mapping[str, float] | None = None,
             region: str = costs.DEFAULT_REGION) -> costs.Estimate:
    """Upper-bound cost of the judge calls still to make (prompt tokens plus the verdict limit)."""
    parts = []
    for judge in judges:
        mine = [i for i in items if i["judge"] == judge.name]
        tokens = sum(validate_dataset.estimate_tokens(JUDGE_SYSTEM + i["prompt"]) for i in mine)
        parts.append(costs.estimate_inference(judge.price_key, tokens, JUDGE_MAX_TOKENS * len(mine),
                                              price_overrides=price_overrides, region=region,
                                              description=f"judge {judge.name}"))
    return costs.combine(parts, title="06 pairwise judges (both orders)")


def judge_call(runtime: Any, judges: Sequence[JudgeSpec]) -> Callable[[dict], dict]:
    """The engine's per-item call: Converse with the judge's first accepted model ID.

    A ``ValidationException`` (an ID the account or Region does not accept, or a parameter the
    model refuses) moves on to the judge's next model ID; every fallback is recorded in the row.
    Other errors propagate to the engine (an error row, retried on the next run).
    """
    by_name = {j.name: j for j in judges}

    def call(item: dict) -> dict:
        judge = by_name[item["judge"]]
        fallbacks: list[str] = []
        last: Exception | None = None
        for model_id in judge.model_ids:
            try:
                response = runtime.converse(
                    modelId=model_id, system=[{"text": JUDGE_SYSTEM}],
                    messages=[{"role": "user", "content": [{"text": item["prompt"]}]}],
                    inferenceConfig={"maxTokens": JUDGE_MAX_TOKENS, **judge.sampling},
                )
            except Exception as exc:  # noqa: BLE001 - only ValidationException falls back
                if engine.error_code(exc) != "ValidationException":
                    raise
                fallbacks.append(f"{model_id}: {exc}")
                last = exc
                continue
            text = "".join(b.get("text", "") for b in response["output"]["message"]["content"])
            keep = {k: v for k, v in item.items() if k not in ("prompt", "id")}
            return {**keep, "model_id": model_id, "text": text, "verdict": evaluation.parse_verdict(text),
                    "fallbacks": fallbacks, "output_tokens": (response.get("usage") or {}).get("outputTokens")}
        raise RuntimeError(f"judge {judge.name}: every model ID was refused ({'; '.join(fallbacks)})") from last

    return call


def fallback_report(rows: Iterable[dict]) -> pd.DataFrame:
    """Calls that fell back to a judge's next model ID, and why."""
    out = [{"judge": r["judge"], "used": r["model_id"], "refused": "; ".join(r["fallbacks"])}
           for r in rows if not r.get("error") and r.get("fallbacks")]
    return pd.DataFrame(out).drop_duplicates() if out else pd.DataFrame(columns=["judge", "used", "refused"])


def judge_problems(rows: Iterable[dict], items: Iterable[dict], judges: Sequence[JudgeSpec]) -> list[dict]:
    """One entry per judge with failed calls: ``{"judge", "failed", "calls", "line"}``
    (:func:`utils.evalrun.call_problems`). A judge that answered none of its calls has no verdicts:
    its table row is empty, and its line says why."""
    from utils import evalrun

    providers = {j.name: models.get(j.price_key).provider for j in judges if j.price_key}
    return [{"judge": p["name"], **{k: p[k] for k in ("failed", "calls", "line")}}
            for p in evalrun.call_problems(rows, items, "judge", providers)]


def judges_step(problems: Sequence[dict], asked: bool) -> dict:
    """06's ``step_judges`` record: not done when a judge answered none of its calls (the runner then
    reports 06 as ``skipped-step`` instead of ``ok``)."""
    silent = [p["judge"] for p in problems if p["failed"] == p["calls"]]
    detail = (f"no verdicts from {', '.join(silent)} (every call failed; see 06's judge messages)" if silent
              else "every judge answered" + (f" ({sum(p['failed'] for p in problems)} calls failed)" if problems else ""))
    return {"asked": asked, "done": asked and not silent, "detail": detail}


def combined_verdicts(rows: Iterable[dict], items: Iterable[dict] = ()) -> pd.DataFrame:
    """One row per (judge, comparison, question): the two raw verdicts and the combined one.

    ``combined`` is in the comparison's terms ("A" = arm a wins, "B" = arm b wins, "tie"), or
    ``None`` when either order failed to parse or errored. Pass the engine ``items`` so error rows
    (which carry only the id) are counted under their judge and comparison.
    """
    meta = {i["id"]: {k: v for k, v in i.items() if k != "prompt"} for i in items}
    calls: dict[tuple, dict[str, dict]] = {}
    for r in ({**meta.get(row.get("id"), {}), **row} for row in rows):
        if "judge" in r and "order" in r:
            calls.setdefault((r["judge"], r["a"], r["b"], r["qid"]), {})[r["order"]] = r
    out = []
    for (judge, a, b, qid), pair in calls.items():
        ab, ba = pair.get("ab", {}), pair.get("ba", {})
        v1 = None if ab.get("error") else ab.get("verdict")
        v2 = None if ba.get("error") else ba.get("verdict")
        parse_failures = sum(1 for r in (ab, ba) if r and not r.get("error") and r.get("verdict") is None)
        errors = sum(1 for r in (ab, ba) if not r or r.get("error"))
        combined = evaluation.combine_swapped(v1, v2) if v1 and v2 else None
        disagree = (v1 != evaluation.unswap(v2)) if v1 and v2 else None
        out.append({"judge": judge, "a": a, "b": b, "qid": qid, "v_ab": v1, "v_ba": v2, "combined": combined,
                    "position_disagree": disagree, "parse_failures": parse_failures, "errors": errors,
                    "len_a": (ab or ba).get("len_a"), "len_b": (ab or ba).get("len_b")})
    return pd.DataFrame(out)


def summarise(verdicts: pd.DataFrame) -> list[dict]:
    """Per judge and comparison: win rate of ``a`` excluding ties (%), Wilson 95 % (%), tie rate (%),
    position disagreement (%), parse failures, n combined pairs, mean answer length (words) per side."""
    out = []
    if verdicts.empty:
        return out
    for (judge, a, b), group in verdicts.groupby(["judge", "a", "b"], sort=False):
        combined = [v for v in group["combined"] if isinstance(v, str)]
        wins = sum(v == "A" for v in combined)
        decided = sum(v != "tie" for v in combined)
        low, high = evaluation.wilson_interval(wins, decided) if decided else (None, None)
        disagree = [bool(d) for d in group["position_disagree"] if d is not None and pd.notna(d)]
        out.append({
            "judge": judge, "a": a, "b": b,
            "win_rate": evaluation.win_rate_excluding_ties(combined, "A"),
            "wilson_low": None if low is None else 100 * low, "wilson_high": None if high is None else 100 * high,
            "tie_rate": evaluation.tie_rate(combined),
            "position_disagreement": 100 * sum(disagree) / len(disagree) if disagree else None,
            "parse_failures": int(group["parse_failures"].sum()), "n": len(combined),
            "errors": int(group["errors"].sum()),
            "mean_len_a": float(group["len_a"].mean()), "mean_len_b": float(group["len_b"].mean()),
        })
    return out


JUDGE_METRIC_KEYS = ("judge", "a", "b", "win_rate", "wilson_low", "wilson_high", "tie_rate",
                     "position_disagreement", "parse_failures", "n")


def judge_metrics(summary: Sequence[dict]) -> list[dict]:
    """``metrics.judges``: exactly the fixed keys, rounded."""
    return [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items() if k in JUDGE_METRIC_KEYS}
            for row in summary]


def plot_preferences(summary: Sequence[dict], labels: Mapping[str, str] | None = None, title: str = ""):
    """The seed's chart: % preference for ``a`` (ties excluded) per comparison, one bar per judge,
    Wilson 95 % interval as error bars; the 50 % line marks no preference."""
    import matplotlib.pyplot as plt
    import numpy as np

    labels = labels or {}
    comps = list(dict.fromkeys((r["a"], r["b"]) for r in summary))
    judges = list(dict.fromkeys(r["judge"] for r in summary))
    fig, ax = plt.subplots(figsize=(1.8 + 1.9 * max(1, len(comps)), 3.2))
    width = 0.8 / max(1, len(judges))
    for j, judge in enumerate(judges):
        xs, ys, errs = [], [], [[], []]
        for c, (a, b) in enumerate(comps):
            row = next((r for r in summary if r["judge"] == judge and (r["a"], r["b"]) == (a, b)), None)
            if row and row["win_rate"] is not None:
                xs.append(c + j * width)
                ys.append(row["win_rate"])
                errs[0].append(row["win_rate"] - row["wilson_low"])
                errs[1].append(row["wilson_high"] - row["win_rate"])
        ax.bar(xs, ys, width, yerr=np.array(errs) if xs else None, capsize=3, label=judge)
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_xticks([c + width * (len(judges) - 1) / 2 for c in range(len(comps))])
    ax.set_xticklabels([f"{labels.get(a, a)}\nvs {labels.get(b, b)}" for a, b in comps], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% preferred (ties excluded)")
    ax.legend(fontsize=8)
    ax.set_title(title or "Pairwise preference for the first model", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ human check

HUMAN_LABELS = ("A", "B", "tie")


def human_pairs(answers: pd.DataFrame, a: str, b: str, n: int = 20, seed: int = 0) -> list[dict]:
    """Up to ``n`` blind pairs of arms ``a`` and ``b``: random question order, random sides.

    Each pair carries ``pair_id`` (question + arms), what is shown (question, reference,
    ``answer_A``, ``answer_B``) and, hidden from the rater, which arm is shown as A.
    """
    wide = answers.pivot_table(index="qid", columns="arm", values="prediction", aggfunc="first")
    if not {a, b} <= set(wide):
        return []
    meta = answers.drop_duplicates("qid").set_index("qid")
    qids = [q for q in wide.index if pd.notna(wide.at[q, a]) and pd.notna(wide.at[q, b])]
    rng = random.Random(seed)
    rng.shuffle(qids)
    pairs = []
    for qid in qids[:n]:
        a_first = rng.random() < 0.5
        first, second = (a, b) if a_first else (b, a)
        pairs.append({"pair_id": f"{qid}|{a}|{b}", "qid": qid, "question": meta.at[qid, "question"],
                      "reference": meta.at[qid, "reference"], "answer_A": wide.at[qid, first],
                      "answer_B": wide.at[qid, second], "shown_as_A": first, "a": a, "b": b})
    return pairs


@dataclass
class LabelStore:
    """Human labels in a JSONL file, appended as they are given; the last label per pair wins.

    Each line keeps the texts that were shown, so a label is only used for the same answers.
    """

    path: Path
    labels: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
                if isinstance(row, dict) and row.get("label") in HUMAN_LABELS and row.get("pair_id"):
                    self.labels[row["pair_id"]] = row

    def add(self, pair: Mapping[str, Any], label: str, rater: str = "") -> None:
        if label not in HUMAN_LABELS:
            raise ValueError(f"label must be one of {HUMAN_LABELS}, got {label!r}")
        row = {"pair_id": pair["pair_id"], "label": label, "question": pair["question"],
               "answer_A": pair["answer_A"], "answer_B": pair["answer_B"], "rater": rater,
               "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
        self.labels[pair["pair_id"]] = row

    def label_for(self, pair: Mapping[str, Any]) -> str | None:
        """The label for this pair, only if it was given for the very same texts."""
        row = self.labels.get(pair["pair_id"])
        if row and row.get("answer_A") == pair["answer_A"] and row.get("answer_B") == pair["answer_B"]:
            return row["label"]
        return None

    def stale(self, pairs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Pairs with a label given for different answer texts (the models answered differently since)."""
        return [p["pair_id"] for p in pairs if p["pair_id"] in self.labels and self.label_for(p) is None]


def next_unlabelled(pairs: Sequence[Mapping[str, Any]], store: LabelStore) -> int:
    """Index of the first pair without a label (len(pairs) when all are done)."""
    return next((i for i, p in enumerate(pairs) if store.label_for(p) is None), len(pairs))


def label_panel(pairs: Sequence[Mapping[str, Any]], store: LabelStore, rater: str = ""):
    """An ipywidgets panel: one blind pair at a time, buttons A / B / Tie (Tab then Enter or Space
    presses the focused button), a progress bar; each label is written to the store as it is
    given, and a restarted kernel resumes at the first unlabelled pair."""
    import html

    import ipywidgets as w

    view = w.HTML()
    progress = w.IntProgress(min=0, max=len(pairs))
    status = w.Label()
    buttons = [w.Button(description=text, tooltip=f"label: {label}") for label, text in
               (("A", "A is better"), ("B", "B is better"), ("tie", "Tie"))]

    def show() -> None:
        index = next_unlabelled(pairs, store)
        done = sum(store.label_for(p) is not None for p in pairs)
        progress.value, status.value = done, f"{done} / {len(pairs)} labelled ({store.path})"
        if index >= len(pairs):
            view.value = "<b>All pairs are labelled.</b>"
            for button in buttons:
                button.disabled = True
            return
        p = pairs[index]
        view.value = (f"<p><b>Pair {index + 1}.</b> {html.escape(p['question'])}</p>"
                      f"<p><i>Reference:</i> {html.escape(str(p['reference']))}</p>"
                      f"<p><b>A:</b> {html.escape(str(p['answer_A']))}</p><p><b>B:</b> {html.escape(str(p['answer_B']))}</p>")

    def on_click(label: str):
        def handler(_button) -> None:
            index = next_unlabelled(pairs, store)
            if index < len(pairs):
                store.add(pairs[index], label, rater)
            show()
        return handler

    for button, label in zip(buttons, HUMAN_LABELS, strict=True):
        button.on_click(on_click(label))
    show()
    return w.VBox([view, w.HBox(buttons), w.HBox([progress, status])])


def _in_comparison_terms(label: str, shown_as_a: str, a: str) -> str:
    """A human label on the displayed sides -> "A" (arm a better), "B" (arm b better) or "tie"."""
    if label == "tie":
        return "tie"
    return label if shown_as_a == a else evaluation.unswap(label)


def human_agreement(pairs: Sequence[Mapping[str, Any]], store: LabelStore, verdicts: pd.DataFrame) -> list[dict]:
    """Per judge: agreement with the human labels on the same pairs (combined judge verdicts).

    percent agreement with ties as a label and without the items either side called a tie,
    Cohen's kappa and its Landis-Koch label, and n (labelled pairs the judge also decided).
    """
    out = []
    if verdicts.empty:
        return out
    for judge, group in verdicts.groupby("judge", sort=False):
        human, machine = [], []
        for p in pairs:
            label = store.label_for(p)
            row = group[(group["qid"] == p["qid"]) & (group["a"] == p["a"]) & (group["b"] == p["b"])]
            if label is None or row.empty or not isinstance(row.iloc[0]["combined"], str):
                continue
            human.append(_in_comparison_terms(label, p["shown_as_A"], p["a"]))
            machine.append(row.iloc[0]["combined"])
        if not human:
            continue
        kappa = evaluation.cohen_kappa(human, machine)
        out.append({"judge": judge, "percent_agreement": evaluation.percent_agreement(human, machine),
                    "percent_agreement_no_ties": evaluation.percent_agreement(human, machine, exclude_ties=True),
                    "kappa": None if kappa != kappa else round(kappa, 3), "kappa_label": evaluation.kappa_label(kappa),
                    "n": len(human)})
    return out


def human_metrics(agreement: Sequence[dict]) -> list[dict]:
    """``metrics.human``: exactly judge, percent_agreement, kappa, n."""
    return [{k: row[k] for k in ("judge", "percent_agreement", "kappa", "n")} for row in agreement]
