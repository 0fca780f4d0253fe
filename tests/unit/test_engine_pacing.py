"""utils.engine: pacing math, AIMD, quota lookup, RetryableOutput, resume after a kill (no timing assertions)."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from utils import engine
from utils.engine import Concurrency, Limits, Pacer, RetryableOutput

# ---- pacing math, on a fake clock ------------------------------------------------------------------


def test_pacer_spaces_requests_and_counts_token_reservations():
    pacer = Pacer(rpm=60, tpm=600, now=0.0)
    assert pacer.delay(0, 0.0) == 1.0  # starts one interval ahead: the bucket starts empty
    assert pacer.delay(0, 1.0) == 0.0
    pacer.take(100, 1.0)  # 100 tokens at 600/min = 10 s of token budget (less the 0.1 s catch-up)
    assert pacer.delay(0, 1.5) == pytest.approx(0.5)  # requests: next one at t = 2
    assert pacer.delay(100, 2.0) == pytest.approx(8.9)  # tokens: the reservation is the binding meter
    pacer.refund(50, 2.0)  # the call used only half of what it reserved
    assert pacer.delay(100, 2.0) == pytest.approx(3.9)
    pacer.set_rates(None, None)
    assert pacer.delay(100, 2.0) == 0.0


def test_pacer_long_run_rate_is_the_target_and_never_more():
    for rpm, tpm, tokens, expected in ((120, None, 0, 1200), (None, 6000, 50, 1200), (600, 3000, 10, 3000)):
        pacer = Pacer(rpm=rpm, tpm=tpm, now=0.0)
        now, starts = 0.0, 0
        while now < 600.0:  # ten minutes of a caller that starts whenever it may, 3 ms late each time
            wait = pacer.delay(tokens, now)
            if wait > 0:
                now += wait + 0.003
                continue
            pacer.take(tokens, now)
            starts += 1
        assert expected - 2 <= starts <= expected, (rpm, tpm, starts)


# ---- adaptive concurrency -----------------------------------------------------------------------------


def test_concurrency_slow_start_then_multiplicative_decrease_once_per_round_trip():
    window = Concurrency(maximum=32, initial=4)
    for _ in range(4):
        window.on_success(started=0.0)
    assert window.limit == 8  # slow start: one more per success
    assert window.on_throttle(started=1.0, now=2.0)
    assert window.limit == 6  # x 0.75
    assert not window.on_throttle(started=1.5, now=2.1)  # started before the decrease: same event
    assert window.limit == 6
    window.on_success(started=1.9)  # a call from before the decrease does not grow the window
    assert window.window == 6
    for _ in range(7):
        window.on_success(started=3.0)
    assert window.limit == 7  # additive: about one more per round trip
    assert window.on_throttle(started=3.0, now=4.0, floor=10)
    assert window.limit == 10  # never below what the measured rate needs
    for _ in range(1000):
        window.on_success(started=5.0)
    assert window.limit == 32  # max_workers is the ceiling
    tiny = Concurrency(maximum=3, initial=4)
    assert tiny.limit == 3


def test_run_calls_backs_off_on_throttling(tmp_path):
    """Every item is throttled once: each gets retried, and the window shrinks from its start."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def call(item):
        with lock:
            seen[item["id"]] = seen.get(item["id"], 0) + 1
            first = seen[item["id"]] == 1
        if first:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "InvokeModel")
        time.sleep(0.002)
        return {"ok": True}

    stats = engine.RunStats()
    rows = engine.run_calls([{"id": f"q{i}"} for i in range(20)], call, tmp_path / "r.jsonl", backoff_base=0.0,
                            initial_workers=8, stats=stats, progress=False)
    assert all(r == {"ok": True, "id": r["id"]} for r in rows)
    assert stats.throttles == 20 and stats.retries["ThrottlingException"] == 20 and stats.failed == 0
    assert stats.peak_concurrency <= 8  # throttled from the start: the window never grew past its start


# ---- RetryableOutput -------------------------------------------------------------------------------------


def test_retryable_output_is_retried_then_reported_never_stored_as_success(tmp_path):
    path = tmp_path / "r.jsonl"
    attempts: dict[str, int] = {}

    def call(item):
        attempts[item["id"]] = attempts.get(item["id"], 0) + 1
        if item["id"] == "bad" or attempts[item["id"]] < 3:
            raise RetryableOutput("unparseable", "reply is not JSON")
        return {"records": [1, 2, 3]}

    stats = engine.RunStats()
    rows = engine.run_calls([{"id": "good"}, {"id": "bad"}], call, path, output_retries=2, stats=stats,
                            progress=False)
    assert rows[0] == {"records": [1, 2, 3], "id": "good"}
    assert rows[1] == {"id": "bad", "error": "RetryableOutput: reply is not JSON", "error_kind": "unparseable",
                       "attempts": 3}
    assert attempts == {"good": 3, "bad": 3}
    assert stats.failures == {"unparseable": 1} and stats.retries == {"unparseable": 4}
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r for r in stored if r["id"] == "bad"] == [rows[1]]  # reported, never a success
    assert engine.pending([{"id": "good"}, {"id": "bad"}], path) == [{"id": "bad"}]  # tried again next run


