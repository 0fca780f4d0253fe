"""``iam:SimulatePrincipalPolicy`` for the sandbox (moto's server answers it with an HTTP 500).

Preflight asks IAM whether the caller may perform the series' actions. This
handler evaluates the principal's inline and attached managed policies with moto's own
policy evaluator (``moto.iam.access_control.IAMPolicy``): ``allowed`` when a statement
allows the action on the resource and none denies it, ``explicitDeny`` when one denies
it, else ``implicitDeny``. Condition keys and SCPs are not evaluated (documented in
README.md). moto's statement matcher is corrected in three places: ``NotResource`` is
honoured (moto treats a statement without ``Resource`` as matching everything), IAM
wildcards are ``*`` and ``?`` only (moto builds a regex, so ``.`` or ``[`` were special),
and action names match case-insensitively. :func:`decide` is also what the control
plane uses for a customization job's S3 checks, through the same backend accessor. An unknown principal answers ``NoSuchEntity``, as IAM does; the sandbox's
default caller (moto's ``user/moto``) is one, so preflight reports "could not check".
"""

from __future__ import annotations

import re
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


def iam_backend() -> Any:
    """moto's IAM backend of the sandbox account (IAM is global: one backend per partition)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    return iam_backends[DEFAULT_ACCOUNT_ID]["aws"]


def entity_policies(entity: Any) -> list[Any]:
    """A moto role's or user's inline (JSON strings) and attached managed policies."""
    return list(entity.policies.values()) + list(entity.managed_policies.values())


def _principal_policies(arn: str) -> list[Any]:
    """The moto policies (inline JSON strings and ManagedPolicy objects) of a role or user ARN."""
    backend = iam_backend()
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    entity = backend.get_role(name) if kind == "role" else backend.get_user(name) if kind == "user" else None
    if entity is None:
        raise LookupError(arn)
    return entity_policies(entity)


def _glob(pattern: str, value: str, *, fold: bool) -> bool:
    """IAM wildcard match: ``*`` any run, ``?`` one character, everything else literal."""
    regex = ".*".join(".".join(re.escape(part) for part in chunk.split("?")) for chunk in pattern.split("*"))
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL if fold else re.DOTALL) is not None


def _statement_class() -> Any:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    class Statement(IAMPolicyStatement):  # type: ignore[misc]
        def _check_element_matches(self, statement_element: Any, value: str) -> bool:
            patterns = self._statement[statement_element]
            patterns = patterns if isinstance(patterns, list) else [patterns]
            fold = statement_element in ("Action", "NotAction")
            return any(_glob(str(p), value, fold=fold) for p in patterns)

        def _check_conditions(self, incoming_condition_values: Any) -> bool:
            return True  # conditions are not evaluated (README)

        def is_action_permitted(self, action: str, resource: str = "*", principal: Any = None,
                                incoming_condition_values: Any = None) -> Any:
            if "NotResource" in self._statement:
                if self._check_element_matches("NotResource", resource):
                    return PermissionResult.NEUTRAL
                rest = {k: v for k, v in self._statement.items() if k != "NotResource"}
                return Statement({**rest, "Resource": "*"}).is_action_permitted(
                    action, resource, principal, incoming_condition_values)
            return super().is_action_permitted(action, resource, principal, incoming_condition_values)

    return Statement


def _document(policy: Any) -> dict[str, Any]:
    """The JSON document of an inline policy string or a moto ManagedPolicy (default version)."""
    from moto.iam.access_control import IAMPolicy

    if isinstance(policy, str) and policy[:3].upper() == "%7B":
        from urllib.parse import unquote

        policy = unquote(policy)
    return IAMPolicy(policy)._policy_json  # moto's own document selection (default version)


def decide(policies: list[Any], action: str, resource: str) -> str:
    """IAM's evaluation logic without conditions: explicit deny > allow > implicit deny."""
    from moto.iam.access_control import PermissionResult

    statement = _statement_class()
    results = []
    for policy in policies:
        try:
            doc = _document(policy)
        except (ValueError, KeyError, StopIteration):
            continue  # an unreadable policy grants nothing
        statements = doc.get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            if isinstance(st, dict):
                results.append(statement(st).is_action_permitted(action, resource))
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
