"""The shared series run (tests/notebooks/series_run.py) reports each notebook's own outcome.

No notebook runs here: execution and checks are replaced, to show that a failed check fails that
notebook's test, that a failed execution stops the series and fails every later notebook, and that
the caller log and its per-notebook slices are recorded whichever notebook is asked for first.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from tests.notebooks import series_run


class Boom(Exception):
    pass


@pytest.fixture
def fake(monkeypatch, tmp_path):
    log: list[str] = []
    server = SimpleNamespace(app=SimpleNamespace(caller=SimpleNamespace(log=log)))
    broken = {"check": set(), "execute": set()}

    def execute(notebook, out_dir, parameters):
        log.append(f"run {notebook.stem}")
        if notebook.stem in broken["execute"]:
            raise Boom(notebook.stem)
        return {}

    def check(notebook, out_dir, recorded):
        assert notebook.stem not in broken["check"], f"check of {notebook.stem} failed"

    monkeypatch.setattr(series_run, "execute", execute)
    monkeypatch.setattr(series_run, "check_with_reruns", check)
    run = series_run.SeriesRun(server, {"WORKSHOP_SERIES_RUN_TEST": "1"}, tmp_path, {}, "arn:role")
    return run, broken


def test_a_failed_check_fails_only_its_notebook(fake):
    run, broken = fake
    broken["check"].add("02_data_preparation")
    run.outcome("01_permissions")
    with pytest.raises(AssertionError, match="check of 02_data_preparation failed"):
        run.outcome("02_data_preparation")
    run.complete()
    assert run.failure is None
    for notebook in series_run.NOTEBOOKS[2:]:
        run.outcome(notebook.stem)
    assert run.log == [f"run {nb.stem}" for nb in series_run.NOTEBOOKS]
    assert run.marks["03_synthetic_data"] == (2, 3)


def test_a_failed_execution_stops_the_series(fake):
    run, broken = fake
    broken["execute"].add("04_fine_tuning")
    run.outcome("02_data_preparation")
    with pytest.raises(Boom):
        run.outcome("04_fine_tuning")
    assert run.failure is not None and run.failure.startswith("04_fine_tuning: Boom")
    with pytest.raises(AssertionError, match="not run: the series stopped at 04_fine_tuning"):
        run.outcome("07_cleanup")
    assert run.log == [f"run {nb.stem}" for nb in series_run.NOTEBOOKS[:4]]


def test_the_environment_is_applied_only_inside(fake, monkeypatch):
    run, _ = fake
    monkeypatch.delenv("WORKSHOP_SERIES_RUN_TEST", raising=False)
    with run.env():
        assert os.environ["WORKSHOP_SERIES_RUN_TEST"] == "1"
    assert "WORKSHOP_SERIES_RUN_TEST" not in os.environ
