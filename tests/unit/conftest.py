"""Shared helpers for the unit tests."""

from __future__ import annotations


def use_in_process_moto(monkeypatch, region: str) -> None:
    """Environment for in-process ``moto.mock_aws``: the 'aws' backend with dummy credentials.

    ``utils.aws`` then uses boto3's default chain, which the mock intercepts; no sandbox,
    no real profile, no endpoint override.
    """
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "WORKSHOP_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
