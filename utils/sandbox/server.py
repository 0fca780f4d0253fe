"""The sandbox's one WSGI endpoint: Bedrock (ours), Service Quotas (ours), everything else (moto).

Dispatch is on the SigV4 credential scope of the ``Authorization`` header
(``Credential=AKID/date/REGION/SERVICE/aws4_request``):

* ``bedrock``: both ``bedrock`` and ``bedrock-runtime`` clients sign with this name.
  ``/model/{id}/invoke``, ``/converse``, ``/count-tokens`` and the streaming paths
  go to the runtime; every other path is matched against the ``bedrock`` service
  model's request URIs and served by :class:`utils.sandbox.bedrock.service.Bedrock`.
* ``servicequotas``: :func:`utils.sandbox.quotas.handle` when that module exists.
* anything else (iam, s3, sts, ...) and unsigned requests: moto's server app, unmodified.

Admin routes (unsigned JSON): ``GET /_sandbox/health``, ``POST /_sandbox/reset``,
``GET|POST /_sandbox/config``, ``GET /_sandbox/usage`` (runtime calls and tokens per model). Requests are validated against the botocore service
model the way the service does (patterns, maximum lengths, enums) and answered with
the operation's modeled HTTP code; errors use Bedrock's JSON error shape with the
``x-amzn-ErrorType`` header so botocore raises the right exception class.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from utils.sandbox import caller, iam_limits, iam_simulate
from utils.sandbox.control import ApiError, Bedrock, Config

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

# Knobs that environment variables can preset at startup.
ENV_KNOBS = {
    "WORKSHOP_SANDBOX_CATALOG": ("catalog", str),
    "WORKSHOP_SANDBOX_TIME_SCALE": ("time_scale", float),
    "WORKSHOP_SANDBOX_BATCH_MIN_RECORDS": ("batch_min_records", int),
    "WORKSHOP_SANDBOX_LATENCY_MS": ("latency_ms", float),
    "WORKSHOP_SANDBOX_CONCURRENT_JOBS": ("concurrent_customization_jobs", int),
}
FAULTS_ENV = "WORKSHOP_SANDBOX_FAULTS"  # a profile name ("off"|"realistic") or a JSON object

RUNTIME_PATH = re.compile(r"^/model/([^/]+)/(invoke|converse|invoke-with-response-stream|converse-stream|count-tokens)$")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


def knobs_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Admin knobs preset by ``WORKSHOP_SANDBOX_*`` environment variables."""
    env = os.environ if environ is None else environ
    knobs: dict[str, Any] = {}
    for name, (knob, kind) in ENV_KNOBS.items():
        if env.get(name):
            knobs[knob] = kind(env[name])
    faults = env.get(FAULTS_ENV)
    if faults:
        knobs["faults"] = json.loads(faults) if faults.strip().startswith("{") else {"profile": faults.strip()}
    return knobs


