"""utils.aws.poll_until: waits start short and back off to the caller's interval."""

from __future__ import annotations

import itertools

import pytest

from utils import aws


def test_delays_double_up_to_the_interval():
    assert list(itertools.islice(aws.poll_delays(60, first_s=1), 9)) == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert list(itertools.islice(aws.poll_delays(60), 3)) == [0.5, 1, 2]  # FIRST_POLL_S
    assert list(itertools.islice(aws.poll_delays(0.2), 3)) == [0.2, 0.2, 0.2]


def fake_clock(monkeypatch) -> list[float]:
    """Replace time.sleep/monotonic in utils.aws; returns the list of sleeps."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(aws.time, "sleep", sleep)
    monkeypatch.setattr(aws.time, "monotonic", lambda: now[0])
    return slept


def test_a_job_ready_in_two_seconds_is_seen_within_seconds(monkeypatch):
    """The AWS interval (60 s) no longer costs a 2-second sandbox job a full minute."""
    slept = fake_clock(monkeypatch)
    statuses = iter(["InProgress", "InProgress", "Completed"])
    result = aws.poll_until(lambda: {"status": next(statuses)}, "Completed", poll_s=60)
    assert result == {"status": "Completed"}
    assert slept == [0.5, 1]


def test_a_long_job_is_polled_at_the_interval_and_times_out(monkeypatch):
    slept = fake_clock(monkeypatch)
    with pytest.raises(TimeoutError, match="Still InProgress after 300 s"):
        aws.poll_until(lambda: {"status": "InProgress"}, "Completed", poll_s=60, timeout_s=300)
    assert slept[:8] == [0.5, 1, 2, 4, 8, 16, 32, 60]
    assert sum(slept) == 300  # the last wait stops at the deadline instead of overshooting it


def test_a_failed_status_raises_with_the_failure_message(monkeypatch):
    fake_clock(monkeypatch)
    with pytest.raises(RuntimeError, match="Status Failed: bad data"):
        aws.poll_until(lambda: {"status": "Failed", "failureMessage": "bad data"}, "Completed")
