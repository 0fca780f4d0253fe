"""Sandbox response streaming through plain boto3: ConverseStream and InvokeModelWithResponseStream.

botocore decodes every event-stream message and checks its prelude and message CRCs, so each
test that reads a stream through boto3 also checks the framing.
"""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import Env, conversation, sandbox_fixture, unique, wait_for
from utils.sandbox import eventstream, streaming

_sandbox = sandbox_fixture()

NOVA = "amazon.nova-micro-v1:0"
QUESTION = ("Doc 1: Rayleigh scattering makes the sky look blue, because air scatters short wavelengths "
            "more than long ones. Doc 2: Sunsets look red because light crosses more air.\n"
            "Question: Why does the sky look blue?")
LLAMA_PROMPT = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + QUESTION
                + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
BODIES = {
    "anthropic": ("us.anthropic.claude-haiku-4-5-20251001-v1:0",
                  {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300,
                   "messages": [{"role": "user", "content": QUESTION}]}),
    "nova": (NOVA, {"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
                    "inferenceConfig": {"maxTokens": 300}}),
    "llama": ("meta.llama3-1-8b-instruct-v1:0", {"prompt": LLAMA_PROMPT, "max_gen_len": 300}),
    "titan": ("amazon.titan-text-express-v1", {"inputText": f"User: {QUESTION}\nBot:"}),
}


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def messages(text: str = QUESTION) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


def chunk_payloads(response: dict) -> list[dict]:
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


def streamed_text(family: str, chunks: list[dict]) -> str:
    """The text a client assembles from a family's chunks (as the awsdocs examples read them)."""
    if family == "anthropic":
        return "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    if family == "nova":
        return "".join(c["contentBlockDelta"]["delta"]["text"] for c in chunks if "contentBlockDelta" in c)
    if family == "llama":
        return "".join(c["generation"] for c in chunks)
    return "".join(c["outputText"] for c in chunks)


def invoke_text(family: str, payload: dict) -> str:
    from utils.invoke import native_text

    return native_text(family, payload)[0]


# ---- ConverseStream ----------------------------------------------------------------------------


def test_converse_stream_matches_converse(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    whole = rt.converse(modelId=NOVA, messages=messages(), inferenceConfig={"maxTokens": 300})
    response = rt.converse_stream(modelId=NOVA, messages=messages(), inferenceConfig={"maxTokens": 300})
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events = list(response["stream"])
    kinds = [next(iter(e)) for e in events]
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    assert kinds[0] == "messageStart" and events[0]["messageStart"] == {"role": "assistant"}
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert set(kinds[1:-3]) == {"contentBlockDelta"} and len(deltas) > 1
    assert "".join(d["delta"]["text"] for d in deltas) == whole["output"]["message"]["content"][0]["text"]
    assert events[-2]["messageStop"]["stopReason"] == whole["stopReason"]
    metadata = events[-1]["metadata"]
    assert metadata["usage"] == whole["usage"]
    assert isinstance(metadata["metrics"]["latencyMs"], int)


def test_converse_stream_profile_and_max_tokens(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    events = list(rt.converse_stream(modelId="us.amazon.nova-2-lite-v1:0", messages=messages(),
                                     inferenceConfig={"maxTokens": 5})["stream"])
    assert events[-2]["messageStop"]["stopReason"] == "max_tokens"
    assert events[-1]["metadata"]["usage"]["outputTokens"] <= 5


# ---- InvokeModelWithResponseStream -------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(BODIES))
def test_invoke_stream_native_chunks_match_invoke_model(sandbox: Env, family: str) -> None:
    rt = sandbox.client("bedrock-runtime")
    model_id, body = BODIES[family]
    whole = rt.invoke_model(modelId=model_id, body=json.dumps(body))
    headers = whole["ResponseMetadata"]["HTTPHeaders"]
    text = invoke_text(family, json.loads(whole["body"].read()))
    response = rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    assert response["contentType"] == "application/json"
    chunks = chunk_payloads(response)
    assert len(chunks) > 2
    assert streamed_text(family, chunks) == text
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == int(headers["x-amzn-bedrock-input-token-count"])
    assert metrics["outputTokenCount"] == int(headers["x-amzn-bedrock-output-token-count"])
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])


