"""Fault injection: token buckets for RPM/TPM, seeded fault rates, latency, profiles."""

from __future__ import annotations

import pytest

from utils.sandbox.faults import PROFILES, Fault, Faults


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_defaults_are_off() -> None:
    faults = Faults()
    assert faults.settings() == PROFILES["off"]
    for _ in range(500):
        faults.before_call("m", 10_000)
    assert faults.latency_seconds() == 0.0
    assert not any(faults.malformed_output() for _ in range(100))


def test_rpm_bucket_throttles_and_refills() -> None:
    clock = Clock()
    faults = Faults(clock)
    faults.configure({"rpm": 3, "burst": 1.0})
    for _ in range(3):
        faults.before_call("m", 1)
    with pytest.raises(Fault) as info:
        faults.before_call("m", 1)
    assert (info.value.code, info.value.status) == ("ThrottlingException", 429)
    assert info.value.message == "Too many requests, please wait before trying again."
    faults.before_call("other-model", 1)  # buckets are per model
    clock.now += 20  # 3 per minute -> one request per 20 s
    faults.before_call("m", 1)
    with pytest.raises(Fault):
        faults.before_call("m", 1)


def test_tpm_bucket_throttles_and_refills() -> None:
    clock = Clock()
    faults = Faults(clock)
    faults.configure({"tpm": 1000, "burst": 1.0})
    faults.before_call("m", 600)
    with pytest.raises(Fault) as info:
        faults.before_call("m", 600)
    assert info.value.status == 429 and "tokens" in info.value.message
    clock.now += 12  # 1000 per minute -> 200 tokens refilled
    faults.before_call("m", 600)


def test_per_model_limits_dict() -> None:
    faults = Faults(Clock())
    faults.configure({"rpm": {"slow": 1, "*": None}, "burst": 1.0})
    faults.before_call("slow", 1)
    with pytest.raises(Fault):
        faults.before_call("slow", 1)
    for _ in range(50):
        faults.before_call("fast", 1)


def test_buckets_start_nearly_empty_and_fill_at_the_limit() -> None:
    clock = Clock()
    faults = Faults(clock)
    faults.configure({"rpm": 600, "burst": 0.0})  # 10 requests per second, no burst
    with pytest.raises(Fault):
        faults.before_call("m", 1)
    clock.now += 0.1  # one request refilled
    faults.before_call("m", 1)
    with pytest.raises(Fault):
        faults.before_call("m", 1)
    faults.configure({"rpm": 600, "burst": PROFILES["off"]["burst"]})  # 5 % of a minute = 30 requests
    passed = 0
    for _ in range(100):
        try:
            faults.before_call("m", 1)
            passed += 1
        except Fault:
            break
    assert passed == 30
    clock.now += 61
    for _ in range(600):  # idle for a minute: the bucket holds a full minute again
        faults.before_call("m", 1)


def test_throttling_rate_consumes_nothing_and_limits_are_reported() -> None:
    clock = Clock()
    faults = Faults(clock)
    faults.configure({"throttling_rate": 0.5, "rpm": {"m": 60, "*": 5}, "tpm": 1000, "burst": 1.0, "seed": 1})
    outcomes = []
    for _ in range(60):
        try:
            faults.before_call("m", 1)
            outcomes.append("ok")
        except Fault as fault:
            outcomes.append(fault.code)
    assert outcomes.count("ok") == 60 - outcomes.count("ThrottlingException")
    assert 15 <= outcomes.count("ThrottlingException") <= 45
    assert faults.limits("m") == (60, 1000) and faults.limits("other") == (5, 1000)
    from utils.sandbox import faults as module

    assert module.latest() is faults


def test_settle_returns_unused_reservation() -> None:
    clock = Clock()
    faults = Faults(clock)
    faults.configure({"tpm": 1000, "burst": 1.0})
    faults.before_call("m", 900)  # reserves input + max_tokens
    with pytest.raises(Fault):
        faults.before_call("m", 900)
    faults.settle("m", 900, 200)  # the call used only 200
    faults.before_call("m", 800)
    faults.settle("m", 800, 900)  # used more than reserved: nothing comes back
    faults.settle("unknown", 10, 0)  # no bucket: nothing to do
    with pytest.raises(Fault):
        faults.before_call("m", 100)


def sequence(seed: int, calls: int = 400) -> list[str]:
    faults = Faults(Clock())
    faults.configure({"service_unavailable_rate": 0.1, "model_timeout_rate": 0.05, "seed": seed})
    out = []
    for _ in range(calls):
        try:
            faults.before_call("m", 1)
            out.append("ok")
        except Fault as fault:
            out.append(f"{fault.code}:{fault.status}")
    return out


def test_fault_rates_are_seeded_and_deterministic() -> None:
    first, again, other = sequence(7), sequence(7), sequence(8)
    assert first == again and first != other
    assert 20 <= first.count("ServiceUnavailableException:503") <= 60
    assert 5 <= first.count("ModelTimeoutException:408") <= 40


def test_malformed_and_latency_knobs() -> None:
    faults = Faults()
    faults.configure({"malformed_output_rate": 1.0, "latency_ms": 250})
    assert faults.malformed_output() and faults.latency_seconds() == 0.25
    faults.configure({"latency_jitter": 0.5, "seed": 3})
    draws = [faults.latency_seconds() for _ in range(20)]
    assert all(0.125 <= d <= 0.375 for d in draws) and len(set(draws)) > 1


def test_realistic_profile_and_overrides() -> None:
    faults = Faults()
    faults.configure({"profile": "realistic", "rpm": 5})
    settings = faults.settings()
    assert settings["profile"] == "realistic" and settings["rpm"] == 5 and settings["latency_ms"] > 0
    faults.configure({"profile": "off"})
    assert faults.settings() == PROFILES["off"]


@pytest.mark.parametrize(
    "bad",
    [{"profile": "chaos"}, {"rpm": 0}, {"tpm": "many"}, {"service_unavailable_rate": 2},
     {"latency_ms": -1}, {"unknown": 1}, {"seed": 1.5},
     {"service_unavailable_rate": 0.7, "model_timeout_rate": 0.7}, {"burst": 1.5},
     {"throttling_rate": 0.6, "service_unavailable_rate": 0.5}],
)
def test_configure_rejects_bad_settings(bad: dict[str, object]) -> None:
    faults = Faults()
    with pytest.raises(ValueError):
        faults.configure(bad)
    assert faults.settings() == PROFILES["off"]
