"""Secure, idempotent S3 buckets and objects for the series.

:func:`ensure_bucket` creates (or adopts) a bucket with Block Public Access,
default encryption, a TLS-only bucket policy, versioning off unless asked, and
the workshop tags. It reads every setting first and writes only what differs,
so a rerun changes nothing. :func:`bucket_settings` reads them back for the
notebooks' checkpoints. Uploads carry a SHA-256 checksum that S3 verifies, and
are skipped when an identical object is already there.

Nothing here runs at import time; every client comes from :func:`utils.aws.client`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.iam import render_policy

log = logging.getLogger(__name__)

TLS_STATEMENT_SID = "DenyInsecureTransport"  # iam-policies/bucket-tls-only.json
SHA256_METADATA = "sha256"  # x-amz-meta-sha256: hex digest of the whole object
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
SINGLE_PUT_LIMIT = 64 * 1024 * 1024  # larger files go through the multipart transfer manager


# ---- URIs --------------------------------------------------------------------------------


def uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def parse_uri(s3_uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not s3_uri.startswith("s3://"):
        raise ValueError(f"Not an S3 URI: {s3_uri!r} (expected s3://bucket/key)")
    bucket, _, key = s3_uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"No bucket in S3 URI {s3_uri!r}")
    return bucket, key


_code = aws.error_code


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


# ---- buckets -----------------------------------------------------------------------------


def _encryption_rule(kms_key_id: str | None) -> dict[str, Any]:
    if kms_key_id:
        return {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id},
            "BucketKeyEnabled": True,
        }
    return {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


def _bucket_region(s3: Any, name: str) -> str:
    location = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def tls_policy(bucket: str, region: str) -> dict[str, Any]:
    """The bucket policy that denies every request not made over TLS."""
    return render_policy("bucket-tls-only", Bucket=bucket, Region=region)


def _current_policy(s3: Any, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    except ClientError as exc:
        if _code(exc) == "NoSuchBucketPolicy":
            return None
        raise


def _has_tls_statement(policy: Mapping[str, Any] | None) -> bool:
    if not policy:
        return False
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        condition = statement.get("Condition", {}).get("Bool", {})
        if statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


def _current_tags(s3: Any, name: str) -> dict[str, str]:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=name)["TagSet"]
    except ClientError as exc:
        if _code(exc) in {"NoSuchTagSet", "NoSuchTagSetError"}:
            return {}
        raise
    return {t["Key"]: t["Value"] for t in tag_set}


def _current_encryption(s3: Any, name: str) -> dict[str, Any] | None:
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    return rules[0] if rules else None


def _current_public_access_block(s3: Any, name: str) -> dict[str, bool]:
    try:
        return s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if _code(exc) == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise


def ensure_bucket(
    name: str, region: str, tags: Mapping[str, str] | None = None, *, kms_key_id: str | None = None,
    versioning: bool = False,
) -> bool:
    """Create or adopt a secure bucket in ``region``. Returns True if it was created now.

    Settings are read before any write and only changed when they differ:
    Block Public Access (all four flags), default encryption (SSE-S3, or SSE-KMS
    with a bucket key when ``kms_key_id`` is given), a TLS-only statement in the
    bucket policy (other statements are kept), versioning (enabled when asked;
    suspended if it was on and is no longer wanted), and ``tags`` (merged with
    tags already on the bucket).
    """
    s3 = aws.client("s3", region)
    created = False
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        if _status(exc) == 403:
            raise PermissionError(
                f"Bucket {name!r} exists but this identity cannot use it: it belongs to another "
                "account, or your policy lacks s3:ListBucket on it. Choose another workshop_id."
            ) from exc
        if _status(exc) != 404 and _code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**kwargs)
            created = True
        except ClientError as exc2:
            if _code(exc2) != "BucketAlreadyOwnedByYou":
                raise
        s3.get_waiter("bucket_exists").wait(Bucket=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        log.info("created bucket %s in %s", name, region)

    actual_region = _bucket_region(s3, name)
    if actual_region != region:
        raise ValueError(
            f"Bucket {name!r} is in {actual_region}, not {region}. Bedrock jobs need the bucket in "
            "the job's region: choose another workshop_id or region."
        )

    if _current_public_access_block(s3, name) != PUBLIC_ACCESS_BLOCK:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict(PUBLIC_ACCESS_BLOCK))
        log.info("bucket %s: Block Public Access on", name)

    wanted_rule = _encryption_rule(kms_key_id)
    current_rule = _current_encryption(s3, name)
    if current_rule is None or not _same_encryption(current_rule, wanted_rule):
        s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": [wanted_rule]}
        )
        log.info("bucket %s: default encryption %s", name, "SSE-KMS" if kms_key_id else "SSE-S3")

    policy = _current_policy(s3, name)
    if not _has_tls_statement(policy):
        tls = tls_policy(name, region)
        if policy:
            statements = policy.get("Statement", [])
            statements = statements if isinstance(statements, list) else [statements]
            policy["Statement"] = [s for s in statements if s.get("Sid") != TLS_STATEMENT_SID]
            policy["Statement"] += tls["Statement"]
        else:
            policy = tls
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        log.info("bucket %s: TLS-only policy", name)

    status = s3.get_bucket_versioning(Bucket=name).get("Status")
    if versioning and status != "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    elif not versioning and status == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})

    if tags:
        current = _current_tags(s3, name)
        merged = {**current, **{str(k): str(v) for k, v in tags.items()}}
        if merged != current:
            s3.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]}
            )
    return created


def _same_encryption(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    a = current.get("ApplyServerSideEncryptionByDefault", {})
    b = wanted.get("ApplyServerSideEncryptionByDefault", {})
    if a.get("SSEAlgorithm") != b.get("SSEAlgorithm"):
        return False
    if b.get("SSEAlgorithm") == "aws:kms":
        return a.get("KMSMasterKeyID") == b.get("KMSMasterKeyID") and bool(current.get("BucketKeyEnabled"))
    return True


def bucket_settings(name: str, region: str | None = None) -> dict[str, Any]:
    """Read a bucket's security settings back through the API (for checkpoints).

    Keys: ``name``, ``region``, ``encryption`` (``AES256`` | ``aws:kms`` | None),
    ``kms_key_id``, ``bucket_key``, ``public_access_block`` (the four flags),
    ``public_access_blocked`` (all four on), ``tls_only`` (a Deny on
    ``aws:SecureTransport = false`` is in the bucket policy), ``versioning``
    (``Enabled`` | ``Suspended`` | ``Disabled``), ``tags``.
    """
    s3 = aws.client("s3", region)
    rule = _current_encryption(s3, name) or {}
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    block = _current_public_access_block(s3, name)
    return {
        "name": name,
        "region": _bucket_region(s3, name),
        "encryption": default.get("SSEAlgorithm"),
        "kms_key_id": default.get("KMSMasterKeyID"),
        "bucket_key": bool(rule.get("BucketKeyEnabled", False)),
        "public_access_block": {k: bool(block.get(k, False)) for k in PUBLIC_ACCESS_BLOCK},
        "public_access_blocked": all(block.get(k, False) for k in PUBLIC_ACCESS_BLOCK),
        "tls_only": _has_tls_statement(_current_policy(s3, name)),
        "versioning": s3.get_bucket_versioning(Bucket=name).get("Status") or "Disabled",
        "tags": _current_tags(s3, name),
    }


def delete_bucket(name: str, region: str | None = None) -> bool:
    """Empty a bucket (every object version, delete marker and multipart upload), then delete it.

    Returns False if the bucket did not exist.
    """
    s3 = aws.client("s3", region)
    try:
        batch: list[dict[str, str]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                batch.append({"Key": item["Key"], "VersionId": item["VersionId"]})
                if len(batch) == 1000:
                    _delete_batch(s3, name, batch)
                    batch = []
        _delete_batch(s3, name, batch)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):  # unversioned leftovers
            _delete_batch(s3, name, [{"Key": o["Key"]} for o in page.get("Contents", [])])
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError as exc:
        if _code(exc) == "NoSuchBucket":
            return False
        raise
    log.info("deleted bucket %s", name)
    return True


def _delete_batch(s3: Any, bucket: str, objects: list[dict[str, str]]) -> None:
    if not objects:
        return
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    errors = response.get("Errors", [])
    if errors:
        raise RuntimeError(f"Could not delete {len(errors)} objects from {bucket}: {errors[:3]}")


# ---- objects -----------------------------------------------------------------------------


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if _status(exc) == 404 or _code(exc) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def _matches(head: Mapping[str, Any] | None, hex_digest: str, b64_digest: str) -> bool:
    if not head:
        return False
    if head.get("Metadata", {}).get(SHA256_METADATA) == hex_digest:
        return True
    return head.get("ChecksumSHA256") == b64_digest  # single-part uploads made elsewhere


def upload_bytes(
    bucket: str, key: str, data: bytes | str, *, content_type: str | None = None,
    region: str | None = None,
) -> str:
    """Upload ``data`` to ``s3://bucket/key`` with a SHA-256 checksum S3 verifies; return the URI.

    Skipped when an object with the same SHA-256 is already there (idempotent).
    After the upload the checksum is read back with ``head_object`` and compared.
    """
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    digest = hashlib.sha256(body)
    hex_digest, b64_digest = digest.hexdigest(), base64.b64encode(digest.digest()).decode()
    s3 = aws.client("s3", region)
    if _matches(_head(s3, bucket, key), hex_digest, b64_digest):
        log.info("s3://%s/%s unchanged; upload skipped", bucket, key)
        return uri(bucket, key)
    kwargs: dict[str, Any] = {
        "Bucket": bucket, "Key": key, "Body": body, "ChecksumAlgorithm": "SHA256",
        "ChecksumSHA256": b64_digest, "Metadata": {SHA256_METADATA: hex_digest},
    }
    if content_type:
        kwargs["ContentType"] = content_type
    s3.put_object(**kwargs)
    if not _matches(_head(s3, bucket, key), hex_digest, b64_digest):
        raise RuntimeError(f"s3://{bucket}/{key}: checksum read back does not match what was sent")
    return uri(bucket, key)


def _file_sha256(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest


def upload_file(
    bucket: str, key: str, path: str | Path, *, content_type: str | None = None,
    region: str | None = None,
) -> str:
    """Upload a local file (idempotent, checksummed, like :func:`upload_bytes`); return the URI.

    Files above 64 MiB use the multipart transfer manager with per-part SHA-256
    checksums; the whole-file digest is stored in ``x-amz-meta-sha256``.
    """
    path = Path(path)
    if path.stat().st_size <= SINGLE_PUT_LIMIT:
        return upload_bytes(bucket, key, path.read_bytes(), content_type=content_type, region=region)
    digest = _file_sha256(path)
    hex_digest, b64_digest = digest.hexdigest(), base64.b64encode(digest.digest()).decode()
    s3 = aws.client("s3", region)
    if _matches(_head(s3, bucket, key), hex_digest, b64_digest):
        return uri(bucket, key)
    extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256", "Metadata": {SHA256_METADATA: hex_digest}}
    if content_type:
        extra["ContentType"] = content_type
    s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
    if not _matches(_head(s3, bucket, key), hex_digest, b64_digest):
        raise RuntimeError(f"s3://{bucket}/{key}: checksum read back does not match the file")
    return uri(bucket, key)


def object_exists(s3_uri: str, *, region: str | None = None) -> bool:
    bucket, key = parse_uri(s3_uri)
    return _head(aws.client("s3", region), bucket, key) is not None


def read_bytes(s3_uri: str, *, region: str | None = None) -> bytes:
    bucket, key = parse_uri(s3_uri)
    return aws.client("s3", region).get_object(Bucket=bucket, Key=key)["Body"].read()


def read_text(s3_uri: str, *, encoding: str = "utf-8", region: str | None = None) -> str:
    return read_bytes(s3_uri, region=region).decode(encoding)


def iter_keys(uri_prefix: str, *, region: str | None = None) -> Iterator[str]:
    """Every key under ``s3://bucket/prefix`` (paginated)."""
    bucket, prefix = parse_uri(uri_prefix)
    paginator = aws.client("s3", region).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def list_keys(uri_prefix: str, *, region: str | None = None) -> list[str]:
    """Every key under ``s3://bucket/prefix``, sorted."""
    return sorted(iter_keys(uri_prefix, region=region))
