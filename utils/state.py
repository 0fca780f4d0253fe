"""Workshop state shared between notebooks, the resource ledger, names and tags.

One small JSON file per workshop id replaces IPython's ``%store``. It holds what
later notebooks need (region, bucket, role ARNs, dataset URIs, job and model
ARNs) and a ledger of every resource the series created, which notebook 07 uses
to clean up. Names are deterministic from the workshop id, so reruns find the
resources they made instead of creating duplicates.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "WORKSHOP_STATE_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
WORKSHOP_TAG = "bedrock-finetuning-workshop"
_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$")


def validate_workshop_id(workshop_id: str) -> str:
    """Workshop ids are 1-20 lowercase letters, digits and inner hyphens (valid in every name)."""
    if not _ID_PATTERN.match(workshop_id):
        raise ValueError(
            f"workshop_id {workshop_id!r} is not valid: use 1-20 lowercase letters, digits "
            "and inner hyphens, e.g. 'demo' or 'team-a'. It becomes part of S3 bucket, "
            "IAM role and Bedrock job names."
        )
    return workshop_id


def state_dir() -> Path:
    """Where state files live: ``$WORKSHOP_STATE_DIR`` or ``<repo>/.workshop``."""
    return Path(os.environ.get(STATE_DIR_ENV) or REPO_ROOT / ".workshop")


class StateFileError(RuntimeError):
    """The state file exists but is not this workshop's state: empty, truncated, or foreign."""

    def __init__(self, path: Path, workshop_id: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(
            f"Workshop state file {path} is unusable: {problem}. Recovery: 07_cleanup still deletes this "
            f"workshop's resources, found by their tags (workshop_id={workshop_id!r}); 01_permissions starts "
            f"over with a fresh file and keeps this one aside as {path.name}.broken-<timestamp>; then run the "
            "notebooks from 02 again."
        )


@dataclass
class LedgerEntry:
    """One resource the series created (or adopted on rerun)."""

    kind: str  # e.g. s3-bucket, iam-role, iam-policy, customization-job, custom-model, ...
    identifier: str  # ARN or name
    region: str
    notebook: str
    billable: bool = False  # keeps costing money while it exists
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())