def test_invoke_stream_family_event_sequences(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    model_id, body = BODIES["anthropic"]
    chunks = chunk_payloads(rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body)))
    types = [c["type"] for c in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert chunks[0]["message"]["model"] == "claude-haiku-4-5-20251001"
    assert chunks[-2]["delta"]["stop_reason"] == "end_turn"

    model_id, body = BODIES["llama"]
    chunks = chunk_payloads(rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body)))
    assert chunks[0]["prompt_token_count"] > 0 and all(c["prompt_token_count"] is None for c in chunks[1:])
    counts = [c["generation_token_count"] for c in chunks]
    assert counts == sorted(counts)
    assert [c["stop_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1) and chunks[-1]["stop_reason"] == "stop"

    model_id, body = BODIES["nova"]
    chunks = chunk_payloads(rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body)))
    assert [next(iter(c)) for c in chunks[-3:]] == ["contentBlockStop", "messageStop", "metadata"]
    assert chunks[-1]["metadata"]["usage"]["outputTokens"] == chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"]


def test_deployment_arn_streams(sandbox: Env) -> None:
    br, rt = sandbox.client("bedrock"), sandbox.client("bedrock-runtime")
    bucket = sandbox.bucket()
    train = sandbox.put_jsonl(bucket, "data/train.jsonl", [conversation(i) for i in range(40)])
    job_arn = br.create_model_customization_job(
        jobName=unique("job"), customModelName=unique("model"), roleArn=sandbox.role(),
        baseModelIdentifier="amazon.nova-micro-v1:0:128k", trainingDataConfig={"s3Uri": train},
        outputDataConfig={"s3Uri": f"s3://{bucket}/out/"}, hyperParameters={"epochCount": "2"},
    )["jobArn"]
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=job_arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed", job.get("failureMessage")
    deployment = br.create_custom_model_deployment(modelDeploymentName=unique("dep"),
                                                   modelArn=job["outputModelArn"])["customModelDeploymentArn"]
    wait_for(lambda: br.get_custom_model_deployment(customModelDeploymentIdentifier=deployment), "status", ("Active",))
    question = "What was the revenue of segment 3 in 2019?"
    body = json.dumps({"schemaVersion": "messages-v1", "messages": messages(question)})
    whole = invoke_text("nova", json.loads(rt.invoke_model(modelId=deployment, body=body)["body"].read()))
    chunks = chunk_payloads(rt.invoke_model_with_response_stream(modelId=deployment, body=body))
    assert streamed_text("nova", chunks) == whole and whole
    events = list(rt.converse_stream(modelId=deployment, messages=messages(question))["stream"])
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == whole


# ---- refusals come back as normal error responses ------------------------------------------------


def test_model_without_streaming_support_is_refused(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = sandbox.server.bedrock.catalog
    model = catalog.model("us-east-1", "amazon.titan-text-express-v1")
    assert model is not None
    monkeypatch.setitem(catalog._models, model.model_id, dataclasses.replace(model, streaming=False))
    br, rt = sandbox.client("bedrock"), sandbox.client("bedrock-runtime")
    details = br.get_foundation_model(modelIdentifier=model.model_id)["modelDetails"]
    assert details["responseStreamingSupported"] is False
    _, body = BODIES["titan"]
    with pytest.raises(ClientError) as exc:
        rt.invoke_model_with_response_stream(modelId=model.model_id, body=json.dumps(body))
    assert code(exc) == "ValidationException"
    assert exc.value.response["Error"]["Message"] == "The model is unsupported for streaming."
    with pytest.raises(ClientError) as exc:
        rt.converse_stream(modelId=model.model_id, messages=messages())
    assert code(exc) == "ValidationException"
    # The non-streaming calls still work.
    assert rt.invoke_model(modelId=model.model_id, body=json.dumps(body))["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_setup_errors_are_plain_error_responses(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    with pytest.raises(ClientError) as exc:  # profile-only model by its in-region ID
        rt.converse_stream(modelId="anthropic.claude-haiku-4-5-20251001-v1:0", messages=messages())
    assert code(exc) == "ValidationException" and "inference profile" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:  # malformed native body
        rt.invoke_model_with_response_stream(modelId=NOVA, body=json.dumps({"prompt": "hi"}))
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        rt.invoke_model_with_response_stream(modelId="amazon.nova-nonexistent-v9:0", body=b"{}")
    assert code(exc) == "ValidationException"
    model_id, body = BODIES["llama"]
    sandbox.configure(faults={"profile": "off", "rpm": {model_id: 1}, "burst": 1.0})  # a full bucket: one call passes
    try:
        rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
        with pytest.raises(ClientError) as exc:
            rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
        assert code(exc) == "ThrottlingException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    finally:
        sandbox.configure(faults={"profile": "off"})


def test_streaming_counts_usage_like_the_plain_call(sandbox: Env) -> None:
    rt = sandbox.client("bedrock-runtime")
    model_id, body = BODIES["titan"]
    before = dict(sandbox.server.bedrock.usage_snapshot().get(model_id, {"calls": 0, "output_tokens": 0}))
    chunks = chunk_payloads(rt.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body)))
    after = sandbox.server.bedrock.usage_snapshot()[model_id]
    assert after["calls"] == before["calls"] + 1
    assert after["output_tokens"] - before["output_tokens"] == chunks[-1]["totalOutputTextTokenCount"]


