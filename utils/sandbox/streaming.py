"""Response streaming: ``ConverseStream`` and ``InvokeModelWithResponseStream``.

Both run the ordinary (non-streaming) runtime call, :meth:`Bedrock.invoke`, so model
resolution, body validation, per-model limits, faults (throttling, 503, 408, latency,
malformed output) and the usage counters behave exactly as for ``Converse``/``InvokeModel``;
an error there is answered as the normal JSON error response, before any event is sent.
The answer's text is then cut into chunks and framed as AWS event-stream messages
(:mod:`utils.sandbox.eventstream`).

Refusals before the call (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html:
"To see if a model supports streaming, call GetFoundationModel and check the
responseStreamingSupported field"): a model whose catalog entry has
``responseStreamingSupported: false`` gets ``ValidationException`` "The model is unsupported
for streaming." (the wording a real Bedrock answer carried in
https://github.com/aws-samples/amazon-bedrock-client-for-mac/issues/112; that ConverseStream
uses the same wording is our assumption).

Event shapes (botocore's ``bedrock-runtime`` service model, ``ConverseStreamOutput`` and
``ResponseStream``):

* ConverseStream: ``messageStart`` {role}, ``contentBlockDelta`` {delta: {text},
  contentBlockIndex} per chunk, ``contentBlockStop``, ``messageStop`` {stopReason},
  ``metadata`` {usage, metrics: {latencyMs}}. A text block has no ``contentBlockStart`` (that
  event is modelled for tool use and images only).
* InvokeModelWithResponseStream: ``chunk`` events whose ``bytes`` hold the family's own
  streaming JSON (below); the response header ``X-Amzn-Bedrock-Content-Type`` is
  ``application/json``.

Latency: the stand-in spends the configured latency (``faults.latency_ms``) before the first
event, as the non-streaming path does, so in the sandbox time to first token is about the
total time; a real model streams tokens as it generates them.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from utils.sandbox import eventstream

UNSUPPORTED = "The model is unsupported for streaming."
WORDS_PER_CHUNK = 3  # our choice; real chunks are a few tokens each


def chunk_text(text: str, words: int = WORDS_PER_CHUNK) -> list[str]:
    """``text`` in pieces of ``words`` words each, whitespace kept: ``"".join(pieces) == text``."""
    tokens = re.findall(r"\s+|\S+\s*", text)
    pieces: list[str] = []
    current, count = "", 0
    for token in tokens:
        current += token
        if not token.isspace():
            count += 1
        if count >= words:
            pieces.append(current)
            current, count = "", 0
    if current:
        pieces.append(current)
    return pieces


def running_counts(pieces: list[str], total: int) -> list[int]:
    """Output tokens emitted after each piece: nondecreasing, the last equal to ``total``."""
    from utils.sandbox.standins import count_tokens

    counts, text = [], ""
    for piece in pieces:
        text += piece
        counts.append(min(total, count_tokens(text)))
    if counts:
        counts[-1] = total
    return counts


def _padding(index: int) -> str:
    # Bedrock pads every event payload with a "p" string of varying length (captured streams,
    # e.g. the ChatGPT-Next-Web notes on Bedrock's response format); clients ignore it.
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"[: 4 + (7 * index) % 40]


# ------------------------------------------------------------------------------- Converse


def converse_events(body: dict[str, Any]) -> list[bytes]:
    """The ConverseStream events of a rendered Converse response (``bodies.render_converse``)."""
    text = "".join(block.get("text", "") for block in body["output"]["message"]["content"])
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}) for piece in chunk_text(text)]
    events += [
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": body["stopReason"]}),
        ("metadata", {"usage": body["usage"], "metrics": {"latencyMs": body["metrics"]["latencyMs"]}}),
    ]
    return [eventstream.event(name, {**payload, "p": _padding(i)}) for i, (name, payload) in enumerate(events)]


# ------------------------------------------------------------------------------- InvokeModel


def _metrics(input_tokens: int, output_tokens: int, latency_ms: int) -> dict[str, int]:
    # The last chunk of every family carries these (e.g. Anthropic's message_stop in the
    # aws-samples and awsdocs captures; Llama's last chunk in its Bedrock streaming samples).
    # The stand-in's whole answer is ready after the latency, so first byte = invocation latency.
    return {"inputTokenCount": input_tokens, "outputTokenCount": output_tokens,
            "invocationLatency": latency_ms, "firstByteLatency": latency_ms}


def _anthropic_chunks(body: dict[str, Any], latency_ms: int) -> list[dict[str, Any]]:
    # Anthropic Messages streaming events, as Bedrock relays them
    # (https://docs.anthropic.com/en/api/messages-streaming; awsdocs/aws-doc-sdk-examples
    # python/example_code/bedrock-runtime/models/anthropic_claude/invoke_model_with_response_stream.py
    # reads chunk["type"] == "content_block_delta" and chunk["delta"]["text"]).
    text = "".join(b.get("text", "") for b in body["content"] if b.get("type") == "text")
    usage = body["usage"]
    start = {k: body[k] for k in ("id", "type", "role", "model")}
    start.update(content=[], stop_reason=None, stop_sequence=None,
                 usage={"input_tokens": usage["input_tokens"], "output_tokens": min(1, usage["output_tokens"])})
    chunks: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    chunks += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
               for piece in chunk_text(text)]
    chunks += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": body["stop_reason"], "stop_sequence": body["stop_sequence"]},
         "usage": {"output_tokens": usage["output_tokens"]}},
        {"type": "message_stop",
         "amazon-bedrock-invocationMetrics": _metrics(usage["input_tokens"], usage["output_tokens"], latency_ms)},
    ]
    return chunks


def _nova_chunks(body: dict[str, Any], latency_ms: int) -> list[dict[str, Any]]:
    # Nova's native stream mirrors the Converse events, one per chunk
    # (https://docs.aws.amazon.com/nova/latest/nova2-userguide/streaming-responses.html: "messageStart,
    # contentBlockStart, contentBlockDelta, contentBlockStop, messageStop, metadata"; the example
    # reads chunk["contentBlockDelta"]["delta"]["text"]). The invocation metrics beside the last
    # chunk's "metadata" are our assumption, by analogy with the other families.
    text = "".join(b.get("text", "") for b in body["output"]["message"]["content"])
    usage = body["usage"]
    chunks: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
    chunks += [{"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}} for piece in chunk_text(text)]
    chunks += [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": body["stopReason"]}},
        {"metadata": {"usage": {"inputTokens": usage["inputTokens"], "outputTokens": usage["outputTokens"]},
                      "metrics": {}, "trace": {}},
         "amazon-bedrock-invocationMetrics": _metrics(usage["inputTokens"], usage["outputTokens"], latency_ms)},
    ]
    return chunks


def _llama_chunks(body: dict[str, Any], latency_ms: int) -> list[dict[str, Any]]:
    # Llama chunks: {"generation", "prompt_token_count" (first chunk only, else null),
    # "generation_token_count" (running), "stop_reason" (null until the last)}
    # (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html; awsdocs
    # .../meta_llama/llama3_invoke_model_with_response_stream.py reads chunk["generation"]). That the
    # stop reason and metrics come on an extra, empty last chunk is our reading of captured streams.
    pieces = chunk_text(body["generation"])
    total = body["generation_token_count"]
    chunks = [{"generation": piece, "prompt_token_count": body["prompt_token_count"] if i == 0 else None,
               "generation_token_count": count, "stop_reason": None}
              for i, (piece, count) in enumerate(zip(pieces, running_counts(pieces, total), strict=True))]
    chunks.append({"generation": "", "prompt_token_count": None if chunks else body["prompt_token_count"],
                   "generation_token_count": total, "stop_reason": body["stop_reason"],
                   "amazon-bedrock-invocationMetrics": _metrics(body["prompt_token_count"], total, latency_ms)})
    return chunks


def _titan_chunks(body: dict[str, Any], latency_ms: int) -> list[dict[str, Any]]:
    # Titan chunks: {"outputText", "index", "totalOutputTextTokenCount", "completionReason",
    # "inputTextTokenCount"} (awsdocs .../amazon_titan_text/invoke_model_with_response_stream.py reads
    # chunk["outputText"]). Counts on every chunk and the reason on the last one are our assumption.
    result = body["results"][0]
    pieces = chunk_text(result["outputText"]) or [""]
    total, prompt = result["tokenCount"], body["inputTextTokenCount"]
    chunks: list[dict[str, Any]] = []
    for i, (piece, count) in enumerate(zip(pieces, running_counts(pieces, total), strict=True)):
        last = i == len(pieces) - 1
        chunk: dict[str, Any] = {"outputText": piece, "index": 0, "totalOutputTextTokenCount": count,
                                 "completionReason": result["completionReason"] if last else None,
                                 "inputTextTokenCount": prompt}
        if last:
            chunk["amazon-bedrock-invocationMetrics"] = _metrics(prompt, total, latency_ms)
        chunks.append(chunk)
    return chunks


_FAMILIES = {"anthropic": _anthropic_chunks, "nova": _nova_chunks, "llama": _llama_chunks, "titan": _titan_chunks}


def invoke_events(body_family: str, body: dict[str, Any], latency_ms: int) -> list[bytes]:
    """The ``chunk`` events of a rendered InvokeModel response body of ``body_family``."""
    out = []
    for i, chunk in enumerate(_FAMILIES[body_family](body, latency_ms)):
        raw = json.dumps(chunk, separators=(",", ":")).encode("utf-8")
        out.append(eventstream.event("chunk", {"bytes": base64.b64encode(raw).decode("ascii"), "p": _padding(i)}))
    return out


# ------------------------------------------------------------------------------- entry point


def respond(bedrock: Any, region: str, model_id: str, action: str,
            body: bytes) -> tuple[list[tuple[str, str]], list[bytes]]:
    """(headers, event messages) of ``converse-stream`` or ``invoke-with-response-stream``.

    Raises :class:`utils.sandbox.control.ApiError` (answered as a normal error response) when
    the model cannot be resolved, does not stream, or the call fails before its first event.
    """
    from utils.sandbox.control import ApiError

    target = bedrock.resolve_runtime(region, model_id)
    model = bedrock.catalog.model(region, target.model_name)
    if model is not None and not model.streaming:
        raise ApiError("ValidationException", UNSUPPORTED)
    headers = [("Content-Type", eventstream.CONTENT_TYPE)]
    if action == "converse-stream":
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            raise ApiError("ValidationException",
                           "Malformed input request, please reformat your input and try again.") from exc
        result = bedrock.invoke(region, model_id, request, converse=True)
        return headers, converse_events(result.body)
    result = bedrock.invoke(region, model_id, body)
    headers.append(("X-Amzn-Bedrock-Content-Type", "application/json"))
    return headers, invoke_events(target.body, result.body, result.latency_ms)
