"""The shared store: every Bedrock resource of one sandbox, plus what all families do the same way.

Written once here and used by every resource family:

* :class:`Table` -- one family's resources by ARN, with regional lookups (resources are per
  region: a lookup in us-west-2 never sees a us-east-1 resource);
* :class:`Tokens` -- ``clientRequestToken`` idempotency (:func:`idempotent`);
* :func:`matching` -- the filters of every ``list_*`` operation (time window, status, name, equals);
* :func:`listing` -- sorting and ``nextToken`` pagination of every ``list_*`` operation;
* tags by ARN, and the per-model runtime usage counters;
* IDs (:func:`new_id`) and timestamps (:func:`iso`, :func:`to_epoch`).

One re-entrant lock guards the store; every operation takes it.
"""

from __future__ import annotations

import base64
import functools
import secrets
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from utils.sandbox.bedrock.errors import not_found, validation

if TYPE_CHECKING:  # the resource types, for annotations only: this module imports no family
    from utils.sandbox.bedrock.batch import InvocationJob
    from utils.sandbox.bedrock.custom_models import CustomModel
    from utils.sandbox.bedrock.customization import CustomizationJob
    from utils.sandbox.bedrock.deployments import Deployment
    from utils.sandbox.bedrock.evaluation import EvaluationJob
    from utils.sandbox.bedrock.imports import ImportedModel, ImportJob
    from utils.sandbox.bedrock.provisioned import ProvisionedThroughput

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """A 12-character lowercase alphanumeric resource ID, as in Bedrock ARNs."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds (botocore parses it tz-aware)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def to_epoch(value: Any) -> float | None:
    """A query-string timestamp (ISO 8601 or epoch seconds) -> epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise validation(f"Invalid timestamp {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    rest = uri[len("s3://"):] if uri.startswith("s3://") else uri
    bucket, _, key = rest.partition("/")
    return bucket, key


def tag_dict(tags: Any) -> dict[str, str]:
    """``[{key, value}, ...]`` -> ``{key: value}``."""
    return {t["key"]: t["value"] for t in (tags or [])}


# ---------------------------------------------------------------------------------------
# Lists: filters, order, pages
# ---------------------------------------------------------------------------------------

INVALID_TOKEN = "The provided pagination token is invalid."


def paginate(items: list[Any], max_results: int | None, token: str | None) -> tuple[list[Any], str | None]:
    """A page of ``items`` and the opaque ``nextToken`` for the rest (None at the end)."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise validation(INVALID_TOKEN) from exc
        if not 0 <= start <= len(items):  # never issued: a token points inside the list it came from
            raise validation(INVALID_TOKEN)
    size = max_results or 1000
    page = items[start:start + size]
    end = start + size
    nxt = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return page, nxt


def _given(value: Any) -> bool:
    """Whether a filter parameter was passed (``False`` is a value: ``isOwned=false`` filters)."""
    return value is not None and value != ""


T = TypeVar("T")


def matching(items: Iterable[T], p: dict[str, Any], *, time_attr: str = "created",
             after: str = "creationTimeAfter", before: str = "creationTimeBefore", name_attr: str = "name",
             status_attr: str | None = "status",
             equals: Mapping[str, Callable[[T], Any]] | None = None) -> list[T]:
    """The ``items`` a ``list_*`` request's filters select, in their order.

    Every family's list operation filters the same way (botocore's ``List*Request`` shapes):
    a time window ``p[after] < item.<time_attr> < p[before]`` (exclusive; the parameter names
    differ: ``creationTimeAfter`` for most, ``submitTimeAfter`` for batch jobs, ``createdAfter``
    for deployments), ``statusEquals`` against ``item.<status_attr>`` (families whose request
    has no ``statusEquals`` pass ``status_attr=None``), ``nameContains`` as a substring of
    ``item.<name_attr>``, and each ``equals[param](item) == p[param]`` for the family's own
    filters (``modelArnEquals``, ``applicationTypeEquals`` ...). A filter not passed selects
    everything.
    """
    lo, hi = to_epoch(p.get(after)), to_epoch(p.get(before))
    status, name = p.get("statusEquals") if status_attr else None, p.get("nameContains")
    extra = [(value_of, p[param]) for param, value_of in (equals or {}).items() if _given(p.get(param))]
    return [
        item for item in items
        if (lo is None or getattr(item, time_attr) > lo) and (hi is None or getattr(item, time_attr) < hi)
        and (not _given(status) or getattr(item, status_attr or "") == status)
        and (not _given(name) or name in getattr(item, name_attr))
        and all(value_of(item) == wanted for value_of, wanted in extra)
    ]


def listing(key: str, items: Iterable[Any], p: dict[str, Any], render: Callable[[Any], dict[str, Any]], *,
            sort_by: str | None = "created") -> dict[str, Any]:
    """A ``list_*`` response: ``items`` newest first (unless ``sortOrder=Ascending``), one page of them
    rendered under ``key``, and ``nextToken`` when more remain."""
    ordered = list(items)
    if sort_by is not None:
        ordered.sort(key=lambda x: getattr(x, sort_by), reverse=(p.get("sortOrder") or "Descending") != "Ascending")
    page, nxt = paginate(ordered, p.get("maxResults"), p.get("nextToken"))
    out: dict[str, Any] = {key: [render(x) for x in page]}
    if nxt:
        out["nextToken"] = nxt
    return out


# ---------------------------------------------------------------------------------------
# Tables of resources
# ---------------------------------------------------------------------------------------


class Resource(Protocol):
    arn: str
    name: str
    region: str


R = TypeVar("R", bound=Resource)


class Table(dict[str, R]):
    """One family's resources by ARN. Lookups are regional and accept the ARN or another key
    (the name for most resources, the 12-character ID for batch jobs)."""

    def __init__(self, noun: str, keys: tuple[str, ...] = ("arn", "name")) -> None:
        super().__init__()
        self.noun = noun
        self.keys = keys

    def add(self, resource: R) -> R:
        self[resource.arn] = resource
        return resource

    def in_region(self, region: str) -> list[R]:
        return [r for r in self.values() if r.region == region]

    def maybe(self, region: str, identifier: str) -> R | None:
        for resource in self.in_region(region):
            if any(getattr(resource, key) == identifier for key in self.keys):
                return resource
        return None

    def find(self, region: str, identifier: str) -> R:
        resource = self.maybe(region, identifier)
        if resource is None:
            raise not_found(f"Could not find {self.noun} with identifier {identifier}.")
        return resource

    def named(self, region: str, name: str) -> bool:
        return any(r.name == name for r in self.in_region(region))


# ---------------------------------------------------------------------------------------
# Idempotency tokens
# ---------------------------------------------------------------------------------------


class Tokens:
    """``clientRequestToken`` memory: (region, operation, token) -> the first response.

    botocore's model docs for every create operation: "If this token matches a previous
    request, Amazon Bedrock ignores the request, but does not return an error"
    (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelCustomizationJob.html).
    So a repeated token answers the first response, even when the resource has since been
    deleted (how long AWS remembers a token is undocumented; the ``idempotency_tokens`` knob
    can make a delete forget it) and even when the other parameters differ (uncertain: other
    AWS services answer a changed request with an idempotency-mismatch error; Bedrock's docs
    say only that the request is ignored). botocore fills in a fresh token on every call that
    does not pass one, so only a caller's explicit token is ever repeated.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}

    def replay(self, region: str, operation: str, token: str | None) -> dict[str, Any] | None:
        hit = self._seen.get((region, operation, token)) if token else None
        return dict(hit[1]) if hit else None

    def remember(self, region: str, operation: str, token: str | None, arn: str, response: dict[str, Any]) -> None:
        if token:
            self._seen[(region, operation, token)] = (arn, dict(response))

    def forget(self, arn: str) -> None:
        for key in [k for k, (owner, _) in self._seen.items() if owner == arn]:
            del self._seen[key]


