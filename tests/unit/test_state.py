"""utils.state: atomic writes, and a corrupt, empty or foreign state file that strands no one."""

from __future__ import annotations

import json
import os

import pytest

from utils import state as state_module
from utils.state import StateFileError, WorkshopState


@pytest.fixture()
def state_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(state_module.STATE_DIR_ENV, str(tmp_path))
    return tmp_path


def saved(workshop_id: str = "demo") -> WorkshopState:
    st = WorkshopState.load(workshop_id)
    st.region, st.bucket = "us-east-1", "bedrock-ws-demo-1-us-east-1"
    st.record("s3-bucket", st.bucket, "01")
    return st


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "the file is not valid JSON"),  # truncated mid-write (what a non-atomic write leaves)
        ("", "the file is empty"),
        ("  \n", "the file is empty"),
        ("[1, 2]", "not a workshop state"),
        ('{"workshop_id": "team-b"}', "belongs to workshop_id='team-b'"),
        ('{"workshop_id": "demo", "colour": "blue"}', "fields this version does not know"),
        ('{"workshop_id": "demo", "ledger": [{"kind": "s3-bucket"}]}', "fields this version does not know"),
    ],
    ids=["truncated", "empty", "blank", "list", "foreign", "unknown-field", "bad-ledger"],
)
def test_an_unusable_file_gives_one_clear_message(state_dir, content, problem):
    path = saved().path
    path.write_text(path.read_text()[:50] if content is None else content)
    with pytest.raises(StateFileError) as failure:
        WorkshopState.load("demo")
    message = str(failure.value)
    assert problem in message and str(path) in message
    assert "07_cleanup" in message and "01_permissions" in message and ".broken-" in message
    assert not isinstance(failure.value, json.JSONDecodeError) and failure.value.__cause__ is None


def test_start_over_keeps_the_broken_file_aside(state_dir):
    path = saved().path
    broken = path.read_text()[:50]
    path.write_text(broken)
    messages: list[str] = []
    fresh = WorkshopState.load("demo", start_over=True, log=messages.append)
    assert fresh.ledger == [] and fresh.region == "" and not path.exists()
    [aside] = state_dir.glob("demo.json.broken-*")
    assert aside.read_text() == broken and str(aside) in messages[0]
    fresh.save()
    assert WorkshopState.load("demo").workshop_id == "demo"


def test_writes_are_atomic(state_dir, monkeypatch):
    st = saved()
    before = st.path.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    st.values["x"] = 1
    with pytest.raises(OSError):
        st.save()
    assert st.path.read_text() == before  # the old file is whole
    assert [p.name for p in state_dir.iterdir()] == ["demo.json"]  # no temporary file left behind
