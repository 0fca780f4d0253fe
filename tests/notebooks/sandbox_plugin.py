"""pytest plugin (``-p tests.notebooks.sandbox_plugin``): one sandbox per session for nbval.

nbval's cell items are plain ``pytest.Item``s, so fixtures never run for them; the
sandbox must start in ``pytest_sessionstart`` (shared/reference/notebook-practice.md §2c).
Every kernel inherits the endpoint and dummy credentials through the environment.
"""

from __future__ import annotations

import os
import tempfile

_server = None


def pytest_sessionstart(session):
    global _server
    from utils import sandbox

    _server = sandbox.start()
    os.environ.update(
        WORKSHOP_BACKEND="sandbox",
        AWS_ENDPOINT_URL=_server.url,
        AWS_ACCESS_KEY_ID="sandbox",
        AWS_SECRET_ACCESS_KEY="sandbox",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        WORKSHOP_STATE_DIR=tempfile.mkdtemp(prefix="workshop-nbval-"),
        MPLBACKEND="Agg",
    )


def pytest_sessionfinish(session, exitstatus):
    if _server is not None:
        _server.stop()
