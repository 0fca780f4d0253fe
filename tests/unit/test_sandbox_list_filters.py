"""The filters every sandbox ``list_*`` operation shares (``store.matching``), and the ones a family adds."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.unit.test_sandbox_control import run_job
from tests.unit.test_sandbox_support import Env, sandbox_fixture
from utils.sandbox.bedrock.store import matching

_sandbox = sandbox_fixture()

ITEMS = [
    SimpleNamespace(name="alpha-1", created=100.0, submitted=10.0, status="Completed", kind="a"),
    SimpleNamespace(name="alpha-2", created=200.0, submitted=20.0, status="InProgress", kind="b"),
    SimpleNamespace(name="beta-3", created=300.0, submitted=30.0, status="Completed", kind="a"),
]


def names(items: list[SimpleNamespace]) -> list[str]:
    return [item.name for item in items]


def test_no_filter_keeps_every_item_in_order() -> None:
    assert names(matching(ITEMS, {})) == ["alpha-1", "alpha-2", "beta-3"]
    assert names(matching(ITEMS, {"nameContains": "", "statusEquals": None})) == ["alpha-1", "alpha-2", "beta-3"]


def test_time_window_is_exclusive_and_takes_iso_or_epoch() -> None:
    assert names(matching(ITEMS, {"creationTimeAfter": 100, "creationTimeBefore": 300})) == ["alpha-2"]
    assert names(matching(ITEMS, {"creationTimeAfter": "1970-01-01T00:01:39Z"})) == ["alpha-1", "alpha-2", "beta-3"]
    assert names(matching(ITEMS, {"creationTimeBefore": "1970-01-01T00:03:20+00:00"})) == ["alpha-1"]


def test_time_window_names_its_attribute_and_parameters() -> None:
    batch = {"submitTimeAfter": 15, "submitTimeBefore": 25, "creationTimeAfter": 1000}
    assert names(matching(ITEMS, batch, time_attr="submitted", after="submitTimeAfter",
                          before="submitTimeBefore")) == ["alpha-2"]
    assert names(matching(ITEMS, {"createdAfter": 150}, after="createdAfter", before="createdBefore")) == [
        "alpha-2", "beta-3"]


def test_status_name_and_family_filters_combine() -> None:
    assert names(matching(ITEMS, {"statusEquals": "Completed"})) == ["alpha-1", "beta-3"]
    assert names(matching(ITEMS, {"statusEquals": "Completed", "nameContains": "alpha"})) == ["alpha-1"]
    kind = {"kindEquals": lambda item: item.kind}
    assert names(matching(ITEMS, {"kindEquals": "b"}, equals=kind)) == ["alpha-2"]
    assert names(matching(ITEMS, {"kindEquals": "a", "nameContains": "beta"}, equals=kind)) == ["beta-3"]


def test_a_family_without_status_ignores_status_equals() -> None:
    assert names(matching(ITEMS, {"statusEquals": "Failed"}, status_attr=None)) == ["alpha-1", "alpha-2", "beta-3"]


def test_false_is_a_filter_value() -> None:
    owned = {"isOwned": lambda item: item.kind == "a"}
    assert names(matching(ITEMS, {"isOwned": False}, equals=owned)) == ["alpha-2"]
    assert names(matching(ITEMS, {"isOwned": True}, equals=owned)) == ["alpha-1", "beta-3"]


def test_a_malformed_timestamp_is_a_validation_error_even_on_an_empty_list() -> None:
    with pytest.raises(Exception, match="Invalid timestamp"):
        matching([], {"creationTimeBefore": "yesterday"})


# ---- through boto3 -----------------------------------------------------------------------------


def test_list_custom_models_is_owned(sandbox: Env) -> None:
    """botocore's ListCustomModelsRequest has ``isOwned``: true lists this account's models, false
    the ones shared with it (none in the sandbox)."""
    br = sandbox.client("bedrock")
    name = run_job(sandbox)["outputModelName"]
    assert [m["modelName"] for m in br.list_custom_models(nameContains=name, isOwned=True)["modelSummaries"]] == [name]
    assert br.list_custom_models(nameContains=name, isOwned=False)["modelSummaries"] == []
    assert [m["modelName"] for m in br.list_custom_models(nameContains=name)["modelSummaries"]] == [name]


def test_list_jobs_time_window_through_boto3(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    job = run_job(sandbox)
    created = job["creationTime"]
    listed = br.list_model_customization_jobs(nameContains=job["jobName"], creationTimeAfter=created - timedelta(seconds=1),
                                              creationTimeBefore=created + timedelta(seconds=1))
    assert [j["jobArn"] for j in listed["modelCustomizationJobSummaries"]] == [job["jobArn"]]
    later = br.list_model_customization_jobs(nameContains=job["jobName"], creationTimeAfter=created + timedelta(seconds=1))
    assert later["modelCustomizationJobSummaries"] == []
