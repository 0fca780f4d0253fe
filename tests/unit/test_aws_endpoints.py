"""The aws backend refuses any endpoint that points at this machine (a sandbox left in the environment)."""

from __future__ import annotations

import pytest

from utils import aws

LOCAL = [
    "http://127.0.0.1:4599", "http://127.1:4599", "http://127.9.9.9", "127.0.0.1:4566", "http://0.0.0.0:80",
    "http://0:1", "HTTP://LOCALHOST:5000", "http://localhost.:9", "http://api.localhost", "http://[::1]:4599",
    "http://[::]:80", "http://[::ffff:127.0.0.1]:1", "http://2130706433/",
]
REMOTE = [
    "https://bedrock.us-east-1.amazonaws.com", "https://notlocalhost.example.com", "http://10.0.0.5:443",
    "http://128.0.0.1", "", "   ",
]


@pytest.mark.parametrize("url", LOCAL)
def test_loopback_and_unspecified_hosts_are_local(url):
    assert aws.is_local_endpoint(url)


@pytest.mark.parametrize("url", REMOTE)
def test_real_hosts_are_not_local(url):
    assert not aws.is_local_endpoint(url)


def _aws_env(monkeypatch):
    for var in list(aws.endpoint_variables()):
        monkeypatch.delenv(var)
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL_S3"])
@pytest.mark.parametrize("url", ["http://127.1:4599", "http://LOCALHOST:4599", "http://[::1]:4599", "http://0.0.0.0:4599"])
def test_aws_backend_refuses_local_endpoints_including_per_service(monkeypatch, variable, url):
    _aws_env(monkeypatch)
    monkeypatch.setenv(variable, url)
    with pytest.raises(RuntimeError) as raised:
        aws.client("sts", "us-east-1")
    message = str(raised.value)
    assert variable in message and "unset" in message and "WORKSHOP_BACKEND=sandbox" in message


def test_aws_backend_accepts_a_real_per_service_endpoint(monkeypatch):
    _aws_env(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", "https://bedrock.us-east-1.amazonaws.com")
    assert aws.client("bedrock", "us-east-1").meta.region_name == "us-east-1"


def test_endpoint_variables_lists_only_endpoint_settings():
    environ = {"AWS_ENDPOINT_URL": "http://x", "AWS_ENDPOINT_URL_S3": "http://y", "AWS_ENDPOINT_URL_SQS": "",
               "AWS_REGION": "us-east-1"}
    assert aws.endpoint_variables(environ) == {"AWS_ENDPOINT_URL": "http://x", "AWS_ENDPOINT_URL_S3": "http://y"}


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1:4599", "http://"])
def test_aws_backend_names_a_malformed_endpoint_instead_of_a_parser_traceback(monkeypatch, url):
    assert not aws.is_local_endpoint(url)
    _aws_env(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", url)
    with pytest.raises(RuntimeError) as raised:
        aws.client("bedrock", "us-east-1")
    assert "AWS_ENDPOINT_URL_BEDROCK" in str(raised.value) and "not a URL with a host" in str(raised.value)
