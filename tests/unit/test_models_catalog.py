"""utils.models: the catalog of customizable models and whole-number hyperparameters."""

from __future__ import annotations

import pytest

from utils import customization, models

NOVA_LITE = models.MODELS["nova-lite"]


def test_registry_customization_ids_are_in_the_catalog() -> None:
    for spec in models.MODELS.values():
        if spec.customization_id:
            entry = models.customizable(spec.customization_id)
            assert entry.family == spec.family and entry.name == spec.name
            assert models.family_of(spec.customization_id) == spec.family
    for entry in models.CUSTOMIZABLE.values():
        assert entry.family in models.FAMILY_FORMATS and entry.family in models.HYPERPARAMETERS
        assert models.FINE_TUNING in entry.types
        assert (models.CONTINUED_PRE_TRAINING in entry.types) == (
            entry.family == "titan" and "premier" not in entry.customization_id
        )


def test_arns_resolve_to_their_customization_id() -> None:
    cid = NOVA_LITE.customization_id
    assert models.customizable(f"arn:aws:bedrock:us-east-1::foundation-model/{cid}").customization_id == cid
    custom = f"arn:aws:bedrock:us-east-1:111122223333:custom-model/{cid}/abcdefgh1234"
    assert models.customizable(custom).customization_id == cid
    assert models.data_format(custom) == models.data_format(cid) == models.FORMAT_CONVERSATION


@pytest.mark.parametrize(
    "wrong",
    [
        NOVA_LITE.model_id,  # on-demand
        NOVA_LITE.profile_id(),  # inference profile
        f"{NOVA_LITE.model_id}:128k",  # another context size
        NOVA_LITE.customization_id.upper(),  # case
        "nova-lite",  # registry key
    ],
)
def test_near_misses_name_the_customizable_variant(wrong: str) -> None:
    with pytest.raises(models.UnknownCustomizationModel) as exc:
        models.customizable(wrong)
    message = str(exc.value)
    assert wrong in message and f"use {NOVA_LITE.customization_id} " in message


def test_look_alike_lists_the_ids_of_its_line() -> None:
    with pytest.raises(models.UnknownCustomizationModel) as exc:
        models.customizable("amazon.nova-ultra-v9:0")
    nova = [cid for cid in models.CUSTOMIZABLE if cid.startswith("amazon.nova")]
    assert all(cid in str(exc.value) for cid in nova)
    assert "meta.llama" not in str(exc.value)
    with pytest.raises(models.UnknownCustomizationModel, match="cannot be customized"):
        models.customizable(models.MODELS["claude-sonnet-4-6"].profile_id())
    with pytest.raises(models.UnknownCustomizationModel) as exc:
        models.customizable("acme.model-v1")
    assert all(cid in str(exc.value) for cid in models.CUSTOMIZABLE)


def test_unknown_model_error_renders_as_one_line_in_jupyter() -> None:
    try:
        models.customizable("amazon.nova-ultra-v9:0")
    except models.UnknownCustomizationModel as exc:
        rendered = exc._render_traceback_()
    assert len(rendered) == 1 and rendered[0].startswith("UnknownCustomizationModel: ")


# --------------------------------------------------------------------------------------
# Hyperparameters: whole numbers where integers are declared
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [3.7, "3.7", True, False, "three", float("nan"), float("inf"), [3], None])
def test_integer_hyperparameter_refuses_non_integers(value: object) -> None:
    epochs = {hp.name: hp for hp in models.hyperparameters(NOVA_LITE.customization_id)}["epochCount"]
    with pytest.raises(ValueError, match=r"epochCount must be a whole number in 1\.\.5"):
        epochs.api_value(value, NOVA_LITE.customization_id)


@pytest.mark.parametrize(("value", "expected"), [(3, "3"), (3.0, "3"), ("3", "3"), (" 4 ", "4")])
def test_integer_hyperparameter_accepts_whole_numbers(value: object, expected: str) -> None:
    epochs = {hp.name: hp for hp in models.hyperparameters(NOVA_LITE.customization_id)}["epochCount"]
    assert epochs.api_value(value) == expected


def test_float_hyperparameter_and_ranges() -> None:
    specs = {hp.name: hp for hp in models.hyperparameters(NOVA_LITE.customization_id)}
    assert specs["learningRate"].api_value("2e-5") == "2e-05"
    assert specs["learningRate"].api_value(0.0001) == "0.0001"
    with pytest.raises(ValueError, match=r"out of range.*1e-06\.\.0\.0001"):
        specs["learningRate"].api_value(0.5)
    with pytest.raises(ValueError, match="must be a number"):
        specs["learningRate"].api_value(True)


def test_hyperparameters_for_refuses_instead_of_truncating() -> None:
    cid = NOVA_LITE.customization_id
    assert customization.hyperparameters_for(cid, epochCount=3)["epochCount"] == "3"
    for value in (3.7, "3.7", True):
        with pytest.raises(ValueError, match=r"whole number in 1\.\.5"):
            customization.hyperparameters_for(cid, epochCount=value)
    with pytest.raises(ValueError, match=r"1\.\.5"):
        customization.hyperparameters_for(cid, epochCount=9)
    warmup = customization.hyperparameters_for(cid, learningRateWarmupSteps=12.0)
    assert warmup["learningRateWarmupSteps"] == "12"
