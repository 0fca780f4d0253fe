"""Tests for utils.engine: checkpointed, resumable, bounded-concurrency model calls."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from botocore.exceptions import ClientError

from utils import engine


class Crash(BaseException):
    """Stands in for a kernel restart or KeyboardInterrupt in the middle of a run."""


def items(n: int) -> list[dict]:
    return [{"id": f"q{i}", "x": i} for i in range(n)]


def square(item: dict) -> dict:
    return {"y": item["x"] ** 2}


def read_rows(path) -> list[dict]:
    """Parsed checkpoint rows; lines a crash left half-written are skipped."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def test_results_are_checkpointed_and_returned(tmp_path):
    path = tmp_path / "sub" / "run.jsonl"
    rows = engine.run_calls(items(5), square, path, progress=False)
    assert rows == [{"y": i * i, "id": f"q{i}"} for i in range(5)]
    assert sorted(r["id"] for r in read_rows(path)) == [f"q{i}" for i in range(5)]


def test_resume_after_crash_skips_done_items_without_duplicates(tmp_path):
    path = tmp_path / "run.jsonl"
    calls: list[str] = []

    def crashing(item):
        if item["x"] == 3:
            raise Crash
        calls.append(item["id"])
        return square(item)

    with pytest.raises(Crash):
        engine.run_calls(items(6), crashing, path, max_workers=1, progress=False)
    done_before = {r["id"] for r in read_rows(path)}
    assert done_before == {"q0", "q1", "q2"}
    # a crash mid-write leaves half a line behind
    with path.open("a") as handle:
        handle.write('{"id": "q3", "y"')

    calls.clear()
    rows = engine.run_calls(items(6), lambda item: (calls.append(item["id"]), square(item))[1], path,
                            progress=False)
    assert sorted(calls) == ["q3", "q4", "q5"]  # nothing paid for twice
    assert [r["y"] for r in rows] == [i * i for i in range(6)]
    lines = path.read_text().splitlines()
    assert lines[3] == '{"id": "q3", "y"'  # the next row started on a fresh line
    ids = [r["id"] for r in read_rows(path)]
    assert sorted(ids) == [f"q{i}" for i in range(6)]  # no duplicates

    calls.clear()
    again = engine.run_calls(items(6), lambda item: (calls.append(item["id"]), square(item))[1], path,
                             progress=False)
    assert calls == [] and again == rows


def test_duplicate_keys_are_rejected(tmp_path):
    dup = items(3) + [{"id": "q1", "x": 9}]
    with pytest.raises(ValueError, match="Duplicate 'id' values in items: 'q1'"):
        engine.run_calls(dup, square, tmp_path / "run.jsonl", progress=False)
    assert not (tmp_path / "run.jsonl").exists()
    with pytest.raises(TypeError, match="has no 'id' field"):
        engine.run_calls([{"x": 1}], square, tmp_path / "run.jsonl", progress=False)


def test_custom_key(tmp_path):
    rows = engine.run_calls([{"uid": 7, "x": 2}], square, tmp_path / "r.jsonl", key="uid", progress=False)
    assert rows == [{"y": 4, "uid": 7}]


def test_errors_are_captured_and_retried_next_run(tmp_path):
    path = tmp_path / "run.jsonl"

    def flaky(item):
        if item["x"] == 2:
            raise ValueError("model said no")
        return square(item)

    rows = engine.run_calls(items(4), flaky, path, progress=False)
    assert rows[2] == {"id": "q2", "error": "ValueError: model said no", "error_kind": "ValueError", "attempts": 1}
    assert [r.get("y") for r in rows] == [0, 1, None, 9]

    calls: list[str] = []
    rows = engine.run_calls(items(4), lambda item: (calls.append(item["id"]), square(item))[1], path,
                            progress=False)
    assert calls == ["q2"]
    assert rows[2] == {"y": 4, "id": "q2"}
    assert engine.load_checkpoint(path)["q2"] == {"y": 4, "id": "q2"}


def test_non_dict_result_is_an_error(tmp_path):
    rows = engine.run_calls(items(1), lambda item: "text", tmp_path / "r.jsonl", progress=False)
    assert rows[0]["error"].startswith("TypeError: call returned str")


