"""Tests for utils.costs: the dated price table, estimators and the money guard."""

from __future__ import annotations

import pytest

from utils import costs, models


def test_worked_example_from_the_pricing_page():
    # 2,000 examples × 800 tokens × 5 epochs × $0.001 per 1K = $8.00
    est = costs.estimate_training("nova-micro", train_tokens=2_000 * 800, epochs=5, months_stored=0)
    assert est.total == pytest.approx(8.00)
    assert est.gaps == []
    with_storage = costs.estimate_training("nova-micro", train_tokens=1_600_000, epochs=5)
    assert with_storage.total == pytest.approx(8.00 + 1.95)


def test_training_default_epochs_come_from_registry():
    est = costs.estimate_training("nova-lite", train_tokens=1_000_000, months_stored=0)
    # Nova default epochCount is 2; nova-lite's price is a derived $0.002/1K
    assert est.items[0].quantity == pytest.approx(2_000)
    assert est.total == pytest.approx(4.0)
    assert any("derived" in note for note in est.notes)


def test_every_table_row_is_dated_and_gaps_are_none():
    for row in costs.PRICE_TABLE:
        assert row.source and row.status
        if row.status in ("GAP", "n/a"):
            assert row.value is None
        else:
            assert row.value is not None and row.value >= 0
            assert row.source_date, row


def test_gap_gives_no_total_and_names_the_key():
    est = costs.estimate_training("nova-pro", train_tokens=1000, epochs=1, months_stored=1)
    assert est.total is None
    assert est.gaps == ["train_per_1k:nova-pro"]
    text = est.render()
    assert "price unknown — supply it via price_overrides" in text
    assert "train_per_1k:nova-pro" in text
    assert "us-east-1" in text and costs.PRICING_RESEARCHED_ON in text


def test_override_fills_a_gap():
    est = costs.estimate_training("claude-3-haiku", train_tokens=1_000_000, epochs=2, months_stored=0,
                                  price_overrides={"train_per_1k:claude-3-haiku": 0.004})
    assert est.total == pytest.approx(8.0)
    assert "price_overrides" in est.items[0].source
    with pytest.raises(ValueError):
        costs.estimate_training("nova-micro", 1, 1, price_overrides={"train_per_1k:nova-micro": -1})


def test_claude_storage_is_a_gap():
    # the storage row covers Nova/Titan/Cohere/Llama custom models only
    est = costs.estimate_training("claude-3-haiku", 1000, 1, price_overrides={"train_per_1k:claude-3-haiku": 1})
    assert est.gaps == ["storage_month:claude-3-haiku"]


def test_registry_price_keys_map_to_rows():
    assert costs.price_model("llama3-1-8b") == "llama3.1-8b"
    assert costs.price_model("llama3-70b") == "llama3-70b-instruct"  # local alias
    assert costs.price_model("amazon.nova-lite-v1:0") == "nova-lite"
    assert costs.price_model("titan-text-lite") == "titan-text-lite"  # not in registry: passes through
    for spec in models.MODELS.values():
        costs.estimate_inference(spec.key, 1000, 1000)  # never raises, gaps allowed


def test_inference_prices():
    est = costs.estimate_inference("nova-lite", input_tokens=1_000_000, output_tokens=500_000)
    assert est.total == pytest.approx(1000 * 0.00006 + 500 * 0.00024)
    llama = costs.estimate_inference("llama3-3-70b", 2000, 1000)
    assert llama.total == pytest.approx(3 * 0.00072)
    conflict = costs.estimate_inference("llama3-70b", 1000, 1000)
    assert any("CONFLICT" in note for note in conflict.notes)
    sonnet46 = costs.estimate_inference("claude-sonnet-4-6", 1000, 1000)
    assert sonnet46.total is None
    assert sonnet46.gaps == ["od_in_per_1k:claude-sonnet-4-6", "od_out_per_1k:claude-sonnet-4-6"]


def test_batch_pricing():
    est = costs.estimate_inference("claude-3-haiku", 1_000_000, 1_000_000, batch=True)
    assert est.items[0].unit_price == pytest.approx(0.000125)
    assert est.items[1].unit_price == pytest.approx(0.000625)
    nova = costs.estimate_inference("nova-lite", 1000, 1000, batch=True)  # no batch row: gap
    assert nova.gaps == ["batch_in_per_1k:nova-lite", "batch_out_per_1k:nova-lite"]
    filled = costs.estimate_inference("nova-lite", 1000, 1000, batch=True, price_overrides={
        "batch_in_per_1k:nova-lite": 0.00003, "batch_out_per_1k:nova-lite": 0.00012})
    assert filled.total == pytest.approx(0.00015)


def test_region_outside_table_is_a_gap():
    assert costs.estimate_inference("nova-lite", 1000, 1000, region="us-west-2").total is not None
    est = costs.estimate_inference("nova-lite", 1000, 1000, region="ap-south-1")
    assert est.total is None and "od_in_per_1k:nova-lite" in est.gaps


def test_provisioned_throughput():
    est = costs.estimate_provisioned_throughput("titan-text-express", hours=3)
    assert est.total == pytest.approx(3 * 20.50)
    month = costs.estimate_provisioned_throughput("titan-text-express", hours=10, commitment="1mo")
    assert month.total == pytest.approx(730 * 18.40)  # billed for the whole term
    six = costs.estimate_provisioned_throughput("titan-text-express", 10, commitment="SIX_MONTHS", model_units=2)
    assert six.total == pytest.approx(6 * 730 * 14.80 * 2)
    for key in ("nova-lite", "llama3-1-8b", "claude-3-haiku"):
        gap = costs.estimate_provisioned_throughput(key, hours=1)
        assert gap.total is None and gap.gaps == [f"pt_hour_nocommit:{costs.price_model(key)}"]
    with pytest.raises(ValueError):
        costs.estimate_provisioned_throughput("titan-text-express", 1, commitment="3mo")


