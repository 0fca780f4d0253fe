"""utils.datasets: loaders on the shipped files, the TAT-QA download path (offline), splits."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from utils import datasets
from utils.datasets import (
    QA_CSV,
    REFERENCE_DOCS_DIR,
    TATQA_SAMPLE,
    check_tatqa_schema,
    load_qa_csv,
    load_tatqa,
    load_user_dataset,
    split_dataset,
    tatqa_context,
    tatqa_questions,
)
from utils.formats import tatqa_prompt

# --------------------------------------------------------------------------------------
# Shipped data
# --------------------------------------------------------------------------------------


def test_qa_csv_shape_and_content() -> None:
    df = load_qa_csv()
    assert list(df.columns) == ["document", "question", "answer"]
    assert len(df) >= 150  # N = 25 and 4N = 100 originals fit beside the test and validation rows
    assert df["document"].nunique() >= 30  # varied topics, shared bundles
    assert not df["question"].duplicated().any()
    for doc, answer in zip(df["document"], df["answer"], strict=True):
        assert doc.startswith("Doc 1: ")
        n_docs = len(re.findall(r"\bDoc (\d): ", doc))
        assert 1 <= n_docs <= 5
        cited = {int(c) for c in re.findall(r"\[(\d)\]", answer)}
        assert cited and max(cited) <= n_docs, answer  # every answer cites a passage that exists
        assert 1 <= len(re.findall(r"[.!?](\s|$)", answer)) <= 3


def test_data_readme_states_licence() -> None:
    text = (QA_CSV.parent / "README.md").read_text()
    assert "CC BY 4.0" in text and "written for this project" in text.lower()


def test_reference_docs() -> None:
    docs = sorted(REFERENCE_DOCS_DIR.glob("*.md"))
    assert 3 <= len(docs) <= 5
    assert all(d.read_text().startswith("# ") for d in docs)


def test_tatqa_sample_is_official_schema() -> None:
    contexts = load_tatqa(TATQA_SAMPLE)
    assert len(contexts) == 15
    assert check_tatqa_schema(contexts) == []
    questions = [q for c in contexts for q in c["questions"]]
    assert len(questions) == 60
    assert {q["answer_type"] for q in questions} == set(datasets.TATQA_ANSWER_TYPES)
    assert {q["scale"] for q in questions} == set(datasets.TATQA_SCALES)
    assert {q["answer_from"] for q in questions} == set(datasets.TATQA_ANSWER_FROM)
    uids = [q["uid"] for q in questions] + [c["table"]["uid"] for c in contexts]
    assert len(set(uids)) == len(uids)


def _numbers(text: str) -> set[float]:
    return {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*\.?\d*", text)}


def test_tatqa_sample_arithmetic_is_correct() -> None:
    checked = 0
    for ctx in load_tatqa(TATQA_SAMPLE):
        source = _numbers(" ".join(" ".join(r) for r in ctx["table"]["table"]))
        source |= _numbers(" ".join(p["text"] for p in ctx["paragraphs"]))
        for q in ctx["questions"]:
            if q["answer_type"] == "count":
                assert int(q["answer"]) == len(q["derivation"].split("##"))
            if q["answer_type"] != "arithmetic":
                continue
            assert re.fullmatch(r"[\d.+\-*/() ]+", q["derivation"])
            value = eval(q["derivation"], {"__builtins__": {}})  # noqa: S307 - digits and operators only
            candidates = [round(value, 2)]
            if q["scale"] == "percent":
                candidates.append(round(value * 100, 2))  # ratios are stored x100, as in TAT-QA
            assert any(abs(q["answer"] - c) < 1e-9 for c in candidates), q
            # every operand comes from the table or the text (except small divisors like /2, /3)
            operands = {float(x) for x in re.findall(r"\d+\.?\d*", q["derivation"])}
            assert {o for o in operands if o > 3} <= source, q
            checked += 1
    assert checked >= 20


def test_tatqa_spans_come_from_the_context() -> None:
    for ctx in load_tatqa(TATQA_SAMPLE):
        haystack = " ".join(" ".join(r) for r in ctx["table"]["table"]) + " "
        haystack += " ".join(p["text"] for p in ctx["paragraphs"])
        for q in ctx["questions"]:
            if q["answer_type"] in ("span", "multi-span"):
                for span in q["answer"]:
                    assert span in haystack, (q["question"], span)


def test_tatqa_questions_flattening() -> None:
    contexts = load_tatqa(TATQA_SAMPLE)
    df = tatqa_questions(contexts)
    assert len(df) == 60 and df["question_uid"].is_unique
    assert {"question", "answer", "answer_type", "scale", "table", "paragraphs", "table_uid"} <= set(
        df.columns
    )
    row = df.iloc[0]
    assert row["table"] == contexts[0]["table"]["table"]
    assert row["paragraphs"][0] == contexts[0]["paragraphs"][0]["text"]
    assert tatqa_prompt(tatqa_context(row), row["question"]) == tatqa_prompt(contexts[0], row["question"])
    assert Counter(df["answer_type"])["arithmetic"] >= 20


def test_check_tatqa_schema_finds_problems() -> None:
    contexts = json.loads(TATQA_SAMPLE.read_text())
    contexts[0]["questions"][0]["answer"] = "not a list"
    contexts[1]["questions"][0]["scale"] = "millions"
    del contexts[2]["questions"][0]["derivation"]
    problems = check_tatqa_schema(contexts)
    assert len(problems) == 3


# --------------------------------------------------------------------------------------
# TAT-QA download path (never the network)
# --------------------------------------------------------------------------------------


class _FakeUrlopen:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float = 0) -> io.BytesIO:
        self.urls.append(url)
        return io.BytesIO(self.payload)


def test_load_tatqa_downloads_once_and_caches(tmp_path: Path) -> None:
    fake = _FakeUrlopen(TATQA_SAMPLE.read_bytes())
    with pytest.warns(UserWarning, match="MD5"):  # the sample is not the real dev file
        contexts = load_tatqa("dev", cache_dir=tmp_path, urlopen=fake)
    assert fake.urls == [datasets.TATQA_BASE_URL + "tatqa_dataset_dev.json"]
    assert fake.urls[0] == (
        "https://raw.githubusercontent.com/NExTplusplus/TAT-QA/master/dataset_raw/tatqa_dataset_dev.json"
    )
    assert len(contexts) == 15 and (tmp_path / "tatqa_dataset_dev.json").is_file()
    again = load_tatqa("dev", cache_dir=tmp_path, urlopen=fake)
    assert again == contexts and len(fake.urls) == 1  # served from the cache


def test_load_tatqa_file_url(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tatqa_dataset_test_gold.json").write_bytes(TATQA_SAMPLE.read_bytes())
    contexts = load_tatqa("test_gold", cache_dir=tmp_path / "cache", base_url=mirror.as_uri() + "/")
    assert len(contexts) == 15


def test_broken_download_is_not_cached(tmp_path: Path) -> None:
    fake = _FakeUrlopen(b"<html>rate limited</html>")
    with pytest.raises(RuntimeError, match="could not download TAT-QA dev"):
        load_tatqa("dev", cache_dir=tmp_path, urlopen=fake)
    assert list(tmp_path.iterdir()) == []


def test_load_tatqa_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="splits"):
        load_tatqa(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="unknown TAT-QA split"):
        datasets.download_tatqa("validation", cache_dir=tmp_path)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    assert datasets.default_cache_dir() == tmp_path / "tatqa"


# --------------------------------------------------------------------------------------
# CSV / JSONL loaders
# --------------------------------------------------------------------------------------


def test_load_qa_csv_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("context,question,answer\nd,q,a\n")
    with pytest.raises(ValueError, match="missing column\\(s\\) 'document'.*document,question,answer"):
        load_qa_csv(path)


def test_load_qa_csv_empty_cell(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("document,question,answer\nd,q,a\nd,,a\n")
    with pytest.raises(ValueError, match=r"qa\.csv:3: empty question cell"):
        load_qa_csv(path)


def test_load_user_dataset_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("question,answer\nq1,a1\nq2,a2\n")
    assert load_user_dataset(csv_path, columns=["question", "answer"]).shape == (2, 2)
    jsonl = tmp_path / "mine.jsonl"
    rows: list[dict[str, Any]] = [{"prompt": "p1", "completion": "c1"}, {"prompt": "p2", "completion": "c2"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    df = load_user_dataset(jsonl, columns=["prompt", "completion"])
    assert df.to_dict("records") == rows
    with pytest.raises(ValueError, match="missing column"):
        load_user_dataset(jsonl, columns=["question"])
    jsonl.write_text('{"prompt": "p"}\nnot json\n')
    with pytest.raises(ValueError, match="mine.jsonl:2"):
        load_user_dataset(jsonl)
    with pytest.raises(ValueError, match="unsupported"):
        load_user_dataset(tmp_path / "mine.parquet")


# Bad CSVs: one line naming the file, the file's real line and the fix ---------------------

HEADER = "document,question,answer\n"
UTF8_CSV = (HEADER + "Doc 1: caf\u00e9,What?,Answer\n").encode("utf-8")


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (UTF8_CSV.decode().encode("cp1252"), 2, ["not valid UTF-8", "column 11", "0xe9", "Windows-1252", "CSV UTF-8"]),
        (UTF8_CSV.decode().encode("utf-16"), 1, ["UTF-16", "byte-order mark", "re-save it as UTF-8"]),
        (UTF8_CSV.decode().encode("utf-16-le"), 1, ["UTF-16 without a byte-order mark", "UTF-8"]),
        (UTF8_CSV.decode().encode("utf-16-be"), 1, ["UTF-16 without a byte-order mark", "UTF-8"]),
        (b"", 1, ["empty", "header row"]),
        (b"\n\n  \n", 1, ["empty", "header row"]),
        (HEADER.encode(), 1, ["header row but no data rows", "add one row"]),
        (b"\n\n" + HEADER.encode() + b"\n", 3, ["header row but no data rows"]),
        ((HEADER + "d,q,a\n\nd,q,a,extra\n").encode(), 4, ["4 field(s)", "header on line 1 has 3", "quotes"]),
        ((HEADER + 'd,"q\nstill q,a\n').encode(), 2, ["cannot be parsed", "close every quoted field"]),
        (b"document,question,question\nd,q,a\n", 1, ["'question' more than once"]),
        (b"PK\x03\x04\x14\x00\x06\x00", 1, ["Excel workbook", "CSV UTF-8"]),
        (UTF8_CSV.decode().encode("utf-32"), 1, ["the file is UTF-32", "re-save it as UTF-8"]),
        (UTF8_CSV.decode().encode("utf-32-be"), 1, ["UTF-32 without a byte-order mark", "UTF-8"]),
    ],
    ids=["cp1252", "utf16-bom", "utf16le-no-bom", "utf16be-no-bom", "empty", "blank-lines-only", "header-only",
         "header-only-after-blanks", "extra-field", "unclosed-quote", "repeated-column", "xlsx", "utf32-bom",
         "utf32be-no-bom"],
)
def test_bad_csv_gets_one_line_with_file_line_and_fix(tmp_path: Path, data: bytes, line: int, words: list[str]) -> None:
    path = tmp_path / "qa.csv"
    path.write_bytes(data)
    for load in (load_qa_csv, load_user_dataset):
        with pytest.raises(datasets.DatasetFileError) as exc:
            load(path)
        message = str(exc.value)
        assert "\n" not in message and message.startswith(f"{path}:{line}: "), message
        assert all(w in message for w in words), message
        assert exc.value._render_traceback_() == [f"DatasetFileError: {message}"]


def test_csv_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        "\n"  # 1: blank
        + HEADER  # 2
        + "d1,q1,a1\n"  # 3
        + "\n"  # 4: blank
        + '"d2 line one\nd2 line two",q2,a2\n'  # 5-6
        + "\n\n"  # 7-8
        + "d3, ,a3\n"  # 9: empty question
        + 'd4,q4,"a4\n\nwith a blank line inside"\n'  # 10-12
        + "d5,,\n"  # 13
    )
    df = datasets.read_csv(path)
    assert [datasets.csv_line(df, label) for label in df.index] == [3, 5, 9, 10, 13]
    shuffled = split_dataset(df, train=None, validation=1, test=1, seed=3)
    for part in shuffled:
        assert all(datasets.csv_line(df, label) == [3, 5, 9, 10, 13][label] for label in part.index)
    with pytest.raises(datasets.DatasetFileError, match=rf"^{re.escape(str(path))}:9: empty question cell\(s\) \(also line\(s\) 13\)"):
        load_qa_csv(path)


def test_csv_with_semicolons_says_so(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("\ndocument;question;answer\nd;q;a\n")
    with pytest.raises(datasets.DatasetFileError, match=rf"^{re.escape(str(path))}:2: .*separates fields with ';'"):
        load_qa_csv(path)


def test_csv_trailing_commas_are_unnamed_columns(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("document,question,answer,\nd,q,a,\n")
    df = load_qa_csv(path)
    assert list(df.columns) == ["document", "question", "answer", "Unnamed: 3"]


def test_csv_accepts_utf8_bom_crlf_and_matches_pandas(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_bytes(b"\xef\xbb\xbf" + UTF8_CSV.replace(b"\n", b"\r\n"))
    df = load_qa_csv(path)
    assert list(df.columns) == ["document", "question", "answer"] and df.iloc[0]["document"] == "Doc 1: caf\u00e9"
    shipped = load_qa_csv()
    assert shipped.equals(pd.read_csv(QA_CSV, dtype=str, keep_default_na=False))
    assert datasets.csv_line(shipped, 0) == 2


def test_jsonl_user_dataset_encoding_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes(b'{"prompt": "p"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(datasets.DatasetFileError, match=r"mine\.jsonl:2: not valid UTF-8"):
        load_user_dataset(path)
    path.write_bytes(b"\n\n")
    with pytest.raises(datasets.DatasetFileError, match=r"mine\.jsonl:1: the file holds no records"):
        load_user_dataset(path)
    path.write_text('{"prompt": "line\u2028separator"}\n', encoding="utf-8")
    assert load_user_dataset(path).iloc[0]["prompt"] == "line\u2028separator"


# --------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n)})


def test_split_fractions_cover_everything_and_are_disjoint() -> None:
    df = load_qa_csv()
    train, validation, test = split_dataset(df, 0.8, 0.1, 0.1, seed=7)
    assert (len(train), len(validation), len(test)) == (120, 15, 15)
    assert set(train.index) | set(validation.index) | set(test.index) == set(df.index)
    assert not set(train.index) & set(test.index)


def test_default_split_of_02_leaves_room_for_the_four_arms() -> None:
    """02's default sizes give test >= 30, validation >= 10 and a training pool of at least 4N = 100."""
    from utils import runner

    declared = runner.declared_parameters(Path(__file__).parents[2] / "notebooks" / "02_data_preparation.ipynb")
    validation_size, test_size = (int(declared[k]["default"]) for k in ("validation_size", "test_size"))
    train, validation, test = split_dataset(load_qa_csv(), train=None, validation=validation_size,
                                            test=test_size, seed=int(declared["split_seed"]["default"]))
    assert len(test) >= 30 and len(validation) >= 10 and len(train) >= 100
    assert not set(train["question"]) & set(test["question"])