def test_order_is_preserved(tmp_path):
    rng = random.Random(0)
    delays = {f"q{i}": rng.uniform(0, 0.02) for i in range(20)}

    def slow(item):
        time.sleep(delays[item["id"]])
        return square(item)

    rows = engine.run_calls(items(20), slow, tmp_path / "r.jsonl", max_workers=8, progress=False)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(20)]


def test_concurrency_is_bounded(tmp_path):
    lock = threading.Lock()
    active = 0
    peak = 0

    def tracked(item):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return square(item)

    engine.run_calls(items(24), tracked, tmp_path / "r.jsonl", max_workers=3, progress=False)
    assert peak == 3


def throttle() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Converse")


def test_retry_on_gives_extra_attempts(tmp_path):
    attempts: dict[str, int] = {}

    def throttled(item):
        attempts[item["id"]] = attempts.get(item["id"], 0) + 1
        if attempts[item["id"]] <= 2:
            raise throttle()
        return square(item)

    rows = engine.run_calls(items(2), throttled, tmp_path / "a.jsonl", retry_on=("ThrottlingException",),
                            retry_base_delay=0.0, progress=False)
    assert [r["y"] for r in rows] == [0, 1]
    assert attempts == {"q0": 3, "q1": 3}

    # by default throttling is retried too (with backoff)...
    attempts.clear()
    rows = engine.run_calls(items(1), throttled, tmp_path / "b.jsonl", backoff_base=0.0, progress=False)
    assert rows[0]["y"] == 0 and attempts == {"q0": 3}
    # ...and with no retries left the error is captured at once
    attempts.clear()
    rows = engine.run_calls(items(1), throttled, tmp_path / "c.jsonl", throttle_retries=0, progress=False)
    assert rows[0]["error"].startswith("ClientError: An error occurred (ThrottlingException)")
    assert rows[0]["error_kind"] == "ThrottlingException" and attempts == {"q0": 1}


def test_retry_on_gives_up_after_extra_attempts(tmp_path):
    def always(item):
        raise throttle()

    rows = engine.run_calls(items(1), always, tmp_path / "r.jsonl", retry_on=("ThrottlingException",),
                            extra_attempts=2, retry_base_delay=0.0, progress=False)
    assert "ThrottlingException" in rows[0]["error"]
    assert engine.error_code(throttle()) == "ThrottlingException"
    assert engine.error_code(ValueError()) == "ValueError"


# ---------------------------------------------------------------------------- usage


def test_usage_from_response():
    converse = {"usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17}}
    assert engine.usage_from_response(converse) == (12, 5)
    invoke = {"ResponseMetadata": {"HTTPHeaders": {
        "x-amzn-bedrock-input-token-count": "30", "x-amzn-bedrock-output-token-count": "7"}}}
    assert engine.usage_from_response(invoke) == (30, 7)
    assert engine.usage_from_response({"usage": {"input_tokens": 3, "output_tokens": 4}}) == (3, 4)
    assert engine.usage_from_response({"ResponseMetadata": {"HTTPHeaders": {}}}) == (None, None)


def test_usage_tally_is_thread_safe_and_correct(tmp_path):
    tally = engine.UsageTally()

    def call(item):
        model = "a" if item["x"] % 2 else "b"
        tally.add_response(model, {"usage": {"inputTokens": 10, "outputTokens": item["x"]}})
        return {}

    engine.run_calls(items(100), call, tmp_path / "r.jsonl", max_workers=8, progress=False)
    tally.add("c", None, None)
    frame = tally.to_frame()
    assert list(frame["model"]) == ["a", "b", "c"]
    by_model = frame.set_index("model")
    assert by_model.loc["a", "calls"] == 50 and by_model.loc["b", "calls"] == 50
    assert by_model.loc["a", "input_tokens"] == 500
    assert by_model.loc["a", "output_tokens"] == sum(range(1, 100, 2))
    assert by_model.loc["b", "output_tokens"] == sum(range(0, 100, 2))
    assert by_model.loc["c", "calls_without_usage"] == 1


def test_item_id_and_pending(tmp_path):
    from utils.engine import item_id, pending, run_calls

    assert item_id("m", "p", 400) == item_id("m", "p", 400) != item_id("m2", "p", 400)
    items = [{"id": item_id("m", i)} for i in range(3)]
    checkpoint = tmp_path / "c.jsonl"
    run_calls(items[:2], lambda item: {"ok": True}, checkpoint, progress=False)
    assert pending(items, checkpoint) == items[2:]