@dataclass
class WorkshopState:
    """Everything later notebooks need, persisted to ``<state_dir>/<workshop_id>.json``."""

    workshop_id: str
    region: str = ""
    backend: str = ""
    profile: str = ""
    account_id: str = ""
    bucket: str = ""
    roles: dict[str, str] = field(default_factory=dict)  # purpose -> role ARN
    datasets: dict[str, str] = field(default_factory=dict)  # split -> s3 URI
    values: dict[str, Any] = field(default_factory=dict)  # job/model ARNs and other facts
    ledger: list[LedgerEntry] = field(default_factory=list)

    # ---- persistence -----------------------------------------------------------------
    @property
    def path(self) -> Path:
        return state_dir() / f"{self.workshop_id}.json"

    @classmethod
    def load(cls, workshop_id: str, *, start_over: bool = False, log: Callable[[str], None] = print) -> WorkshopState:
        """The saved state, or a fresh one if this workshop id has none yet.

        A state file that is empty, not JSON, or not this workshop's state raises
        :class:`StateFileError` (one message naming the file and the recovery). With
        ``start_over=True`` (01_permissions and 07_cleanup) the broken file is kept aside as
        ``<name>.broken-<timestamp>`` and a fresh state is returned instead.
        """
        validate_workshop_id(workshop_id)
        path = state_dir() / f"{workshop_id}.json"
        if not path.exists():
            return cls(workshop_id=workshop_id)
        try:
            return cls._parse(workshop_id, path)
        except StateFileError as problem:
            if not start_over:
                raise
            aside = path.with_name(f"{path.name}.broken-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
            os.replace(path, aside)
            log(f"{problem.problem.capitalize()} in {path}: kept it aside as {aside} and started a fresh "
                "state. Resources are found again by their names and tags.")
            return cls(workshop_id=workshop_id)

    @classmethod
    def _parse(cls, workshop_id: str, path: Path) -> WorkshopState:
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            raise StateFileError(path, workshop_id, "the file is empty")
        try:
            raw = json.loads(text)
        except ValueError as err:
            raise StateFileError(path, workshop_id, f"the file is not valid JSON ({err})") from None
        if not isinstance(raw, dict) or "workshop_id" not in raw:
            raise StateFileError(path, workshop_id, "the file is not a workshop state (no workshop_id)")
        if raw["workshop_id"] != workshop_id:
            raise StateFileError(path, workshop_id, f"the file belongs to workshop_id={raw['workshop_id']!r}")
        try:
            raw["ledger"] = [LedgerEntry(**entry) for entry in raw.get("ledger") or []]
            state = cls(**raw)
        except TypeError as err:
            raise StateFileError(path, workshop_id, f"the file has fields this version does not know ({err})") from None
        return state

    def save(self) -> Path:
        """Write atomically, so an interrupted cell never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(asdict(self), handle, indent=2, sort_keys=True, default=str)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)  # atomic on POSIX and Windows (same directory)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path

    # ---- values -------------------------------------------------------------------------
    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def require(self, key: str, notebook: str) -> Any:
        """A value an earlier notebook must have stored; a clear message if it did not."""
        if key not in self.values:
            raise RuntimeError(
                f"Workshop state {self.path} has no {key!r}. Run {notebook} first "
                f"with workshop_id={self.workshop_id!r}."
            )
        return self.values[key]

    # ---- ledger -------------------------------------------------------------------------
    def record(
        self, kind: str, identifier: str, notebook: str, *, billable: bool = False,
        region: str | None = None,
    ) -> LedgerEntry:
        """Add a resource to the ledger once (reruns do not duplicate entries)."""
        for entry in self.ledger:
            if entry.kind == kind and entry.identifier == identifier:
                return entry
        entry = LedgerEntry(kind, identifier, region or self.region, notebook, billable)
        self.ledger.append(entry)
        self.save()
        return entry

    def forget(self, kind: str, identifier: str) -> None:
        self.ledger = [e for e in self.ledger if not (e.kind == kind and e.identifier == identifier)]
        self.save()

    def resources(self, kind: str | None = None) -> list[LedgerEntry]:
        return [e for e in self.ledger if kind is None or e.kind == kind]


# ---- names and tags --------------------------------------------------------------------

def name(workshop_id: str, purpose: str, *, max_length: int = 63, sep: str = "-") -> str:
    """A deterministic resource name ``bedrock-ws-<id>-<purpose>``.

    Valid for S3 buckets, Bedrock job/model/deployment names and IAM names
    (lowercase letters, digits, hyphens; at most ``max_length`` characters).
    """
    validate_workshop_id(workshop_id)
    cleaned = re.sub(r"[^a-z0-9]+", "-", purpose.lower()).strip("-")
    full = sep.join(part for part in ("bedrock-ws", workshop_id, cleaned) if part)
    if len(full) > max_length:
        raise ValueError(f"Name {full!r} is longer than {max_length} characters")
    return full


def role_name(workshop_id: str, purpose: str) -> str:
    """IAM role names contain ``AmazonBedrock`` so AmazonBedrockFullAccess users may pass them."""
    validate_workshop_id(workshop_id)
    cleaned = "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", purpose) if part)
    return f"AmazonBedrockWorkshop-{workshop_id}-{cleaned}"[:64]


def tags(workshop_id: str, **extra: str) -> dict[str, str]:
    """The tags every taggable resource carries."""
    return {"workshop": WORKSHOP_TAG, "workshop-id": workshop_id, **extra}


def tag_list(workshop_id: str, *, key: str = "Key", value: str = "Value", **extra: str) -> list[dict[str, str]]:
    """Tags as a list of ``{Key, Value}`` (IAM, S3) or ``{key, value}`` (Bedrock)."""
    return [{key: k, value: v} for k, v in tags(workshop_id, **extra).items()]
