"""``iam:SimulatePrincipalPolicy`` for the sandbox (moto's server answers it with an HTTP 500).

Preflight asks IAM whether the caller may perform the series' actions. This handler
evaluates the principal's inline and attached managed policies: ``allowed`` when a
statement allows the action on the resource and none denies it, ``explicitDeny`` when one
denies it, else ``implicitDeny``. Statements are matched here, not by moto: ``NotAction`` and
``NotResource`` are honoured, IAM wildcards are ``*`` and ``?`` only (``.`` and ``[`` are
literal), action names match case-insensitively, and ``Condition`` blocks are evaluated
(:mod:`utils.sandbox.conditions`) against the request's ``ContextEntries``; a key the request
does not supply is reported in ``MissingContextValues`` and evaluated as absent, as IAM's
simulator does. SCPs are not evaluated. moto is used only to read a managed policy's default
version. :func:`decide` also serves the service-role trust and S3 checks (``bedrock/access.py``)
and the caller-permission mode (``caller.py``). An unknown principal answers ``NoSuchEntity``, as IAM
does; the sandbox's default caller (moto's ``user/moto``) is one, so preflight reports
"could not check". A principal's permissions boundary limits its decisions.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from utils.sandbox import conditions

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


def _principal_boundary(arn: str) -> list[Any] | None:
    """The permissions boundary policy of a role or user ARN, or ``None`` when it has none."""
    backend = iam_backend()
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    entity = backend.get_role(name) if kind == "role" else backend.get_user(name)
    boundary = getattr(entity, "permissions_boundary_arn", None) or getattr(entity, "permissions_boundary", None)
    if not boundary:
        return None
    try:
        return [backend.get_policy(boundary)]
    except Exception:  # noqa: BLE001 - a boundary that no longer exists allows nothing
        return []


def _glob(pattern: str, value: str, *, fold: bool) -> bool:
    """IAM wildcard match: ``*`` any run, ``?`` one character, everything else literal."""
    return conditions.glob(pattern, value, fold=fold)


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _document(policy: Any) -> dict[str, Any]:
    """The JSON document of a policy: a dict, an inline policy string (maybe URL-encoded) or a
    moto ManagedPolicy (its default version, by moto's own selection)."""
    if isinstance(policy, dict):
        return policy
    from moto.iam.access_control import IAMPolicy

    if isinstance(policy, str) and policy[:3].upper() == "%7B":
        from urllib.parse import unquote

        policy = unquote(policy)
    return IAMPolicy(policy)._policy_json


def statements(policy: Any) -> list[dict[str, Any]]:
    """The statements of one policy (empty for an unreadable one: it grants nothing)."""
    try:
        doc = _document(policy)
    except (ValueError, KeyError, StopIteration, TypeError):
        return []
    found = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [st for st in (found if isinstance(found, list) else [found]) if isinstance(st, dict)]


def _element(st: dict[str, Any], name: str, value: str, *, fold: bool) -> bool | None:
    """``True``/``False`` when the statement has ``name`` or ``Not<name>``; ``None`` when neither."""
    if name in st:
        return any(_glob(p, value, fold=fold) for p in _listed(st[name]))
    if f"Not{name}" in st:
        return not any(_glob(p, value, fold=fold) for p in _listed(st[f"Not{name}"]))
    return None


def statement_applies(st: dict[str, Any], action: str, resource: str,
                      context: conditions.Context | None) -> bool:
    """Action/NotAction, Resource/NotResource and (unless ``context`` is ``None``) Condition.

    A statement without Resource or NotResource (a trust policy's) matches every resource."""
    if not _element(st, "Action", action, fold=True):
        return False
    if _element(st, "Resource", resource, fold=False) is False:
        return False
    return context is None or conditions.matches(st.get("Condition"), context)


def decide(policies: list[Any], action: str, resource: str,
           context: conditions.Context | None = None) -> str:
    """IAM's evaluation logic: explicit deny > allow > implicit deny.

    ``context`` is the request context (``conditions.context``); with ``None`` conditions are
    ignored, as this sandbox did before it evaluated them (kept for callers with no context)."""
    allowed = False
    for policy in policies:
        for st in statements(policy):
            if not statement_applies(st, action, resource, context):
                continue
            if st.get("Effect") == "Deny":
                return "explicitDeny"
            allowed = allowed or st.get("Effect") == "Allow"
    return "allowed" if allowed else "implicitDeny"


def missing_context(policies: list[Any], action: str, resource: str, context: conditions.Context) -> list[str]:
    """Condition keys of the statements that match action and resource, absent from ``context``."""
    missing: list[str] = []
    for policy in policies:
        for st in statements(policy):
            if statement_applies(st, action, resource, None):
                missing += [k for k in conditions.keys(st.get("Condition")) if k.lower() not in context
                            and k not in missing]
    return missing


def _decision(policies: list[Any], boundary: list[Any] | None, action: str, resource: str,
              context: conditions.Context) -> str:
    """The identity policies' decision, limited by the permissions boundary when there is one
    (an action the boundary does not allow is an implicit deny; one it denies, an explicit deny)."""
    decision = decide(policies, action, resource, context)
    if boundary is None or decision != "allowed":
        return decision
    return decide(boundary, action, resource, context)


def _context_entries(params: dict[str, list[str]]) -> conditions.Context:
    """``ContextEntries.member.N.ContextKeyName`` / ``.ContextKeyValues.member.M``."""
    out: conditions.Context = {}
    index = 1
    while f"ContextEntries.member.{index}.ContextKeyName" in params:
        name = params[f"ContextEntries.member.{index}.ContextKeyName"][0]
        out[name.lower()] = _members(params, f"ContextEntries.member.{index}.ContextKeyValues")
        index += 1
    return out


def handle(body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer one SimulatePrincipalPolicy request (query protocol, XML out)."""
    params = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    principal = params.get("PolicySourceArn", [""])[0]
    actions = _members(params, "ActionNames")
    resources = _members(params, "ResourceArns") or ["*"]
    context = _context_entries(params)
    headers = [("Content-Type", "text/xml")]
    request_id = str(uuid.uuid4())
    try:
        policies = _principal_policies(principal)
        boundary = _principal_boundary(principal)
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
        f"<EvalDecision>{_decision(policies, boundary, action, resource, context)}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues>"
        + "".join(f"<member>{escape(k)}</member>" for k in missing_context(policies, action, resource, context))
        + "</MissingContextValues></member>"
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
