"""pytest plugin (``-p tests.notebooks.sandbox_plugin``): one sandbox per session for nbval.

nbval's cell items are plain ``pytest.Item``s, so fixtures never run for them; the
sandbox must start in ``pytest_sessionstart`` (shared/reference/notebook-practice.md §2c).
Every kernel inherits the endpoint and dummy credentials through the environment.
The notebooks run exactly as committed, with their default parameters: a dry run
that must spend nothing (``test_defaults_spend_nothing`` checks the same for papermill).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_server = None


def pytest_sessionstart(session):
    global _server
    from utils import sandbox
    from utils.runner import sandbox_environment

    _server = sandbox.start()
    state_dir = Path(tempfile.mkdtemp(prefix="workshop-nbval-"))
    os.environ.update(sandbox_environment(_server.url, state_dir))


def pytest_sessionfinish(session, exitstatus):
    if _server is not None:
        _server.stop()
