"""The repository is all an attendee has: no file cites material outside it or the project's history."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A private reference folder, or a tracker number that means nothing to an attendee ("issue 4").
# Public references such as "parliament's issue #48" carry a "#" and stay allowed.
PRIVATE = re.compile(r"shared/reference|/work/shared|\bissues? [0-9]+\b", re.IGNORECASE)


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    files = []
    for name in names.splitlines():
        path = REPO / name
        if path.is_file() and path.suffix not in {".png", ".jpg", ".gz", ".parquet"} and path != Path(__file__).resolve():
            files.append(path)
    return files


def test_no_file_cites_private_references_or_tracker_numbers():
    found = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(REPO)}:{n}: {line.strip()[:120]}"
                  for n, line in enumerate(text.splitlines(), 1) if PRIVATE.search(line)]
    assert found == [], "\n".join(found)