def test_split_is_deterministic_and_seeded() -> None:
    df = _frame(100)
    a = split_dataset(df, 0.7, 0.15, 0.15, seed=1)
    b = split_dataset(df, 0.7, 0.15, 0.15, seed=1)
    c = split_dataset(df, 0.7, 0.15, 0.15, seed=2)
    assert all(x.index.equals(y.index) for x, y in zip(a, b, strict=True))
    assert not a.train.index.equals(c.train.index)


def test_split_counts_and_remainder() -> None:
    df = _frame(60)
    s = split_dataset(df, 40, 5, 5, seed=0)
    assert (len(s.train), len(s.validation), len(s.test)) == (40, 5, 5)  # 10 rows unused
    s = split_dataset(df, None, 10, 10, seed=0)
    assert len(s.train) == 40
    s = split_dataset(_frame(7), 0.8, 0.1, 0.1)
    assert sum(map(len, s)) == 7


def test_split_errors() -> None:
    with pytest.raises(ValueError, match="more than the 10 rows"):
        split_dataset(_frame(10), 8, 2, 2)
    with pytest.raises(ValueError, match="sum to"):
        split_dataset(_frame(10), 0.8, 0.2, 0.2)
    with pytest.raises(ValueError, match="fractions"):
        split_dataset(_frame(10), 0.8, 2, 1)