def test_on_demand_deployment_is_base_tokens_plus_storage():
    est = costs.estimate_on_demand_deployment("nova-micro", 1_000_000, 1_000_000, months_stored=2)
    assert est.total == pytest.approx(1000 * 0.000035 + 1000 * 0.00014 + 2 * 1.95)
    llama = costs.estimate_on_demand_deployment("llama3-1-8b", 1000, 1000)
    assert any("Provisioned Throughput" in note for note in llama.notes)


def test_import_rounds_to_five_minute_windows():
    est = costs.estimate_import("llama3-1-8b", active_minutes=11, months_stored=0)
    assert est.items[0].quantity == 2 * 15  # 2 CMUs × 3 windows × 5 minutes
    assert est.total == pytest.approx(30 * 0.05718)
    eu = costs.estimate_import(cmus=4, active_minutes=5, months_stored=0, region="eu-central-1")
    assert eu.total == pytest.approx(20 * 0.07144)
    with pytest.raises(ValueError):
        costs.estimate_import("nova-lite", active_minutes=5)  # CMU count unknown


def test_combine():
    both = costs.estimate_inference("nova-pro", 1000, 1000) + costs.estimate_training("nova-micro", 1000, 1, 0)
    assert both.total == pytest.approx(0.0008 + 0.0032 + 0.001)
    assert len(both.items) == 3


# ---------------------------------------------------------------------------- guard


def test_guard_proceeds_only_when_confirmed_known_and_within_budget(capsys):
    est = costs.estimate_training("nova-micro", 1_600_000, 5, months_stored=0)
    assert costs.guard(est, confirm_spend=True) is True
    out = capsys.readouterr().out
    assert "$8.00" in out and "Proceeding" in out
    assert costs.guard(est, confirm_spend=True, max_usd=8.0) is True


def test_guard_refuses_without_confirmation(capsys, monkeypatch):
    monkeypatch.delenv(costs.CONFIRM_SPEND_ENV, raising=False)
    est = costs.estimate_training("nova-micro", 1_600_000, 5, months_stored=0)
    assert costs.guard(est, confirm_spend=False) is False
    out = capsys.readouterr().out
    assert "$8.00" in out  # the estimate is always shown first
    assert out.index("$8.00") < out.index("Nothing was created")
    assert "confirm_spend=True" in out


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_guard_takes_the_opt_in_from_the_environment(capsys, monkeypatch, value):
    """`make lab` sets WORKSHOP_CONFIRM_SPEND=1: the committed confirm_spend=False then proceeds, saying why."""
    monkeypatch.setenv(costs.CONFIRM_SPEND_ENV, value)
    est = costs.estimate_training("nova-micro", 1_600_000, 5, months_stored=0)
    assert costs.guard(est, confirm_spend=False) is True
    out = capsys.readouterr().out
    assert "switched on by WORKSHOP_CONFIRM_SPEND=1" in out and "Proceeding" in out
    # The budget and the price gaps still apply.
    assert costs.guard(est, confirm_spend=False, max_usd=7.99) is False
    assert costs.guard(costs.estimate_provisioned_throughput("nova-lite", hours=1), confirm_spend=False) is False


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_guard_ignores_an_environment_without_the_opt_in(capsys, monkeypatch, value):
    monkeypatch.setenv(costs.CONFIRM_SPEND_ENV, value)
    est = costs.estimate_training("nova-micro", 1_600_000, 5, months_stored=0)
    assert costs.guard(est, confirm_spend=False) is False
    assert "confirm_spend is False" in capsys.readouterr().out


def test_guard_refuses_over_budget(capsys):
    est = costs.estimate_training("nova-micro", 1_600_000, 5, months_stored=0)
    assert costs.guard(est, confirm_spend=True, max_usd=7.99) is False
    out = capsys.readouterr().out
    assert "exceeds max_usd=7.99" in out and "raise max_usd" in out


def test_guard_refuses_gaps_and_names_the_override(capsys):
    est = costs.estimate_provisioned_throughput("nova-lite", hours=1)
    assert costs.guard(est, confirm_spend=True, max_usd=1000) is False
    out = capsys.readouterr().out
    assert "price unknown — supply it via price_overrides" in out
    assert "price_overrides={'pt_hour_nocommit:nova-lite': <USD>}" in out
    filled = costs.estimate_provisioned_throughput(
        "nova-lite", hours=1, price_overrides={"pt_hour_nocommit:nova-lite": 10.0})
    assert costs.guard(filled, confirm_spend=True, max_usd=1000) is True


def test_an_unbilled_endpoint_counts_gaps_as_zero_and_says_so(monkeypatch):
    monkeypatch.delenv(costs.UNBILLED_ENV, raising=False)
    assert costs.estimate_training("nova-pro", train_tokens=1000, epochs=1, months_stored=1).total is None
    monkeypatch.setenv(costs.UNBILLED_ENV, "1")
    est = costs.estimate_training("nova-pro", train_tokens=1000, epochs=1, months_stored=1)
    assert est.gaps == [] and est.total is not None
    assert costs.UNBILLED_ENV in est.items[0].source and est.items[0].unit_price == 0.0
    assert any("bills nothing" in note for note in est.notes)
