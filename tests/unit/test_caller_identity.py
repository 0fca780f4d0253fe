"""01's first AWS call: without credentials it stops with the preflight's one-line fix, not botocore's error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from utils import aws, preflight

REPO = Path(__file__).resolve().parents[2]


def test_no_credentials_is_one_actionable_line(monkeypatch, tmp_path):
    # `--backend aws` on a machine without credentials (README section 6's sweep): nothing to sign with.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(aws.BACKEND_ENV, "aws")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(preflight.PreflightError) as raised:
        preflight.caller_identity("us-east-1")
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert "No AWS credentials" in message and "WORKSHOP_BACKEND" in message


def test_caller_identity_answers_on_the_sandbox():
    from utils import sandbox

    with sandbox.start(time_scale=0) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv(aws.BACKEND_ENV, "sandbox")
        mp.setenv("AWS_ENDPOINT_URL", server.url)
        mp.setenv("AWS_ACCESS_KEY_ID", "sandbox")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
        identity = preflight.caller_identity("us-east-1")
    assert identity["Account"] == "123456789012" and identity["Arn"]


def test_notebook_01_asks_for_the_identity_through_the_preflight():
    cells = json.loads((REPO / "notebooks" / "01_permissions.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "preflight.caller_identity(region)" in code
    assert ".get_caller_identity()" not in code
