"""InvokeModel bodies and Converse requests: every rule passes and fails once; round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from utils.sandbox.bodies import (
    BodyError,
    Prompt,
    parse_converse,
    parse_invoke_body,
    parse_llama_prompt,
    render_converse,
    render_invoke_body,
)
from utils.sandbox.standins import Completion, ModelBehaviour, generate


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def anthropic(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "What is Bedrock?"}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def nova(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": "messages-v1",
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "What is Bedrock?"}]}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.2, "topP": 0.9},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def converse(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": "What is Bedrock?"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.0, "stopSequences": ["END"]},
    }
    body.update(overrides)
    return body


# ----------------------------------------------------------------------- Anthropic


def test_anthropic_valid_body() -> None:
    prompt = parse_invoke_body("anthropic", raw(anthropic(temperature=0.5, stop_sequences=["\n\nHuman:"])))
    assert prompt == Prompt("Be brief.", [("user", "What is Bedrock?")], 200, 0.5, None, ["\n\nHuman:"])


def test_anthropic_content_blocks_are_joined() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert parse_invoke_body("anthropic", raw(anthropic(messages=messages))).messages == [("user", "a\nb")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (anthropic(messages=None), "required key [messages] not found"),
        (anthropic(anthropic_version=None), "required key [anthropic_version] not found"),
        (anthropic(max_tokens=None), "required key [max_tokens] not found"),
        (anthropic(anthropic_version="bedrock-2099-01-01"), "is not a valid enum value"),
        (anthropic(max_tokens="200"), "#/max_tokens: expected type: Integer, found: String"),
        (anthropic(max_tokens=0), "#/max_tokens: 0 is not greater or equal to 1"),
        (anthropic(temperature=1.5), "#/temperature: 1.5 is not less or equal to 1"),
        (anthropic(model="claude"), "extraneous key [model] is not permitted"),
        (anthropic(messages=[]), "at least one message is required"),
        (anthropic(messages=[{"role": "system", "content": "x"}]), "Input should be 'user' or 'assistant'"),
        (anthropic(messages=[{"role": "assistant", "content": "x"}]), 'first message must use the "user" role'),
        (anthropic(messages=[{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]),
         "roles must alternate"),
        (anthropic(messages=[{"role": "user", "content": [{"text": "x"}]}]), "required key [type] not found"),
        (anthropic(messages=[{"role": "user", "content": 3}]), "expected type: String or JSONArray"),
    ],
)
def test_anthropic_rejections(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_invoke_body("anthropic", raw(body))


def test_malformed_json_uses_bedrock_wording() -> None:
    with pytest.raises(BodyError, match="Malformed input request, please reformat your input and try again."):
        parse_invoke_body("anthropic", b"{not json")
    with pytest.raises(BodyError, match="Malformed input request: #: expected type: JSONObject"):
        parse_invoke_body("titan", b"[1, 2]")


def test_missing_key_message_is_exactly_bedrocks() -> None:
    with pytest.raises(BodyError) as info:
        parse_invoke_body("anthropic", raw(anthropic(messages=None)))
    assert str(info.value) == (
        "Malformed input request: #: required key [messages] not found, please reformat your input and try again."
    )


# ----------------------------------------------------------------------- Nova


def test_nova_valid_body_both_spellings() -> None:
    prompt = parse_invoke_body("nova", raw(nova()))
    assert prompt == Prompt("Be brief.", [("user", "What is Bedrock?")], 100, 0.2, 0.9, [])
    body = nova(inferenceConfig={"max_new_tokens": 7, "top_p": 0.5})
    assert parse_invoke_body("nova", raw(body)).max_tokens == 7
    assert parse_invoke_body("nova", raw(nova(inferenceConfig=None))).max_tokens == 5000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (nova(messages=None), "required key [messages] not found"),
        (nova(schemaVersion="messages-v9"), "is not a valid enum value"),
        (nova(messages=[{"role": "user", "content": "plain string"}]), "expected type: JSONArray"),
        (nova(messages=[{"role": "user", "content": [{"type": "text", "text": "x"}]}]), "extraneous key [type]"),
        (nova(messages=[{"role": "assistant", "content": [{"text": "x"}]}]), "must start with a user message"),
        (nova(messages=[]), "must start with a user message"),
        (nova(messages=[{"role": "user", "content": [{"text": "x"}]}] * 2), "must alternate"),
        (nova(inferenceConfig={"max_tokens": 5}), "extraneous key [max_tokens]"),
        (nova(inferenceConfig={"temperature": 2}), "2 is not less or equal to 1"),
        (nova(anthropic_version="bedrock-2023-05-31"), "extraneous key [anthropic_version] is not permitted"),
    ],
)
def test_nova_rejections(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_invoke_body("nova", raw(body))
    assert message in str(info.value)


# ----------------------------------------------------------------------- Llama

LLAMA3 = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is S3?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def test_llama_template_is_parsed() -> None:
    prompt = parse_invoke_body("llama", raw({"prompt": LLAMA3, "max_gen_len": 64, "temperature": 0.1}))
    assert prompt.system == "You are terse."
    assert prompt.messages == [("user", "Hi"), ("assistant", "Hello"), ("user", "What is S3?")]
    assert prompt.max_tokens == 64


def test_llama_plain_and_llama2_prompts() -> None:
    assert parse_invoke_body("llama", raw({"prompt": "Hello there"})).messages == [("user", "Hello there")]
    assert parse_invoke_body("llama", raw({"prompt": "Hi"})).max_tokens == 512
    system, turns = parse_llama_prompt("<s>[INST] <<SYS>>\nBe kind\n<</SYS>>\n\nHi [/INST]")
    assert system == "Be kind" and turns == [("user", "Hi")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_gen_len": 10}, "required key [prompt] not found"),
        ({"prompt": 5}, "#/prompt: expected type: String, found: Integer"),
        ({"prompt": "x", "max_gen_len": 4096}, "#/max_gen_len: 4096 is not less or equal to 2048"),
        ({"prompt": "x", "max_tokens": 10}, "extraneous key [max_tokens] is not permitted"),
        ({"prompt": "x", "top_p": -0.1}, "is not greater or equal to 0"),
        ({"prompt": ""}, "expected minLength: 1"),
    ],
)
def test_llama_rejections(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_invoke_body("llama", raw(body))
    assert message in str(info.value)


# ----------------------------------------------------------------------- Titan


def test_titan_valid_body_and_chat_style() -> None:
    body = {"inputText": "User: What is S3?\nBot:", "textGenerationConfig": {
        "maxTokenCount": 99, "temperature": 0, "topP": 1, "stopSequences": ["User:"]}}
    prompt = parse_invoke_body("titan", raw(body))
    assert prompt.messages == [("user", "What is S3?")]
    assert (prompt.max_tokens, prompt.stop_sequences) == (99, ["User:"])
    assert parse_invoke_body("titan", raw({"inputText": "Hello"})).max_tokens == 512


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"textGenerationConfig": {}}, "required key [inputText] not found"),
        ({"inputText": ["x"]}, "expected type: String, found: JSONArray"),
        ({"inputText": "x", "textGenerationConfig": {"maxTokenCount": 9000}}, "9000 is not less or equal to 8192"),
        ({"inputText": "x", "textGenerationConfig": {"max_tokens": 5}}, "extraneous key [max_tokens]"),
        ({"inputText": "x", "textGenerationConfig": {"stopSequences": [1]}}, "expected type: String"),
        ({"inputText": "x", "prompt": "y"}, "extraneous key [prompt]"),
    ],
)
def test_titan_rejections(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_invoke_body("titan", raw(body))
    assert message in str(info.value)


# ----------------------------------------------------------------------- Converse


def test_converse_valid_request() -> None:
    prompt = parse_converse(converse())
    assert prompt == Prompt("Be brief.", [("user", "What is Bedrock?")], 50, 0.0, None, ["END"])
    assert parse_converse({"messages": converse()["messages"]}).max_tokens == 4096


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"messages": None}, "Member must not be null"),
        ({"messages": []}, "A conversation must start with a user message."),
        ({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}, "must start with a user message"),
        ({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]},
         "A conversation must alternate between user and assistant roles."),
        ({"messages": [{"role": "bot", "content": [{"text": "a"}]}]}, "Member must satisfy enum value set"),
        ({"messages": [{"role": "user", "content": [{"text": "  "}]}]}, "is blank"),
        ({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]}, "exactly one member"),
        ({"inferenceConfig": {"maxTokens": 0}}, "Member must have value greater than or equal to 1"),
        ({"inferenceConfig": {"temperature": 1.5}}, "Member must have value less than or equal to 1"),
        ({"inferenceConfig": {"topP": -1}}, "greater than or equal to 0"),
    ],
)
def test_converse_rejections(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_converse(converse(**overrides))
    assert message in str(info.value)


# ----------------------------------------------------------------------- rendering and round trips


COMPLETION = Completion("Bedrock is a managed service.", 12, 6, "end_turn")


def test_render_anthropic_shape_and_deterministic_id() -> None:
    body = render_invoke_body("anthropic", COMPLETION, "claude-haiku-4-5-20251001")
    assert body["id"].startswith("msg_bdrk_") and body == render_invoke_body(
        "anthropic", COMPLETION, "claude-haiku-4-5-20251001")
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": COMPLETION.text}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"] == {"input_tokens": 12, "output_tokens": 6}


@pytest.mark.parametrize(
    ("family", "stop", "field_path", "expected"),
    [
        ("llama", "max_tokens", ("stop_reason",), "length"),
        ("llama", "end_turn", ("stop_reason",), "stop"),
        ("titan", "max_tokens", ("results", 0, "completionReason"), "LENGTH"),
        ("titan", "end_turn", ("results", 0, "completionReason"), "FINISH"),
        ("titan", "stop_sequence", ("results", 0, "completionReason"), "STOP_CRITERIA_MET"),
        ("nova", "max_tokens", ("stopReason",), "max_tokens"),
    ],
)
def test_stop_reason_vocabularies(family: str, stop: str, field_path: tuple[Any, ...], expected: str) -> None:
    value: Any = render_invoke_body(family, Completion("x", 1, 1, stop), "m")
    for part in field_path:
        value = value[part]
    assert value == expected


BODIES = {
    "anthropic": anthropic(),
    "nova": nova(),
    "llama": {"prompt": LLAMA3, "max_gen_len": 100},
    "titan": {"inputText": "User: What is S3?\nBot:", "textGenerationConfig": {"maxTokenCount": 100}},
}


@pytest.mark.parametrize("family", sorted(BODIES))
def test_round_trip_parse_generate_render(family: str) -> None:
    prompt = parse_invoke_body(family, raw(BODIES[family]))
    completion = generate(prompt, ModelBehaviour("model"))
    body = json.loads(json.dumps(render_invoke_body(family, completion, "model")))
    text = {
        "anthropic": lambda b: b["content"][0]["text"],
        "nova": lambda b: b["output"]["message"]["content"][0]["text"],
        "llama": lambda b: b["generation"],
        "titan": lambda b: b["results"][0]["outputText"],
    }[family](body)
    assert text == completion.text and text
    if family == "nova":
        assert body["usage"]["totalTokens"] == completion.input_tokens + completion.output_tokens


def test_converse_round_trip() -> None:
    prompt = parse_converse(converse())
    completion = generate(prompt, ModelBehaviour("model"))
    out = render_converse(completion, 42)
    assert out["output"]["message"] == {"role": "assistant", "content": [{"text": completion.text}]}
    assert out["stopReason"] in ("end_turn", "max_tokens", "stop_sequence")
    assert out["usage"]["totalTokens"] == out["usage"]["inputTokens"] + out["usage"]["outputTokens"]
    assert out["metrics"] == {"latencyMs": 42}


def test_converse_response_matches_botocore_output_shape() -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("Converse").output_shape
    prompt = parse_converse(converse())
    report = ParamValidator().validate(render_converse(generate(prompt, ModelBehaviour("m")), 7), shape)
    assert not report.has_errors(), report.generate_report()
