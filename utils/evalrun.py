"""Notebook 06's predictions and tables: every arm plus a larger model, two datasets, two prompt modes.

* :func:`serving_targets` maps each arm that can answer to the ID it is invoked with: the base
  model's own ID, each trained arm's serving ARN (``state["serving"][arm]`` when 05 serves every
  arm, else the single deployment 05 records as ``endpoint_arn`` for ``deploy_arm``), and the
  comparison model (Amazon Nova Pro by default: the seeds compared with Claude 3 / 3.5 Sonnet,
  both retired).
* :func:`docs_tasks` and :func:`tatqa_tasks` build zero-shot and few-shot prompts for the
  AWS-docs Q&A and TAT-QA; :func:`build_items` turns them into engine items
  (:func:`utils.engine.run_calls`), :func:`estimate` prices them first.
* :func:`score` adds per-answer metrics: SQuAD v1.1 EM/F1 for AWS-docs Q&A; for TAT-QA the
  official question-level score on the (answer, scale) pair parsed from the reply
  (:func:`utils.formats.parse_tatqa_completion`), plus string-level SQuAD F1 against
  :func:`utils.evaluation.tatqa_reference_text`.
* :func:`f1_table`, :func:`token_table`, :func:`per_question`, :func:`plot_token_histograms` and
  :data:`PUBLISHED` give the seeds' tables and plots.

The headline number is the **zero-shot SQuAD v1.1 token F1 on the AWS-docs Q&A test set**: it is
the task the arms were fine-tuned on. TAT-QA (official scorer) is reported beside it as the
seeds' published metric; our arms were not trained on TAT-QA, so it measures transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from utils import costs, engine, evaluation, formats, invoke, validate_dataset

BASE = "base"
COMPARISON = "comparison"
DOCS, TATQA = "aws_docs_qa", "tatqa"
MODES = ("zero_shot", "few_shot")


# ------------------------------------------------------------------------------ targets


def _arn(value: Any) -> str | None:
    """A serving entry as 05 may record it: an ARN string, or a dict holding one."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        for key in ("arn", "serving_arn", "endpoint_arn", "deployment_arn", "provisioned_model_arn"):
            if value.get(key):
                return str(value[key])
    return None


def serving_targets(values: Mapping[str, Any], student_id: str, comparison_id: str | None = None) -> dict[str, str]:
    """Arm name -> the ID to invoke, for every arm that can answer now.

    ``values`` is the workshop state's values. Reads ``serving`` (arm -> ARN or ``{"arn": ...}``)
    when present, else 05's single deployment (``endpoint_arn`` for ``deploy_arm``). A trained
    arm without a serving ARN is left out: a custom model answers only through a deployment or
    Provisioned Throughput (https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-use.html).
    """
    targets = {BASE: student_id}
    serving = values.get("serving") or {}
    for arm, entry in serving.items() if isinstance(serving, Mapping) else ():
        arn = _arn(entry)
        if arn and arm != BASE:
            targets[arm] = arn
    if len(targets) == 1 and values.get("endpoint_arn"):
        targets[values.get("deploy_arm") or "ft_n_3n"] = values["endpoint_arn"]
    order = ("base", "ft_n", "ft_4n", "ft_n_3n")
    ordered = {a: targets[a] for a in order if a in targets}
    ordered.update({a: t for a, t in targets.items() if a not in ordered})
    if comparison_id:
        ordered[COMPARISON] = comparison_id
    return ordered


def missing_arms(targets: Mapping[str, str], arms_state: Mapping[str, Any]) -> list[str]:
    """Trained arms 04 completed that have no serving ARN (so 06 cannot ask them)."""
    return [a for a, r in (arms_state or {}).items()
            if a != BASE and isinstance(r, Mapping) and r.get("status") == "Completed" and a not in targets]


# ------------------------------------------------------------------------------ tasks


def _few_shot_block(examples: Sequence[tuple[str, str]]) -> str:
    shots = "\n\n".join(f"Example question: {q}\nExample answer: {a}" for q, a in examples)
    return f"Here are examples of good answers:\n\n{shots}\n\nNow answer the new question.\n\n"


