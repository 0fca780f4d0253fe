"""Fixtures and the pytest-xdist scheduling shared by the notebook-level tests."""

from __future__ import annotations

import pytest

from tests.notebooks.series_run import SeriesRun, caller_series

# Tests that share state in order run in one pytest-xdist worker: a node ID is in the group of the
# longest prefix listed here, and any other test is a unit of its own (they then spread over the
# workers). xdist's own ``xdist_group`` mark cannot do this here: pytest-xdist 3.8 renames the
# node IDs of marked tests through a private attribute that pytest 9 no longer reads, so the marks
# never reach its scheduler.
GROUPS = {
    # The session's one series run (below) and everything that reads it.
    "tests/notebooks/test_series.py::test_notebook_runs_in_order": "series",
    "tests/notebooks/test_series.py::test_rerun_after_cleanup_trains_a_new_generation": "series",
    "tests/notebooks/test_caller_policy.py::": "series",
    # The rest of test_series.py: input checks on a module sandbox of their own.
    "tests/notebooks/test_series.py::": "series-inputs",
    # One detached sandbox, 01 -> 07 in order.
    "tests/notebooks/test_byhand.py::": "byhand",
    "tests/notebooks/test_report_browser.py::": "report-browser",
}


def group_of(nodeid: str) -> str:
    matches = [prefix for prefix in GROUPS if nodeid.startswith(prefix)]
    return GROUPS[max(matches, key=len)] if matches else nodeid


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups above (pytest-xdist's LoadScopeScheduling, one scope
    per group, biggest groups first)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return NotebookGroups(config, log)


@pytest.fixture(scope="session")
def series(tmp_path_factory) -> SeriesRun:
    """The one run of 01 -> 07 as the caller role (tests/notebooks/series_run.py), shared by
    test_series.py and test_caller_policy.py (the "series" group above: one worker, one run)."""
    with caller_series(tmp_path_factory.mktemp("executed"), tmp_path_factory.mktemp("state")) as run:
        yield run
