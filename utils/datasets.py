"""Load the workshop's datasets and split them reproducibly.

* :func:`load_qa_csv`: the shipped AWS-docs Q&A (``data/aws_docs_qa.csv``) or any CSV with
  ``document,question,answer`` columns; wrong columns raise an error that says what to fix.
* :func:`load_user_dataset`: your own CSV or JSONL file.
* :func:`load_tatqa`: the real TAT-QA (CC BY 4.0) downloaded from its public GitHub home on
  first use and cached; or any local file in the same schema, such as ``data/tatqa_sample.json``.
  The workshop does not redistribute TAT-QA, and tests never touch the network.
* :func:`tatqa_questions`: one row per question, for pandas.
* :func:`split_dataset`: a deterministic, seeded train/validation/test split.

Nothing here runs at import time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from utils.formats import TATQA_SCALES

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
QA_CSV = DATA_DIR / "aws_docs_qa.csv"
TATQA_SAMPLE = DATA_DIR / "tatqa_sample.json"
REFERENCE_DOCS_DIR = DATA_DIR / "reference_docs"

QA_COLUMNS: tuple[str, ...] = ("document", "question", "answer")

# https://github.com/NExTplusplus/TAT-QA, dataset_raw/ (test has no answers; test_gold has,
# with different question uids).
TATQA_BASE_URL = "https://raw.githubusercontent.com/NExTplusplus/TAT-QA/master/dataset_raw/"
TATQA_FILES: dict[str, str] = {
    "train": "tatqa_dataset_train.json",
    "dev": "tatqa_dataset_dev.json",
    "test": "tatqa_dataset_test.json",
    "test_gold": "tatqa_dataset_test_gold.json",
}
TATQA_MD5: dict[str, str] = {
    "train": "cc5026bdfe51bb47d63e6c3d31714951",  # as listed on the TAT-QA website
    "dev": "0b24a68b35fd814df5ad12cba548a8ea",
    "test": "c6ccc2beecaed12fc070c3df102ca019",
}
TATQA_ANSWER_TYPES = ("span", "multi-span", "arithmetic", "count")
TATQA_ANSWER_FROM = ("table", "text", "table-text")


# --------------------------------------------------------------------------------------
# CSV / JSONL
# --------------------------------------------------------------------------------------


class DatasetFileError(ValueError):
    """A dataset file that cannot be used as it is.

    The message is one line, ``PATH:LINE: what is wrong; what to do``, with LINE the
    file's own 1-based line (blank lines and line breaks inside quoted fields count).
    """

    def _render_traceback_(self) -> list[str]:
        """In Jupyter (IPython), show the one-line message instead of a traceback."""
        return [f"{type(self).__name__}: {self}"]


_RESAVE_UTF8 = "re-save it as UTF-8 (Excel: File > Save As > 'CSV UTF-8'; a text editor: encoding UTF-8)"


def _decode_text(path: Path, data: bytes) -> str:
    """The file's text: UTF-8 (a UTF-8 byte-order mark is allowed), else DatasetFileError."""
    if data.startswith(b"PK\x03\x04"):
        raise DatasetFileError(
            f"{path}:1: this is a zipped file such as an Excel workbook (.xlsx), not text; "
            "export it as 'CSV UTF-8' and load that file"
        )
    # The UTF-32 little-endian mark starts with the UTF-16 one, so it is tested first.
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise DatasetFileError(f"{path}:1: the file is UTF-32 (it starts with a UTF-32 byte-order mark); {_RESAVE_UTF8}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetFileError(f"{path}:1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); {_RESAVE_UTF8}")
    if b"\x00" in data:
        first = data.index(b"\x00")
        line = data[:first].count(b"\n") + 1
        head = data[:200]
        nuls = head.count(b"\x00")
        # ASCII text has one NUL per character in UTF-16, three in UTF-32
        if nuls * 4 >= len(head) * 3 - 4:
            what = "the file looks like UTF-32 without a byte-order mark"
        elif nuls * 3 >= len(head):
            what = "the file looks like UTF-16 without a byte-order mark"
        else:
            what = "the file holds NUL bytes"
        raise DatasetFileError(f"{path}:{line}: {what}; {_RESAVE_UTF8}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data[:exc.start].count(b"\n") + 1
        column = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
        guess = ""
        try:
            data.decode("cp1252")
            guess = " (it looks like Windows-1252 / Latin-1)"
        except UnicodeDecodeError:
            pass
        raise DatasetFileError(
            f"{path}:{line}: not valid UTF-8 at column {column} (byte 0x{data[exc.start]:02x}){guess}; {_RESAVE_UTF8}"
        ) from None


class _CsvTable(NamedTuple):
    header: list[str]
    header_line: int
    rows: list[list[str]]
    lines: list[int]  # the file line on which each row starts


def _read_csv_table(path: Path) -> _CsvTable:
    """Parse a CSV file with the line each record starts on (blank lines and quoted newlines count)."""
    text = _decode_text(path, path.read_bytes())
    if not text.strip():
        raise DatasetFileError(
            f"{path}:1: the file is empty; it needs a header row (for example document,question,answer) "
            "and one row per example"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    end = 0  # the last physical line consumed so far
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line, as pandas skips it
            records.append((start, row))
    except csv.Error as exc:
        raise DatasetFileError(
            f"{path}:{end + 1}: the CSV record starting on this line cannot be parsed ({exc}); close every "
            'quoted field, and write a quote inside a quoted field as two quotes ("")'
        ) from None
    header_line, raw_header = records[0]
    # Unnamed columns get pandas' names, so a trailing comma on every line is harmless.
    header = [name.strip() or f"Unnamed: {i}" for i, name in enumerate(raw_header)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DatasetFileError(
            f"{path}:{header_line}: the header names column(s) {', '.join(map(repr, repeated))} more than once; "
            "give every column its own name"
        )
    if len(records) == 1:
        raise DatasetFileError(
            f"{path}:{header_line}: the file has a header row but no data rows; add one row per example below it"
        )
    bad = [(line, row) for line, row in records[1:] if len(row) != len(header)]
    if bad:
        line, row = bad[0]
        more = f" (also line(s) {', '.join(str(n) for n, _ in bad[1:6])}{' ...' if len(bad) > 6 else ''})" if len(bad) > 1 else ""
        raise DatasetFileError(
            f"{path}:{line}: {len(row)} field(s), but the header on line {header_line} has {len(header)} "
            f"({','.join(header)}){more}; put quotes around fields that contain commas or line breaks"
        )
    return _CsvTable(header, header_line, [row for _, row in records[1:]], [line for line, _ in records[1:]])


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV file as a DataFrame of strings, checked for what pandas would misread or raise on.

    Problems raise :class:`DatasetFileError` with one line naming the file, the line and the
    fix: not UTF-8 (a UTF-8 BOM is fine), UTF-16, empty, header only, a repeated column name,
    a row with more or fewer fields than the header, an unclosed quote. ``df.attrs["csv_lines"]``
    holds the file line each row starts on (see :func:`csv_line`), so later messages can
    name real lines.
    """
    p = Path(path)
    table = _read_csv_table(p)
    df = pd.DataFrame(table.rows, columns=table.header, dtype=str)
    df.attrs["csv_lines"] = table.lines
    df.attrs["csv_header_line"] = table.header_line
    return df


def csv_line(df: pd.DataFrame, label: Any) -> int | None:
    """The file line on which the row with index ``label`` of a :func:`read_csv` frame starts.

    Rows keep their index through ``head``, filters and :func:`split_dataset`, so this
    still names the right line after shuffling.
    """
    lines = df.attrs.get("csv_lines")
    if lines is None or isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        return None
    return lines[label] if 0 <= label < len(lines) else None


def _check_columns(df: pd.DataFrame, required: Sequence[str], source: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        line = df.attrs.get("csv_header_line")
        where = f"{source}:{line}" if line else source
        separators = [sep for sep in (";", "\t", "|") if len(df.columns) == 1 and sep in str(df.columns[0])]
        if separators:
            raise DatasetFileError(
                f"{where}: the header is one column {str(df.columns[0])!r}: the file separates fields with "
                f"{separators[0]!r}, not commas; save it as comma-separated CSV (Excel: 'CSV UTF-8')"
            )
        raise DatasetFileError(
            f"{where}: missing column(s) {', '.join(map(repr, missing))}; found "
            f"{list(map(str, df.columns))}. The file needs a header row with "
            f"{','.join(required)} (rename your columns, or pass columns=... to say which ones you have)"
        )


def load_qa_csv(path: str | Path = QA_CSV, columns: Sequence[str] = QA_COLUMNS) -> pd.DataFrame:
    """Load a Q&A CSV with the ``document,question,answer`` columns (all read as strings).

    Raises :class:`DatasetFileError` (a ValueError) with one line ``PATH:LINE: problem; fix``
    for an unreadable file (see :func:`read_csv`), missing columns, or empty cells.
    """
    df = read_csv(path)
    _check_columns(df, columns, str(path))
    empty = df[list(columns)].apply(lambda col: col.map(lambda cell: not cell.strip())).any(axis=1)
    if empty.any():
        rows = list(df.index[empty])
        lines = [csv_line(df, label) for label in rows]
        cells = [c for c in columns if not df.loc[rows[0], c].strip()]
        more = f" (also line(s) {', '.join(map(str, lines[1:6]))}{' ...' if len(lines) > 6 else ''})" if len(lines) > 1 else ""
        raise DatasetFileError(
            f"{path}:{lines[0]}: empty {'/'.join(cells)} cell(s){more}; fill them in or drop those rows"
        )
    return df


def load_user_dataset(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Load your own dataset: ``.csv`` or ``.jsonl`` / ``.json`` (one JSON object per line).

    ``columns``, when given, must all be present. Problems raise :class:`DatasetFileError`
    (a ValueError) with one line ``PATH:LINE: problem; fix``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        df = read_csv(p)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        rows: list[dict[str, Any]] = []
        text = _decode_text(p, p.read_bytes())
        for number, line in enumerate(text.split("\n"), start=1):  # not splitlines(): JSON may hold U+2028
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFileError(
                    f"{p}:{number}: not valid JSON ({exc.msg}); a .jsonl file needs one object per line"
                ) from None
            if not isinstance(row, dict):
                raise DatasetFileError(f"{p}:{number}: each line must be a JSON object")
            rows.append(row)
        if not rows:
            raise DatasetFileError(f"{p}:1: the file holds no records; write one JSON object per line")
        df = pd.DataFrame(rows)
    else:
        raise DatasetFileError(f"{p}: unsupported file type {suffix!r}; use .csv or .jsonl")
    if columns:
        _check_columns(df, columns, str(p))
    return df


# --------------------------------------------------------------------------------------
# TAT-QA
# --------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$WORKSHOP_CACHE_DIR/tatqa`` or ``~/.cache/bedrock-finetuning-workshop/tatqa``."""
    root = os.environ.get("WORKSHOP_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "bedrock-finetuning-workshop"
    return base / "tatqa"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_tatqa(
    split: str,
    cache_dir: str | Path | None = None,
    base_url: str = TATQA_BASE_URL,
    urlopen: Callable[..., Any] = urllib.request.urlopen,
    timeout: float = 60.0,
) -> Path:
    """The cached path of a TAT-QA split, downloading it once with urllib when missing."""
    if split not in TATQA_FILES:
        raise ValueError(
            f"unknown TAT-QA split {split!r}; choose one of {sorted(TATQA_FILES)} or a file path"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / TATQA_FILES[split]
    if target.is_file() and target.stat().st_size > 0:
        return target
    url = base_url + TATQA_FILES[split]
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        json.loads(Path(tmp_name).read_text(encoding="utf-8"))  # refuse to cache a broken download
        os.replace(tmp_name, target)
    except Exception as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise RuntimeError(
            f"could not download TAT-QA {split} from {url}: {exc}. Check network access to "
            f"raw.githubusercontent.com, or download the file yourself into {cache}"
        ) from exc
    expected = TATQA_MD5.get(split)
    if expected and _md5(target) != expected:
        warnings.warn(
            f"{target}: MD5 differs from the published {expected}; the upstream file may have changed",
            stacklevel=2,
        )
    return target


def load_tatqa(
    path_or_split: str | Path,
    cache_dir: str | Path | None = None,
    base_url: str = TATQA_BASE_URL,
    urlopen: Callable[..., Any] = urllib.request.urlopen,
) -> list[dict[str, Any]]:
    """TAT-QA contexts from a local file, or a split name (train, dev, test, test_gold).

    Split names resolve to a cached copy of the official file (downloaded on first use).
    Local files, such as ``data/tatqa_sample.json``, are read directly.
    """
    text = str(path_or_split)
    if isinstance(path_or_split, Path) or text not in TATQA_FILES:
        path = Path(path_or_split)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file; pass a TAT-QA JSON file or one of the splits {sorted(TATQA_FILES)}"
            )
    else:
        path = download_tatqa(text, cache_dir, base_url, urlopen)
    contexts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(contexts, list):
        raise ValueError(f"{path}: a TAT-QA file is a JSON list of contexts")
    return contexts


def check_tatqa_schema(contexts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems with a TAT-QA-schema file (the official schema of dataset_raw/); an empty list when it conforms."""
    problems: list[str] = []
    context_keys = {"table", "paragraphs", "questions"}
    question_keys = {
        "uid", "order", "question", "answer", "derivation", "answer_type",
        "answer_from", "rel_paragraphs", "req_comparison", "scale",
    }  # fmt: skip
    for i, ctx in enumerate(contexts):
        where = f"context {i}"
        if set(ctx) != context_keys:
            problems.append(f"{where}: keys {sorted(ctx)} != {sorted(context_keys)}")
            continue
        table = ctx["table"]
        if set(table) != {"uid", "table"} or not all(
            isinstance(row, list) and all(isinstance(c, str) for c in row) for row in table["table"]
        ):
            problems.append(f"{where}: table must be {{uid, table: [[str, ...], ...]}}")
        for p in ctx["paragraphs"]:
            if set(p) != {"uid", "order", "text"} or not isinstance(p["order"], int):
                problems.append(f"{where}: paragraph {p.get('uid')} must be {{uid, order: int, text}}")
        orders = {str(p.get("order")) for p in ctx["paragraphs"]}
        for q in ctx["questions"]:
            qwhere = f"{where} question {q.get('uid')}"
            if set(q) != question_keys:
                problems.append(f"{qwhere}: keys differ by {sorted(set(q) ^ question_keys)}")
                continue
            kind = q["answer_type"]
            if kind not in TATQA_ANSWER_TYPES:
                problems.append(f"{qwhere}: answer_type {kind!r}")
            if q["answer_from"] not in TATQA_ANSWER_FROM:
                problems.append(f"{qwhere}: answer_from {q['answer_from']!r}")
            if q["scale"] not in TATQA_SCALES:
                problems.append(f"{qwhere}: scale {q['scale']!r}")
            answer = q["answer"]
            ok = {
                "span": isinstance(answer, list) and len(answer) == 1,
                "multi-span": isinstance(answer, list) and len(answer) >= 2,
                "arithmetic": isinstance(answer, (int, float)) and not isinstance(answer, bool),
                "count": isinstance(answer, str) and answer.isdigit(),
            }.get(kind, False)
            if not ok:
                problems.append(f"{qwhere}: answer {answer!r} has the wrong type for {kind}")
            if kind in ("arithmetic", "count") and not q["derivation"]:
                problems.append(f"{qwhere}: {kind} answers need a derivation")
            if not isinstance(q["req_comparison"], bool) or not isinstance(q["order"], int):
                problems.append(f"{qwhere}: order must be int and req_comparison bool")
            if not all(isinstance(r, str) and r in orders for r in q["rel_paragraphs"]):
                problems.append(f"{qwhere}: rel_paragraphs {q['rel_paragraphs']} are not paragraph orders")
    return problems


def tatqa_questions(contexts: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Flatten TAT-QA contexts to one row per question.

    Columns: ``question_uid, question, answer, derivation, answer_type, answer_from, scale,
    rel_paragraphs, req_comparison, order, table_uid, table, paragraphs, context_index``.
    ``table`` is the 2-D cell list; ``paragraphs`` the texts in order. Use
    :func:`utils.formats.tatqa_prompt` with ``{"table": {"table": row.table}, ...}`` or keep
    the contexts for rendering.
    """
    rows: list[dict[str, Any]] = []
    for index, ctx in enumerate(contexts):
        paragraphs = [p["text"] for p in sorted(ctx.get("paragraphs", []), key=lambda p: p.get("order", 0))]
        for q in ctx.get("questions", []):
            rows.append(
                {
                    "question_uid": q["uid"],
                    "question": q["question"],
                    "answer": q.get("answer"),
                    "derivation": q.get("derivation", ""),
                    "answer_type": q.get("answer_type", ""),
                    "answer_from": q.get("answer_from", ""),
                    "scale": q.get("scale", ""),
                    "rel_paragraphs": list(q.get("rel_paragraphs", [])),
                    "req_comparison": bool(q.get("req_comparison", False)),
                    "order": q.get("order"),
                    "table_uid": ctx["table"]["uid"],
                    "table": ctx["table"]["table"],
                    "paragraphs": paragraphs,
                    "context_index": index,
                }
            )
    return pd.DataFrame(rows)


def tatqa_context(row: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild a renderable context from a :func:`tatqa_questions` row."""
    return {
        "table": {"uid": row["table_uid"], "table": row["table"]},
        "paragraphs": [{"uid": str(i), "order": i, "text": t} for i, t in enumerate(row["paragraphs"], 1)],
    }


# --------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------


class Splits(NamedTuple):
    """Train, validation and test frames (unpack or use the attributes)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def _sizes(n: int, train: float | None, validation: float | None, test: float | None) -> tuple[int, int, int]:
    given = [s for s in (train, validation, test) if s is not None]
    if any(s < 0 for s in given):
        raise ValueError("split sizes must be >= 0")
    fractions = all(isinstance(s, float) and s <= 1.0 for s in given) and any(
        isinstance(s, float) for s in given
    )
    if fractions:
        if sum(given) > 1.0 + 1e-9:
            raise ValueError(f"split fractions sum to {sum(given):.3f} > 1")
        counts = [None if s is None else int(round(s * n)) for s in (train, validation, test)]
    else:
        if not all(float(s).is_integer() for s in given):
            raise ValueError("give split sizes either all as fractions (floats <= 1) or all as counts (ints)")
        counts = [None if s is None else int(s) for s in (train, validation, test)]
    fixed = sum(c for c in counts if c is not None)
    if fixed > n:
        # rounding of fractions can overshoot by one or two: take it from the largest
        if fractions and fixed - n <= 2:
            largest = max(range(3), key=lambda i: counts[i] or 0)
            counts[largest] = (counts[largest] or 0) - (fixed - n)
        else:
            raise ValueError(f"split sizes add up to {fixed}, more than the {n} rows available")
    rest = n - sum(c for c in counts if c is not None)
    if counts[0] is None:
        counts[0] = rest
    elif counts[2] is None:
        counts[2] = rest
    elif counts[1] is None:
        counts[1] = rest
    elif fractions and abs(sum(given) - 1.0) < 1e-9:
        counts[0] += rest  # fractions meant to cover everything: rounding leftovers go to train
    return int(counts[0]), int(counts[1] or 0), int(counts[2] or 0)


def split_dataset(
    df: pd.DataFrame,
    train: float | None = 0.8,
    validation: float | None = 0.1,
    test: float | None = 0.1,
    seed: int = 42,
) -> Splits:
    """Shuffle ``df`` with ``seed`` and cut it into train, validation and test.

    Sizes are all fractions (floats, e.g. 0.8/0.1/0.1) or all counts (ints, e.g. 40/5/5).
    One of them may be None to take the rest. Fractions that sum to 1 cover every row
    (rounding leftovers go to train); counts may leave rows unused. The same data and seed
    always give the same split; rows keep their original index.
    """
    train_n, val_n, test_n = _sizes(len(df), train, validation, test)
    order = np.random.default_rng(seed).permutation(len(df))
    parts = np.split(order, [train_n, train_n + val_n, train_n + val_n + test_n])
    return Splits(df.iloc[parts[0]], df.iloc[parts[1]], df.iloc[parts[2]])
