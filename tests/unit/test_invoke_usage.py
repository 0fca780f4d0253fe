"""Token usage: InvokeModel headers first, the response body's own usage when the headers are absent."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from utils import engine, invoke

NOVA_BODY = {"output": {"message": {"role": "assistant", "content": [{"text": "Hi."}]}}, "stopReason": "end_turn",
             "usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14}}


def _runtime():
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")


def _streaming(payload: dict) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def _stubbed_invoke(payload: dict, headers: dict | None) -> invoke.Reply:
    runtime = _runtime()
    response = {"body": _streaming(payload), "contentType": "application/json"}
    if headers is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": headers}
    with Stubber(runtime) as stub:
        stub.add_response("invoke_model", response)
        return invoke.invoke("amazon.nova-lite-v1:0", "nova", "Hello?", client=runtime)


def test_headers_win_when_present():
    reply = _stubbed_invoke(NOVA_BODY, {"x-amzn-bedrock-input-token-count": "20",
                                        "x-amzn-bedrock-output-token-count": "4"})
    assert (reply.input_tokens, reply.output_tokens, reply.text) == (20, 4, "Hi.")


def test_body_usage_when_headers_are_absent():
    reply = _stubbed_invoke(NOVA_BODY, None)
    assert (reply.input_tokens, reply.output_tokens) == (11, 3)


def test_one_missing_header_is_filled_from_the_body():
    reply = _stubbed_invoke(NOVA_BODY, {"x-amzn-bedrock-input-token-count": "20"})
    assert (reply.input_tokens, reply.output_tokens) == (20, 3)


def test_no_usage_anywhere_is_none_not_zero():
    body = {k: v for k, v in NOVA_BODY.items() if k != "usage"}
    reply = _stubbed_invoke(body, None)
    assert (reply.input_tokens, reply.output_tokens) == (None, None)


@pytest.mark.parametrize(("body", "expected"), [
    ({"usage": {"inputTokens": 1, "outputTokens": 2}}, (1, 2)),  # Nova
    ({"usage": {"input_tokens": 5, "output_tokens": 6}}, (5, 6)),  # Anthropic Messages
    ({"generation": "x", "prompt_token_count": 7, "generation_token_count": 8}, (7, 8)),  # Llama
    ({"inputTextTokenCount": 9, "results": [{"tokenCount": 4, "outputText": "a"}, {"tokenCount": 1}]}, (9, 5)),  # Titan
    ({"generation": "x"}, (None, None)),
])
def test_usage_from_body_per_family(body, expected):
    assert engine.usage_from_body(body) == expected
    assert engine.usage_from_response({"ResponseMetadata": {"HTTPHeaders": {}}}, body=body) == expected
