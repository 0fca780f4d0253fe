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
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

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


def is_local_endpoint(url: str) -> bool:
    """True when ``url`` names this machine: a loopback or unspecified address, or ``localhost``.

    The host is parsed, not substring-matched, so ``127.1``, ``0.0.0.0``, ``LOCALHOST``,
    ``[::1]`` and any 127.x address count, and a real host that merely contains
    "localhost" in a longer name does not. A value without a scheme is read as a host.
    """
    text = url.strip()
    if not text:
        return False
    try:
        parsed = urlsplit(text if "//" in text else f"//{text}")
        host = (parsed.hostname or "").rstrip(".").lower()
    except ValueError:  # e.g. an unbalanced "[" in the netloc: not a URL (see malformed_endpoints)
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # inet_aton accepts the short IPv4 forms ("127.1", "0") that browsers and curl accept
            address = ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError):
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def endpoint_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``AWS_ENDPOINT_URL`` and every per-service ``AWS_ENDPOINT_URL_<SERVICE>`` that is set.

    botocore reads both (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
    """
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items()
            if (k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")) and v.strip()}


def malformed_endpoints(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The endpoint variables whose value is not a URL with a host (botocore would fail on them)."""
    bad = {}
    for name, url in endpoint_variables(environ).items():
        text = url.strip()
        try:
            if not urlsplit(text if "//" in text else f"//{text}").hostname:
                bad[name] = url
        except ValueError:
            bad[name] = url
    return bad


def _refuse_local_endpoints() -> None:
    malformed = malformed_endpoints()
    if malformed:
        listed = ", ".join(f"{name}={url!r}" for name, url in sorted(malformed.items()))
        raise RuntimeError(
            f"{listed} is not a URL with a host, so no AWS client can be made. Fix: correct or unset "
            f"{' and '.join(sorted(malformed))} (for example %env {sorted(malformed)[0]}= in a notebook cell)."
        )
    local = {name: url for name, url in endpoint_variables().items() if is_local_endpoint(url)}
    if local:
        listed = ", ".join(f"{name}={url}" for name, url in sorted(local.items()))
        raise RuntimeError(
            f"{BACKEND_ENV}=aws, but {listed} points at this machine (a local sandbox), so calls would "
            f"never reach AWS. Fix: unset {' and '.join(sorted(local))} (for example "
            f"%env {sorted(local)[0]}= in a notebook cell), or run on the sandbox with {BACKEND_ENV}=sandbox."
        )


def _environment() -> dict[str, str]:
    """Endpoint and credentials for the backend; empty on AWS (default chain)."""
    if backend() == "aws":
        _refuse_local_endpoints()
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


class _SearchPaths(list):
    """boto3 appends its own data folder to its session's loader (``boto3.Session._setup_loader``);
    on a shared loader that would add one entry per session, so it is appended once."""

    def append(self, item: str) -> None:
        if item not in self:
            super().append(item)


@cache
def _shared_loader(search_path_string: str | None) -> Any:
    import botocore.loaders

    extra = [os.path.expanduser(os.path.expandvars(path))
             for path in (search_path_string.split(os.pathsep) if search_path_string else [])]
    return botocore.loaders.Loader(extra_search_paths=_SearchPaths(extra))


def _data_loader(core: Any) -> Any:
    """One botocore data loader for every session of this process (per data path: ``AWS_DATA_PATH``
    or the profile's ``data_path``, as botocore's own ``create_loader`` reads it).

    Each new botocore session otherwise makes its own loader and re-reads and re-parses the same
    JSON (endpoints, service models: Bedrock's is large), about 0.05 s of CPU per client; a notebook
    makes a dozen clients. The loader only reads the installed botocore data and caches what it
    parsed (botocore/loaders.py, ``create_loader`` and ``instance_cache``; a session takes it as its
    ``data_loader`` component, botocore/session.py ``register_component``).
    """
    return _shared_loader(core.get_config_variable("data_path"))


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
        core.register_component("data_loader", _data_loader(core))
        return boto3.Session(
            aws_access_key_id=env["aws_access_key_id"],
            aws_secret_access_key=env["aws_secret_access_key"],
            region_name=region or DEFAULT_REGION,
            botocore_session=core,
        )
    core = botocore.session.get_session()  # what boto3.Session() makes itself
    core.register_component("data_loader", _data_loader(core))
    return boto3.Session(region_name=region, botocore_session=core) if region else boto3.Session(botocore_session=core)


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

FIRST_POLL_S = 0.5  # the first wait; each later one doubles up to the caller's interval


def poll_delays(poll_s: float, first_s: float = FIRST_POLL_S):
    """Waits between polls: ``first_s``, doubling, capped at ``poll_s`` (1, 2, 4, ... 60).

    A resource that is ready in seconds (a sandbox job, a fast deletion) is seen within
    seconds, and a long AWS job is still polled at the documented interval once the
    delays reach it (capped exponential backoff, as in AWS's retry guidance:
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
    """
    delay = min(first_s, poll_s)
    while True:
        yield delay
        delay = min(delay * 2, poll_s)


def poll_until(
    describe: Callable[[], dict[str, Any]], ready: str, *, failed: tuple[str, ...] = ("Failed",),
    status_key: str = "status", timeout_s: float = 3600, poll_s: float = 30,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll ``describe()`` until its status is ``ready`` (Bedrock has no botocore waiters).

    Waits start short and back off to ``poll_s`` (:func:`poll_delays`). Raises
    ``RuntimeError`` with the resource's ``failureMessage`` on a failed status and
    ``TimeoutError`` when ``timeout_s`` passes (the resource itself keeps going).
    """
    deadline = time.monotonic() + timeout_s
    delays = poll_delays(poll_s)
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
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(
                f"Still {status} after {timeout_s:.0f} s. It keeps running (and may keep billing): "
                "rerun this cell to keep waiting, or stop it in 07_cleanup."
            )
        time.sleep(min(next(delays), deadline - now))