def with_examples(prompt: str, examples: Sequence[tuple[str, str]]) -> str:
    """The prompt with in-context examples placed after the context and before the question, so the
    documents or table still come first (our choice of placement)."""
    if not examples:
        return prompt
    head, sep, tail = prompt.rpartition("\n\nQuestion: ")
    return f"{head}\n\n{_few_shot_block(examples)}Question: {tail}" if sep else _few_shot_block(examples) + prompt


def docs_tasks(test_rows: Sequence[Mapping[str, str]], examples: Sequence[Mapping[str, str]], shots: int = 3) -> list[dict]:
    """AWS-docs Q&A tasks: the seed's RAG prompt, and the same with ``shots`` in-context examples.

    ``examples`` must not contain test questions (take them from the training pool).
    """
    test_questions = {row["question"] for row in test_rows}
    pool = [(e["question"], e["answer"]) for e in examples if e["question"] not in test_questions][:shots]
    tasks = []
    for row in test_rows:
        prompt = formats.rag_prompt(row["question"], row["document"])
        # The id comes from the question text, so it names the same question whatever the test split.
        tasks.append({"dataset": DOCS, "qid": f"docs-{engine.item_id(row['question'])[:10]}", "question": row["question"], "reference": row["answer"],
                      "prompts": {"zero_shot": prompt, "few_shot": with_examples(prompt, pool)}})
    return tasks


def tatqa_tasks(contexts: Sequence[Mapping[str, Any]], n: int, shots: int = 3) -> list[dict]:
    """TAT-QA tasks: the concise answer-plus-scale prompt; few-shot examples come from other contexts.

    Questions are taken one per context in turn (then the next round), so a small ``n`` still
    covers several tables and answer types.
    """
    rounds = max((len(c["questions"]) for c in contexts), default=0)
    order = [(ci, qi) for qi in range(rounds) for ci, c in enumerate(contexts) if qi < len(c["questions"])]
    chosen = order[:n] if n else order
    used = {ci for ci, _ in chosen}
    spare = [c for ci, c in enumerate(contexts) if ci not in used] or list(contexts[-1:])
    examples = [(q["question"], formats.tatqa_completion(q)) for c in spare for q in c["questions"]][:shots]
    tasks = []
    for ci, qi in chosen:
        ctx, qa = contexts[ci], contexts[ci]["questions"][qi]
        prompt = formats.tatqa_prompt(ctx, qa)
        tasks.append({"dataset": TATQA, "qid": qa["uid"], "question": qa["question"],
                      "reference": evaluation.tatqa_reference_text(qa),
                      "gold": {k: qa[k] for k in ("answer", "answer_type", "scale")},
                      "prompts": {"zero_shot": prompt, "few_shot": with_examples(prompt, examples)}})
    return tasks


def build_items(targets: Mapping[str, str], tasks: Sequence[dict], system: str | None, max_tokens: int,
                modes: Sequence[str] = MODES) -> list[dict]:
    """One engine item per (arm, task, mode); the id hashes everything that determines the answer."""
    items = []
    for arm, model_id in targets.items():
        for task in tasks:
            for mode in modes:
                prompt = task["prompts"][mode]
                items.append({
                    "id": engine.item_id(model_id, system, prompt, max_tokens), "arm": arm, "model_id": model_id,
                    "mode": mode, "prompt": prompt, **{k: v for k, v in task.items() if k != "prompts"},
                })
    return items


def estimate(items: Sequence[dict], price_keys: Mapping[str, str], max_tokens: int,
             price_overrides: Mapping[str, float] | None = None, region: str = costs.DEFAULT_REGION) -> costs.Estimate:
    """Upper-bound cost of the items still to call: prompt tokens plus ``max_tokens`` per answer.

    ``price_keys`` maps arm -> registry key priced (a custom model on demand is billed like its
    base model: https://aws.amazon.com/bedrock/pricing/).
    """
    per_arm: dict[str, list[int]] = {}
    for item in items:
        tokens = validate_dataset.estimate_tokens(item["prompt"])
        per_arm.setdefault(item["arm"], []).append(tokens)
    parts = [costs.estimate_inference(price_keys[arm], sum(t), max_tokens * len(t), price_overrides=price_overrides,
                                      region=region, description=f"{arm} ({price_keys[arm]})")
             for arm, t in per_arm.items()]
    if not parts:
        parts = [costs.estimate_inference(price_keys[BASE], 0, 0, price_overrides=price_overrides, region=region)]
    return costs.combine(parts, title="06 answers (every arm, both datasets, zero- and few-shot)")


