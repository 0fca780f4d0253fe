"""Headline numbers: recorded by notebooks, collected by the runner, rendered as a report.

A notebook calls :func:`record` for each number worth reporting. It shows the
value to the reader and emits a typed display output (MIME type
:data:`RECORD_MIME`) that :func:`collect` reads back from the executed notebook.
This is the idea of recommenders' ``store_metadata``, with nothing extra to install.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

RECORD_MIME = "application/vnd.bedrock-workshop.record+json"
SANDBOX_NOTICE = (
    "Sandbox numbers: these come from the offline sandbox's deterministic stand-in models, "
    "not from real Bedrock models. They show that the pipeline works, not how good a model is."
)


def _jsonable(value: Any) -> Any:
    """Plain JSON values (numpy scalars, DataFrames and tuples converted)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        try:  # pandas.DataFrame: columns kept in order (JSON objects get their keys sorted on save)
            split = value.to_dict(orient="split")
            return {"columns": [str(c) for c in split["columns"]], "data": _jsonable(split["data"])}
        except TypeError:
            return value.to_dict()
    if hasattr(value, "item") and callable(value.item):
        return value.item()  # numpy scalar
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value: Any, *, label: str = "", show: bool = True) -> None:
    """Record a headline number (or small table) for the run report, and show it."""
    payload = {"name": name, "value": _jsonable(value), "label": label or name}
    text = f"{plain(payload['label'])}: {_short(payload['value'])}"  # what the reader sees; the record is in the MIME part
    try:
        from IPython.display import display
    except ImportError:  # plain Python: nothing to collect, just print
        print(text)
        return
    if show:
        display({RECORD_MIME: payload, "text/plain": text}, raw=True)
    else:
        display({RECORD_MIME: payload}, raw=True)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def collect(notebook_path: str | Path) -> dict[str, Any]:
    """Every value recorded in an executed notebook, by name (last write wins)."""
    notebook = json.loads(Path(notebook_path).read_text())
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(RECORD_MIME)
            if payload:
                found[payload["name"]] = payload["value"]
    return found


