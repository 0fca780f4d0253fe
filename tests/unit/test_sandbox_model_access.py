"""A fresh account's model access (knob ``model_access="fresh"``), and what preflight makes of it."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import Env, sandbox_fixture
from utils import preflight
from utils.preflight import FAIL, PASS, WARN
from utils.sandbox.account_access import MARKETPLACE_DENIED, NO_MODEL_ACCESS, USE_CASE_DENIED

_sandbox = sandbox_fixture(time_scale=1.0)

LLAMA_PROFILE = "us.meta.llama3-3-70b-instruct-v1:0"
SONNET_PROFILE = "us.anthropic.claude-sonnet-4-6"
SUBSCRIPTION_S = 2.0  # long enough that two calls land inside the window on a loaded machine


@pytest.fixture
def fresh(sandbox: Env):
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{sandbox.url}/_sandbox/reset", method="POST"))
    sandbox.configure(model_access="fresh", anthropic_use_case_submitted=False,
                      marketplace_subscription_seconds=SUBSCRIPTION_S)
    yield sandbox
    sandbox.configure(model_access="open", anthropic_use_case_submitted=False)


def _ask(env: Env, model_id: str) -> dict:
    return env.client("bedrock-runtime").converse(
        modelId=model_id, messages=[{"role": "user", "content": [{"text": "What is Amazon S3?"}]}],
        inferenceConfig={"maxTokens": 20})


def _denied(env: Env, model_id: str) -> str:
    with pytest.raises(ClientError) as exc:
        _ask(env, model_id)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return exc.value.response["Error"]["Message"]


def _availability(env: Env, model_id: str) -> dict:
    out = env.client("bedrock").get_foundation_model_availability(modelId=model_id)
    out.pop("ResponseMetadata")
    return out


def test_default_account_has_every_model(sandbox: Env) -> None:
    assert sandbox.client("bedrock").get_foundation_model_availability(
        modelId="anthropic.claude-sonnet-4-6")["entitlementAvailability"] == "AVAILABLE"
    assert _ask(sandbox, SONNET_PROFILE)["output"]["message"]["content"][0]["text"]


def test_amazon_models_need_nothing(fresh: Env) -> None:
    assert _availability(fresh, "amazon.nova-lite-v1:0")["entitlementAvailability"] == "AVAILABLE"
    assert _ask(fresh, "amazon.nova-lite-v1:0")["usage"]["outputTokens"] > 0


def test_meta_models_are_not_sold_through_marketplace_and_need_nothing(fresh: Env) -> None:
    # https://docs.aws.amazon.com/bedrock/latest/userguide/model-access-product-ids.html: Meta's
    # models have no product ID and no subscription.
    avail = _availability(fresh, "meta.llama3-3-70b-instruct-v1:0")
    assert avail["entitlementAvailability"] == "AVAILABLE"
    assert avail["agreementAvailability"]["status"] == "AVAILABLE"
    assert _ask(fresh, LLAMA_PROFILE)["usage"]["outputTokens"] > 0


def test_marketplace_model_subscribes_on_first_call(fresh: Env) -> None:
    fresh.configure(anthropic_use_case_submitted=True)  # the form is not what this test is about
    model = "anthropic.claude-sonnet-4-6"
    before = _availability(fresh, model)
    assert before["entitlementAvailability"] == "NOT_AVAILABLE"
    assert before["agreementAvailability"] == {"status": "NOT_AVAILABLE"}
    assert before["authorizationStatus"] == "AUTHORIZED" and before["regionAvailability"] == "AVAILABLE"
    assert _denied(fresh, SONNET_PROFILE) == NO_MODEL_ACCESS  # the first call starts the subscription
    assert _availability(fresh, model)["agreementAvailability"]["status"] == "PENDING"
    assert _denied(fresh, SONNET_PROFILE) == NO_MODEL_ACCESS  # still subscribing
    time.sleep(SUBSCRIPTION_S + 0.1)
    assert _ask(fresh, SONNET_PROFILE)["usage"]["outputTokens"] > 0
    after = _availability(fresh, model)
    assert after["entitlementAvailability"] == "AVAILABLE" and after["agreementAvailability"]["status"] == "AVAILABLE"
    # Subscriptions are per account: another region sees it too.
    west = fresh.client("bedrock", "us-west-2").get_foundation_model_availability(modelId=model)
    assert west["entitlementAvailability"] == "AVAILABLE"


def test_anthropic_needs_the_use_case_form_and_the_subscription(fresh: Env) -> None:
    avail = _availability(fresh, "anthropic.claude-sonnet-4-6")
    assert avail["agreementAvailability"] == {"status": "NOT_AVAILABLE", "errorMessage": USE_CASE_DENIED}
    assert _denied(fresh, SONNET_PROFILE) == USE_CASE_DENIED
    assert _denied(fresh, SONNET_PROFILE) == USE_CASE_DENIED  # no subscription started without the form
    fresh.configure(anthropic_use_case_submitted=True)  # the admin marks the form submitted
    assert _denied(fresh, SONNET_PROFILE) == NO_MODEL_ACCESS  # now the subscription starts
    time.sleep(SUBSCRIPTION_S + 0.1)
    assert _ask(fresh, SONNET_PROFILE)["output"]["message"]["content"][0]["text"]


def test_knobs_are_validated(sandbox: Env) -> None:
    from utils.sandbox.account_access import AccountAccess

    for key, value in (("model_access", "closed"), ("marketplace_subscription_seconds", -1),
                       ("anthropic_use_case_submitted", "maybe"), ("caller_principal", "alice")):
        with pytest.raises(ValueError):
            AccountAccess.validate(key, value)


# ---- preflight under a fresh account ------------------------------------------------------------


@pytest.fixture
def fresh_env(fresh: Env, monkeypatch):
    for var in ("AWS_PROFILE", "WORKSHOP_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fresh.url)
    monkeypatch.setenv("WORKSHOP_BACKEND", "sandbox")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    return fresh


def _row(checklist: preflight.Checklist, name: str) -> preflight.Check:
    return next(c for c in checklist.checks if c.name == name)


def test_preflight_names_the_marketplace_and_use_case_form_fixes(fresh_env: Env) -> None:
    from tests.unit.test_preflight import TODAY

    # Judges and comparison models on: the third-party models of the profile are then in the plan.
    plan = preflight.plan_run("current", use_judges=True, use_comparison=True)
    checklist = preflight.run_preflight("current", plan=plan, today=TODAY, check_permissions=False)
    assert _row(checklist, "access: Amazon Nova Lite").status == PASS
    llama = next(c for c in checklist.checks if c.name.startswith("access: Meta Llama 3.3"))
    assert llama.status == PASS  # Meta's models are not sold through Marketplace
    sonnet = next(c for c in checklist.checks if c.name.startswith("access: Anthropic Claude Sonnet 4.6"))
    assert sonnet.status == WARN and "use-case form" in sonnet.fix and "before 06" in sonnet.fix
    # A Claude teacher is needed by 03: the same access problem then stops 01.
    plan = preflight.plan_run("current", teacher="claude-sonnet-4-6")
    checklist = preflight.run_preflight("current", plan=plan, today=TODAY, check_permissions=False)
    sonnet = next(c for c in checklist.checks if c.name.startswith("access: Anthropic Claude Sonnet 4.6"))
    assert sonnet.status == FAIL and "use-case form" in sonnet.fix


def test_preflight_maps_the_runtime_access_denied_messages() -> None:
    assert "not sold through AWS Marketplace" in preflight.explain_access_denied(NO_MODEL_ACCESS, "Meta")
    assert "aws-marketplace:Subscribe" in preflight.explain_access_denied(NO_MODEL_ACCESS, "Anthropic")
    assert "Marketplace" in preflight.explain_access_denied(MARKETPLACE_DENIED)
    assert "aws-marketplace:Subscribe" in preflight.explain_access_denied(MARKETPLACE_DENIED)
    assert "use-case form" in preflight.explain_access_denied(USE_CASE_DENIED)
