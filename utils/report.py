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
    text = f"recorded {payload['label']}: {_short(payload['value'])}"
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


# ---- HTML report ---------------------------------------------------------------------------

def _table(table: Any) -> str:
    records = rows(table)
    if not records:
        return "<p><em>none</em></p>"
    columns = list(dict.fromkeys(key for row in records for key in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in records
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def _loss_plot(curve: dict[str, list[float]]) -> str:
    """A PNG (base64 <img>) of recorded training/validation loss, or '' without data."""
    if not curve or not curve.get("training_loss"):
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(curve.get("step", range(len(curve["training_loss"]))), curve["training_loss"], label="training")
    if curve.get("validation_loss"):
        ax.plot(curve.get("validation_step", []), curve["validation_loss"], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
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
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=arm)
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
            f"one run of 04_fine_tuning per grid point.</p>{verdict}{_table(_sweep_table(sweep))}{_sweep_plot(sweep)}")
def _cleanup_section(truth: dict[str, Any]) -> str:
    """The audit's verdict: "Nothing billable remains" only when an audit ran and found nothing."""
    remaining = truth.get("remaining", [])
    by = html.escape(str(truth.get("by", "")))
    if not truth.get("audited"):
        reason = html.escape(str(truth.get("error") or "the run ended before any audit"))
        return (f'<p class="notice"><strong>Not audited</strong> ({reason}): resources of this run may still '
                "exist and bill. Run 07_cleanup.</p>")
    if not remaining:
        return f"<p>Nothing billable remains (audit by {by}).</p>"
    return (f'<p class="notice"><strong>{len(remaining)} resource(s) remain</strong> (audit by {by}). '
            "Run 07_cleanup to delete them.</p>" + _table([{"resource": r} for r in remaining]))


def render_html(results: dict[str, Any]) -> str:
    """A readable, self-contained summary of one run (results.json in, HTML out)."""
    metrics: dict[str, Any] = results.get("metrics", {})
    sandbox = results.get("backend") == "sandbox"
    notice = f'<p class="notice"><strong>{html.escape(SANDBOX_NOTICE)}</strong></p>' if sandbox else ""
    notebooks = _table(
        [
            {"notebook": nb["name"], "status": nb["status"], "seconds": nb["seconds"], "detail": nb.get("detail", "")}
            for nb in results.get("notebooks", [])
        ]
    )
    scores = metrics.get("evaluation_scores")
    headline = {
        k: v for k, v in metrics.items()
        if not isinstance(v, dict | list) and not k.startswith("_")
    }
    headline_rows = [{"metric": k, "value": v} for k, v in sorted(headline.items())]
    cleanup = _cleanup_section(results.get("cleanup", {}))
    style = (
        "body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:left}th{background:#f3f3f3}.notice{background:#fff4d6;padding:.6em;"
        "border-left:4px solid #e0a800}"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Workshop run {html.escape(str(results.get('run_id', '')))}</title>
<style>{style}</style></head><body>
<h1>Bedrock fine-tuning workshop: run report</h1>
<p>Run <code>{html.escape(str(results.get('run_id', '')))}</code>:
<strong>{html.escape(str(results.get('status', '')))}</strong>, on backend
<strong>{html.escape(str(results.get('backend', '')))}</strong>,
profile <strong>{html.escape(str(metrics.get('profile', '')))}</strong>.</p>
{notice}
<h2>Notebooks</h2>{notebooks}
<h2>Evaluation (token F1, SQuAD v1.1 rules, 0-100)</h2>{_table(scores)}
<h2>Token F1 per arm and dataset (zero-shot, 95% bootstrap CI)</h2>{_table(metrics.get('f1'))}
<h2>Pairwise LLM judges (win rate of a, ties excluded; Wilson 95%)</h2>{_table(metrics.get('judges'))}
<h2>Human check (agreement with each judge)</h2>{_table(metrics.get('human'))}
<h2>Experiment arms</h2>{_table(_arm_rows(metrics.get('arms', {})))}
{_sweep_section(results.get('sweep'))}
<h2>Training loss</h2>{_loss_plot(metrics.get('loss_curve', {}))}
<h2>Headline numbers</h2>{_table(headline_rows)}
<h2>Cleanup</h2>{cleanup}
</body></html>
"""


def numbers_note() -> str:
    """A label for numbers shown in notebooks: says when they come from sandbox stand-ins.

    Presentation only, and the one reader of the backend outside ``utils.aws``: the house
    rules require sandbox numbers to be labelled wherever they appear. No call to AWS or
    the sandbox depends on it.
    """
    from utils import aws

    return "(sandbox stand-in numbers)" if aws.backend() == "sandbox" else ""
