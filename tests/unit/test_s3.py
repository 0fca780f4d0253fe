"""utils.s3 against in-process moto: secure buckets, read-back, idempotent uploads, deletion."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.unit.conftest import use_in_process_moto
from utils import s3
from utils.sandbox.server import apply_moto_shims

REGION = "us-west-2"


@pytest.fixture
def aws_env(monkeypatch):
    import moto

    use_in_process_moto(monkeypatch, REGION)
    # moto ignores bucket-policy conditions: the sandbox's shim makes it honour aws:SecureTransport.
    apply_moto_shims()
    with moto.mock_aws():
        yield boto3.client("s3", region_name=REGION)


@pytest.fixture
def writes(monkeypatch):
    """Names of S3 write operations made through utils.aws.client during the test."""
    from utils import aws

    calls: list[str] = []
    real = aws.client

    def spy(service, region=None, **kwargs):
        client = real(service, region, **kwargs)
        client.meta.events.register(
            "before-call.s3.*",
            lambda model, **_: calls.append(model.name)
            if model.name.startswith(("Put", "Create", "Delete")) else None,
        )
        return client

    monkeypatch.setattr(aws, "client", spy)
    return calls


def test_secure_bucket_settings_read_back(aws_env):
    assert s3.ensure_bucket("bedrock-ws-demo-data", REGION, {"workshop-id": "demo"}) is True
    settings = s3.bucket_settings("bedrock-ws-demo-data")
    assert settings["region"] == REGION
    assert settings["encryption"] == "AES256"
    assert settings["public_access_blocked"] is True
    assert settings["tls_only"] is True
    assert settings["versioning"] == "Disabled"
    assert settings["tags"] == {"workshop-id": "demo"}
    policy = json.loads(aws_env.get_bucket_policy(Bucket="bedrock-ws-demo-data")["Policy"])
    statement = policy["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_us_east_1_has_no_location_constraint(aws_env):
    assert s3.ensure_bucket("bedrock-ws-east", "us-east-1") is True
    assert s3.bucket_settings("bedrock-ws-east")["region"] == "us-east-1"


def test_rerun_changes_nothing(aws_env, writes):
    s3.ensure_bucket("bedrock-ws-demo-data", REGION, {"workshop-id": "demo"})
    assert "CreateBucket" in writes
    writes.clear()
    assert s3.ensure_bucket("bedrock-ws-demo-data", REGION, {"workshop-id": "demo"}) is False
    assert writes == []


def test_drift_is_repaired_and_foreign_policy_kept(aws_env):
    s3.ensure_bucket("bedrock-ws-d", REGION, {"a": "1"})
    aws_env.delete_bucket_policy(Bucket="bedrock-ws-d")
    extra = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Other", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
        "Resource": "arn:aws:s3:::bedrock-ws-d"}]}
    aws_env.put_bucket_policy(Bucket="bedrock-ws-d", Policy=json.dumps(extra))
    aws_env.delete_public_access_block(Bucket="bedrock-ws-d")
    s3.ensure_bucket("bedrock-ws-d", REGION, {"b": "2"}, versioning=True)
    settings = s3.bucket_settings("bedrock-ws-d")
    assert settings["tls_only"] and settings["public_access_blocked"]
    assert settings["versioning"] == "Enabled"
    assert settings["tags"] == {"a": "1", "b": "2"}
    sids = [st["Sid"] for st in json.loads(aws_env.get_bucket_policy(Bucket="bedrock-ws-d")["Policy"])["Statement"]]
    assert sids == ["Other", s3.TLS_STATEMENT_SID]


def test_kms_encryption(aws_env):
    key = "arn:aws:kms:us-west-2:123456789012:key/abc"
    s3.ensure_bucket("bedrock-ws-k", REGION, kms_key_id=key)
    settings = s3.bucket_settings("bedrock-ws-k")
    assert settings["encryption"] == "aws:kms" and settings["kms_key_id"] == key and settings["bucket_key"]


def test_bucket_in_another_region_is_refused(aws_env):
    s3.ensure_bucket("bedrock-ws-elsewhere", "eu-west-1")
    with pytest.raises(ValueError, match="eu-west-1"):
        s3.ensure_bucket("bedrock-ws-elsewhere", REGION)


def test_upload_is_checksummed_and_idempotent(aws_env, writes):
    s3.ensure_bucket("bedrock-ws-u", REGION)
    writes.clear()
    uri = s3.upload_bytes("bedrock-ws-u", "datasets/train.jsonl", b'{"a": 1}\n')
    assert uri == "s3://bedrock-ws-u/datasets/train.jsonl"
    assert writes == ["PutObject"]
    head = aws_env.head_object(Bucket="bedrock-ws-u", Key="datasets/train.jsonl", ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"]
    assert s3.upload_bytes("bedrock-ws-u", "datasets/train.jsonl", b'{"a": 1}\n') == uri
    assert writes == ["PutObject"]  # identical content: skipped
    s3.upload_bytes("bedrock-ws-u", "datasets/train.jsonl", '{"a": 2}\n')
    assert writes == ["PutObject", "PutObject"]
    assert s3.read_text(uri) == '{"a": 2}\n'


def test_upload_file_and_listing(aws_env, tmp_path):
    s3.ensure_bucket("bedrock-ws-f", REGION)
    for i in range(3):
        path = tmp_path / f"f{i}.jsonl"
        path.write_text(f"{i}\n")
        s3.upload_file("bedrock-ws-f", f"data/f{i}.jsonl", path)
    s3.upload_bytes("bedrock-ws-f", "other/x", b"x")
    assert s3.list_keys("s3://bedrock-ws-f/data/") == [f"data/f{i}.jsonl" for i in range(3)]
    assert s3.object_exists("s3://bedrock-ws-f/data/f1.jsonl")
    assert not s3.object_exists("s3://bedrock-ws-f/data/missing")


def test_moto_shim_still_honours_other_denies(aws_env):
    s3.ensure_bucket("bedrock-ws-deny", REGION)
    policy = json.loads(aws_env.get_bucket_policy(Bucket="bedrock-ws-deny")["Policy"])
    policy["Statement"].append({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                                "Resource": "arn:aws:s3:::bedrock-ws-deny/locked/*"})
    aws_env.put_bucket_policy(Bucket="bedrock-ws-deny", Policy=json.dumps(policy))
    s3.upload_bytes("bedrock-ws-deny", "open/x", b"x")
    with pytest.raises(Exception, match="403|Forbidden|AccessDenied"):
        s3.upload_bytes("bedrock-ws-deny", "locked/x", b"x")


def test_list_keys_paginates(aws_env):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3.ensure_bucket("bedrock-ws-p", REGION)
    aws_env.put_object(Bucket="bedrock-ws-p", Key="k/00000", Body=b"")  # one through the API
    # The other 1,004 straight into moto's store: the test is about ListObjectsV2's pages (1,000 keys
    # each), not about 1,004 more PutObject round trips.
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for i in range(1, 1005):
        backend.put_object("bedrock-ws-p", f"k/{i:05d}", b"")
    keys = s3.list_keys("s3://bedrock-ws-p/k/")
    assert keys == [f"k/{i:05d}" for i in range(1005)]


def test_delete_bucket_empties_versions(aws_env):
    s3.ensure_bucket("bedrock-ws-v", REGION, versioning=True)
    for _ in range(2):
        aws_env.put_object(Bucket="bedrock-ws-v", Key="a", Body=b"1")
    aws_env.delete_object(Bucket="bedrock-ws-v", Key="a")  # leaves a delete marker
    assert s3.delete_bucket("bedrock-ws-v") is True
    assert "bedrock-ws-v" not in [b["Name"] for b in aws_env.list_buckets()["Buckets"]]
    assert s3.delete_bucket("bedrock-ws-v") is False


def test_parse_uri():
    assert s3.parse_uri("s3://b/k/x.jsonl") == ("b", "k/x.jsonl")
    assert s3.parse_uri("s3://b") == ("b", "")
    with pytest.raises(ValueError):
        s3.parse_uri("https://b/k")


def test_sandbox_bucket_is_usable_after_tls_policy(tmp_path, monkeypatch):
    from utils import sandbox

    monkeypatch.setenv("WORKSHOP_SANDBOX_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_BACKEND", "sandbox")
    with sandbox.start() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        s3.ensure_bucket("bedrock-ws-sbx-data", "us-east-1", {"workshop-id": "sbx"})
        assert s3.bucket_settings("bedrock-ws-sbx-data")["tls_only"]
        uri = s3.upload_bytes("bedrock-ws-sbx-data", "datasets/x.jsonl", b"{}\n")
        assert s3.read_text(uri) == "{}\n"
