"""The offline sandbox: one local endpoint that behaves like Amazon Bedrock (plus IAM, S3, STS).

Importing this package has no side effects and imports neither moto nor botocore.

In-process (tests, the runner)::

    from utils.sandbox import start
    with start() as sandbox:            # port 0: any free port
        url = sandbox.url               # give it to boto3 as endpoint_url

Detached (a learner's Jupyter kernel; reused by every later notebook)::

    from utils.sandbox import ensure_running, stop_detached
    url = ensure_running()              # starts `python -m utils.sandbox` once, records it
    stop_detached()

Admin helpers: :func:`reset` (all Bedrock and moto state) and :func:`configure`
(knobs: ``catalog``, ``time_scale``, ``faults``, ``latency_ms``, ``batch_min_records``,
``legacy_models``). Behaviour is documented in ``utils/sandbox/README.md``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from utils.sandbox.server import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR_ENV = "WORKSHOP_SANDBOX_DIR"
LISTENING = "sandbox listening on "
START_TIMEOUT = 60.0

__all__ = ["configure", "ensure_running", "health", "reset", "start", "stop_detached"]


def start(host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> SandboxServer:
    """Start a sandbox in this process (threaded); returns the running server.

    ``.url`` is its endpoint, ``.stop()`` stops it, and it is a context manager.
    Keyword arguments preset admin knobs (e.g. ``time_scale=0.05``).
    """
    from utils.sandbox.server import SandboxServer

    return SandboxServer(host, port, knobs=knobs or None).start()


def _state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or REPO_ROOT / ".sandbox")


def _record_path() -> Path:
    return _state_dir() / "sandbox.json"


def _admin(url: str, route: str, payload: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/_sandbox/{route}", data=data, method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"sandbox admin {route} failed: HTTP {exc.code} {detail}") from None


def health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The sandbox's health answer, or ``None`` if nothing answers at ``url``."""
    try:
        return _admin(url, "health", timeout=timeout)
    except (OSError, RuntimeError, ValueError):
        return None


def reset(url: str) -> dict[str, Any]:
    """Delete every Bedrock resource and reset moto (IAM, S3, STS). Knobs are kept."""
    # Resetting moto reloads AWS's managed IAM policies: seconds, more on a busy machine.
    return _admin(url, "reset", {}, timeout=60.0)


def configure(url: str, **knobs: Any) -> dict[str, Any]:
    """Set admin knobs (``configure(url, time_scale=5, faults={"profile": "realistic"})``)."""
    return _admin(url, "config", knobs, timeout=30.0)


def _read_record() -> dict[str, Any] | None:
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return None


def ensure_running(timeout: float = START_TIMEOUT) -> str:
    """The URL of a detached sandbox, starting one if none answers; recorded in ``.sandbox/sandbox.json``.

    The detached process (``python -m utils.sandbox --port 0``) outlives this kernel,
    so every notebook reuses the same sandbox and its state.
    """
    record = _read_record()
    if record:
        answer = health(record["url"])
        if answer is not None and answer.get("pid") == record.get("pid"):
            return str(record["url"])
    directory = _state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "sandbox.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_PROFILE")}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "PYTHONUNBUFFERED": "1"})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "utils.sandbox", "--port", "0"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The sandbox exited with code {process.returncode}; see {log_path}")
        if url is None:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith(LISTENING):
                    url = line[len(LISTENING):].strip()
        if url is not None and health(url) is not None:
            _record_path().write_text(json.dumps({"url": url, "pid": process.pid, "log": str(log_path)}))
            return url
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"The sandbox did not start within {timeout:.0f} s; see {log_path}")


def stop_detached(timeout: float = 10.0) -> bool:
    """Stop the detached sandbox recorded in ``.sandbox/sandbox.json``; True if one was stopped."""
    record = _read_record()
    if not record:
        return False
    answer = health(record["url"])
    stopped = False
    # Only signal the pid the record names, and only if that sandbox still answers as it.
    if answer is not None and answer.get("pid") == record.get("pid"):
        pid = int(record["pid"])
        try:
            os.kill(pid, signal.SIGTERM)
            stopped = True
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and health(record["url"], timeout=0.3) is not None:
            time.sleep(0.1)
    _record_path().unlink(missing_ok=True)
    return stopped
