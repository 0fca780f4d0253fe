"""IAM's policy-size quotas, which moto does not enforce.

IAM counts a policy document's characters without whitespace
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):

* a customer managed policy (``CreatePolicy``, ``CreatePolicyVersion``) holds at most 6,144;
* all inline policies of one role (``PutRolePolicy``) together at most 10,240, and of one user
  at most 2,048.

Past either, IAM answers HTTP 409 ``LimitExceeded`` with "Cannot exceed quota for PolicySize:
6144" or "Maximum policy size of 10240 bytes exceeded for role NAME" (the messages AWS users
quote, e.g. in CloudFormation events and botocore tracebacks). Without this check a policy the
sandbox accepts could not be created in a real account. Trust policies (2,048 by default,
adjustable) are not checked here (our choice: the series' trust policies are far below it).
The counting rule and the limits are written here, not imported from ``utils.iam`` (the client
that splits the caller policy by them): the emulator must not agree with the code under test by
construction; ``tests/unit/test_sandbox_iam_limits.py`` checks that the two counts agree.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

MANAGED_POLICY_MAX = 6_144
ROLE_INLINE_MAX = 10_240
USER_INLINE_MAX = 2_048
_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def size(document: str) -> int:
    """The characters of a policy document that count against IAM's quotas (no whitespace)."""
    return len(re.sub(r"\s", "", document))


def _inline_total(kind: str, name: str, replacing: str, document: str) -> int:
    """The size of an entity's inline policies once ``replacing`` holds ``document``."""
    from utils.sandbox.iam_simulate import iam_backend

    backend = iam_backend()
    try:
        entity = backend.get_role(name) if kind == "role" else backend.get_user(name)
    except Exception:  # noqa: BLE001 - moto raises its own NoSuchEntity; moto then answers it
        return size(document)
    others = [str(doc) for policy_name, doc in entity.policies.items() if policy_name != replacing]
    return size(document) + sum(size(doc) for doc in others)


def refusal(body: bytes) -> str | None:
    """The ``LimitExceeded`` message for an IAM query request over a size quota, else ``None``."""
    params = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    action = params.get("Action", [""])[0]
    document = params.get("PolicyDocument", [""])[0]
    if not document:
        return None
    if action in {"CreatePolicy", "CreatePolicyVersion"} and size(document) > MANAGED_POLICY_MAX:
        return f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_MAX}"
    if action == "PutRolePolicy":
        role = params.get("RoleName", [""])[0]
        if _inline_total("role", role, params.get("PolicyName", [""])[0], document) > ROLE_INLINE_MAX:
            return f"Maximum policy size of {ROLE_INLINE_MAX} bytes exceeded for role {role}"
    if action == "PutUserPolicy":
        user = params.get("UserName", [""])[0]
        if _inline_total("user", user, params.get("PolicyName", [""])[0], document) > USER_INLINE_MAX:
            return f"Maximum policy size of {USER_INLINE_MAX} bytes exceeded for user {user}"
    return None


def error_response(message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """IAM's query-protocol error: HTTP 409, code ``LimitExceeded`` (botocore: LimitExceededException)."""
    body = (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>LimitExceeded</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return 409, [("Content-Type", "text/xml")], body


def check(body: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The error response for a request over a quota, else ``None`` (moto then handles it)."""
    message = refusal(body)
    return error_response(message) if message else None


__all__ = ["MANAGED_POLICY_MAX", "ROLE_INLINE_MAX", "USER_INLINE_MAX", "check", "refusal", "size"]