def rows(table: Any) -> list[dict[str, Any]]:
    """A recorded table (``{"columns", "data"}``, or a list of dicts) as a list of row dicts."""
    if isinstance(table, dict) and "columns" in table and "data" in table:
        return [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    return list(table or [])


# ---- plain-language labels -----------------------------------------------------------------

LABELS = {
    "arm": "Arm", "status": "Status", "records": "Training records", "epochs": "Epochs",
    "final_training_loss": "Final training loss", "best_validation_loss": "Best validation loss",
    "failure_message": "Failure message", "fix": "Likely fix", "job_name": "Job name",
    "model": "Model", "n": "Answers", "mean": "Mean", "median": "Median", "std": "Std. dev.",
    "min": "Min", "max": "Max", "reduced_pct": "Reduction vs base (%)", "reading": "Reading",
    "token_f1": "Token F1", "f1": "Token F1", "dataset": "Dataset", "mode": "Mode",
    "notebook": "Notebook", "seconds": "Seconds", "detail": "Detail", "metric": "Metric", "value": "Value",
    "parameter": "Parameter", "resource": "Resource", "best": "Best", "model ID": "Model ID",
    "ci_low": "95% CI low", "ci_high": "95% CI high", "wilson_low": "95% CI low", "wilson_high": "95% CI high",
    "win_rate": "Win rate of A (%)", "tie_rate": "Ties (%)", "position_disagreement": "Order changed verdict (%)",
    "percent_agreement": "Agreement (%)", "kappa": "Cohen's kappa", "a": "Answer A from", "b": "Answer B from",
    "parse_failures": "Unparsed verdicts",
}
# Columns in reading order (notebook outputs come back with their keys sorted); others follow as found.
COLUMN_ORDER = ("arm", "model", "judge", "a", "b", "dataset", "mode", "n", "token_f1", "f1", "win_rate", "ci_low", "ci_high",
                "wilson_low", "wilson_high", "tie_rate", "position_disagreement", "parse_failures", "kappa",
                "percent_agreement", "mean", "median", "std", "min", "max", "reduced_pct", "reading")
VALUE_NAMES = {"aws_docs_qa": "AWS docs Q&A", "tatqa": "TAT-QA", "comparison": "Comparison model",
               "zero_shot": "zero-shot", "few_shot": "few-shot"}
ARM_NAMES = {"base": "Base model (no fine-tuning)", "ft_n": "FT-N (N originals)", "ft_4n": "FT-4N (4N originals)",
             "ft_n_3n": "FT-N+3N (N originals + 3N synthetic)"}


def plain(key: Any) -> str:
    """A column or metric key as a reader's heading: ``best_validation_loss`` -> ``Best validation loss``."""
    text = str(key)
    if text in LABELS:
        return LABELS[text]
    return (text.replace("_pct", " (%)").replace("_usd", " (USD)").replace("_", " ").strip().capitalize()
            if "_" in text or text.islower() else text)


# ---- HTML report ---------------------------------------------------------------------------

CODE_COLUMNS = ("notebook", "where", "parameter", "resource", "model ID")


def _table(table: Any) -> str:
    """An HTML table with plain-language headings; names the reader types (parameters, notebooks) as code."""
    records = rows(table)
    if not records:
        return "<p><em>none</em></p>"
    found = list(dict.fromkeys(key for row in records for key in row))
    columns = [c for c in COLUMN_ORDER if c in found] + [c for c in found if c not in COLUMN_ORDER]
    head = "".join(f"<th>{html.escape(plain(c))}</th>" for c in columns)

    whole = {c for c in columns if all(not isinstance(r.get(c), float) or r[c].is_integer() for r in records)}

    def cell(column: str, value: Any) -> str:  # a column of whole numbers reads as integers, not 25.00
        text = html.escape(str(int(value)) if column in whole and isinstance(value, float) else _cell(value))
        return f"<td><code>{text}</code></td>" if column in CODE_COLUMNS and text else f"<td>{text}</td>"

    body = "".join("<tr>" + "".join(cell(c, row.get(c)) for c in columns) + "</tr>" for row in records)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str) and (value in ARM_NAMES or value in VALUE_NAMES):
        return ARM_NAMES.get(value) or VALUE_NAMES[value]
    return "" if value is None else str(value)


def _loss_plot(curve: dict[str, list[float]]) -> str:
    """A PNG (base64 <img>) of recorded training/validation loss, or '' without data."""
    if not curve or not curve.get("training_loss"):
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(curve.get("step") or list(range(len(curve["training_loss"]))), curve["training_loss"], label="training set")
    if curve.get("validation_loss"):
        ax.plot(curve.get("validation_step", []), curve["validation_loss"], "o-", label="validation set")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss while training {ARM_NAMES.get(curve.get('arm', ''), curve.get('arm', ''))}".strip())
    ax.legend(title="loss on")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return f'<img alt="loss curve" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"/>'


ARM_ORDER = ("base", "ft_n", "ft_4n", "ft_n_3n")
ARM_COLUMNS = ("arm", "status", "records", "final_training_loss", "best_validation_loss")


def _arm_rows(arms: dict[str, Any]) -> list[dict[str, Any]]:
    """metrics.arms in the experiment's order (JSON sorted the keys), headline columns only."""
    order = [a for a in ARM_ORDER if a in arms] + sorted(set(arms) - set(ARM_ORDER))
    return [{"arm": a, **{c: arms[a].get(c) for c in ARM_COLUMNS[1:]}} for a in order]


SWEEP_COLUMNS = ("arm", "status", "records", "final_training_loss", "best_validation_loss")


