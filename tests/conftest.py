"""Test-process set-up shared by every test: one botocore data loader for all sessions.

``utils.aws.client`` builds a fresh boto3 session per call (so the environment it reads is always
current), and every fresh botocore session gets a fresh data loader that parses ``endpoints.json``
and the service model again (``botocore.loaders.create_loader``). Thousands of clients per test run
made that parsing a large share of the suite's CPU time. The files are botocore's own, read-only, and
one loader already serves every client of one session (its cache is ``botocore.loaders.instance_cache``),
so sharing one loader per data path changes no answer: it is what a long-lived session does.
This affects only the test process (and its in-process sandboxes), never a notebook kernel.
"""

from __future__ import annotations

import os

import botocore.loaders
import botocore.session

_loaders: dict[str | None, botocore.loaders.Loader] = {}


class _SearchPaths(list):
    """boto3 appends its own data folder to a session's loader; shared, it is appended once."""

    def append(self, item: str) -> None:
        if item not in self:
            super().append(item)


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """``botocore.loaders.create_loader``, one loader per ``AWS_DATA_PATH`` value."""
    loader = _loaders.get(search_path_string)
    if loader is None:
        extra = [os.path.expanduser(os.path.expandvars(path))
                 for path in (search_path_string.split(os.pathsep) if search_path_string else [])]
        loader = _loaders[search_path_string] = botocore.loaders.Loader(extra_search_paths=_SearchPaths(extra))
    return loader


botocore.session.create_loader = _shared_loader
