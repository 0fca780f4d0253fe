"""Calling models: Converse, and InvokeModel with each family's native body.

Both return a :class:`Reply` with the text and the token usage Bedrock reports
(Converse ``usage``, or the ``x-amzn-bedrock-*-token-count`` headers of InvokeModel, falling
back to the usage the model's response body reports when the headers are absent).
"""

from __future__ import annotations

import json
import time
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
    region: str | None = None,
    client: Any = None,
) -> Reply:
    """One user turn through the Converse API (works for every text model)."""
    runtime = client or aws.client("bedrock-runtime", region)
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        # Send temperature only (never together with topP: newer Claude models reject both).
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
    }
    if system:
        request["system"] = [{"text": system}]
    response = runtime.converse(**request)
    text = "".join(block.get("text", "") for block in response["output"]["message"]["content"])
    input_tokens, output_tokens = usage_from_response(response)
    return Reply(
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=int(response.get("metrics", {}).get("latencyMs", 0)),
        stop_reason=response.get("stopReason", ""),
        model_id=model_id,
    )


def native_body(body_family: str, prompt: str, *, system: str | None = None, max_tokens: int = 512,
                temperature: float = 0.0) -> dict[str, Any]:
    """The InvokeModel request body of a model family.

    Shapes: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters.html (one page per family).
    """
    if body_family == "anthropic":
        body: dict[str, Any] = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": [{"role": "user", "content": prompt}],
        }
        if system:
            body["system"] = system
        return body
    if body_family == "nova":
        body = {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
        }
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
        return {"prompt": templated, "max_gen_len": max_tokens, "temperature": temperature}
    if body_family == "titan":
        text = f"{system}\n\n" if system else ""
        return {
            "inputText": f"{text}User: {prompt}\nBot:",
            "textGenerationConfig": {"maxTokenCount": max_tokens, "temperature": temperature},
        }
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
    region: str | None = None,
    client: Any = None,
) -> Reply:
    """One prompt through InvokeModel with the family's native body."""
    runtime = client or aws.client("bedrock-runtime", region)
    body = native_body(body_family, prompt, system=system, max_tokens=max_tokens, temperature=temperature)
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