def credential_scope(environ: Environ) -> tuple[str, str] | None:
    """(region, service) of a SigV4-signed request, or ``None``."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(3), match.group(4).lower()) if match else None


# ---------------------------------------------------------------------------------------
# Service-model driven request parsing and validation
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def service_model(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


class Route:
    """One ``bedrock`` operation: its URI template compiled to a regex."""

    def __init__(self, operation: Any) -> None:
        self.operation = operation
        http = operation.http
        self.method = http["method"]
        self.status = int(http.get("responseCode", 200))
        template = http["requestUri"].split("?", 1)[0]
        self.labels: list[str] = []
        pattern = ""
        for segment in template.strip("/").split("/"):
            label = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
            if label:
                self.labels.append(label.group(1))
                pattern += "/(.+)" if label.group(2) else "/([^/]+)"
            else:
                pattern += "/" + re.escape(segment)
        self.regex = re.compile(f"^{pattern or '/'}$")


@lru_cache(maxsize=1)
def routes() -> list[Route]:
    model = service_model("bedrock")
    return [Route(model.operation_model(name)) for name in model.operation_names]


def _constraint_errors(shape: Any, value: Any, path: str, out: list[str]) -> None:
    """Server-side checks botocore skips: patterns, maximum lengths/values, enums."""
    if value is None:
        return
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _constraint_errors(member, value[name], f"{path}.{name}" if path else name, out)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        for i, item in enumerate(value):
            _constraint_errors(shape.member, item, f"{path}.{i + 1}.member", out)
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        for key, item in value.items():
            _constraint_errors(shape.key, key, f"{path}.key", out)
            _constraint_errors(shape.value, item, f"{path}.{key}", out)
    elif kind == "string" and isinstance(value, str):
        shown = value if len(value) <= 256 else value[:256] + "..."
        if getattr(shape, "enum", None) and value not in shape.enum:
            out.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        elif "max" in meta and len(value) > meta["max"]:
            out.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        elif "min" in meta and len(value) < meta["min"]:
            out.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        elif "pattern" in meta and not _pattern_ok(meta["pattern"], value):
            out.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {meta['pattern']}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "max" in meta and value > meta["max"]:
            out.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            out.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}")


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # e.g. \p{L}: not Python syntax; skip the check


def _pattern_ok(pattern: str, value: str) -> bool:
    regex = _compiled(pattern)
    return regex is None or regex.fullmatch(value) is not None


def _convert(shape: Any, raw: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
    except ValueError as exc:
        raise ApiError("ValidationException", f"Value '{raw}' is not a valid {kind}.") from exc
    if kind == "boolean":
        return raw.lower() == "true"
    return raw


def parse_request(route: Route, path_values: list[str], query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
    """The operation's input parameters from URI labels, query string and JSON body."""
    shape = route.operation.input_shape
    params: dict[str, Any] = {}
    if body.strip():
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise ApiError("ValidationException", "Malformed request body: it is not valid JSON.") from exc
        if not isinstance(parsed, dict):
            raise ApiError("ValidationException", "Malformed request body: expected a JSON object.")
        params.update(parsed)
    if shape is None:
        return params
    labels = dict(zip(route.labels, path_values, strict=True))
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri" and wire in labels:
            params[name] = labels[wire]
        elif location == "querystring" and wire in query:
            values = query[wire]
            if member.type_name == "list":
                params[name] = [_convert(member.member, v) for v in values]
            else:
                params[name] = _convert(member, values[0])
    errors: list[str] = []
    missing = [n for n in shape.required_members if params.get(n) in (None, "")]
    for name in missing:
        errors.append(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
    _constraint_errors(shape, params, "", errors)
    if errors:
        noun = "error" if len(errors) == 1 else "errors"
        raise ApiError("ValidationException", f"{len(errors)} validation {noun} detected: " + "; ".join(errors))
    return params


# ---------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------


def _json_response(start_response: StartResponse, status: int, payload: Any,
                   headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = json.dumps(payload).encode()
    reason = _REASONS.get(status, "OK")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
         ("x-amzn-RequestId", os.urandom(16).hex()), *headers],
    )
    return [body]


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 408: "Request Timeout", 409: "Conflict", 424: "Failed Dependency",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def error_response(start_response: StartResponse, error: ApiError) -> list[bytes]:
    payload = {"message": error.message, **error.extra}
    return _json_response(start_response, error.status, payload, [("x-amzn-ErrorType", f"{error.code}:")])


