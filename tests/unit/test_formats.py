"""utils.formats: per-model records (validated), round-trips, converters and prompts."""

from __future__ import annotations

import json

import pytest

from utils import formats, models
from utils.datasets import TATQA_SAMPLE, load_tatqa
from utils.validate_dataset import CONTINUED_PRE_TRAINING, validate_records

KEYS = ("claude-3-haiku", "llama3-1-8b", "llama3-3-70b", "nova-lite", "nova-micro", "titan-text-express")
MINIMUM = {"claude3": 32, "llama3.1": 100, "llama3.3": 100, "nova": 8, "titan": 1}


def mid(key: str) -> str:
    cid = models.MODELS[key].customization_id
    assert cid
    return cid


@pytest.mark.parametrize("key", KEYS)
def test_format_record_matches_model_and_validates(key: str) -> None:
    model = mid(key)
    record = formats.format_record("What is S3?", "Object storage [1].", model, system="Be brief.")
    fmt = models.data_format(model)
    expected_keys = {
        models.FORMAT_CLAUDE_MESSAGES: {"system", "messages"},
        models.FORMAT_CONVERSATION: {"schemaVersion", "system", "messages"},
        models.FORMAT_PROMPT_COMPLETION: {"prompt", "completion"},
    }[fmt]
    assert set(record) == expected_keys
    n = MINIMUM[models.family_of(model)]
    assert validate_records([record] * n, model).ok


def test_claude_messages_shape_and_multi_turn() -> None:
    turns = [("user", "hi"), ("assistant", "hello"), ("user", "IAM?"), ("assistant", "access control")]
    record = formats.claude_messages_record(turns, system="sys")
    assert record == {
        "system": "sys",
        "messages": [{"role": r, "content": t} for r, t in turns],
    }
    assert "system" not in formats.claude_messages_record(turns)
    assert validate_records([record] * 32, mid("claude-3-haiku")).ok


def test_conversation_shape() -> None:
    record = formats.conversation_record(formats.single_turn("q", "a"), system="sys")
    assert record == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "sys"}],
        "messages": [
            {"role": "user", "content": [{"text": "q"}]},
            {"role": "assistant", "content": [{"text": "a"}]},
        ],
    }


def test_prompt_completion_has_no_system_field() -> None:
    record = formats.format_record("q", "a", mid("titan-text-express"), system="sys")
    assert record == {"prompt": "sys\n\nq", "completion": "a"}
    with pytest.raises(ValueError, match="multi-turn"):
        formats.format_conversation([("user", "a"), ("assistant", "b")] * 2, mid("llama3-1-8b"))


def test_cpt_record_validates() -> None:
    records = [formats.cpt_record(f"Amazon S3 note {i}") for i in range(3)]
    assert records[0] == {"input": "Amazon S3 note 0"}
    assert validate_records(records, mid("titan-text-express"), customization_type=CONTINUED_PRE_TRAINING).ok


def test_seed_converter() -> None:
    record = formats.prompt_completion_to_messages({"prompt": "q", "completion": "a"}, system="s")
    assert record == {
        "system": "s",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    }


@pytest.mark.parametrize("source", KEYS)
@pytest.mark.parametrize("target", KEYS)
def test_convert_between_formats(source: str, target: str) -> None:
    turns = formats.single_turn("What is KMS?", "A key service [2].")
    record = formats.format_conversation(turns, mid(source), system="Be brief.")
    converted = formats.convert_record(record, mid(target))
    assert converted == formats.convert_record(converted, mid(target))  # idempotent
    assert validate_records([converted] * MINIMUM[models.family_of(mid(target))], mid(target)).ok
    system, back = formats.parse_record(converted)
    assert back[-1] == ("assistant", "A key service [2].")
    pc = models.FORMAT_PROMPT_COMPLETION
    if pc not in (models.data_format(mid(source)), models.data_format(mid(target))):
        assert (system, back) == ("Be brief.", turns)  # lossless between message formats
    else:
        assert system is None and back[0][1].endswith("What is KMS?") and "Be brief." in back[0][1]


def test_multi_turn_round_trip() -> None:
    turns = [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]
    for fn in (formats.claude_messages_record, formats.conversation_record):
        assert formats.parse_record(fn(turns, system="s")) == ("s", turns)


def test_parse_record_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unrecognised"):
        formats.parse_record({"text": "x"})


def test_jsonl_round_trip() -> None:
    records = [formats.format_record("q ü", "a\nb", mid("nova-lite")), {"prompt": "p", "completion": "c"}]
    text = formats.to_jsonl(records)
    assert text.endswith("\n") and text.count("\n") == 2 and "ü" in text
    assert formats.from_jsonl(text) == records
    assert all(json.loads(line) for line in text.splitlines())
    assert formats.to_jsonl([]) == ""


def test_rag_prompt() -> None:
    prompt = formats.rag_prompt("How big can an object be?", ["Objects up to 5 TB.", "Buckets are global."])
    assert "Doc 1: Objects up to 5 TB." in prompt and "Doc 2: Buckets are global." in prompt
    assert "Question: How big can an object be?" in prompt
    assert "relevant" in prompt and "[n]" in prompt
    bundle = "Doc 1: a Doc 2: b"
    assert bundle in formats.rag_prompt("q", bundle)


TABLE = [["", "2020", "2019"], ["Revenue", "$ 1,452.4", "1,320.6"], ["A | B", "1", "2"]]


def test_render_table_markdown_round_trip() -> None:
    text = formats.render_table(TABLE, "markdown")
    assert text.splitlines()[1] == "| --- | --- | --- |"
    assert formats.parse_markdown_table(text) == TABLE


def test_render_table_html_and_json() -> None:
    html = formats.render_table([["<a>", "b"], ["1", "2"]], "html")
    assert html.startswith("<table><tr><th>&lt;a&gt;</th>") and "<td>2</td>" in html
    assert json.loads(formats.render_table(TABLE, "json")) == TABLE
    with pytest.raises(ValueError):
        formats.render_table(TABLE, "latex")


@pytest.mark.parametrize("table_format", formats.TABLE_FORMATS)
def test_tatqa_prompt(table_format: str) -> None:
    contexts = load_tatqa(TATQA_SAMPLE)
    ctx = contexts[0]
    question = ctx["questions"][0]
    prompt = formats.tatqa_prompt(ctx, question, table_format)
    assert formats.render_table(ctx["table"]["table"], table_format) in prompt
    assert all(p["text"] in prompt for p in ctx["paragraphs"])
    assert f"Question: {question['question']}" in prompt
    assert "Scale:" in prompt and "percent" in prompt and "concise" in prompt


def test_tatqa_completion_round_trip() -> None:
    for ctx in load_tatqa(TATQA_SAMPLE):
        for q in ctx["questions"]:
            answer, scale = formats.parse_tatqa_completion(formats.tatqa_completion(q))
            assert scale == q["scale"]
            assert answer == formats.tatqa_answer_text(q["answer"])
    assert formats.tatqa_answer_text(["a", "b"]) == "a; b"
    assert formats.tatqa_answer_text(11.0) == "11"
    assert formats.parse_tatqa_completion("Answer: 3\nScale: none") == ("3", "")