def answer_call(runtime: Any, system: str | None, max_tokens: int) -> Callable[[dict], dict]:
    """The engine's per-item call: Converse, temperature 0, text and Bedrock's token usage."""

    def call(item: dict) -> dict:
        reply = invoke.converse(item["model_id"], item["prompt"], system=system, max_tokens=max_tokens, client=runtime)
        keep = {k: v for k, v in item.items() if k not in ("prompt", "id")}
        return {**keep, "prediction": reply.text, "output_tokens": reply.output_tokens,
                "input_tokens": reply.input_tokens}

    return call


# ------------------------------------------------------------------------------ scoring


def call_problems(rows: Sequence[dict], items: Sequence[dict], key: str = "arm",
                  providers: Mapping[str, str] | None = None) -> list[dict]:
    """One entry per ``key`` value (arm, judge) with failed calls: ``{"name", "failed", "calls", "line"}``.

    ``line`` says how many of its calls failed, the first error and its fix: an access error gets the
    preflight's fix for the model's provider (``providers``: name -> provider; e.g. Anthropic's use-case
    form), which a plain rerun does not. Failed calls are not kept as done, so a rerun calls only them.
    """
    from utils import models, preflight

    group_of = {i["id"]: i.get(key) for i in items}
    providers = dict(providers or {})
    for item in items:  # an arm's provider from its model ID (a custom model's ARN names none)
        if item.get(key) not in providers and item.get("model_id"):
            try:
                providers[item[key]] = models.get(item["model_id"]).provider
            except KeyError:
                providers[item[key]] = ""
    calls: dict[str, int] = {}
    errors: dict[str, list[str]] = {}
    for row in rows:
        name = row.get(key) or group_of.get(row.get("id"))
        if name is None:
            continue
        calls[name] = calls.get(name, 0) + 1
        if row.get("error"):
            errors.setdefault(name, []).append(str(row["error"]))
    out = []
    for name, failed in errors.items():
        first = failed[0]
        if "AccessDenied" in first:
            fix = (preflight.explain_access_denied(first, providers.get(name, ""))
                   + " (A rerun calls only the failed ones again.)")
        else:
            fix = "Rerun: only the failed calls run again, the answered ones are kept."
        outcome = "none answered" if len(failed) == calls[name] else "the results count the answered ones only"
        out.append({"name": name, "failed": len(failed), "calls": calls[name],
                    "line": f"✗ {key} {name}: {len(failed)} of {calls[name]} calls failed ({outcome}). "
                            f"First error: {first[:400]} Fix: {fix}"})
    return out


def score(rows: Sequence[dict]) -> pd.DataFrame:
    """Per-answer metrics (fractions in [0, 1]); error rows are dropped here and counted by the caller."""
    out = []
    for row in rows:
        if row.get("error"):
            continue
        r = dict(row)
        if r["dataset"] == DOCS:
            r["em"], r["f1"] = evaluation.squad_scores(r["prediction"], r["reference"])
            r["aws_blog_f1"] = evaluation.aws_blog_f1(r["prediction"], r["reference"]).f1
        else:
            answer, scale = formats.parse_tatqa_completion(r["prediction"])
            spans = [s.strip() for s in answer.split(";") if s.strip()]
            pred: Any = spans if len(spans) > 1 else (spans[0] if spans else "")
            r["pred_answer"], r["pred_scale"] = answer, scale
            r["em"], r["f1"] = evaluation.tatqa_question_score(r["gold"], pred, scale)
            r["string_f1"] = evaluation.squad_f1(r["prediction"], r["reference"])
        out.append(r)
    return pd.DataFrame(out)


def _arm_label(arm: str) -> str:
    from utils.arms import LABELS

    return LABELS.get(arm, arm)