def _sweep_table(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison rows, grid values first, the best row marked."""
    best = sweep.get("best")
    axes = list(sweep.get("grid", {}))
    return [{**{a: row.get(a) for a in axes}, **{c: row.get(c) for c in SWEEP_COLUMNS}, "best": "★" if row == best else ""}
            for row in sweep.get("rows", [])]


def sweep_text(sweep: dict[str, Any]) -> str:
    """The sweep's comparison as plain text (the runner prints it), with the best point."""
    table = _sweep_table(sweep)
    if not table:
        return "sweep: no results"
    columns = list(table[0])
    cells = [[_cell(row.get(c)) if not isinstance(row.get(c), float) else f"{row[c]:.4g}" for c in columns] for row in table]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    best = sweep.get("best")
    axes = list(sweep.get("grid", {}))
    lines.append("best validation loss: " + (
        f"{best['best_validation_loss']:.4g} at " + " ".join(f"{a}={best[a]}" for a in axes) + f" ({best['arm']})"
        if best else "none (no point produced a validation loss)"))
    return "\n".join(lines)


def _sweep_plot(sweep: dict[str, Any]) -> str:
    """A PNG (base64 <img>) of each grid point's best validation loss per arm, or '' without data."""
    rows = [r for r in sweep.get("rows", []) if isinstance(r.get("best_validation_loss"), int | float)]
    if not rows:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = list(sweep.get("grid", {}))
    labels = list(dict.fromkeys("\n".join(f"{a}={r[a]}" for a in axes) for r in sweep.get("rows", [])))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels)), 3.6))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        points = [(labels.index("\n".join(f"{a}={r[a]}" for a in axes)), r["best_validation_loss"]) for r in rows if r["arm"] == arm]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=ARM_NAMES.get(arm, arm))
    best = sweep.get("best")
    if best:
        x = labels.index("\n".join(f"{a}={best[a]}" for a in axes))
        ax.plot([x], [best["best_validation_loss"]], marker="*", ms=16, ls="none", color="gold", mec="black", label="best")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlabel("grid point")
    ax.set_ylabel("best validation loss")
    ax.set_title("Hyperparameter sweep: lowest validation loss per run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return f'<img alt="sweep: best validation loss" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"/>'


def _sweep_section(sweep: dict[str, Any] | None) -> str:
    if not sweep:
        return ""
    command = html.escape(f"python -m utils.runner --sweep '{sweep.get('command', '')}'")
    best = sweep.get("best")
    verdict = (f"<p>Lowest validation loss: <strong>{best['best_validation_loss']:.4g}</strong> at "
               + html.escape(" ".join(f"{a}={best[a]}" for a in sweep.get("grid", {}))) + ".</p>") if best else ""
    return (f"<h2>Hyperparameter sweep</h2><p><code>{command}</code>, arms <code>{html.escape(str(sweep.get('arms')))}</code>: "
            f"one run of <code>04_fine_tuning</code> per grid point.</p>{verdict}{_table(_sweep_table(sweep))}{_sweep_plot(sweep)}")
def _cleanup_section(truth: dict[str, Any]) -> str:
    """The audit's verdict: "Nothing billable remains" only when an audit ran and found nothing."""
    remaining = truth.get("remaining", [])
    by = html.escape(str(truth.get("by", "")))
    if not truth.get("audited"):
        reason = html.escape(str(truth.get("error") or "the run ended before any audit"))
        return (f'<p class="notice"><strong>Not audited</strong> ({reason}): resources of this run may still '
                "exist and bill. Run <code>07_cleanup</code>.</p>")
    if not remaining:
        return f"<p>Nothing billable remains (audit by <code>{by}</code>).</p>"
    return (f'<p class="notice"><strong>{len(remaining)} resource(s) remain</strong> (audit by <code>{by}</code>). '
            "Run <code>07_cleanup</code> to delete them.</p>" + _table([{"resource": r} for r in remaining]))


KEY_PARAMETERS = ("workshop_id", "profile_name", "student", "region", "arms", "n_originals", "epochs", "learning_rate",
                  "use_synthetic", "teacher", "customization_type", "max_examples", "confirm_spend")
MODEL_KEYS = ("base_model", "teacher", "comparison_model", "judge_models", "deployed_model")


def _parameters_section(results: dict[str, Any]) -> str:
    """The parameters the run used (defaults merged with overrides) and the model IDs."""
    params = results.get("parameters") or {}
    metrics = results.get("metrics", {})
    models = {k: v for k, v in (metrics.get("models") or {}).items() if v}
    models.update({k: params[k] for k in MODEL_KEYS if params.get(k) and k not in models})
    model_rows = [{"role": plain(k), "model ID": ", ".join(map(str, v)) if isinstance(v, list) else v}
                  for k, v in models.items()]
    param_rows = [{"parameter": k, "value": json.dumps(v) if isinstance(v, dict | list) else v}
                  for k, v in sorted(params.items())]
    key_rows = [row for row in param_rows if row["parameter"] in KEY_PARAMETERS]
    return (f"<h2>Models used</h2>{_table(model_rows)}"
            f"<h2>Parameters</h2><p>The ones that shape the experiment:</p>{_table(key_rows)}"
            f"<details><summary>All {len(param_rows)} parameters (notebook defaults with this run's overrides)"
            f"</summary>{_table(param_rows)}</details>")


def _arms_section(metrics: dict[str, Any], epochs: Any) -> str:
    arms = metrics.get("arms", {})
    if not arms:
        return "<h2>What was trained</h2><p>No arm was trained in this run.</p>"
    table = [{**row, "epochs": epochs if row.get("records") else "-"} for row in _arm_rows(arms)]
    table = [{k: row[k] for k in ("arm", "status", "records", "epochs", "final_training_loss", "best_validation_loss")}
             for row in table]
    return ("<h2>What was trained</h2><p>One customization job per arm; the base arm is the untouched base model.</p>"
            + _table(table))


def _usd_text(value: Any) -> str:
    if not isinstance(value, int | float):
        return "unknown (price gap)"
    return f"${value:,.2f}" if value == 0 or value >= 0.01 else f"${value:.2g} (under one cent)"


def _cost_section(results: dict[str, Any]) -> str:
    """Cost estimated before training, and the cost implied by the tokens the evaluation used."""
    metrics = results.get("metrics", {})
    sandbox = results.get("backend") == "sandbox"
    estimate = metrics.get("training_estimate") or {}
    parts = ["<h2>Cost</h2>"]
    if sandbox:
        parts.append('<p class="notice">Sandbox run: <strong>$0 was billed</strong>. The figures below are what the '
                     "same steps would cost on AWS at the dated prices in the estimate tables.</p>")
    if estimate:
        gaps = estimate.get("gaps") or []
        gap = f" Missing prices: <code>{html.escape(', '.join(gaps))}</code>." if gaps else ""
        parts.append(f"<p>Estimated before training ({html.escape(str(estimate.get('title', 'fine-tuning')))}): "
                     f"<strong>{_usd_text(estimate.get('total_usd'))}</strong> for "
                     f"{estimate.get('train_tokens', '?'):,} training tokens × {estimate.get('epochs', '?')} epoch(s).{gap}</p>"
                     if isinstance(estimate.get("train_tokens"), int) else
                     f"<p>Estimated before training: <strong>{_usd_text(estimate.get('total_usd'))}</strong>.{gap}</p>")
    else:
        parts.append("<p>No training estimate was recorded (<code>04_fine_tuning</code> did not reach its estimate).</p>")
    parts.append(_token_cost(metrics, (results.get("parameters") or {}).get("base_model") or
                             (metrics.get("models") or {}).get("base_model")))
    return "".join(parts)


def _token_cost(metrics: dict[str, Any], base_model: Any) -> str:
    """Output tokens the evaluation used, priced at the base model's on-demand output price."""
    usage = rows(metrics.get("token_usage"))
    tokens = sum(float(r.get("n") or 0) * float(r.get("mean") or 0) for r in usage)
    if not usage:
        return "<p>No token usage was recorded (<code>06_evaluation</code> did not score answers).</p>"
    price = None
    if base_model:
        try:
            from utils import costs

            row = costs.find_row("od_out_per_1k", costs.price_model(str(base_model)))
            price = row.value if row is not None else None
        except Exception:  # noqa: BLE001 - an unknown model is a price gap, shown as such
            price = None
    implied = _usd_text(tokens / 1000 * price) if price is not None else "unknown (price gap for this model)"
    return (f"<p>Implied by the tokens actually used: {int(tokens):,} output tokens in the evaluation answers → "
            f"<strong>{implied}</strong> at the base model's on-demand output price. Input tokens were not "
            "recorded, so their cost is a gap, not zero.</p>")


def _token_section(metrics: dict[str, Any]) -> str:
    usage = rows(metrics.get("token_usage"))
    if not usage:
        return ""
    table = [{k: v for k, v in r.items() if k not in ("reduced_pct", "arm")} for r in usage]
    for row, src in zip(table, usage, strict=True):
        pct = src.get("reduced_pct")
        row["reading"] = src.get("reading") or (
            "" if pct is None else f"{pct:.1f} % fewer tokens" if pct >= 0 else f"{-pct:.1f} % more tokens")
    return "<h2>Answer length (output tokens per answer, AWS docs questions)</h2>" + _table(table)


def _loss_section(metrics: dict[str, Any]) -> str:
    curve = metrics.get("loss_curve") or {}
    plot = _loss_plot(curve)
    if not plot:
        return "<h2>Loss curves</h2><p>No loss curve was recorded (no arm finished training).</p>"
    sentence = curve.get("sentence") or metrics.get("loss_sentence") or ""
    return f"<h2>Loss curves</h2>{plot}" + (f"<p>{html.escape(str(sentence))}</p>" if sentence else "")


def _failures_section(results: dict[str, Any]) -> str:
    failed = [{"where": nb["name"], "status": nb["status"], "message": nb.get("detail", "")}
              for nb in results.get("notebooks", []) if nb.get("status") != "ok"]
    failed += [{"where": f"training {ARM_NAMES.get(a, a)}", "status": r.get("status"),
                "message": r.get("failure_message", "") + (f" (likely fix: {r['fix']})" if r.get("fix") else "")}
               for a, r in (results.get("metrics", {}).get("arms") or {}).items() if r.get("failure_message")]
    if not failed:
        return "<h2>Failures</h2><p>None: every notebook and every training job finished.</p>"
    return '<h2>Failures</h2><p class="notice">These steps did not finish; the message says why.</p>' + _table(failed)


def render_html(results: dict[str, Any]) -> str:
    """A readable, self-contained summary of one run (results.json in, HTML out)."""
    metrics: dict[str, Any] = results.get("metrics", {})
    params = results.get("parameters") or {}
    sandbox = results.get("backend") == "sandbox"
    notice = f'<p class="notice"><strong>{html.escape(SANDBOX_NOTICE)}</strong></p>' if sandbox else ""
    notebooks = _table(
        [
            {"notebook": nb["name"], "status": nb["status"], "seconds": nb["seconds"], "detail": nb.get("detail", "")}
            for nb in results.get("notebooks", [])
        ]
    )
    scores = metrics.get("evaluation_scores")
    shown = {"profile", "backend", "training_loss_final"}
    headline = {
        k: v for k, v in metrics.items()
        if not isinstance(v, dict | list) and not k.startswith("_") and k not in shown
    }
    headline_rows = [{"metric": plain(k), "value": v} for k, v in sorted(headline.items())]
    cleanup = _cleanup_section(results.get("cleanup", {}))
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}.notice{background:#fff4d6;padding:.6em;"
        "border-left:4px solid #e0a800}img{max-width:100%}"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workshop run {html.escape(str(results.get('run_id', '')))}</title>
<link rel="icon" href="data:,">
<style>{style}</style></head><body>
<h1>Bedrock fine-tuning workshop: run report</h1>
<p>Run <code>{html.escape(str(results.get('run_id', '')))}</code>:
<strong>{html.escape(str(results.get('status', '')))}</strong>, on backend
<strong>{html.escape(str(results.get('backend', '')))}</strong>,
profile <strong>{html.escape(str(metrics.get('profile', '')))}</strong>.</p>
{notice}
{_parameters_section(results)}
<h2>Notebooks</h2>{notebooks}
{_failures_section(results)}
{_arms_section(metrics, (metrics.get('training_estimate') or {}).get('epochs', params.get('epochs', '?')))}
{_loss_section(metrics)}
{_sweep_section(results.get('sweep'))}
{_cost_section(results)}
<h2>Evaluation: answer quality (token F1, SQuAD v1.1 rules, 0-100)</h2>{_table(scores)}
<h2>Token F1 per arm and dataset (zero-shot, 95% bootstrap confidence interval)</h2>{_table(metrics.get('f1'))}
{_token_section(metrics)}
<h2>Pairwise LLM judges (how often answer A wins, ties excluded; Wilson 95% interval)</h2>{_table(metrics.get('judges'))}
<h2>Human check (agreement with each judge)</h2>{_table(metrics.get('human'))}
<h2>Other headline numbers</h2>{_table(headline_rows)}
<h2>Cleanup</h2>{cleanup}
</body></html>
"""


INDEX_COLUMNS = ("run", "status", "backend", "arms trained", "best validation loss", "best token F1", "cleanup")


def index_row(run_id: str, results: dict[str, Any]) -> dict[str, Any]:
    """One run's row on the comparison page."""
    metrics = results.get("metrics", {})
    arms = metrics.get("arms") or {}
    losses = [r.get("best_validation_loss") for r in arms.values() if isinstance(r.get("best_validation_loss"), int | float)]
    scores = [r for r in rows(metrics.get("evaluation_scores")) if isinstance(r.get("token_f1"), int | float)]
    top = max(scores, key=lambda r: r["token_f1"]) if scores else None
    truth = results.get("cleanup", {})
    cleanup = ("not audited" if not truth.get("audited") else
               "nothing remains" if not truth.get("remaining") else f"{len(truth['remaining'])} remain")
    return {"run": run_id, "status": results.get("status", ""), "backend": results.get("backend", ""),
            "arms trained": sum(1 for r in arms.values() if r.get("status") == "Completed"),
            "best validation loss": min(losses) if losses else None,
            "best token F1": f"{top['token_f1']:.1f} ({top.get('model', '')})" if top else None, "cleanup": cleanup}


def render_index(runs_dir: str | Path) -> str:
    """runs/index.html: one row per run folder with a results.json, newest first, linked to its report."""
    runs_dir = Path(runs_dir)
    body = []
    for folder in sorted((p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True):
        path = folder / "results.json"
        if not path.exists():
            continue
        try:
            row = index_row(folder.name, json.loads(path.read_text()))
        except (ValueError, OSError):
            continue
        cells = "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in INDEX_COLUMNS[1:])
        link = f'<a href="{html.escape(folder.name)}/report.html">{html.escape(folder.name)}</a>'
        body.append(f"<tr><td>{link}</td>{cells}</tr>")
    head = "".join(f"<th>{html.escape(c.capitalize())}</th>" for c in INDEX_COLUMNS)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>" if body else "<p>No runs yet.</p>"
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Workshop runs</title>'
            '<link rel="icon" href="data:,"><style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto}'
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
            f"th{{background:#f3f3f3}}</style></head><body><h1>Workshop runs</h1>{table}</body></html>\n")


def numbers_note() -> str:
    """A label for numbers shown in notebooks: says when they come from sandbox stand-ins.

    Presentation only, and the one reader of the backend outside ``utils.aws``: the house
    rules require sandbox numbers to be labelled wherever they appear. No call to AWS or
    the sandbox depends on it.
    """
    from utils import aws

    return "(sandbox stand-in numbers)" if aws.backend() == "sandbox" else ""


def readable_tables() -> None:
    """Notebook tables show whole cells (full ARNs, job names and answers) with text left-aligned.

    Each notebook calls this once in its import cell (importing utils changes nothing by itself).
    https://pandas.pydata.org/docs/user_guide/options.html#available-options
    """
    import pandas as pd

    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # plain Python: only the pandas options apply
        return
    if get_ipython() is not None:  # Jupyter right-aligns table cells; text reads better left-aligned
        display(HTML("<style>.dataframe td, .dataframe th { text-align: left !important; }</style>"))
