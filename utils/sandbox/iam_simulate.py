"""``iam:SimulatePrincipalPolicy`` for the sandbox (moto's server answers it with an HTTP 500).

Preflight (issue 4) asks IAM whether the caller may perform the series' actions. This
handler evaluates the principal's inline and attached managed policies with moto's own
policy evaluator (``moto.iam.access_control.IAMPolicy``): ``allowed`` when a statement
allows the action on the resource and none denies it, ``explicitDeny`` when one denies
it, else ``implicitDeny``. Condition keys and SCPs are not evaluated (documented in
README.md). An unknown principal answers ``NoSuchEntity``, as IAM does; the sandbox's
default caller (moto's ``user/moto``) is one, so preflight reports "could not check".
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

ACTION = "SimulatePrincipalPolicy"
_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def wants(body: bytes) -> bool:
    """True for a SimulatePrincipalPolicy query-protocol request body."""
    return f"Action={ACTION}".encode() in body


def _members(params: dict[str, list[str]], prefix: str) -> list[str]:
    """``ActionNames.member.1``, ``.2``, ... in order."""
    found = []
    index = 1
    while f"{prefix}.member.{index}" in params:
        found.append(params[f"{prefix}.member.{index}"][0])
        index += 1
    return found


def _principal_policies(arn: str) -> list[Any]:
    """The moto policies (inline JSON strings and ManagedPolicy objects) of a role or user ARN."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    entity = backend.get_role(name) if kind == "role" else backend.get_user(name) if kind == "user" else None
    if entity is None:
        raise LookupError(arn)
    return list(entity.policies.values()) + list(entity.managed_policies.values())


def decide(policies: list[Any], action: str, resource: str) -> str:
    """IAM's evaluation logic without conditions: explicit deny > allow > implicit deny."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = [IAMPolicy(policy).is_action_permitted(action, resource) for policy in policies]
    if PermissionResult.DENIED in results:
        return "explicitDeny"
    return "allowed" if PermissionResult.PERMITTED in results else "implicitDeny"


def handle(body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer one SimulatePrincipalPolicy request (query protocol, XML out)."""
    params = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    principal = params.get("PolicySourceArn", [""])[0]
    actions = _members(params, "ActionNames")
    resources = _members(params, "ResourceArns") or ["*"]
    headers = [("Content-Type", "text/xml")]
    request_id = str(uuid.uuid4())
    try:
        policies = _principal_policies(principal)
    except Exception:  # noqa: BLE001 - moto raises its own not-found classes
        error = (
            f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>'
            f"<Message>{escape(principal)} is not a role or user in this account.</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return 404, headers, error.encode()
    members = "".join(
        f"<member><EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        f"<EvalDecision>{decide(policies, action, resource)}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for action in actions
        for resource in resources
    )
    xml = (
        f'<SimulatePrincipalPolicyResponse xmlns="{_NS}"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
        f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{request_id}</RequestId>"
        "</ResponseMetadata></SimulatePrincipalPolicyResponse>"
    )
    return 200, headers, xml.encode()