def f1_table(scored: pd.DataFrame, dataset: str, mode: str = "zero_shot", baseline: str = BASE,
             n_resamples: int = 2000) -> pd.DataFrame:
    """F1 per arm (×100) with a 95 % bootstrap CI, and the difference from ``baseline`` in points and
    relative %, with a **paired** bootstrap 95 % CI on the difference (same questions resampled)."""
    part = scored[(scored["dataset"] == dataset) & (scored["mode"] == mode)]
    if part.empty:
        return pd.DataFrame()
    wide = part.pivot_table(index="qid", columns="arm", values="f1", aggfunc="first").dropna()
    base = wide[baseline].to_numpy() if baseline in wide else None
    rows = []
    for arm in [a for a in part["arm"].unique() if a in wide]:
        values = wide[arm].to_numpy()
        low, high = evaluation.bootstrap_ci(values, n_resamples=n_resamples, seed=0)
        row = {"arm": arm, "model": _arm_label(arm), "n": len(values), "f1": 100 * values.mean(),
               "ci_low": 100 * low, "ci_high": 100 * high}
        if base is not None and arm != baseline:
            d_low, d_high = evaluation.bootstrap_ci(values, n_resamples=n_resamples, seed=0, paired_with=base)
            diff = 100 * (values.mean() - base.mean())
            row.update({"vs_base_points": diff,
                        "vs_base_relative_pct": 100 * diff / (100 * base.mean()) if base.mean() else np.nan,
                        "diff_ci_low": 100 * d_low, "diff_ci_high": 100 * d_high})
        rows.append(row)
    return pd.DataFrame(rows).round(2)


def f1_metrics(scored: pd.DataFrame, mode: str = "zero_shot") -> list[dict]:
    """``metrics.f1``: one entry per arm and dataset (the zero-shot run), F1 and CI in 0-100."""
    out = []
    for dataset in (DOCS, TATQA):
        table = f1_table(scored, dataset, mode)
        for row in table.to_dict("records"):
            out.append({"arm": row["arm"], "dataset": dataset, "f1": float(row["f1"]), "ci_low": float(row["ci_low"]),
                        "ci_high": float(row["ci_high"]), "n": int(row["n"])})
    return out


def records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON-safe rows (NaN becomes None) for :func:`utils.report.record`."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in table.to_dict("records")]


def reduction_text(pct: float) -> str:
    """``35.0 % fewer tokens`` or, for a negative reduction, ``12.0 % more tokens``."""
    return f"{pct:.1f} % fewer tokens" if pct >= 0 else f"{-pct:.1f} % more tokens"


def token_table(scored: pd.DataFrame, dataset: str, mode: str = "zero_shot", baseline: str = BASE) -> pd.DataFrame:
    """The seed's token-usage table: mean, median, std (sample), min, max, and % reduced vs the baseline."""
    part = scored[(scored["dataset"] == dataset) & (scored["mode"] == mode)]
    rows = []
    base_mean = None
    for arm, group in part.groupby("arm", sort=False):
        stats = evaluation.token_count_stats(group["output_tokens"].astype(float).tolist())
        if arm == baseline:
            base_mean = stats["mean"]
        rows.append({"arm": arm, "model": _arm_label(arm), **{k: stats[k] for k in ("n", "mean", "median", "std", "min", "max")}})
    for row in rows:
        if base_mean and row["arm"] != baseline:
            pct = evaluation.percent_reduction(base_mean, row["mean"])
            row["reduced_pct"], row["reading"] = round(pct, 1), reduction_text(pct)
    return pd.DataFrame(rows).round(1)


def plot_token_histograms(scored: pd.DataFrame, dataset: str, mode: str = "zero_shot", title: str = ""):
    """Side-by-side histograms of output tokens per arm, on a shared x axis (as in the seed)."""
    import matplotlib.pyplot as plt

    part = scored[(scored["dataset"] == dataset) & (scored["mode"] == mode)]
    arms = list(part["arm"].unique())
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(3.2 * max(1, len(arms)), 2.8), sharex=True, sharey=True)
    axes = np.atleast_1d(axes)
    bins = np.histogram_bin_edges(part["output_tokens"].astype(float), bins=12) if len(part) else 10
    for ax, arm in zip(axes, arms, strict=False):
        ax.hist(part[part["arm"] == arm]["output_tokens"].astype(float), bins=bins, color="#4c72b0")
        ax.set_title(_arm_label(arm), fontsize=9)
        ax.set_xlabel("output tokens")
    axes[0].set_ylabel("answers")
    fig.suptitle(title or f"Output tokens per answer ({dataset}, {mode})", fontsize=10)
    fig.tight_layout()
    return fig