def idempotent(arn_key: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Make a family's ``create_*(region, p)`` idempotent on ``p["clientRequestToken"]``.

    ``arn_key`` names the response member holding the new resource's ARN.
    """

    def wrap(create: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        @functools.wraps(create)
        def wrapper(self: Any, region: str, p: dict[str, Any]) -> dict[str, Any]:
            store: Store = self.store
            with store.lock:
                token = p.get("clientRequestToken")
                replay = store.tokens.replay(region, create.__name__, token)
                if replay is not None:
                    return replay
                response = create(self, region, p)
                store.tokens.remember(region, create.__name__, token, response[arn_key], response)
                return response

        return wrapper

    return wrap


# ---------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------


class Store:
    """All Bedrock resources of one sandbox, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        self.jobs: Table[CustomizationJob] = Table("model customization job")
        self.models: Table[CustomModel] = Table("custom model")
        self.throughputs: Table[ProvisionedThroughput] = Table("provisioned model")
        self.deployments: Table[Deployment] = Table("custom model deployment")
        self.batch_jobs: Table[InvocationJob] = Table("model invocation job", keys=("arn", "job_id"))
        self.import_jobs: Table[ImportJob] = Table("model import job")
        self.imported_models: Table[ImportedModel] = Table("imported model")
        self.evaluation_jobs: Table[EvaluationJob] = Table("evaluation job", keys=("arn",))
        self.tags: dict[str, dict[str, str]] = {}
        self.tokens = Tokens()
        # Runtime calls served, per model ID: what a real account would be billed for.
        self.usage: dict[str, dict[str, int]] = {}

    def tables(self) -> tuple[Table[Any], ...]:
        return (self.jobs, self.models, self.throughputs, self.deployments, self.batch_jobs, self.import_jobs,
                self.imported_models, self.evaluation_jobs)

    def knows(self, arn: str) -> bool:
        return any(arn in table for table in self.tables())

    def delete(self, table: Table[Any], resource: Resource, *, forget_token: bool) -> None:
        """Remove a resource and its tags (and its idempotency token, when the knob says so)."""
        del table[resource.arn]
        self.tags.pop(resource.arn, None)
        if forget_token:
            self.tokens.forget(resource.arn)
