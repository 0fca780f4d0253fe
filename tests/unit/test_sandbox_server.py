"""Sandbox server: admin routes, dispatch to moto, error shape, env knobs, detached start/stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import utils.sandbox as sandbox_api
from tests.unit.test_sandbox_support import Env, sandbox_fixture, unique
from utils.sandbox.server import credential_scope, knobs_from_env

_sandbox = sandbox_fixture()
REPO = Path(__file__).resolve().parents[2]


def test_package_import_is_light() -> None:
    code = "import sys, utils.sandbox; print(any(m == 'moto' or m.startswith('moto.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"


def test_admin_routes(sandbox: Env) -> None:
    assert sandbox_api.health(sandbox.url)["status"] == "ok"
    settings = sandbox_api.configure(sandbox.url, latency_ms=0, faults="off")
    assert settings["catalog"] == "current" and settings["faults"]["profile"] == "off"
    with pytest.raises(RuntimeError, match="unknown sandbox knob"):
        sandbox_api.configure(sandbox.url, nonsense=1)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{sandbox.url}/_sandbox/nothing")
    assert sandbox_api.health("http://127.0.0.1:9") is None


def test_moto_services_and_reset(sandbox: Env) -> None:
    s3, sts = sandbox.client("s3"), sandbox.client("sts")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    bucket = sandbox.bucket()
    iam = sandbox.client("iam")
    role = unique("AmazonBedrockReset")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
    sandbox.server.bedrock.tags["arn:x"] = {"a": "b"}
    sandbox_api.reset(sandbox.url)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert sandbox.server.bedrock.tags == {}
    with pytest.raises(ClientError):
        iam.get_role(RoleName=role)


def test_error_shape_and_validation_message(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    with pytest.raises(ClientError) as exc:
        br.get_custom_model(modelIdentifier="nope")
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith("ResourceNotFoundException")
    assert type(exc.value).__name__ == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        br.list_model_customization_jobs(sortOrder="Sideways")
    assert exc.value.response["Error"]["Message"].startswith("1 validation error detected: Value 'Sideways' at 'sortOrder'")


def test_credential_scope_and_env_knobs() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20261121/us-west-2/bedrock/aws4_request, SignedHeaders=host, Signature=x"
    assert credential_scope({"HTTP_AUTHORIZATION": auth}) == ("us-west-2", "bedrock")
    assert credential_scope({}) is None
    knobs = knobs_from_env({"WORKSHOP_SANDBOX_CATALOG": "2024", "WORKSHOP_SANDBOX_TIME_SCALE": "3",
                            "WORKSHOP_SANDBOX_FAULTS": "realistic"})
    assert knobs == {"catalog": "2024", "time_scale": 3.0, "faults": {"profile": "realistic"}}


def test_detached_start_reuse_and_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_SANDBOX_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_SANDBOX_CATALOG", "2024")
    url = sandbox_api.ensure_running()
    try:
        record = json.loads((tmp_path / "sandbox.json").read_text())
        assert record["url"] == url and sandbox_api.health(url)["pid"] == record["pid"]
        assert sandbox_api.health(url)["catalog"] == "2024"
        assert sandbox_api.ensure_running() == url  # reused
    finally:
        assert sandbox_api.stop_detached() is True
    assert sandbox_api.health(url) is None and not (tmp_path / "sandbox.json").exists()
    assert sandbox_api.stop_detached() is False
