"""Every use of moto's internals by the Bedrock emulation: S3 objects and IAM roles.

The service reads training data, writes outputs and reads the service role straight from
moto's in-process backends (account ``moto.core.DEFAULT_ACCOUNT_ID``), with no HTTP and no
credentials. moto is imported lazily, so importing the sandbox does not import moto.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from typing import Any

from utils.sandbox.bedrock.errors import S3WriteError


class MotoBridge:
    """Direct access to moto's in-process S3 and IAM backends (no HTTP, no credentials)."""

    @property
    def account(self) -> str:
        from moto.core import DEFAULT_ACCOUNT_ID

        return DEFAULT_ACCOUNT_ID

    def _s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    def _iam(self) -> Any:
        from utils.sandbox.iam_simulate import iam_backend

        return iam_backend()

    def bucket_region(self, bucket: str) -> str | None:
        try:
            return self._s3().get_bucket(bucket).region_name
        except Exception:  # noqa: BLE001 - moto raises MissingBucket
            return None

    def get_object(self, bucket: str, key: str) -> bytes | None:
        try:
            obj = self._s3().get_object(bucket, key)
        except Exception:  # noqa: BLE001 - MissingBucket / MissingKey
            return None
        return None if obj is None else bytes(obj.value)

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object; :class:`S3WriteError` if moto refuses (e.g. the bucket is gone)."""
        try:
            self._s3().put_object(bucket, key, data)
        except Exception as exc:  # noqa: BLE001 - MissingBucket and friends
            raise S3WriteError(bucket, key) from exc

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        try:
            keys = self._s3().get_bucket(bucket).keys
        except Exception:  # noqa: BLE001
            return []
        return sorted(k for k in keys.keys() if k.startswith(prefix))

    def role(self, role_arn: str) -> Any | None:
        """The moto role an ARN names, if it exists in this account."""
        match = re.match(r"arn:aws[^:]*:iam::(\d{12})?:role/(.+)$", role_arn)
        if not match or (match.group(1) and match.group(1) != self.account):
            return None
        name = match.group(2).rsplit("/", 1)[-1]
        try:
            return self._iam().get_role(name)
        except Exception:  # noqa: BLE001 - NotFoundException
            return None

    @staticmethod
    def _document(raw: Any) -> dict[str, Any]:
        if isinstance(raw, dict):
            return raw
        text = str(raw or "")
        if text.startswith("%7B") or text.startswith("%7b"):
            from urllib.parse import unquote

            text = unquote(text)
        try:
            doc = json.loads(text)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    @staticmethod
    def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
        statements = doc.get("Statement", [])
        return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, dict)]

    def trusts_bedrock(self, role: Any) -> bool:
        """Whether the role's trust policy lets ``bedrock.amazonaws.com`` assume it."""
        for st in self._statements(self._document(role.assume_role_policy_document)):
            if st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal", {})
            services: Any = principal.get("Service", []) if isinstance(principal, dict) else principal
            services = services if isinstance(services, list) else [services]
            actions = st.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            if ("bedrock.amazonaws.com" in services or "*" in services) and any(
                fnmatchcase("sts:assumerole", str(a).lower()) for a in actions
            ):
                return True
        return False

    def allows(self, role: Any, action: str, resource: str) -> bool:
        """IAM evaluation of the role's inline and attached policies (``iam_simulate.decide``:
        explicit deny > allow > implicit deny; Action/NotAction, Resource/NotResource; no conditions)."""
        from utils.sandbox.iam_simulate import decide, entity_policies

        return decide(entity_policies(role), action, resource) == "allowed"

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
