"""utils.validate_dataset: one passing and one failing case per rule, the corpus, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from utils import models
from utils.validate_dataset import (
    CONTINUED_PRE_TRAINING,
    MAX_PRINTED,
    TOKEN_FORMULA,
    Problem,
    UsageError,
    estimate_tokens,
    main,
    validate_bytes,
    validate_file,
    validate_records,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "fixtures" / "datasets"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def mid(key: str) -> str:
    """Customization ID of a registry model (no IDs hard-coded in tests)."""
    cid = models.MODELS[key].customization_id
    assert cid
    return cid


HAIKU, LLAMA, NOVA, MICRO, TITAN = (
    mid("claude-3-haiku"),
    mid("llama3-1-8b"),
    mid("nova-lite"),
    mid("nova-micro"),
    mid("titan-text-express"),
)


def haiku(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ],
        **extra,
    }


def conv(i: int = 0) -> dict[str, Any]:
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": f"question {i}"}]},
            {"role": "assistant", "content": [{"text": f"answer {i}"}]},
        ],
    }


def pc(i: int = 0) -> dict[str, Any]:
    return {"prompt": f"question {i}", "completion": f"answer {i}"}


def check(records: list[Any], model: str, n: int, bad: Any = None, at: int = 1, **kw: Any):
    """Validate ``n`` copies of a good record with ``bad`` replacing record ``at`` (1-based)."""
    rows = list(records[:1]) * n if len(records) == 1 else list(records)
    if bad is not None:
        rows[at - 1] = bad
    return validate_records(rows, model, **kw)


def lines_of(report) -> list[int | None]:
    return [p.line for p in report.problems]


# --------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", EXPECTED, ids=[c["file"] for c in EXPECTED])
def test_corpus_verdicts_and_lines(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    path = str(CORPUS / case["file"])
    argv = [path, "--base-model", mid(case["model"]), "--split", case["split"]]
    argv += ["--customization-type", case["customization_type"]]
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == case["exit"], out
    record_lines = sorted({int(x.split(":")[1]) for x in out.splitlines() if x.split(":")[1].isdigit()})
    if case["exit"] == 1 and len(case["lines"]) > MAX_PRINTED:
        assert record_lines == case["lines"][:MAX_PRINTED]
    else:
        assert record_lines == case["lines"]
    if case["file_level"]:
        assert any(x.startswith(f"{path}: ") and "INVALID" not in x for x in out.splitlines())
    if case["exit"] == 0:
        assert out.strip().splitlines()[-1].startswith(f"{path}: OK:")


# --------------------------------------------------------------------------------------
# Rules: one passing and one failing case each
# --------------------------------------------------------------------------------------


def test_keys_prompt_completion() -> None:
    assert check([pc()], LLAMA, 100).ok
    report = check([pc()], LLAMA, 100, bad=haiku(), at=3)
    assert lines_of(report) == [3]
    assert "record uses the Claude 3 Haiku messages format" in report.problems[0].message
    assert "expects" in report.problems[0].message


def test_keys_haiku_message_names_the_fix() -> None:
    assert check([haiku()], HAIKU, 32).ok
    report = check([haiku()], HAIKU, 32, bad=pc(), at=2)
    msg = report.problems[0].message
    assert report.problems[0].line == 2
    assert "prompt/completion keys" in msg and "Claude 3 Haiku" in msg and "messages" in msg


def test_types() -> None:
    report = check([pc()], LLAMA, 100, bad={"prompt": 5, "completion": "x"}, at=4)
    assert lines_of(report) == [4] and "must be a string" in report.problems[0].message
    report = check([haiku()], HAIKU, 32, bad={"messages": "hi"}, at=2)
    assert lines_of(report) == [2] and "must be a list" in report.problems[0].message


def test_role_order_and_alternation() -> None:
    good = haiku()
    good["messages"] += [{"role": "user", "content": "more"}, {"role": "assistant", "content": "ok"}]
    assert check([good], HAIKU, 32).ok
    starts_assistant = {"messages": list(reversed(haiku()["messages"]))}
    repeated = {"messages": [{"role": "user", "content": "a"}, *haiku()["messages"]]}
    for bad, text in ((starts_assistant, "first message"), (repeated, "alternate")):
        report = check([haiku()], HAIKU, 32, bad=bad, at=5)
        assert lines_of(report)[0] == 5
        assert any(text in p.message for p in report.problems)
    ends_user = conv()
    ends_user["messages"] = ends_user["messages"][:1]
    report = check([conv()], NOVA, 10, bad=ends_user, at=2)
    assert lines_of(report) == [2] and "at least 2" in report.problems[0].message


def test_string_vs_content_blocks() -> None:
    haiku_blocks = {
        "messages": [{"role": "user", "content": [{"text": "q"}]}, {"role": "assistant", "content": "a"}]
    }
    report = check([haiku()], HAIKU, 32, bad=haiku_blocks, at=3)
    assert lines_of(report) == [3] and "plain string" in report.problems[0].message
    nova_string = conv()
    nova_string["messages"][0]["content"] = "q"
    report = check([conv()], NOVA, 10, bad=nova_string, at=3)
    assert lines_of(report) == [3] and "content blocks" in report.problems[0].message
    assert check([conv()], NOVA, 10).ok


def test_empty_content() -> None:
    empty = haiku()
    empty["messages"][1]["content"] = "  "
    report = check([haiku()], HAIKU, 32, bad=empty, at=6)
    assert lines_of(report) == [6] and "empty" in report.problems[0].message
    empty_blocks = conv()
    empty_blocks["messages"][1]["content"] = []
    assert lines_of(check([conv()], NOVA, 10, bad=empty_blocks, at=2)) == [2]
    assert lines_of(check([pc()], LLAMA, 100, bad={"prompt": "q", "completion": ""}, at=7)) == [7]


def test_extra_keys() -> None:
    report = check([pc()], LLAMA, 100, bad={**pc(), "id": 1}, at=9)
    assert lines_of(report) == [9] and "'id'" in report.problems[0].message
    report = check([haiku()], HAIKU, 32, bad=haiku(schemaVersion="x"), at=1)
    assert lines_of(report)[0] == 1 and "schemaVersion" in report.problems[0].message
    block_extra = conv()
    block_extra["messages"][0]["content"][0]["cache"] = True
    assert lines_of(check([conv()], NOVA, 10, bad=block_extra, at=4)) == [4]


def test_blank_non_json_and_non_object_lines() -> None:
    good = (json.dumps(pc()) + "\n").encode() * 100
    assert validate_bytes(good, LLAMA).ok
    lines = [json.dumps(pc())] * 101  # 100 records and one blank line
    lines[2] = ""
    lines[4] = "{'prompt': 'single quotes'}"
    lines[6] = "[1, 2]"
    report = validate_bytes(("\n".join(lines) + "\n").encode(), LLAMA)
    assert lines_of(report) == [3, 5, 7]
    assert "blank line" in report.problems[0].message
    assert "not valid JSON" in report.problems[1].message
    assert "not a JSON object" in report.problems[2].message
    # a trailing blank line at the end is also a stray blank line
    assert lines_of(validate_bytes(good + b"\n", LLAMA)) == [101]
    # CRLF line endings parse
    assert validate_bytes(good.replace(b"\n", b"\r\n"), LLAMA).ok


def test_utf8() -> None:
    good = "\n".join(json.dumps(pc(i), ensure_ascii=False) + " " for i in range(100)).encode()
    assert validate_bytes(good.replace(b"question 1 ", "qüestion 1 ".encode()), LLAMA).ok
    report = validate_bytes(good.replace(b'question 5"', b'question \xff5"'), LLAMA)
    assert not report.ok and report.problems[0].line is None and "UTF-8" in report.problems[0].message
    assert "line(s) 6" in report.problems[0].message
    bom = validate_bytes(b"\xef\xbb\xbf" + good, LLAMA)
    assert not bom.ok and "byte-order mark" in bom.problems[0].message


@pytest.mark.parametrize(
    ("model", "record", "split", "good", "bad"),
    [
        ("claude-3-haiku", haiku(), "train", 32, 31),
        ("claude-3-haiku", haiku(), "train", 10_000, 10_001),
        ("claude-3-haiku", haiku(), "validation", 1_000, 1_001),
        ("llama3-1-8b", pc(), "train", 100, 99),
        ("llama3-1-8b", pc(), "train", 10_000, 10_001),
        ("nova-lite", conv(), "train", 8, 7),
        ("titan-text-express", pc(), "train", 10_000, 10_001),
    ],
)
def test_record_counts(model: str, record: dict[str, Any], split: str, good: int, bad: int) -> None:
    line = (json.dumps(record) + "\n").encode()
    assert validate_bytes(line * good, mid(model), split=split).ok
    report = validate_bytes(line * bad, mid(model), split=split)
    assert [p.line for p in report.problems] == [None]
    assert str(bad) in report.problems[0].message.replace(",", "")


def test_empty_file() -> None:
    report = validate_bytes(b"", NOVA)
    assert not report.ok and report.problems[0].line is None and "empty" in report.problems[0].message


def test_token_limits_per_family() -> None:
    haiku_ok = haiku()
    haiku_ok["messages"][0]["content"] = "word " * 15_000  # ~25k estimated tokens
    assert check([haiku()], HAIKU, 32, bad=haiku_ok, at=1).ok
    haiku_long = haiku()
    haiku_long["messages"][0]["content"] = "word " * 25_000
    report = check([haiku()], HAIKU, 32, bad=haiku_long, at=2)
    assert lines_of(report) == [2] and "32,000" in report.problems[0].message

    llama_in = {"prompt": "word " * 11_000, "completion": "x"}
    report = check([pc()], LLAMA, 100, bad=llama_in, at=3)
    assert lines_of(report) == [3]
    assert report.failure_message().startswith("Maximum input token count ")
    llama_sum = {"prompt": "word " * 5_000, "completion": "word " * 5_000}
    report = check([pc()], LLAMA, 100, bad=llama_sum, at=3)
    assert report.failure_message().startswith("Max sum of input and output token length ")
    assert report.failure_message().endswith("exceeds total limit of 16000")
    assert check([pc()], LLAMA, 100, bad={"prompt": "word " * 4_000, "completion": "x"}).ok


def test_titan_limit_depends_on_batch_size() -> None:
    record = {"prompt": "word " * 1_500, "completion": "x"}  # ~2,500 estimated tokens
    assert check([pc()], TITAN, 20, bad=record, batch_size=1).ok
    report = check([pc()], TITAN, 20, bad=record, at=2, batch_size=2)
    assert lines_of(report) == [2] and "2,048" in report.problems[0].message
    long = {"prompt": "word " * 3_000, "completion": "x"}
    report = check([pc()], TITAN, 20, bad=long, at=1)
    assert (
        report.failure_message()
        == f"Maximum input token count {estimate_tokens(long['prompt'])} exceeds limit of 4096"
    )


def test_nova_reserved_strings() -> None:
    assert check([conv()], NOVA, 10).ok
    for reserved in ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]"):
        bad = conv()
        bad["messages"][1]["content"][0]["text"] = f"see {reserved} here"
        report = check([conv()], NOVA, 10, bad=bad, at=8)
        assert lines_of(report) == [8] and reserved in report.problems[0].message
    # the rule is Nova's: Llama 3.3 uses the same format without it
    bad = conv()
    bad["system"][0]["text"] = "System: be brief"
    assert check([conv()], mid("llama3-3-70b"), 100, bad=bad).ok


def test_media_rules() -> None:
    image = {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://bucket/a.png"}}}}
    rec = conv()
    rec["messages"][0]["content"].append(image)
    assert check([conv()], NOVA, 10, bad=rec).ok
    assert lines_of(check([conv()], MICRO, 10, bad=rec, at=2)) == [2]  # Micro is text only
    rec2 = conv()
    rec2["messages"][1]["content"].append(image)
    assert lines_of(check([conv()], NOVA, 10, bad=rec2, at=3)) == [3]  # no media in assistant turns


def test_cpt_format() -> None:
    cpt = [{"input": f"text {i}"} for i in range(5)]
    assert validate_records(cpt, TITAN, customization_type=CONTINUED_PRE_TRAINING).ok
    report = validate_records([pc()] * 5, TITAN, customization_type=CONTINUED_PRE_TRAINING)
    assert lines_of(report) == [1, 2, 3, 4, 5]
    assert (
        report.failure_message()
        == 'Input data at train.jsonl must follow \'{"input": "<input text>"}\' format'
    )
    # CPT records in a fine-tuning file
    report = validate_records(cpt, TITAN)
    assert not report.ok and "continued pre-training" in report.problems[0].message


def test_cpt_only_for_titan() -> None:
    for key in ("llama3-1-8b", "nova-lite", "claude-3-haiku"):
        with pytest.raises(UsageError, match="CONTINUED_PRE_TRAINING"):
            validate_records([{"input": "x"}], mid(key), customization_type=CONTINUED_PRE_TRAINING)


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown base model"):
        validate_bytes(b"{}\n", "acme.model-v1")
    with pytest.raises(UsageError, match="split"):
        validate_bytes(b"{}\n", NOVA, split="test")
    with pytest.raises(UsageError):
        validate_bytes(b"{}\n", NOVA, customization_type="DISTILLATION")


def test_retired_haiku_still_supported() -> None:
    assert models.MODELS["claude-3-haiku"].retired
    assert check([haiku()], HAIKU, 32).ok


# --------------------------------------------------------------------------------------
# Report API
# --------------------------------------------------------------------------------------


def test_report_fields_and_summary() -> None:
    report = check([haiku()], HAIKU, 40)
    assert report.ok and report.records == 40 and report.problems == []
    assert report.token_max >= report.token_mean > 0
    assert TOKEN_FORMULA in report.summary()
    assert report.failure_message() == ""


def test_failure_message_mapping() -> None:
    lines = [json.dumps(pc())] * 100
    lines[9] = json.dumps(haiku())
    lines[20] = "nope"
    report = validate_bytes(("\n".join(lines) + "\n").encode(), LLAMA, filename="data.jsonl")
    # parsing is checked before formats, whatever the line order
    assert report.failure_message() == (
        "Unable to parse Amazon S3 file: data.jsonl. Data files must conform to JSONL format."
    )
    lines[20] = json.dumps(pc())
    report = validate_bytes(("\n".join(lines) + "\n").encode(), LLAMA, filename="data.jsonl")
    assert report.failure_message() == (
        "Input data at data.jsonl must follow "
        '\'{"prompt": "<input text>", "completion": "<output text>"}\' format'
    )


def test_problem_constructible_with_two_fields() -> None:
    problem = Problem(3, "bad")
    assert problem.render("f.jsonl") == "f.jsonl:3: bad"
    assert Problem(None, "bad").render("f.jsonl") == "f.jsonl: bad"


def test_estimate_tokens_is_conservative() -> None:
    assert estimate_tokens("") == 0
    text = "Amazon S3 stores objects in buckets."
    assert estimate_tokens(text) >= len(text) / 4  # at least a typical BPE count
    assert estimate_tokens("1 2 3 4 5 6") == 9  # short words: the word term wins


def test_validate_file(tmp_path: Path) -> None:
    path = tmp_path / "val.jsonl"
    path.write_text("".join(json.dumps(haiku(i)) + "\n" for i in range(5)))
    report = validate_file(path, HAIKU, split="validation")
    assert report.ok and report.filename == "val.jsonl" and report.records == 5


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def test_cli_output_is_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(pc(i)) + "\n" for i in range(200)))
    assert main([str(path), "--base-model", HAIKU]) == 1
    out = capsys.readouterr().out.splitlines()
    assert sum(1 for x in out if x.startswith(f"{path}:") and x.split(":")[1].isdigit()) == MAX_PRINTED
    assert any(f"{200 - MAX_PRINTED} more problem(s)" in x for x in out)


def test_cli_usage_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(pc()) + "\n")
    assert main([str(path), "--base-model", "acme.unknown-v1"]) == 2
    assert main([str(tmp_path / "missing.jsonl"), "--base-model", LLAMA]) == 2
    assert main([str(path), "--base-model", LLAMA, "--customization-type", CONTINUED_PRE_TRAINING]) == 2
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--base-model", LLAMA, "--split", "test"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main([str(path)])
    assert exc.value.code == 2
    capsys.readouterr()


def test_cli_as_module(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(conv(i)) + "\n" for i in range(8)) + "\n")
    run = subprocess.run(
        [sys.executable, "-m", "utils.validate_dataset", str(path), "--base-model", NOVA],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert f"{path}:9: blank line" in run.stdout


# --------------------------------------------------------------------------------------
# Base model IDs: only customization model IDs, refused with the valid ones named
# --------------------------------------------------------------------------------------


def test_cli_refuses_look_alike_and_on_demand_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(conv(i)) + "\n" for i in range(10)))
    nova_ids = [cid for cid in models.CUSTOMIZABLE if cid.startswith("amazon.nova")]
    assert main([str(path), "--base-model", "amazon.nova-ultra-v9:0"]) == 2
    err = capsys.readouterr().err
    assert "amazon.nova-ultra-v9:0" in err and all(cid in err for cid in nova_ids)
    on_demand = models.MODELS["nova-lite"].model_id
    for wrong in (on_demand, models.MODELS["nova-lite"].profile_id(), f"{on_demand}:128k", "nova-lite"):
        assert main([str(path), "--base-model", wrong]) == 2, wrong
        err = capsys.readouterr().err
        assert f"use {NOVA} " in err and "not a customization model ID" in err, err
    assert main([str(path), "--base-model", f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA}"]) == 0
    capsys.readouterr()


def test_library_refuses_unknown_ids_as_usage_errors() -> None:
    with pytest.raises(UsageError, match="cannot be customized"):
        validate_records([conv()] * 8, models.MODELS["claude-sonnet-4-6"].model_id)
    with pytest.raises(UsageError, match=HAIKU):
        validate_records([haiku()] * 32, models.MODELS["claude-3-haiku"].model_id)


def test_every_cli_model_id_in_help_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out.replace("\n", " ")
    for cid in models.CUSTOMIZABLE:
        assert cid in help_text.replace(" ", "") or cid in help_text


def test_warnings_go_to_stderr_not_as_bad_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.jsonl"
    rows = [haiku(i) for i in range(32)]
    rows[4]["messages"][0]["content"] = "Quote:\nHuman: hello"  # a third-party validator's reserved string
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(path), "--base-model", HAIKU]) == 0
    captured = capsys.readouterr()
    assert [x for x in captured.out.splitlines() if x.split(":")[1].isdigit()] == []
    assert f"{path}: warning (line 5):" in captured.err and "retired" in captured.err


def test_cli_batch_size_is_a_whole_number_in_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.jsonl"
    rows = [pc(i) for i in range(5)]
    rows[2]["prompt"] = "word " * 1500  # ~2,250 tokens: over 2,048 (batch size 2+), under 4,096
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(path), "--base-model", TITAN]) == 0
    assert main([str(path), "--base-model", TITAN, "--batch-size", "2"]) == 1
    for bad in ("3.7", "0", "65", "two"):
        assert main([str(path), "--base-model", TITAN, "--batch-size", bad]) == 2, bad
    assert "1..64" in capsys.readouterr().err
    assert main([str(path), "--base-model", NOVA, "--batch-size", "2"]) == 2
    assert "no batchSize" in capsys.readouterr().err
    with pytest.raises(UsageError, match="whole number"):
        validate_records([pc()] * 5, TITAN, batch_size=True)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Empty text in every conversational format, and media rules
# --------------------------------------------------------------------------------------

INVISIBLE = ("", "   ", "\n\t", "\u200b", "\u2060\ufeff")


@pytest.mark.parametrize("blank", INVISIBLE, ids=["empty", "spaces", "whitespace", "zwsp", "joiners"])
def test_blank_text_is_an_error_in_every_format(blank: str) -> None:
    def conv_with(path: str) -> dict[str, Any]:
        r = conv(1)
        if path == "system":
            r["system"][0]["text"] = blank
        else:
            r["messages"][int(path)]["content"][0]["text"] = blank
        return r

    def haiku_with(path: str) -> dict[str, Any]:
        r = haiku(1)
        if path == "system":
            r["system"] = blank
        else:
            r["messages"][int(path)]["content"] = blank
        return r

    cases = [
        (LLAMA, 100, pc(), {"prompt": blank, "completion": "a"}),
        (LLAMA, 100, pc(), {"prompt": "q", "completion": blank}),
        (TITAN, 5, pc(), {"prompt": "q", "completion": blank}),
        (mid("llama3-3-70b"), 100, conv(), conv_with("0")),
        (mid("llama3-3-70b"), 100, conv(), conv_with("system")),
    ]
    for path in ("0", "1", "system"):
        cases.append((NOVA, 8, conv(), conv_with(path)))
        cases.append((HAIKU, 32, haiku(), haiku_with(path)))
    for model, n, good, bad in cases:
        report = check([good], model, n, bad=bad, at=2)
        assert lines_of(report) == [2], (model, bad, report.problems)
        assert "empty" in report.problems[0].message
    report = validate_records([{"input": "text"}, {"input": blank}], TITAN, customization_type=CONTINUED_PRE_TRAINING)
    assert lines_of(report) == [2]


def test_haiku_without_system_is_fine() -> None:
    record = haiku(1)
    del record["system"]
    assert check([record], HAIKU, 32).ok


def test_nova_media_counts_and_dataset_modality() -> None:
    image = {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/x.png"}}}}
    video = {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/x.mp4"}}}}

    def with_media(*blocks: dict[str, Any]) -> dict[str, Any]:
        r = conv(1)
        r["messages"][0]["content"] += list(blocks)
        return r

    assert check([conv()], NOVA, 8, bad=with_media(*[image] * 10), at=2).ok
    assert lines_of(check([conv()], NOVA, 8, bad=with_media(*[image] * 11), at=2)) == [2]
    assert lines_of(check([conv()], NOVA, 8, bad=with_media(video, video), at=2)) == [2]
    rows = [conv(i) for i in range(8)]
    rows[1], rows[5] = with_media(image), with_media(video)
    report = validate_records(rows, NOVA)
    assert lines_of(report) == [None] and "mixes images (first on line 2) and video (first on line 6)" in (
        report.problems[0].message
    )


def test_llama_conversation_schema_version_and_system() -> None:
    llama33 = mid("llama3-3-70b")
    other = conv(1)
    other["schemaVersion"] = "messages-v1"
    assert lines_of(check([conv()], llama33, 100, bad=other, at=3)) == [3]
    assert check([conv()], NOVA, 8, bad=other, at=3).ok  # Nova takes any schemaVersion string
    no_system = conv(1)
    no_system["system"] = []
    assert lines_of(check([conv()], llama33, 100, bad=no_system, at=4)) == [4]
    del no_system["system"]
    assert check([conv()], llama33, 100, bad=no_system, at=4).ok


def test_nova2_reasoning_content_and_media_formats() -> None:
    nova2 = mid("nova-2-lite")
    reasoning = conv(1)
    reasoning["messages"][1]["content"].insert(0, {"reasoningContent": {"reasoningText": {"text": "Think."}}})
    assert check([conv()], nova2, 200, bad=reasoning, at=2).ok
    assert lines_of(check([conv()], NOVA, 8, bad=reasoning, at=2)) == [2]  # Nova 2 only
    in_user = conv(1)
    in_user["messages"][0]["content"].append({"reasoningContent": {"reasoningText": {"text": "Hm."}}})
    assert lines_of(check([conv()], nova2, 200, bad=in_user, at=3)) == [3]
    webp = conv(1)
    webp["messages"][0]["content"].append({"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://b/x"}}}})
    assert lines_of(check([conv()], nova2, 200, bad=webp, at=4)) == [4]
    assert check([conv()], NOVA, 8, bad=webp, at=4).ok
    assert lines_of(check([conv()], nova2, 199)) == [None]  # 200 records at least (uncertain bound)