# ---- framing and chunking ----------------------------------------------------------------------


def test_framing_is_checked_by_botocore() -> None:
    message = eventstream.event("chunk", {"bytes": "e30="})
    buffer = EventStreamBuffer()
    buffer.add_data(message)
    decoded = next(iter(buffer))
    assert decoded.headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert json.loads(decoded.payload) == {"bytes": "e30="}
    total, headers_length = struct.unpack(">II", message[:8])
    assert total == len(message) and headers_length == len(message) - 16 - len(decoded.payload)
    for position in (3, len(message) - 6):  # a flipped bit in the prelude, then in the payload
        corrupt = bytearray(message)
        corrupt[position] ^= 0x01
        buffer = EventStreamBuffer()
        buffer.add_data(bytes(corrupt))
        with pytest.raises(ChecksumMismatch):
            next(iter(buffer))


@pytest.mark.parametrize("text", ["", "one", "  leading and trailing  ", "a\nb\n\nc d e f g", "x " * 20])
def test_chunk_text_keeps_every_character(text: str) -> None:
    pieces = streaming.chunk_text(text)
    assert "".join(pieces) == text
    assert all(piece for piece in pieces)
    counts = streaming.running_counts(pieces, 17)
    assert counts == sorted(counts) and (not counts or counts[-1] == 17)


# ---- utils.invoke.stream_text against the sandbox ----------------------------------------------


@pytest.mark.parametrize("family", [None, *sorted(BODIES)])
def test_stream_text_yields_the_plain_answer_with_usage_and_latency(sandbox: Env, family: str | None) -> None:
    from utils import invoke

    rt = sandbox.client("bedrock-runtime")
    model_id = BODIES[family or "nova"][0]
    if family is None:
        plain = invoke.converse(model_id, QUESTION, max_tokens=300, client=rt)
    else:
        plain = invoke.invoke(model_id, family, QUESTION, max_tokens=300, client=rt)
    stream = invoke.stream_text(model_id, QUESTION, body_family=family, max_tokens=300, client=rt)
    pieces = list(stream)
    reply = stream.reply
    assert reply is not None and len(pieces) > 1 and "".join(pieces) == reply.text == plain.text
    assert reply.api == ("ConverseStream" if family is None else "InvokeModelWithResponseStream")
    assert reply.fallback is None
    assert (reply.input_tokens, reply.output_tokens) == (plain.input_tokens, plain.output_tokens)
    assert reply.stop_reason == plain.stop_reason
    assert reply.first_token_ms is not None and 0 <= reply.first_token_ms <= reply.total_ms
    assert "time to first token" in reply.summary()


@pytest.mark.parametrize("family", [None, "titan"])
def test_stream_text_falls_back_on_validation_and_says_so(sandbox: Env, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], family: str | None) -> None:
    from utils import invoke

    catalog = sandbox.server.bedrock.catalog
    model = catalog.model("us-east-1", "amazon.titan-text-express-v1")
    assert model is not None
    monkeypatch.setitem(catalog._models, model.model_id, dataclasses.replace(model, streaming=False))
    rt = sandbox.client("bedrock-runtime")
    stream = invoke.stream_text(model.model_id, QUESTION, body_family=family, client=rt)
    pieces = list(stream)
    reply = stream.reply
    assert reply is not None and pieces == [reply.text] and reply.text
    assert reply.api == ("Converse" if family is None else "InvokeModel")
    assert reply.fallback is not None and "unsupported for streaming" in reply.fallback
    assert "Answering without streaming" in capsys.readouterr().out
    assert "fallback" in reply.summary()


def test_stream_text_raises_other_errors(sandbox: Env) -> None:
    from utils import invoke

    rt = sandbox.client("bedrock-runtime")
    with pytest.raises(ClientError) as exc:
        list(invoke.stream_text("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/nope123",
                                QUESTION, body_family="nova", client=rt))
    assert code(exc) == "ResourceNotFoundException"