# ---- resume after a kill ------------------------------------------------------------------------------------


class Kill(BaseException):
    """A kernel restart in the middle of a run with several calls in flight."""


def test_resume_after_a_kill_with_calls_in_flight(tmp_path):
    path = tmp_path / "r.jsonl"
    items = [{"id": f"q{i}", "x": i} for i in range(40)]

    def killed(item):
        if item["x"] == 17:
            raise Kill
        time.sleep(0.005)
        return {"y": item["x"] * 2}

    with pytest.raises(Kill):
        engine.run_calls(items, killed, path, initial_workers=6, max_workers=6, progress=False)
    before = {r["id"] for r in map(json.loads, path.read_text().splitlines())}
    assert before and "q17" not in before and len(before) < 40
    with path.open("a") as handle:
        handle.write('{"id": "q39", "y"')  # a kill mid-write

    calls: list[str] = []

    def resumed(item):
        calls.append(item["id"])
        return {"y": item["x"] * 2}

    rows = engine.run_calls(items, resumed, path, progress=False)
    assert [r["y"] for r in rows] == [i * 2 for i in range(40)]  # every item done
    assert set(calls) == {f"q{i}" for i in range(40)} - before  # nothing paid for twice
    ids = [r["id"] for r in engine.load_checkpoint(path).values()]
    successes = [line for line in path.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
    assert len(successes) == len(ids) == 40  # no duplicate rows


# ---- quotas --------------------------------------------------------------------------------------------------


class FakeQuotas:
    """A Service Quotas client: get_service_quota by code, list_service_quotas paginated."""

    def __init__(self, quotas: list[dict], error: str | None = None) -> None:
        self.quotas, self.error = quotas, error

    def get_service_quota(self, ServiceCode: str, QuotaCode: str) -> dict:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "GetServiceQuota")
        for quota in self.quotas:
            if quota["QuotaCode"] == QuotaCode:
                return {"Quota": quota}
        raise ClientError({"Error": {"Code": "NoSuchResourceException", "Message": "no"}}, "GetServiceQuota")

    def get_paginator(self, name: str):
        quotas = self.quotas

        class Pages:
            def paginate(self, ServiceCode: str):
                yield {"Quotas": quotas[:2]}
                yield {"Quotas": quotas[2:]}

        return Pages()


def q(code: str, name: str, value: float) -> dict:
    return {"QuotaCode": code, "QuotaName": name, "Value": value}


def test_quota_limits_by_code():
    client = FakeQuotas([
        q("L-CE33604C", "On-demand model inference tokens per minute for Amazon Nova Pro", 400_000),
        q("L-F2717A44", "On-demand model inference requests per minute for Amazon Nova Pro", 250),
        q("L-C0326783", "Cross-region model inference tokens per minute for Amazon Nova Pro", 800_000),
        q("L-ED46B8C5", "Cross-region model inference requests per minute for Amazon Nova Pro", 500),
    ])
    limits = engine.quota_limits("amazon.nova-pro-v1:0", client=client)
    assert (limits.rpm, limits.tpm, limits.burndown) == (250, 400_000, 1.0)
    assert "L-CE33604C" in limits.source and "L-F2717A44" in limits.source
    cross = engine.quota_limits("us.amazon.nova-pro-v1:0", client=client)
    assert (cross.rpm, cross.tpm) == (500, 800_000)


def test_quota_limits_by_name_when_the_code_is_unknown_or_renamed():
    client = FakeQuotas([
        q("L-AAAA0001", "Cross-region model inference tokens per minute for Anthropic Claude Sonnet 4.5 V1", 1),
        q("L-AAAA0002", "Cross-region model inference tokens per minute for Anthropic Claude Sonnet 4.6 V1 1M Context"
                        " Length", 2),
        q("L-AAAA0003", "Cross-region model inference tokens per minute for Anthropic Claude Sonnet 4.6", 3_000_000),
        q("L-AAAA0004", "Global cross-region model inference tokens per minute for Anthropic Claude Sonnet 4.6", 4),
        q("L-AAAA0005", "Cross-region model inference requests per minute for Anthropic Claude Sonnet 4.6", 2_000),
        # renamed quota, old wording, unknown code
        q("L-BBBB0001", "On-demand InvokeModel requests per minute for Amazon Nova Lite", 100),
        q("L-BBBB0002", "On-demand InvokeModel requests per minute for Amazon Nova 2 Lite", 999),
        q("L-BBBB0003", "On-demand model inference tokens per minute for Amazon Nova Lite", 0),
    ])
    sonnet = engine.quota_limits("us.anthropic.claude-sonnet-4-6", client=client)
    assert (sonnet.rpm, sonnet.tpm, sonnet.burndown) == (2_000, 3_000_000, 5.0)
    assert "L-AAAA0003" in sonnet.source
    lite = engine.quota_limits("amazon.nova-lite-v1:0", client=client)
    assert (lite.rpm, lite.tpm) == (100, None)  # a quota of 0 is no limit to pace to


