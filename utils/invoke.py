"""Calling models: Converse, and InvokeModel with each family's native body, plain or streamed.

Both plain calls return a :class:`Reply` with the text and the token usage Bedrock reports
(Converse ``usage``, or the ``x-amzn-bedrock-*-token-count`` headers of InvokeModel, falling
back to the usage the model's response body reports when the headers are absent).
:func:`stream_text` streams with ConverseStream or InvokeModelWithResponseStream and measures
time to first token and total latency (:class:`StreamedReply`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from utils import aws
from utils.engine import usage_from_response


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int | None  # None when the response carried no usage
    output_tokens: int | None
    latency_ms: int
    stop_reason: str
    model_id: str


def converse(
    model_id: str,
    prompt: str,
    *,
    system: str | None = None,
    max_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float | None = None,
    region: str | None = None,
    client: Any = None,
) -> Reply:
    """One user turn through the Converse API (works for every text model).

    ``top_p`` is sent only when given: newer Claude models reject temperature and topP together
    (see :func:`sampling_for`). ``latency_ms`` is the wall-clock time of the call.
    """
    runtime = client or aws.client("bedrock-runtime", region)
    request = _converse_request(model_id, prompt, system=system, max_tokens=max_tokens,
                                temperature=temperature, top_p=top_p)
    started = time.perf_counter()
    response = runtime.converse(**request)
    elapsed = int((time.perf_counter() - started) * 1000)
    text = "".join(block.get("text", "") for block in response["output"]["message"]["content"])
    input_tokens, output_tokens = usage_from_response(response)
    return Reply(
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=elapsed,
        stop_reason=response.get("stopReason", ""),
        model_id=model_id,
    )


def _converse_request(model_id: str, prompt: str, *, system: str | None, max_tokens: int, temperature: float,
                      top_p: float | None) -> dict[str, Any]:
    config: dict[str, Any] = {"maxTokens": max_tokens, "temperature": temperature}
    if top_p is not None:
        config["topP"] = top_p
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "inferenceConfig": config,
    }
    if system:
        request["system"] = [{"text": system}]
    return request


# The seeds' sampling (aws-samples/amazon-bedrock-samples, custom-models/model_customization_job
# Claude 3 Haiku notebook): temperature 0.1 with top_p 0.9.
SEED_SAMPLING = {"temperature": 0.1, "top_p": 0.9}


def sampling_for(family: str) -> dict[str, float]:
    """The seed's sampling where the model accepts temperature and top_p together, else temperature only.

    Claude Sonnet 4.5 / Haiku 4.5 and later reject both in one request ("temperature and top_p
    cannot both be specified", https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html);
    the registry's ``claude4`` family. Every other family (Nova, Llama, Titan, Claude 3) takes both.
    """
    if family == "claude4":
        return {"temperature": SEED_SAMPLING["temperature"]}
    return dict(SEED_SAMPLING)


def native_body(body_family: str, prompt: str, *, system: str | None = None, max_tokens: int = 512,
                temperature: float = 0.0, top_p: float | None = None) -> dict[str, Any]:
    """The InvokeModel request body of a model family; ``top_p`` is sent only when given.

    Shapes: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters.html (one page per family).
    """
    if body_family == "anthropic":
        body: dict[str, Any] = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": [{"role": "user", "content": prompt}],
        }
        if top_p is not None:
            body["top_p"] = top_p
        if system:
            body["system"] = system
        return body
    if body_family == "nova":
        body = {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
        }
        if top_p is not None:
            body["inferenceConfig"]["topP"] = top_p
        if system:
            body["system"] = [{"text": system}]
        return body
    if body_family == "llama":
        header = (
            f"<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>" if system else ""
        )
        templated = (
            f"<|begin_of_text|>{header}<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        body = {"prompt": templated, "max_gen_len": max_tokens, "temperature": temperature}
        if top_p is not None:
            body["top_p"] = top_p
        return body
    if body_family == "titan":
        text = f"{system}\n\n" if system else ""
        config: dict[str, Any] = {"maxTokenCount": max_tokens, "temperature": temperature}
        if top_p is not None:
            config["topP"] = top_p
        return {"inputText": f"{text}User: {prompt}\nBot:", "textGenerationConfig": config}
    raise ValueError(f"Unknown body family {body_family!r}")


def native_text(body_family: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(text, stop reason) from a family's InvokeModel response body."""
    if body_family == "anthropic":
        text = "".join(b.get("text", "") for b in payload["content"] if b.get("type") == "text")
        return text, payload.get("stop_reason", "")
    if body_family == "nova":
        blocks = payload["output"]["message"]["content"]
        return "".join(b.get("text", "") for b in blocks), payload.get("stopReason", "")
    if body_family == "llama":
        return payload["generation"], payload.get("stop_reason", "")
    if body_family == "titan":
        result = payload["results"][0]
        return result["outputText"], result.get("completionReason", "")
    raise ValueError(f"Unknown body family {body_family!r}")


def invoke(
    model_id: str,
    body_family: str,
    prompt: str,
    *,
    system: str | None = None,
    max_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float | None = None,
    region: str | None = None,
    client: Any = None,
) -> Reply:
    """One prompt through InvokeModel with the family's native body."""
    runtime = client or aws.client("bedrock-runtime", region)
    body = native_body(body_family, prompt, system=system, max_tokens=max_tokens, temperature=temperature,
                       top_p=top_p)
    started = time.perf_counter()
    response = runtime.invoke_model(
        modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    payload = json.loads(response["body"].read())
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    text, stop = native_text(body_family, payload)
    latency = headers.get("x-amzn-bedrock-invocation-latency")
    input_tokens, output_tokens = usage_from_response(response, body=payload)  # headers, else the body
    return Reply(
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=int(latency) if latency else int((time.perf_counter() - started) * 1000),
        stop_reason=stop,
        model_id=model_id,
    )


# ---------------------------------------------------------------------------------------
# Streaming: ConverseStream and InvokeModelWithResponseStream
# ---------------------------------------------------------------------------------------

INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"  # on the last chunk of a native stream


@dataclass(frozen=True)
class StreamedReply:
    """What one streamed call produced, with the latency a reader feels."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    stop_reason: str
    model_id: str
    api: str  # the operation that answered: ConverseStream, InvokeModelWithResponseStream, or a fallback
    first_token_ms: int | None  # request sent -> first text received (None: no text)
    total_ms: int  # request sent -> last event received
    fallback: str | None = None  # why streaming was not used, when it was not

    def summary(self) -> str:
        how = f"{self.api} (fallback: {self.fallback})" if self.fallback else self.api
        first = "n/a" if self.first_token_ms is None else f"{self.first_token_ms} ms"
        return (f"{how}: time to first token {first}, total {self.total_ms} ms, "
                f"tokens in/out {self.input_tokens}/{self.output_tokens}, stop {self.stop_reason or 'n/a'}")


def native_stream_piece(body_family: str, chunk: dict[str, Any]) -> tuple[str, str | None]:
    """(text, stop reason or None) of one decoded ``chunk`` of a family's native stream.

    Formats as the AWS code examples read them (awsdocs/aws-doc-sdk-examples,
    ``python/example_code/bedrock-runtime/models/*/invoke_model_with_response_stream.py``):
    Anthropic ``content_block_delta``/``message_delta`` events, Nova ``contentBlockDelta``/
    ``messageStop``, Llama ``generation``/``stop_reason``, Titan ``outputText``/``completionReason``.
    """
    if body_family == "anthropic":
        kind = chunk.get("type")
        if kind == "content_block_delta":
            return chunk.get("delta", {}).get("text", ""), None
        if kind == "message_delta":
            return "", chunk.get("delta", {}).get("stop_reason")
        return "", None
    if body_family == "nova":
        if "contentBlockDelta" in chunk:
            return chunk["contentBlockDelta"].get("delta", {}).get("text", ""), None
        return "", chunk.get("messageStop", {}).get("stopReason")
    if body_family == "llama":
        return chunk.get("generation") or "", chunk.get("stop_reason")
    if body_family == "titan":
        return chunk.get("outputText") or "", chunk.get("completionReason")
    raise ValueError(f"Unknown body family {body_family!r}")


def _native_stream_usage(chunk: dict[str, Any], usage: list[int | None]) -> None:
    """Update ``[input, output]`` from a native chunk: the invocation metrics win, else family fields."""
    metrics = chunk.get(INVOCATION_METRICS)
    if isinstance(metrics, dict):
        usage[:] = [metrics.get("inputTokenCount", usage[0]), metrics.get("outputTokenCount", usage[1])]
        return
    pairs = (
        (chunk.get("message", {}).get("usage", {}).get("input_tokens"), chunk.get("usage", {}).get("output_tokens")),
        (chunk.get("metadata", {}).get("usage", {}).get("inputTokens"),
         chunk.get("metadata", {}).get("usage", {}).get("outputTokens")),
        (chunk.get("prompt_token_count"), chunk.get("generation_token_count")),
        (chunk.get("inputTextTokenCount"), chunk.get("totalOutputTextTokenCount")),
    )
    for input_tokens, output_tokens in pairs:
        usage[0] = input_tokens if input_tokens is not None else usage[0]
        usage[1] = output_tokens if output_tokens is not None else usage[1]


class TextStream:
    """Iterate to receive an answer's text as it arrives; afterwards ``reply`` holds the totals.

    ``body_family=None`` streams with ConverseStream; a family name ("anthropic", "nova", "llama",
    "titan") streams with InvokeModelWithResponseStream and that family's native body. When the
    streaming call answers ``ValidationException`` (the model does not stream, or the API does not
    accept this model), the answer comes from the non-streaming call instead, in one piece, and the
    fallback is printed and kept in ``reply.fallback``. Other errors are raised.
    """

    def __init__(self, model_id: str, prompt: str, *, body_family: str | None = None, system: str | None = None,
                 max_tokens: int = 512, temperature: float = 0.0, top_p: float | None = None,
                 region: str | None = None, client: Any = None) -> None:
        self.model_id, self.prompt, self.body_family = model_id, prompt, body_family
        self.options = {"system": system, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p}
        self.runtime = client or aws.client("bedrock-runtime", region)
        self.reply: StreamedReply | None = None

    def _open(self) -> Any:
        if self.body_family is None:
            request = _converse_request(self.model_id, self.prompt, **self.options)
            return self.runtime.converse_stream(**request)["stream"]
        body = native_body(self.body_family, self.prompt, **self.options)
        return self.runtime.invoke_model_with_response_stream(
            modelId=self.model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
        )["body"]

    def __iter__(self) -> Iterator[str]:
        from botocore.exceptions import ClientError

        api = "ConverseStream" if self.body_family is None else "InvokeModelWithResponseStream"
        started = time.perf_counter()
        try:
            events = self._open()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            yield from self._fallback(api, exc, started)
            return
        pieces: list[str] = []
        usage: list[int | None] = [None, None]
        stop, first_ms = "", None
        for event in events:
            if self.body_family is None:
                text = event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
                stop = event.get("messageStop", {}).get("stopReason", stop)
                if "metadata" in event:
                    usage[:] = usage_from_response(event["metadata"])
            else:
                chunk = json.loads(event["chunk"]["bytes"]) if "chunk" in event else {}
                text, chunk_stop = native_stream_piece(self.body_family, chunk)
                stop = chunk_stop or stop
                _native_stream_usage(chunk, usage)
            if text:
                if first_ms is None:
                    first_ms = int((time.perf_counter() - started) * 1000)
                pieces.append(text)
                yield text
        self.reply = StreamedReply("".join(pieces), usage[0], usage[1], stop, self.model_id, api, first_ms,
                                   int((time.perf_counter() - started) * 1000))

    def _fallback(self, api: str, exc: Any, started: float) -> Iterator[str]:
        reason = f"{api} refused: {exc.response['Error'].get('Message', '')}"
        print(f"{reason} Answering without streaming instead.", flush=True)
        if self.body_family is None:
            plain, name = converse(self.model_id, self.prompt, client=self.runtime, **self.options), "Converse"
        else:
            plain = invoke(self.model_id, self.body_family, self.prompt, client=self.runtime, **self.options)
            name = "InvokeModel"
        total = int((time.perf_counter() - started) * 1000)
        self.reply = StreamedReply(plain.text, plain.input_tokens, plain.output_tokens, plain.stop_reason,
                                   self.model_id, name, total if plain.text else None, total, fallback=reason)
        if plain.text:
            yield plain.text


def stream_text(model_id: str, prompt: str, **kwargs: Any) -> TextStream:
    """A :class:`TextStream` (same arguments): ``for piece in stream: ...`` then ``stream.reply``.

    ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
    InvokeModelWithResponseStream:
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html
    """
    return TextStream(model_id, prompt, **kwargs)
