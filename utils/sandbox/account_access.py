"""The account's own access: model access on a fresh account, and the caller-permission knobs.

Knobs (validated here, applied by ``Bedrock.configure``; see the sandbox README's knob table):
``model_access``, ``anthropic_use_case_submitted``, ``marketplace_subscription_seconds``
(:class:`AccountAccess`), and ``caller_principal``, ``caller_access_keys`` (read by
``utils/sandbox/caller.py``). Not to be confused with ``bedrock/access.py``, the checks a
job's *service role* must pass.
"""

from __future__ import annotations

from typing import Any

# AccessDenied wordings, as reported from real accounts:
# the Marketplace one in https://github.com/aws-samples/anthropic-on-aws/issues/251 (and
# aws-solutions-library-samples/accelerated-intelligent-document-processing-on-aws#124),
# Anthropic's form in https://github.com/obot-platform/obot/issues/6747, the generic one in
# https://repost.aws/knowledge-center/bedrock-invokemodel-api-error.
MARKETPLACE_DENIED = (
    "Model access is denied due to IAM user or service role is not authorized to perform the required "
    "AWS Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable access "
    "to this model. Refer to the Amazon Bedrock documentation for further details. Your AWS Marketplace "
    "subscription for this model cannot be completed at this time. If you recently fixed this issue, try "
    "again after 2 minutes."
)
USE_CASE_DENIED = (
    "Model use case details have not been submitted for this account. Fill out the Anthropic use case "
    "details form before using the model. If you have already filled out the form, try again in 15 minutes."
)
NO_MODEL_ACCESS = "You don't have access to the model with the specified model ID."
# Model-ID prefixes of the providers whose serverless models are not sold through AWS Marketplace
# (no product ID, no subscription): "Amazon, DeepSeek, Mistral AI, Meta, Qwen, OpenAI" per
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-access-product-ids.html
NOT_ON_MARKETPLACE = frozenset({"amazon", "deepseek", "mistral", "meta", "qwen", "openai"})
MARKETPLACE_ACTIONS = ("aws-marketplace:ViewSubscriptions", "aws-marketplace:Subscribe")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ValueError(f"expected a boolean, got {value!r}")


def _mode(value: Any) -> str:
    if value not in ("open", "fresh"):
        raise ValueError("model_access must be 'open' or 'fresh'")
    return str(value)


def _seconds(value: Any) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("marketplace_subscription_seconds must be >= 0")
    return seconds


def _principal(value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not text.startswith("arn:") or (":role/" not in text and ":user/" not in text):
        raise ValueError("caller_principal must be an IAM role or user ARN (or null to turn the mode off)")
    return text


def _keys(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or [])
    if not items or not all(isinstance(k, str) and k for k in items):
        raise ValueError("caller_access_keys must be a non-empty list of access key IDs")
    return items


# knob -> validator (raises ValueError); defaults in AccountAccess.DEFAULTS
KNOBS = {
    "model_access": _mode,
    "anthropic_use_case_submitted": _bool,
    "marketplace_subscription_seconds": _seconds,
    "caller_principal": _principal,
    "caller_access_keys": _keys,
}


class AccountAccess:
    """Knobs and state of the account's own access (see the sandbox README's knob table).

    ``model_access="fresh"`` reports a fresh account's truth, per
    https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html: models not sold through
    AWS Marketplace (``NOT_ON_MARKETPLACE``: Amazon, Meta, ...) need nothing; other providers' models
    need an AWS Marketplace subscription, which the first runtime call starts (the caller needs ``aws-marketplace:Subscribe`` and ``ViewSubscriptions``);
    Anthropic's models also need the one-time use-case form (``anthropic_use_case_submitted``).
    The docs say calls may succeed while the subscription is finalised; the sandbox answers
    AccessDenied until it completes (``marketplace_subscription_seconds`` × ``time_scale``; AWS
    says up to a few minutes), the stricter reading (our choice). Subscriptions are per account,
    so every region sees them. Custom models and deployments need no subscription (our assumption).
    """

    DEFAULTS: dict[str, Any] = {
        "model_access": "open", "anthropic_use_case_submitted": False,
        "marketplace_subscription_seconds": 2.0, "caller_principal": None,
        "caller_access_keys": ["sandbox"],
    }

    def __init__(self) -> None:
        self.knobs: dict[str, Any] = dict(self.DEFAULTS)
        self.subscriptions: dict[str, float] = {}  # foundation model ID -> ready at (epoch s)

    @staticmethod
    def validate(key: str, value: Any) -> Any:
        return KNOBS[key](value)

    def update(self, values: dict[str, Any]) -> None:
        self.knobs.update(values)

    def settings(self) -> dict[str, Any]:
        return dict(self.knobs)

    def reset(self) -> None:
        self.subscriptions.clear()

    @staticmethod
    def provider(model_id: str) -> str:
        return model_id.split(".", 1)[0].lower()

    def _needs_subscription(self, model_id: str) -> bool:
        return self.knobs["model_access"] == "fresh" and self.provider(model_id) not in NOT_ON_MARKETPLACE

    def _form_missing(self, model_id: str) -> bool:
        return self.provider(model_id) == "anthropic" and not self.knobs["anthropic_use_case_submitted"]

    def availability(self, model_id: str, now: float) -> dict[str, Any]:
        """``GetFoundationModelAvailability`` (botocore shape: agreementAvailability{status,
        errorMessage}, authorizationStatus, entitlementAvailability, regionAvailability). Which
        field a fresh account's missing subscription or form shows in is undocumented: the
        sandbox reports both as entitlement NOT_AVAILABLE and agreement NOT_AVAILABLE (PENDING
        while subscribing), with the form's message as the agreement's errorMessage (our choice)."""
        out: dict[str, Any] = {
            "modelId": model_id, "agreementAvailability": {"status": "AVAILABLE"},
            "authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
            "regionAvailability": "AVAILABLE",
        }
        if not self._needs_subscription(model_id):
            return out
        ready = self.subscriptions.get(model_id)
        if self._form_missing(model_id):
            out["agreementAvailability"] = {"status": "NOT_AVAILABLE", "errorMessage": USE_CASE_DENIED}
            out["entitlementAvailability"] = "NOT_AVAILABLE"
        elif ready is None:
            out["agreementAvailability"] = {"status": "NOT_AVAILABLE"}
            out["entitlementAvailability"] = "NOT_AVAILABLE"
        elif now < ready:
            out["agreementAvailability"] = {"status": "PENDING"}
            out["entitlementAvailability"] = "NOT_AVAILABLE"
        return out

    def subscribing(self, model_id: str) -> bool:
        """Whether a runtime call to ``model_id`` would start its Marketplace subscription (the
        caller-permission mode then checks the caller's ``aws-marketplace`` actions first)."""
        return self._needs_subscription(model_id) and not self._form_missing(model_id) \
            and model_id not in self.subscriptions

    def invoke_denied(self, model_id: str, now: float, time_scale: float) -> str | None:
        """The AccessDenied message for a runtime call to foundation model ``model_id``, or ``None``.

        The first call of a subscribable model starts its subscription (once the form is in; the
        caller-permission mode checks the caller's Marketplace actions before this) and is denied
        like every call until the subscription is ready."""
        if not self._needs_subscription(model_id):
            return None
        if self._form_missing(model_id):
            return USE_CASE_DENIED
        ready = self.subscriptions.get(model_id)
        if ready is None:
            ready = self.subscriptions[model_id] = now + self.knobs["marketplace_subscription_seconds"] * time_scale
        return None if now >= ready else NO_MODEL_ACCESS

