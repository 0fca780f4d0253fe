"""Shared helpers for the sandbox control-plane tests (no tests here).

Every test talks to an in-process sandbox through real boto3 clients with an
explicit endpoint and dummy credentials; no AWS profile is ever read.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from utils.sandbox import start

FAST = 0.05  # time_scale for tests: a fine-tuning job takes ~0.1-0.2 s
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Env:
    """A running sandbox plus client factories."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url

    def client(self, service: str, region: str = "us-east-1", **config: Any) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=self.url,
            aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
            config=Config(retries={"mode": "standard", "max_attempts": 1}, **config),
        )

    # ---- setup helpers ---------------------------------------------------------------
    def role(self, *, trust: bool = True, s3: bool = True, write: bool = True, name: str | None = None) -> str:
        iam = self.client("iam")
        name = name or unique("AmazonBedrockTest")
        doc = TRUST if trust else {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"]
        if s3:
            actions = ["s3:GetObject", "s3:ListBucket"] + (["s3:PutObject"] if write else [])
            iam.put_role_policy(RoleName=name, PolicyName="data", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": ["arn:aws:s3:::*"]}],
            }))
        return arn

    def bucket(self, region: str = "us-east-1") -> str:
        s3 = self.client("s3", region)
        name = unique("bkt")
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        return name

    def put_jsonl(self, bucket: str, key: str, records: list[dict[str, Any]], region: str = "us-east-1") -> str:
        body = "\n".join(json.dumps(r) for r in records).encode()
        self.client("s3", region).put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    def read(self, bucket: str, key: str) -> bytes:
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out = self.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for o in out.get("Contents", [])]

    def configure(self, **knobs: Any) -> None:
        self.server.bedrock.configure(knobs)


def conversation(i: int) -> dict[str, Any]:
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "You answer questions about the annual report."}],
        "messages": [
            {"role": "user", "content": [{"text": f"What was the revenue of segment {i} in 2019?"}]},
            {"role": "assistant", "content": [{"text": f"The revenue of segment {i} in 2019 was {i * 7} million dollars."}]},
        ],
    }


def prompt_completion(i: int) -> dict[str, Any]:
    return {
        "prompt": f"What was the revenue of segment {i} in 2019?",
        "completion": f"The revenue of segment {i} in 2019 was {i * 7} million dollars.",
    }


def claude_messages(i: int) -> dict[str, Any]:
    return {
        "system": "You answer questions about the annual report.",
        "messages": [
            {"role": "user", "content": f"What was the revenue of segment {i} in 2019?"},
            {"role": "assistant", "content": f"The revenue of segment {i} in 2019 was {i * 7} million dollars."},
        ],
    }


def wait_for(fetch: Callable[[], dict[str, Any]], key: str, done: tuple[str, ...], timeout: float = 15.0) -> dict[str, Any]:
    """Poll ``fetch()`` until ``result[key]`` is one of ``done``."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if result.get(key) in done:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} still {result.get(key)!r} after {timeout} s")
        time.sleep(0.05)


def sandbox_fixture(**knobs: Any) -> Any:
    """A module-scoped ``sandbox`` fixture; assign it to a module attribute to use it.

    ``_sandbox = sandbox_fixture()`` in a test module gives its tests a ``sandbox`` argument.
    """

    @pytest.fixture(scope="module", name="sandbox")
    def _fixture() -> Iterator[Env]:
        saved = {k: os.environ.get(k) for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE")}
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        os.environ.pop("AWS_PROFILE", None)
        # Many tests of one module share this sandbox and leave short jobs running: the concurrent-job
        # quota (tested on its own in test_sandbox_job_quota.py) would make them depend on each other.
        server = start(**{"time_scale": FAST, "batch_min_records": 1, "concurrent_customization_jobs": 100, **knobs})
        try:
            yield Env(server)
        finally:
            server.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return _fixture
