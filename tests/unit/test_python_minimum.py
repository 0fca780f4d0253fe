"""One minimum Python version (3.10: conda_python3 on SageMaker notebook instances), stated everywhere."""

from __future__ import annotations

import re

from utils import preflight
from utils.state import REPO_ROOT


def test_pyproject_makefile_lint_and_preflight_state_the_same_minimum():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert preflight.MIN_PYTHON == (3, 10)
    assert re.search(r'^requires-python = ">=3\.10"', pyproject, re.M)
    assert re.search(r'^target-version = "py310"', pyproject, re.M)  # ruff: no 3.11-only rewrites
    assert "sys.version_info >= (3, 10)" in makefile
    assert re.search(r"vermin .*-t=3\.10- utils tests benchmarks", makefile)  # `make lint` proves it


def test_the_preflight_warns_below_the_minimum(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "sandbox")
    monkeypatch.setattr(preflight.sys, "version_info", (3, 9, 18, "final", 0))
    checklist = preflight.Checklist("current", "us-east-1")
    preflight.check_environment(checklist)
    rows = [check for check in checklist.checks if check.name == "python version"]
    assert len(rows) == 1 and rows[0].status == preflight.WARN and "needs Python 3.10+" in rows[0].detail
