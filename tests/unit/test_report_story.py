"""The run report tells the story in plain language (the browser check is in tests/notebooks)."""

from __future__ import annotations

import re

from tests.notebooks import report_fixture
from utils import report


def visible_prose(page: str) -> str:
    """The page's text a reader sees, minus <code> (names the reader types) and the embedded images."""
    page = re.sub(r"<(style|code)>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_report_reads_in_plain_language_with_every_section():
    results = report_fixture.results()
    page = report.render_html(results)
    prose = visible_prose(page)
    assert re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", prose) == []  # no snake_case key outside code
    for heading in ("Models used", "Parameters", "What was trained", "Loss curves", "Cost", "Failures",
                    "Hyperparameter sweep", "Cleanup"):
        assert f"<h2>{heading}</h2>" in page
    assert "amazon.nova-lite-v1:0:300k" in page and "<code>epochs</code>" in page
    assert "5.0 % more tokens" in prose and "Training data has too few records." in prose
    assert "$1.23" in prose and "$0 was billed" in prose and "Training and validation loss both fall" in prose
    assert page.count('<img alt="') == 2


def test_cost_gaps_stay_gaps():
    results = report_fixture.results()
    results["metrics"]["training_estimate"] = {"title": "Fine-tuning X", "total_usd": None, "gaps": ["train_per_1k:x"]}
    results["parameters"]["base_model"] = "no.such-model"
    results["metrics"]["models"] = {}
    prose = visible_prose(report.render_html({**results, "backend": "aws"}))
    assert "unknown (price gap)" in prose and "$0 was billed" not in prose
    assert "unknown (price gap for this model)" in prose


def test_index_has_one_row_per_run(tmp_path):
    import json

    for run_id, status in (("r1", "ok"), ("r2", "failed")):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "results.json").write_text(json.dumps({**report_fixture.results(), "status": status}))
    page = report.render_index(tmp_path)
    assert page.index('href="r2/report.html"') < page.index('href="r1/report.html"')
    assert page.count("<tr><td>") == 2 and "1 remain" in page and "55.0 (ft_n)" in page
