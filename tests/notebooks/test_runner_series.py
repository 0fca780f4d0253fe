"""The series as `make workshop` runs it (utils.runner), each test with a fresh sandbox of its own.

Kept apart from test_series.py (one shared sandbox, notebook by notebook) so `make series` can run
both files side by side (pytest-xdist, ``--dist loadfile``).

* the runner writes results.json and report.html for a full run;
* the seeds' Claude 3 Haiku experiment replays in the 2024 catalog;
* a run that fails at 03 reports, from a read-only audit, what remains.
"""

from __future__ import annotations

import json

from tests.unit.test_runner_params import readme_replay_command
from utils import report, runner

NOTEBOOKS = runner.series()


def test_runner_writes_run_folder(tmp_path):
    """`make workshop` in miniature: fresh sandbox, all seven notebooks, results and report."""
    results = runner.run_series({"max_examples": 3}, runs_dir=tmp_path, run_id="t", log=lambda *_: None)
    assert [nb["status"] for nb in results["notebooks"]] == ["ok"] * 7
    saved = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert saved["backend"] == "sandbox" and saved["status"] == "ok"
    assert saved["cleanup"]["audited"] and saved["cleanup"]["remaining"] == []
    assert {"name", "status", "seconds"} <= saved["notebooks"][0].keys()
    html = (tmp_path / "latest" / "report.html").read_text()
    assert "Sandbox numbers" in html and "Token F1" in html and "token_f1" not in html
    assert len(list((tmp_path / "t").glob("0*.ipynb"))) == 7


def test_seed_experiment_replays_in_the_2024_catalog(tmp_path, monkeypatch):
    """The seeds' Claude 3 Haiku experiment, on Provisioned Throughput, in the historical catalog.

    The price table (utils/costs.py) has no Haiku training or PT price, and the money guard refuses unknown prices,
    so the replay passes the sandbox's true price (zero) explicitly.
    """
    # The README's command as written (its environment and PARAMS), only evaluating fewer examples.
    env, text = readme_replay_command()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    params = runner.check_types(runner.parse_params(text), {nb.stem: runner.declared_parameters(nb) for nb in NOTEBOOKS})
    results = runner.run_series({**params, "max_examples": 3}, runs_dir=tmp_path, run_id="seed", log=lambda *_: None)
    assert [nb["status"] for nb in results["notebooks"]] == ["ok"] * 7
    models_seen = [row["model"] for row in report.rows(results["metrics"]["evaluation_scores"])]
    assert models_seen == ["Anthropic Claude 3 Haiku (base model)", "Anthropic Claude 3 Haiku (FT-N)"]
    assert results["cleanup"]["remaining"] == []


def test_a_run_failing_at_03_reports_what_remains(tmp_path):
    """The runner audits (read-only) when 07 never ran, and says the run is not ok."""
    results = runner.run_series({"workshop_id": "fail03"}, notebooks=[NOTEBOOKS[0], NOTEBOOKS[2]],
                                runs_dir=tmp_path, run_id="f", log=lambda *_: None)
    assert [nb["status"] for nb in results["notebooks"]] == ["ok", "failed"] and results["status"] == "failed"
    assert "02_data_preparation" in results["notebooks"][1]["detail"]  # 03 without 02: the message names the fix
    truth = results["cleanup"]
    assert truth["audited"] and truth["by"].startswith("runner")
    assert sorted(line.split(":")[0] for line in truth["remaining"]) == ["iam-policy", "iam-role", "s3-bucket"]
    html = (tmp_path / "f" / "report.html").read_text()
    assert "Nothing billable remains" not in html and "3 resource(s) remain" in html