def per_question(scored: pd.DataFrame, dataset: str, mode: str = "zero_shot", baseline: str = BASE,
                 width: int = 90) -> pd.DataFrame:
    """Question, reference, each arm's answer (shortened) and F1 (×100)."""
    part = scored[(scored["dataset"] == dataset) & (scored["mode"] == mode)]
    rows = []
    for _qid, group in part.groupby("qid", sort=False):
        first = group.iloc[0]
        row = {"question": first["question"], "reference": first["reference"]}
        for r in group.itertuples():
            text = " ".join(str(r.prediction).split())
            row[f"{r.arm} answer"] = text if len(text) <= width else text[: width - 1] + "…"
            row[f"{r.arm} F1"] = round(100 * r.f1, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def highlight_wins(table: pd.DataFrame, baseline: str = BASE):
    """A Styler: each arm's F1 green where it beats the baseline's, red where it loses."""
    f1_cols = [c for c in table.columns if c.endswith(" F1") and c != f"{baseline} F1"]

    def colour(row: pd.Series) -> list[str]:
        base = row.get(f"{baseline} F1")
        out = []
        for col in row.index:
            if col in f1_cols and base is not None and row[col] > base:
                out.append("background-color: #d4edda")
            elif col in f1_cols and base is not None and row[col] < base:
                out.append("background-color: #f8d7da")
            else:
                out.append("")
        return out

    return table.style.apply(colour, axis=1).format(precision=1)


def wins_losses(table: pd.DataFrame, baseline: str = BASE) -> pd.DataFrame:
    """Per arm: questions where its F1 beats / ties / loses to the baseline's."""
    rows = []
    for col in [c for c in table.columns if c.endswith(" F1") and c != f"{baseline} F1"]:
        diff = table[col] - table[f"{baseline} F1"]
        rows.append({"arm": col[:-3], "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
                     "losses": int((diff < 0).sum())})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ published numbers

# The seeds' own numbers (AWS Machine Learning blog, 2024-25), quoted as published with the
# authors' metric. Different experiments: the TAT-QA rows are Claude 3 Haiku (fine-tuning data
# 10,000, test 3,572); the judge rows are Claude Instant on AWS-docs Q&A (343 test samples).
PUBLISHED = {
    "tatqa_f1": pd.DataFrame([
        {"model": "Claude 3 Haiku fine-tuned", "F1 (published)": 91.2},
        {"model": "Claude 3 Haiku base", "F1 (published)": 73.2},
        {"model": "Claude 3 Sonnet", "F1 (published)": 76.3},
        {"model": "Claude 3.5 Sonnet", "F1 (published)": 83.0},
    ]),
    "tatqa_tokens": pd.DataFrame([
        {"model": "Claude 3 Haiku base", "mean": 34, "median": 28, "std": 27, "min": 13, "max": 245},
        {"model": "Claude 3 Haiku fine-tuned", "mean": 22, "median": 17, "std": 14, "min": 13, "max": 179,
         "reduced (published)": "mean -35 %, median -39 %"},
    ]),
    "judges": pd.DataFrame([
        {"judge": "Claude 3 Sonnet", "comparison": "FT-N+3N vs base", "preferred % excl. ties (published)": 84.8},
        {"judge": "Claude 3 Sonnet", "comparison": "FT-N+3N vs FT-N", "preferred % excl. ties (published)": 72.3},
        {"judge": "Claude 3 Sonnet", "comparison": "FT-N+3N vs FT-4N", "preferred % excl. ties (published)": 32.3},
        {"judge": "Llama 3 70B", "comparison": "FT-N+3N vs base", "preferred % excl. ties (published)": 75.6},
        {"judge": "Llama 3 70B", "comparison": "FT-N+3N vs FT-N", "preferred % excl. ties (published)": 76.4},
    ]),
}
PUBLISHED_NOTE = ("Published 2024-25 results (AWS Machine Learning blog), the authors' own metric and retired models; "
                  "TAT-QA rows: Claude 3 Haiku; judge rows: Claude Instant on AWS-docs Q&A. Not comparable with our numbers.")