def test_quota_limits_unavailable_or_not_applicable():
    denied = engine.quota_limits("amazon.nova-pro-v1:0", client=FakeQuotas([], error="AccessDeniedException"))
    assert (denied.rpm, denied.tpm) == (None, None) and "AccessDeniedException" in denied.source
    arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123"
    assert engine.quota_limits(arn, client=FakeQuotas([])).source.startswith("none:")
    assert engine.quota_limits("amazon.nova-pro-v1:0", client=FakeQuotas([])).rpm is None


def test_burndown_rates():
    assert engine.burndown_rate("us.anthropic.claude-sonnet-4-6") == 5.0
    assert engine.burndown_rate("anthropic.claude-3-7-sonnet-20250219-v1:0") == 5.0
    assert engine.burndown_rate("global.anthropic.claude-haiku-4-5-20251001-v1:0") == 5.0
    assert engine.burndown_rate("anthropic.claude-3-haiku-20240307-v1:0") == 1.0
    assert engine.burndown_rate("amazon.nova-pro-v1:0") == 1.0


def test_run_calls_paces_to_the_quota_it_reads(tmp_path, monkeypatch):
    read: list[tuple] = []

    def fake_limits(model_id, region=None, **_):
        read.append((model_id, region))
        return Limits(rpm=6000, tpm=60_000_000, burndown=5.0, source="test")

    monkeypatch.setattr(engine, "quota_limits", fake_limits)
    stats = engine.RunStats()
    engine.run_calls([{"id": 1, "prompt": "x" * 40}], lambda item: {"output_tokens": 7, "input_tokens": 10},
                     tmp_path / "r.jsonl", model_id="us.anthropic.claude-sonnet-4-6", region="us-west-2",
                     max_tokens=100, stats=stats, progress=False)
    assert read == [("us.anthropic.claude-sonnet-4-6", "us-west-2")]
    assert stats.target_rpm == pytest.approx(5700) and stats.target_tpm == pytest.approx(57_000_000)
    assert stats.limits.source == "test" and engine.last_stats() is stats


def test_sandbox_service_quotas_report_the_configured_limits():
    from utils.sandbox import start

    with start(faults={"rpm": {"amazon.nova-pro-v1:0": 1200, "*": 60}, "tpm": 90_000}) as sandbox:
        client = boto3.client("service-quotas", region_name="us-east-1", endpoint_url=sandbox.url,
                              aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
                              config=Config(retries={"mode": "standard", "max_attempts": 1}))
        nova = engine.quota_limits("amazon.nova-pro-v1:0", client=client)
        assert (nova.rpm, nova.tpm) == (1200, 90_000) and "L-F2717A44" in nova.source
        sonnet = engine.quota_limits("us.anthropic.claude-sonnet-4-6", client=client)  # stand-in code: by name
        assert (sonnet.rpm, sonnet.tpm, sonnet.burndown) == (60, 90_000, 5.0)


def test_a_call_past_its_timeout_is_abandoned_and_retried(tmp_path):
    path = tmp_path / "r.jsonl"
    attempts: dict[str, int] = {}
    release = threading.Event()

    def call(item):
        attempts[item["id"]] = attempts.get(item["id"], 0) + 1
        if item["id"] == "slow" and attempts["slow"] == 1:
            release.wait(5)  # hangs until the test lets it go, long after the engine gave up on it
            return {"late": True}
        return {"late": False}

    stats = engine.RunStats()
    rows = engine.run_calls([{"id": "slow"}, {"id": "fast"}], call, path, timeout=0.2, backoff_base=0.0,
                            stats=stats, progress=False)
    release.set()
    time.sleep(0.05)
    assert rows == [{"late": False, "id": "slow"}, {"late": False, "id": "fast"}]
    assert stats.timeouts == 1 and stats.retries == {"CallTimeout": 1}
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"late": False, "id": "fast"},
                                                                          {"late": False, "id": "slow"}]
