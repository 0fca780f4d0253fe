"""Shared helpers for the unit tests."""

from __future__ import annotations

from contextlib import contextmanager


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
    # These tests use no AWS managed policy (they pass in a fresh process, where moto loads none). A
    # sandbox started earlier in the same process sets this to "true" for the process, and then every
    # mock start and stop re-parsed all of AWS's managed policies per IAM backend (moto's reset
    # re-initialises each backend before dropping it): seconds of CPU per test, for nothing.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")


@contextmanager
def sandbox_environment(monkeypatch, tmp_path, **knobs):
    """An in-process sandbox (``utils.sandbox.start(**knobs)``) with the environment pointing at it."""
    from utils import sandbox
    from utils.runner import sandbox_environment as environment_for

    with sandbox.start(**knobs) as server:
        for key, value in environment_for(server.url, tmp_path).items():
            monkeypatch.setenv(key, value)
        yield server
