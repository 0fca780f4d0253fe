"""boto3 sessions and clients for the selected backend.

The environment chooses the backend, never the notebook:

* ``WORKSHOP_BACKEND=sandbox`` (the default): the offline sandbox
  (``python -m utils.sandbox``). If ``AWS_ENDPOINT_URL`` is not set, a detached
  sandbox is started once and reused by every later notebook.
* ``WORKSHOP_BACKEND=aws``: the normal boto3 credential chain (on a SageMaker
  notebook instance, the notebook's execution role).

Only the endpoint and the credentials differ between the two. Everything else in
``utils`` is the same code path. Nothing here runs at import time.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

BACKEND_ENV = "WORKSHOP_BACKEND"
REGION_ENV = "WORKSHOP_REGION"
BACKENDS = ("sandbox", "aws")
SANDBOX_ACCESS_KEY = "sandbox"  # dummy credentials; the sandbox accepts any
SANDBOX_SECRET_KEY = "sandbox"
DEFAULT_REGION = "us-east-1"


def backend() -> str:
    """The selected backend: ``sandbox`` unless ``WORKSHOP_BACKEND=aws``."""
    value = os.environ.get(BACKEND_ENV, "sandbox").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r}; expected one of {BACKENDS}")
    return value


def retry_config(**overrides: object) -> Config:
    """The series' one botocore config: adaptive retries (client-side rate limiting)."""
    settings: dict[str, object] = {
        "retries": {"mode": "adaptive", "max_attempts": 8},
        "connect_timeout": 10,
        "read_timeout": 120,
        "user_agent_extra": "bedrock-finetuning-workshop",
    }
    settings.update(overrides)
    return Config(**settings)


def _environment() -> dict[str, str]:
    """Endpoint and credentials for the backend; empty on AWS (default chain)."""
    if backend() == "aws":
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        if "127.0.0.1" in endpoint or "localhost" in endpoint:
            raise RuntimeError(
                f"{BACKEND_ENV}=aws but AWS_ENDPOINT_URL={endpoint} points at a local sandbox: "
                "unset AWS_ENDPOINT_URL (or use WORKSHOP_BACKEND=sandbox)."
            )
        return {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        from utils.sandbox import ensure_running  # lazy: starts or reuses a detached sandbox

        endpoint = ensure_running()
    return {
        "endpoint_url": endpoint,
        "aws_access_key_id": SANDBOX_ACCESS_KEY,
        "aws_secret_access_key": SANDBOX_SECRET_KEY,
    }


def session(region: str | None = None) -> boto3.Session:
    """A boto3 session for the backend. In sandbox mode no AWS profile is ever read."""
    env = _environment()
    region = region or os.environ.get(REGION_ENV) or os.environ.get("AWS_DEFAULT_REGION")
    if env:
        # Never read a real profile: no config or credentials files, explicit dummy keys.
        # session_vars entries are (config key, env var, default, converter): no env lookup.
        core = botocore.session.Session(
            session_vars={
                "profile": (None, None, None, None),
                "config_file": (None, None, os.devnull, None),
                "credentials_file": (None, None, os.devnull, None),
            }
        )
        return boto3.Session(
            aws_access_key_id=env["aws_access_key_id"],
            aws_secret_access_key=env["aws_secret_access_key"],
            region_name=region or DEFAULT_REGION,
            botocore_session=core,
        )
    return boto3.Session(region_name=region) if region else boto3.Session()


def client(service: str, region: str | None = None, **kwargs: object):
    """A boto3 client with the series' retry config, for the selected backend."""
    env = _environment()
    sess = session(region)
    if service == "bedrock-runtime":
        # Model calls go through utils.engine, which paces to the quota and adapts to throttling
        # itself: botocore's adaptive mode would add a second, slower rate limiter that hides the
        # throttling from it. Standard mode still retries 429/5xx a few times, with jitter.
        kwargs.setdefault("config", retry_config(retries={"mode": "standard", "max_attempts": 3},
                                                 max_pool_connections=64))
    kwargs.setdefault("config", retry_config())
    if env:
        kwargs.setdefault("endpoint_url", env["endpoint_url"])
    return sess.client(service, **kwargs)


def configured_region(default: str) -> str:
    """``$WORKSHOP_REGION`` if set (the preflight's fixes suggest it), else ``default``."""
    return os.environ.get(REGION_ENV) or default


def region_of(region: str | None = None) -> str:
    """The region a session would use."""
    return session(region).region_name or DEFAULT_REGION


def account_id(region: str | None = None) -> str:
    return client("sts", region).get_caller_identity()["Account"]


@lru_cache(maxsize=1)
def _sagemaker_api():
    """``(get_execution_role, Session)`` from the SageMaker SDK 2.x or 3.x, or ``None``."""
    for module in ("sagemaker.core.helper.session_helper", "sagemaker.session", "sagemaker"):
        try:
            mod = importlib.import_module(module)
            return mod.get_execution_role, mod.Session
        except (ImportError, AttributeError):
            continue
    return None


def on_sagemaker() -> bool:
    """True on a SageMaker notebook instance (its metadata file is present)."""
    return os.path.exists("/opt/ml/metadata/resource-metadata.json")


def sagemaker_execution_role() -> str | None:
    """The notebook's execution role ARN when the SageMaker SDK can tell, else ``None``."""
    api = _sagemaker_api()
    if api is None or not on_sagemaker():
        return None
    get_execution_role, _ = api
    try:
        return get_execution_role()
    except Exception:  # noqa: BLE001 - the SDK raises ValueError or ClientError
        return None


def sagemaker_default_bucket(region: str | None = None) -> str | None:
    """SageMaker's default bucket (``sagemaker-<region>-<account>``) when available."""
    api = _sagemaker_api()
    if api is None or not on_sagemaker():
        return None
    _, sm_session = api
    try:
        return sm_session(boto_session=session(region)).default_bucket()
    except Exception:  # noqa: BLE001
        return None


# ---- errors ---------------------------------------------------------------------------------

NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "NoSuchKey", "404"})


def error(exc: BaseException) -> tuple[str, str]:
    """``(code, message)`` of a botocore ``ClientError``; ``(class name, text)`` of anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code"):
        err = response["Error"]
        return str(err["Code"]), str(err.get("Message", ""))
    return type(exc).__name__, str(exc)


def error_code(exc: BaseException) -> str:
    """The botocore error code (``ThrottlingException``), else the exception's class name."""
    return error(exc)[0]


def is_not_found(exc: BaseException) -> bool:
    """True when the service says the resource does not exist."""
    return error_code(exc) in NOT_FOUND


# ---- waiting ---------------------------------------------------------------------------------

def poll_until(
    describe: Callable[[], dict[str, Any]], ready: str, *, failed: tuple[str, ...] = ("Failed",),
    status_key: str = "status", timeout_s: float = 3600, poll_s: float = 30,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll ``describe()`` until its status is ``ready`` (Bedrock has no botocore waiters).

    Raises ``RuntimeError`` with the resource's ``failureMessage`` on a failed status and
    ``TimeoutError`` when ``timeout_s`` passes (the resource itself keeps going).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        description = describe()
        if on_poll:
            on_poll(description)
        status = description[status_key]
        if status == ready:
            return description
        if status in failed:
            reason = description.get("failureMessage") or description.get("message") or "no failure message"
            raise RuntimeError(f"Status {status}: {reason}")
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"Still {status} after {timeout_s:.0f} s. It keeps running (and may keep billing): "
                "rerun this cell to keep waiting, or stop it in 07_cleanup."
            )
        time.sleep(poll_s)
