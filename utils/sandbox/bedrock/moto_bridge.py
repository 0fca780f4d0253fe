"""Every use of moto's internals by the Bedrock emulation: S3 objects and IAM roles.

The service reads training data, writes outputs and reads the service role straight from
moto's in-process backends (account ``moto.core.DEFAULT_ACCOUNT_ID``), with no HTTP and no
credentials. moto is imported lazily, so importing the sandbox does not import moto.
"""

from __future__ import annotations

import re
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

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