def _read_body(environ: Environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    return stream.read(length) if stream is not None and length > 0 else b""


def _raw_path(environ: Environ) -> str:
    """The request path with its percent-encoding intact (ARNs in labels contain '/')."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        raw = raw.split("?", 1)[0]
        if raw.startswith("http://") or raw.startswith("https://"):
            raw = "/" + raw.split("/", 3)[-1]
        return raw
    return quote(environ.get("PATH_INFO", "/"))


_SHIMS_APPLIED = False


def apply_moto_shims() -> None:
    """Make moto's S3 treat every request as TLS, as Bedrock workshop clients' HTTPS calls are.

    moto 5.2.5 ignores bucket-policy conditions, so the usual TLS-only statement
    (``Deny`` when ``aws:SecureTransport`` is ``false``) would deny every object call.
    Real S3 evaluates the condition; for HTTPS clients it never matches. We drop exactly
    those statements before moto evaluates a bucket policy. Idempotent.
    """
    global _SHIMS_APPLIED
    if _SHIMS_APPLIED:
        return
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        kept = [
            st for st in statements
            if not (st.get("Effect") == "Deny"
                    and str(st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false")
        ]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**policy, "Statement": kept})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
    _SHIMS_APPLIED = True


class SandboxApp:
    """The WSGI application: admin routes, Bedrock, Service Quotas, then moto."""

    def __init__(self, bedrock: Bedrock | None = None) -> None:
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # AWS managed policies exist
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        apply_moto_shims()
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        self.bedrock = bedrock or Bedrock(Config())
        self.caller = caller.CallerGate(self.bedrock)
        self.started = time.time()
        try:
            from utils.sandbox import quotas  # optional module
        except ImportError:
            quotas = None  # type: ignore[assignment]
        self.quotas: Any = quotas

    # ---- WSGI entry ----------------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self.admin(environ, start_response, path[len("/_sandbox/"):])
        scope = credential_scope(environ)
        if scope is not None and (intercepted := self.caller.gate(environ, scope)) is not None:
            status, headers, body = intercepted  # caller-permission mode (utils/sandbox/caller.py)
            start_response(f"{status} {_REASONS.get(status, 'OK')}", headers)
            return [body]
        if scope is not None and scope[1] == "bedrock":
            return self.handle_bedrock(environ, start_response, scope[0])
        if scope is not None and scope[1] == "servicequotas" and self.quotas is not None:
            # The applied value of the job quota is the knob the customization jobs enforce.
            applied = {self.quotas.CONCURRENT_CUSTOMIZATION_JOBS: self.bedrock.config.concurrent_customization_jobs}
            status, headers, body = self.quotas.handle(environ, faults=self.bedrock.faults, applied=applied)
            start_response(f"{status} {_REASONS.get(status, 'OK')}", list(headers))
            return [body]
        if scope is not None and scope[1] == "iam":
            # moto answers SimulatePrincipalPolicy with HTTP 500; everything else IAM is moto's.
            raw = _read_body(environ)
            if iam_simulate.wants(raw):
                status, headers, body = iam_simulate.handle(raw)
                start_response(f"{status} {_REASONS.get(status, 'OK')}", headers)
                return [body]
            if (limited := iam_limits.check(raw)) is not None:  # IAM's policy-size quotas (moto has none)
                status, headers, body = limited
                start_response(f"{status} {_REASONS.get(status, 'OK')}", headers)
                return [body]
            environ["wsgi.input"] = io.BytesIO(raw)
        return self.moto_app(environ, start_response)

    # ---- admin ----------------------------------------------------------------------------
    def admin(self, environ: Environ, start_response: StartResponse, route: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = route.strip("/")
        try:
            if route == "health" and method == "GET":
                with self.bedrock.lock:
                    catalog = self.bedrock.config.catalog
                    usage = self.bedrock.usage_snapshot()
                return _json_response(start_response, 200, {
                    "status": "ok", "pid": os.getpid(), "uptime": round(time.time() - self.started, 3),
                    "catalog": catalog, "invocations": sum(u["calls"] for u in usage.values()),
                })
            if route == "usage" and method == "GET":
                return _json_response(start_response, 200, {"models": self.bedrock.usage_snapshot()})
            if route == "reset" and method == "POST":
                self.bedrock.reset()
                return _json_response(start_response, 200, {"status": "reset"})
            if route == "config" and method == "GET":
                return _json_response(start_response, 200, self.bedrock.settings())
            if route == "config" and method == "POST":
                body = _read_body(environ)
                knobs = json.loads(body) if body.strip() else {}
                if not isinstance(knobs, dict):
                    raise ValueError("config body must be a JSON object")
                return _json_response(start_response, 200, self.bedrock.configure(knobs))
        except (ValueError, TypeError) as exc:
            return _json_response(start_response, 400, {"message": str(exc)})
        return _json_response(start_response, 404, {"message": f"No admin route {method} /_sandbox/{route}"})

    # ---- bedrock --------------------------------------------------------------------------
    def handle_bedrock(self, environ: Environ, start_response: StartResponse, region: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = _raw_path(environ)
        body = _read_body(environ)
        try:
            self.bedrock.advance()
            runtime = RUNTIME_PATH.match(raw_path)
            if runtime and method == "POST":
                return self.handle_runtime(start_response, region, unquote(runtime.group(1)), runtime.group(2), body)
            segments = [unquote(s) for s in raw_path.strip("/").split("/")]
            decoded = "/" + "/".join(quote(s, safe="") for s in segments)
            for route in routes():
                if route.method != method:
                    continue
                match = route.regex.match(decoded)
                if match is None:
                    continue
                handler = getattr(self.bedrock, _snake(route.operation.name), None)
                if handler is None:
                    raise ApiError(
                        "ValidationException",
                        f"The offline sandbox does not emulate the {route.operation.name} operation.",
                    )
                values = [unquote(v) for v in match.groups()]
                query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
                params = parse_request(route, values, query, body)
                return _json_response(start_response, route.status, handler(region, params))
            raise ApiError("ResourceNotFoundException", f"No Bedrock operation matches {method} {raw_path}.", 404)
        except ApiError as exc:
            return error_response(start_response, exc)
        except Exception as exc:  # noqa: BLE001 - a sandbox bug must not look like a hang
            print(f"sandbox: internal error on {method} {raw_path}: {exc!r}", file=sys.stderr, flush=True)
            import traceback

            traceback.print_exc()
            return error_response(start_response, ApiError("InternalServerException", f"Sandbox internal error: {exc!r}"))

    def handle_runtime(self, start_response: StartResponse, region: str, model_id: str, action: str,
                       body: bytes) -> list[bytes]:
        if action in ("invoke-with-response-stream", "converse-stream"):
            from utils.sandbox import streaming

            headers, events = streaming.respond(self.bedrock, region, model_id, action, body)
            start_response("200 OK", [*headers, ("x-amzn-RequestId", os.urandom(16).hex())])
            return events
        if action == "count-tokens":
            return self._count_tokens(start_response, region, model_id, body)
        if action == "converse":
            try:
                request = json.loads(body or b"{}")
            except ValueError as exc:
                raise ApiError("ValidationException", "Malformed input request, please reformat your input and try again.") from exc
            result = self.bedrock.invoke(region, model_id, request, converse=True)
            return _json_response(start_response, 200, result.body)
        result = self.bedrock.invoke(region, model_id, body)
        headers = [
            ("x-amzn-bedrock-input-token-count", str(result.completion.input_tokens)),
            ("x-amzn-bedrock-output-token-count", str(result.completion.output_tokens)),
            ("x-amzn-bedrock-invocation-latency", str(result.latency_ms)),
        ]
        return _json_response(start_response, 200, result.body, headers)

    def _count_tokens(self, start_response: StartResponse, region: str, model_id: str, body: bytes) -> list[bytes]:
        return _json_response(start_response, 200, self.bedrock.count_tokens(region, model_id, body))


def _snake(name: str) -> str:
    import botocore

    return botocore.xform_name(name)


# ---------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------


# How often the serving thread checks for stop(): socketserver's default, 0.5 s, is what every
# in-process sandbox's stop() waited (docs.python.org/3/library/socketserver.html, serve_forever).
STOP_POLL_S = 0.05


class SandboxServer:
    """A threaded werkzeug server running the sandbox app, plus the lifecycle ticker."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False,
                 knobs: dict[str, Any] | None = None) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class Handler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                if verbose:
                    super().log_request(*args, **kwargs)

        self.app = SandboxApp()
        settings = {**knobs_from_env(), **(knobs or {})}
        if settings:
            self.app.bedrock.configure(settings)
        self._server = make_server(host, port, self.app, threaded=True, request_handler=Handler)
        self.host = host
        self.port = int(self._server.server_port)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serving = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def bedrock(self) -> Bedrock:
        return self.app.bedrock

    def start(self) -> SandboxServer:
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": STOP_POLL_S},
                                 name="sandbox-http", daemon=True)
        tick = threading.Thread(target=self._tick, name="sandbox-ticker", daemon=True)
        self._threads = [serve, tick]
        self._serving = True
        for thread in self._threads:
            thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the ticker runs in the background)."""
        tick = threading.Thread(target=self._tick, name="sandbox-ticker", daemon=True)
        self._threads = [tick]
        self._serving = True
        tick.start()
        try:
            self._server.serve_forever()
        finally:
            self._stop.set()

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.app.bedrock.advance()
            except Exception as exc:  # noqa: BLE001 - keep ticking; requests will surface it
                print(f"sandbox: ticker error: {exc!r}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Stop serving and close the socket; safe (and immediate) on a server never started."""
        self._stop.set()
        if self._serving:  # shutdown() waits for serve_forever, which would never come
            self._server.shutdown()
            self._serving = False
        self._server.server_close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
