"""The service role checks that customization and batch jobs run before they touch data.

Bedrock assumes the job's service role, then reads the inputs and probes the output location
with it. The messages are the ones AWS's fine-tuning troubleshooting page lists
(https://docs.aws.amazon.com/bedrock/latest/userguide/fine-tuning-troubleshooting.html).
"""

from __future__ import annotations

from typing import Any

from utils.sandbox.bedrock.errors import S3WriteError
from utils.sandbox.bedrock.moto_bridge import MotoBridge
from utils.sandbox.bedrock.store import split_s3

# The object Bedrock writes to prove it may write the output location (left in place).
WRITE_PROBE = ".write_access_check_file.tmp"


def _other_region(bucket: str, bucket_region: str, region: str) -> str:
    return (
        f"The Amazon S3 bucket {bucket} is in region {bucket_region}, but the job runs in "
        f"{region}. Training, validation and output data must be in a bucket in the same region."
    )


class Access:
    """Role and S3 checks of one job, through :class:`MotoBridge`. Each returns a failure message."""

    def __init__(self, moto: MotoBridge) -> None:
        self.moto = moto

    def check_role(self, role_arn: str) -> tuple[Any | None, str | None]:
        """(the role, None), or (None, the failure message) when Bedrock cannot assume it."""
        role = self.moto.role(role_arn)
        if role is None or not self.moto.trusts_bedrock(role):
            return None, (
                f"Could not assume provided IAM role {role_arn}. Make sure the role exists and its "
                "trust policy allows bedrock.amazonaws.com to assume it (sts:AssumeRole)."
            )
        return role, None

    def check_read(self, role: Any, region: str, uri: str) -> tuple[bytes | None, str | None]:
        """(the object's bytes, None), or (None, the failure message)."""
        bucket, key = split_s3(uri)
        denied = f"Could not validate GetObject permissions to access Amazon S3 bucket: {bucket} at key {key}"
        bucket_region = self.moto.bucket_region(bucket)
        if bucket_region is None:
            return None, denied
        if bucket_region != region:
            return None, _other_region(bucket, bucket_region, region)
        if not self.moto.allows(role, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}") or not self.moto.allows(
            role, "s3:ListBucket", f"arn:aws:s3:::{bucket}"
        ):
            return None, denied
        data = self.moto.get_object(bucket, key)
        if data is None:
            return None, denied
        return data, None

    def check_write(self, role: Any, region: str, uri: str, *, write_probe: bool = False) -> str | None:
        """None when the role may write under ``uri``, else the failure message.

        With ``write_probe`` the (empty) probe object is written and left in place, as the
        customization service does; batch jobs check the permission without writing it.
        """
        bucket, prefix = split_s3(uri)
        probe = f"{prefix.rstrip('/')}/{WRITE_PROBE}" if prefix.strip("/") else WRITE_PROBE
        denied = (
            "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
            f"S3 bucket: {bucket} at key {probe}"
        )
        bucket_region = self.moto.bucket_region(bucket)
        if bucket_region is None:
            return denied
        if bucket_region != region:
            return _other_region(bucket, bucket_region, region)
        if not self.moto.allows(role, "s3:PutObject", f"arn:aws:s3:::{bucket}/{probe}"):
            return denied
        if write_probe:
            try:
                self.moto.put_object(bucket, probe, b"")
            except S3WriteError:
                return denied
        return None
