"""Parse and render InvokeModel bodies and Converse requests.

Body formats: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters.html;
Converse: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html.

Each parser reduces a request to a :class:`Prompt` (system text, ``(role,
text)`` turns, generation limits) for the stand-in models, and rejects what
Bedrock rejects with :class:`BodyError`. The server turns a ``BodyError`` into
HTTP 400 ``ValidationException`` with the error's message.

Message wording follows what Bedrock returns:

- native bodies are checked by a JSON-schema validator, so messages read
  ``Malformed input request: #/max_tokens: expected type: Integer, found:
  String, please reformat your input and try again.``;
- Anthropic's own checks read ``messages: roles must alternate between "user"
  and "assistant", but found multiple "user" roles in a row``;
- Converse uses the AWS wording (``1 validation error detected: Value '0' at
  'inferenceConfig.maxTokens' failed to satisfy constraint: ...``) and its own
  conversation messages (``A conversation must start with a user message. ...``).

Renderers map the normalized ``Completion.stop_reason`` (``end_turn`` |
``max_tokens`` | ``stop_sequence``) to each family's vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from utils.sandbox.messages import Completion, Prompt  # shared types (also imported from here)

BODY_FAMILIES = ("anthropic", "nova", "llama", "titan")
ANTHROPIC_VERSION = "bedrock-2023-05-31"

# Defaults and caps when a body leaves the output length out (model-parameters-nova / -meta /
# -titan-text pages under https://docs.aws.amazon.com/bedrock/latest/userguide/).
NOVA_DEFAULT_MAX_TOKENS = 5000
LLAMA_DEFAULT_MAX_GEN_LEN = 512
LLAMA_MAX_GEN_LEN = 2048
TITAN_DEFAULT_MAX_TOKEN_COUNT = 512
TITAN_MAX_TOKEN_COUNT = 8192
CONVERSE_DEFAULT_MAX_TOKENS = 4096

_ANTHROPIC_KEYS = {
    "anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "temperature",
    "top_p", "top_k", "stop_sequences", "tools", "tool_choice", "metadata", "thinking",
}
_NOVA_KEYS = {"schemaVersion", "messages", "system", "inferenceConfig", "toolConfig"}
_NOVA_INFERENCE_KEYS = {
    "maxTokens", "max_new_tokens", "temperature", "topP", "top_p", "topK", "top_k",
    "stopSequences", "reasoningConfig",
}
_LLAMA_KEYS = {"prompt", "max_gen_len", "temperature", "top_p", "images"}
_TITAN_KEYS = {"inputText", "textGenerationConfig"}
_TITAN_CONFIG_KEYS = {"maxTokenCount", "temperature", "topP", "stopSequences"}
_NOVA_BLOCK_KEYS = {"text", "image", "video", "document", "toolUse", "toolResult", "reasoningContent", "cachePoint"}
_ANTHROPIC_BLOCK_TYPES = {
    "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
}
_CONVERSE_BLOCK_KEYS = {
    "text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent",
    "cachePoint", "reasoningContent", "citationsContent", "searchResult",
}

CONVERSE_START_WITH_USER = (
    "A conversation must start with a user message. "
    "Try again with a conversation that starts with a user message."
)
CONVERSE_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. "
    "Make sure the conversation alternates between user and assistant roles and try again."
)


class BodyError(ValueError):
    """A malformed request; the message becomes a ValidationException message."""


# --------------------------------------------------------------------------- helpers


def _schema_error(path: str, detail: str) -> BodyError:
    """A JSON-schema style message as Bedrock writes it for native bodies."""
    return BodyError(f"Malformed input request: {path}: {detail}, please reformat your input and try again.")


def _type_name(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "BigDecimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject"


def _load_object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BodyError("Malformed input request, please reformat your input and try again.") from None
    if not isinstance(data, dict):
        raise _schema_error("#", f"expected type: JSONObject, found: {_type_name(data)}")
    return data


def _check_keys(obj: dict[str, Any], path: str, allowed: set[str], required: tuple[str, ...] = ()) -> None:
    for key in required:
        if key not in obj:
            raise _schema_error(path, f"required key [{key}] not found")
    for key in obj:
        if key not in allowed:
            raise _schema_error(path, f"extraneous key [{key}] is not permitted")


def _expect(obj: dict[str, Any], key: str, path: str, kind: str) -> Any:
    """Return ``obj[key]`` (None if absent) after a schema type check."""
    if key not in obj:
        return None
    value = obj[key]
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]
    if not ok:
        expected = {"integer": "Integer", "number": "Number", "string": "String",
                    "array": "JSONArray", "object": "JSONObject"}[kind]
        raise _schema_error(f"{path}/{key}", f"expected type: {expected}, found: {_type_name(value)}")
    return value


def _range(value: float | None, path: str, low: float, high: float | None) -> None:
    if value is None:
        return
    if value < low:
        raise _schema_error(path, f"{value} is not greater or equal to {low:g}")
    if high is not None and value > high:
        raise _schema_error(path, f"{value} is not less or equal to {high:g}")


def _string_list(obj: dict[str, Any], key: str, path: str) -> list[str]:
    items = _expect(obj, key, path, "array") or []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _schema_error(f"{path}/{key}/{i}", f"expected type: String, found: {_type_name(item)}")
    return list(items)


# --------------------------------------------------------------------------- Anthropic


def _anthropic_text(content: Any, path: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _schema_error(path, f"expected type: String or JSONArray, found: {_type_name(content)}")
    texts: list[str] = []
    for i, block in enumerate(content):
        where = f"{path}/{i}"
        if not isinstance(block, dict):
            raise _schema_error(where, f"expected type: JSONObject, found: {_type_name(block)}")
        if "type" not in block:
            raise _schema_error(where, "required key [type] not found")
        kind = block["type"]
        if kind not in _ANTHROPIC_BLOCK_TYPES:
            raise _schema_error(f"{where}/type", f"{kind} is not a valid enum value")
        if kind == "text":
            if "text" not in block:
                raise _schema_error(where, "required key [text] not found")
            text = _expect(block, "text", where, "string")
            texts.append(text)
        elif kind == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str | list):
                texts.append(_anthropic_text(inner, f"{where}/content"))
    return "\n".join(t for t in texts if t)


def _parse_anthropic(body: dict[str, Any]) -> Prompt:
    _check_keys(body, "#", _ANTHROPIC_KEYS, ("anthropic_version", "max_tokens", "messages"))
    version = _expect(body, "anthropic_version", "#", "string")
    if version != ANTHROPIC_VERSION:
        raise _schema_error("#/anthropic_version", f"{version} is not a valid enum value")
    max_tokens = _expect(body, "max_tokens", "#", "integer")
    _range(max_tokens, "#/max_tokens", 1, None)
    temperature = _expect(body, "temperature", "#", "number")
    _range(temperature, "#/temperature", 0, 1)
    top_p = _expect(body, "top_p", "#", "number")
    _range(top_p, "#/top_p", 0, 1)
    top_k = _expect(body, "top_k", "#", "integer")
    _range(top_k, "#/top_k", 0, 500)
    stops = _string_list(body, "stop_sequences", "#")
    system_raw = body.get("system")
    system = "" if system_raw is None else _anthropic_text(system_raw, "#/system")
    messages_raw = _expect(body, "messages", "#", "array")
    messages: list[tuple[str, str]] = []
    for i, message in enumerate(messages_raw):
        where = f"#/messages/{i}"
        if not isinstance(message, dict):
            raise _schema_error(where, f"expected type: JSONObject, found: {_type_name(message)}")
        _check_keys(message, where, {"role", "content"}, ("role", "content"))
        role = message["role"]
        if role not in ("user", "assistant"):
            raise BodyError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        messages.append((role, _anthropic_text(message["content"], f"{where}/content")))
    if not messages:
        raise BodyError("messages: at least one message is required")
    if messages[0][0] != "user":
        raise BodyError('messages: first message must use the "user" role')
    for prev, cur in zip(messages, messages[1:], strict=False):
        if prev[0] == cur[0]:
            raise BodyError(
                f'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{cur[0]}" roles in a row'
            )
    for i, (role, text) in enumerate(messages):
        if not text.strip() and not (role == "assistant" and i == len(messages) - 1):
            raise BodyError(f"messages.{i}: all messages must have non-empty content except for "
                            "the optional final assistant message")
    return Prompt(system, messages, max_tokens, temperature, top_p, stops)


# --------------------------------------------------------------------------- Nova


def _nova_text(content: Any, path: str) -> str:
    if not isinstance(content, list):
        raise _schema_error(path, f"expected type: JSONArray, found: {_type_name(content)}")
    texts: list[str] = []
    for i, block in enumerate(content):
        where = f"{path}/{i}"
        if not isinstance(block, dict):
            raise _schema_error(where, f"expected type: JSONObject, found: {_type_name(block)}")
        for key in block:
            if key not in _NOVA_BLOCK_KEYS:
                raise _schema_error(where, f"extraneous key [{key}] is not permitted")
        if not block:
            raise _schema_error(where, "0 subschemas matched")
        if "text" in block:
            texts.append(_expect(block, "text", where, "string"))
    return "\n".join(t for t in texts if t)


def _check_conversation(messages: list[tuple[str, str]]) -> None:
    if not messages or messages[0][0] != "user":
        raise BodyError(CONVERSE_START_WITH_USER)
    for prev, cur in zip(messages, messages[1:], strict=False):
        if prev[0] == cur[0]:
            raise BodyError(CONVERSE_ALTERNATE)


def _parse_nova(body: dict[str, Any], default_max_tokens: int) -> Prompt:
    _check_keys(body, "#", _NOVA_KEYS, ("messages",))
    version = _expect(body, "schemaVersion", "#", "string")
    if version is not None and version != "messages-v1":
        raise _schema_error("#/schemaVersion", f"{version} is not a valid enum value")
    system_blocks = _expect(body, "system", "#", "array") or []
    system = _nova_text(system_blocks, "#/system")
    messages_raw = _expect(body, "messages", "#", "array")
    messages: list[tuple[str, str]] = []
    for i, message in enumerate(messages_raw):
        where = f"#/messages/{i}"
        if not isinstance(message, dict):
            raise _schema_error(where, f"expected type: JSONObject, found: {_type_name(message)}")
        _check_keys(message, where, {"role", "content"}, ("role", "content"))
        role = message["role"]
        if role not in ("user", "assistant"):
            raise _schema_error(f"{where}/role", f"{role} is not a valid enum value")
        messages.append((role, _nova_text(message["content"], f"{where}/content")))
    _check_conversation(messages)
    config = _expect(body, "inferenceConfig", "#", "object") or {}
    path = "#/inferenceConfig"
    _check_keys(config, path, _NOVA_INFERENCE_KEYS)
    max_tokens = _expect(config, "max_new_tokens", path, "integer")
    if max_tokens is None:
        max_tokens = _expect(config, "maxTokens", path, "integer")
    _range(max_tokens, f"{path}/max_new_tokens", 1, None)
    temperature = _expect(config, "temperature", path, "number")
    _range(temperature, f"{path}/temperature", 0, 1)
    top_p = _expect(config, "topP", path, "number")
    if top_p is None:
        top_p = _expect(config, "top_p", path, "number")
    _range(top_p, f"{path}/topP", 0, 1)
    stops = _string_list(config, "stopSequences", path)
    return Prompt(system, messages, max_tokens or default_max_tokens, temperature, top_p, stops)


# --------------------------------------------------------------------------- Llama

_LLAMA3_TURN = re.compile(
    r"<\|start_header_id\|>\s*(system|user|assistant|ipython|tool)\s*<\|end_header_id\|>(.*?)(?:<\|eot_id\|>|<\|eom_id\|>|$)",
    re.DOTALL,
)
_LLAMA2_SYS = re.compile(r"<<SYS>>(.*?)<</SYS>>", re.DOTALL)
_LLAMA2_TURN = re.compile(r"\[INST\](.*?)\[/INST\](.*?)(?=<s>|\[INST\]|$)", re.DOTALL)


def parse_llama_prompt(prompt: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a Llama 3 (or Llama 2) chat-template prompt into system text and turns.

    A trailing empty assistant header (the generation cue) is dropped. A prompt
    without template markers is one user message.
    """
    if "<|start_header_id|>" in prompt:
        system_parts: list[str] = []
        turns: list[tuple[str, str]] = []
        for role, text in _LLAMA3_TURN.findall(prompt):
            text = text.strip()
            if role == "system":
                system_parts.append(text)
                continue
            mapped = "assistant" if role == "assistant" else "user"
            if turns and turns[-1][0] == mapped:
                turns[-1] = (mapped, f"{turns[-1][1]}\n{text}".strip())
            else:
                turns.append((mapped, text))
        if turns and turns[-1] == ("assistant", ""):
            turns.pop()
        return "\n".join(system_parts), turns
    if "[INST]" in prompt:
        system = ""
        sys_match = _LLAMA2_SYS.search(prompt)
        if sys_match:
            system = sys_match.group(1).strip()
            prompt = prompt.replace(sys_match.group(0), "")
        turns = []
        for user, assistant in _LLAMA2_TURN.findall(prompt):
            turns.append(("user", user.strip()))
            answer = assistant.replace("</s>", "").strip()
            if answer:
                turns.append(("assistant", answer))
        return system, turns
    return "", [("user", prompt.strip())]


def _parse_llama(body: dict[str, Any]) -> Prompt:
    _check_keys(body, "#", _LLAMA_KEYS, ("prompt",))
    prompt = _expect(body, "prompt", "#", "string")
    max_gen_len = _expect(body, "max_gen_len", "#", "integer")
    _range(max_gen_len, "#/max_gen_len", 1, LLAMA_MAX_GEN_LEN)
    temperature = _expect(body, "temperature", "#", "number")
    _range(temperature, "#/temperature", 0, 1)
    top_p = _expect(body, "top_p", "#", "number")
    _range(top_p, "#/top_p", 0, 1)
    _string_list(body, "images", "#")
    if not prompt.strip():
        raise _schema_error("#/prompt", "expected minLength: 1, actual: 0")
    system, messages = parse_llama_prompt(prompt)
    if not messages:
        messages = [("user", "")]
    return Prompt(system, messages, max_gen_len or LLAMA_DEFAULT_MAX_GEN_LEN, temperature, top_p, [])


# --------------------------------------------------------------------------- Titan

_TITAN_TURN = re.compile(r"^(User|Bot):\s?", re.MULTILINE)


def parse_titan_text(text: str) -> list[tuple[str, str]]:
    """Split Titan's ``User: …\\nBot:`` chat style into turns (plain text = one user turn)."""
    parts = _TITAN_TURN.split(text)
    if len(parts) < 3:
        return [("user", text.strip())]
    turns: list[tuple[str, str]] = []
    preamble = parts[0].strip()
    for speaker, chunk in zip(parts[1::2], parts[2::2], strict=False):
        role = "user" if speaker == "User" else "assistant"
        chunk = chunk.strip()
        if role == "user" and preamble:
            chunk, preamble = f"{preamble}\n{chunk}", ""
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n{chunk}".strip())
        else:
            turns.append((role, chunk))
    if turns and turns[-1] == ("assistant", ""):
        turns.pop()
    return turns or [("user", text.strip())]


def _parse_titan(body: dict[str, Any]) -> Prompt:
    _check_keys(body, "#", _TITAN_KEYS, ("inputText",))
    text = _expect(body, "inputText", "#", "string")
    config = _expect(body, "textGenerationConfig", "#", "object") or {}
    path = "#/textGenerationConfig"
    _check_keys(config, path, _TITAN_CONFIG_KEYS)
    max_tokens = _expect(config, "maxTokenCount", path, "integer")
    _range(max_tokens, f"{path}/maxTokenCount", 0, TITAN_MAX_TOKEN_COUNT)
    temperature = _expect(config, "temperature", path, "number")
    _range(temperature, f"{path}/temperature", 0, 1)
    top_p = _expect(config, "topP", path, "number")
    _range(top_p, f"{path}/topP", 0, 1)
    stops = _string_list(config, "stopSequences", path)
    if not text.strip():
        raise _schema_error("#/inputText", "expected minLength: 1, actual: 0")
    limit = TITAN_DEFAULT_MAX_TOKEN_COUNT if max_tokens is None else max(max_tokens, 1)
    return Prompt("", parse_titan_text(text), limit, temperature, top_p, stops)


# --------------------------------------------------------------------------- InvokeModel API


def parse_invoke_body(
    body_family: str, raw: bytes, *, default_max_tokens: int = NOVA_DEFAULT_MAX_TOKENS
) -> Prompt:
    """Parse an InvokeModel body of ``body_family`` (anthropic | nova | llama | titan).

    ``default_max_tokens`` applies to Nova bodies that omit a length.
    Raises :class:`BodyError` with Bedrock's wording on any malformed input.
    """
    if body_family not in BODY_FAMILIES:
        raise ValueError(f"unknown body family {body_family!r}")
    body = _load_object(raw)
    if body_family == "anthropic":
        return _parse_anthropic(body)
    if body_family == "nova":
        return _parse_nova(body, default_max_tokens)
    if body_family == "llama":
        return _parse_llama(body)
    return _parse_titan(body)


def message_id(completion: Completion, model_name: str) -> str:
    """A deterministic Anthropic-style message ID: ``msg_bdrk_01`` + 22 base-58 characters."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    digest = hashlib.sha256(f"{model_name}\x00{completion.text}\x00{completion.input_tokens}".encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(22):
        number, rest = divmod(number, len(alphabet))
        chars.append(alphabet[rest])
    return "msg_bdrk_01" + "".join(chars)


_LLAMA_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_TITAN_STOP = {"end_turn": "FINISH", "stop_sequence": "STOP_CRITERIA_MET", "max_tokens": "LENGTH"}


_GEO_PREFIX = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.")


def anthropic_model_name(model_id: str) -> str:
    """The bare model name Anthropic echoes in ``model``: ``us.anthropic.claude-haiku-4-5-20251001-v1:0``
    -> ``claude-haiku-4-5-20251001``; ``anthropic.claude-sonnet-4-6`` -> ``claude-sonnet-4-6``."""
    name = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    name = _GEO_PREFIX.sub("", name).removeprefix("anthropic.")
    return re.sub(r"-v\d+(?::\d+)*(?::\d+k)?$", "", name)


def render_invoke_body(body_family: str, completion: Completion, model_name: str) -> dict[str, Any]:
    """Render a completion as ``body_family``'s InvokeModel response body (a dict to JSON-encode).

    ``model_name`` is echoed in Anthropic's ``model`` field (e.g. ``claude-haiku-4-5-20251001``).
    """
    stop = completion.stop_reason
    if body_family == "anthropic":
        return {
            "id": message_id(completion, model_name),
            "type": "message",
            "role": "assistant",
            "model": anthropic_model_name(model_name),
            "content": [{"type": "text", "text": completion.text}],
            "stop_reason": stop,
            "stop_sequence": getattr(completion, "stop_sequence", None) if stop == "stop_sequence" else None,
            "usage": {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens},
        }
    if body_family == "nova":
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": completion.text}]}},
            "stopReason": stop,
            "usage": {
                "inputTokens": completion.input_tokens,
                "outputTokens": completion.output_tokens,
                "totalTokens": completion.input_tokens + completion.output_tokens,
                "cacheReadInputTokenCount": 0,
                "cacheWriteInputTokenCount": 0,
            },
        }
    if body_family == "llama":
        return {
            "generation": completion.text,
            "prompt_token_count": completion.input_tokens,
            "generation_token_count": completion.output_tokens,
            "stop_reason": _LLAMA_STOP.get(stop, "stop"),
        }
    if body_family == "titan":
        return {
            "inputTextTokenCount": completion.input_tokens,
            "results": [{
                "tokenCount": completion.output_tokens,
                "outputText": completion.text,
                "completionReason": _TITAN_STOP.get(stop, "FINISH"),
            }],
        }
    raise ValueError(f"unknown body family {body_family!r}")


# --------------------------------------------------------------------------- Converse


def _aws_error(value: Any, member: str, constraint: str) -> BodyError:
    return BodyError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def _converse_blocks(content: Any, path: str) -> str:
    if not isinstance(content, list):
        raise _aws_error(content, path, "Member must not be null and must be a list")
    texts: list[str] = []
    for i, block in enumerate(content):
        where = f"{path}.{i}"
        if not isinstance(block, dict) or len(block) != 1:
            raise BodyError(f"The content block at {where} must set exactly one member of ContentBlock.")
        (key, value), = block.items()
        if key not in _CONVERSE_BLOCK_KEYS:
            raise BodyError(f"The content block at {where} has an unknown member {key!r}.")
        if key == "text":
            if not isinstance(value, str):
                raise _aws_error(value, f"{where}.text", "Member must be a string")
            if not value.strip():
                raise BodyError(
                    f"The text field in the ContentBlock object at {where} is blank. "
                    "Add text to the text field, and try again."
                )
            texts.append(value)
        elif key == "toolResult" and isinstance(value, dict):
            for inner in value.get("content", []) or []:
                if isinstance(inner, dict) and isinstance(inner.get("text"), str):
                    texts.append(inner["text"])
    return "\n".join(texts)


def parse_converse(request: dict[str, Any], *, default_max_tokens: int = CONVERSE_DEFAULT_MAX_TOKENS) -> Prompt:
    """Parse a Converse request body (``messages``, ``system``, ``inferenceConfig``, …).

    Enforces the service's rules: content blocks set exactly one member, text is
    not blank, the conversation starts with ``user`` and alternates roles,
    ``maxTokens >= 1``, ``temperature`` and ``topP`` in 0..1, at most 2500 stop
    sequences. ``default_max_tokens`` applies when ``maxTokens`` is absent.
    Other members (toolConfig, additionalModelRequestFields, …) are accepted and ignored.
    """
    if not isinstance(request, dict):
        raise BodyError("Malformed input request, please reformat your input and try again.")
    messages_raw = request.get("messages")
    if messages_raw is None:
        raise _aws_error("null", "messages", "Member must not be null")
    if not isinstance(messages_raw, list):
        raise _aws_error(messages_raw, "messages", "Member must be a list")
    messages: list[tuple[str, str]] = []
    for i, message in enumerate(messages_raw):
        if not isinstance(message, dict):
            raise _aws_error(message, f"messages.{i}", "Member must be a structure")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _aws_error(
                role, f"messages.{i}.member.role", "Member must satisfy enum value set: [user, assistant]"
            )
        messages.append((role, _converse_blocks(message.get("content"), f"messages.{i}.content")))
    _check_conversation(messages)
    system_raw = request.get("system") or []
    if not isinstance(system_raw, list):
        raise _aws_error(system_raw, "system", "Member must be a list")
    system_texts = []
    for i, block in enumerate(system_raw):
        if not isinstance(block, dict) or len(block) != 1:
            raise BodyError(f"The system content block at system.{i} must set exactly one member.")
        if isinstance(block.get("text"), str):
            system_texts.append(block["text"])
    config = request.get("inferenceConfig") or {}
    if not isinstance(config, dict):
        raise _aws_error(config, "inferenceConfig", "Member must be a structure")
    max_tokens = config.get("maxTokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise _aws_error(max_tokens, "inferenceConfig.maxTokens", "Member must be an integer")
        if max_tokens < 1:
            raise _aws_error(
                max_tokens, "inferenceConfig.maxTokens", "Member must have value greater than or equal to 1"
            )
    floats: dict[str, float | None] = {}
    for key in ("temperature", "topP"):
        value = config.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _aws_error(value, f"inferenceConfig.{key}", "Member must be a number")
            if value < 0:
                raise _aws_error(
                    value, f"inferenceConfig.{key}", "Member must have value greater than or equal to 0"
                )
            if value > 1:
                raise _aws_error(value, f"inferenceConfig.{key}", "Member must have value less than or equal to 1")
        floats[key] = value
    stops = config.get("stopSequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _aws_error(stops, "inferenceConfig.stopSequences", "Member must be a list of strings")
    if len(stops) > 2500:
        raise _aws_error(
            len(stops), "inferenceConfig.stopSequences", "Member must have length less than or equal to 2500"
        )
    return Prompt(
        "\n".join(system_texts), messages, max_tokens or default_max_tokens,
        floats["temperature"], floats["topP"], list(stops),
    )


TEMPERATURE_AND_TOP_P = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."


def check_model_limits(model_id: str, body_family: str, request: dict[str, Any], *, converse: bool) -> None:
    """Per-model rules on an already parsed request (``catalog.OUTPUT_TOKEN_CAPS``, Claude 4.x sampling).

    Only lengths the request states are checked (a family's default is never above the cap).
    Wording: Converse "The maximum tokens you requested exceeds the model limit of N. ...";
    Anthropic bodies "max_tokens: X > N, which is the maximum allowed number of output tokens
    for <model>"; Nova and Llama bodies their JSON-schema form.
    """
    from utils.sandbox import catalog

    if converse:
        config = request.get("inferenceConfig") or {}
        requested, path = config.get("maxTokens"), "inferenceConfig.maxTokens"
        both = config.get("temperature") is not None and config.get("topP") is not None
    elif body_family == "anthropic":
        requested, path = request.get("max_tokens"), "#/max_tokens"
        both = request.get("temperature") is not None and request.get("top_p") is not None
    elif body_family == "nova":
        config = request.get("inferenceConfig") or {}
        key = "max_new_tokens" if "max_new_tokens" in config else "maxTokens"
        requested, path = config.get(key), f"#/inferenceConfig/{key}"
        both = False
    elif body_family == "llama":
        requested, path, both = request.get("max_gen_len"), "#/max_gen_len", False
    else:
        requested, path, both = None, "", False  # Titan: maxTokenCount is capped by the body schema
    if both and catalog.single_sampling_parameter(model_id):
        raise BodyError(TEMPERATURE_AND_TOP_P)
    cap = catalog.output_token_cap(model_id)
    if cap is None or not isinstance(requested, int) or requested <= cap:
        return
    if converse:
        raise BodyError(
            f"The maximum tokens you requested exceeds the model limit of {cap}. "
            f"Try again with a maximum tokens value that is lower than {cap}."
        )
    if body_family == "anthropic":
        raise BodyError(
            f"max_tokens: {requested} > {cap}, which is the maximum allowed number of output tokens "
            f"for {anthropic_model_name(model_id)}"
        )
    raise _schema_error(path, f"{requested} is not less or equal to {cap}")


def render_converse(completion: Completion, latency_ms: int) -> dict[str, Any]:
    """Render a completion as a Converse response (``output``, ``stopReason``, ``usage``, ``metrics``)."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": completion.text}]}},
        "stopReason": completion.stop_reason,
        "usage": {
            "inputTokens": completion.input_tokens,
            "outputTokens": completion.output_tokens,
            "totalTokens": completion.input_tokens + completion.output_tokens,
        },
        "metrics": {"latencyMs": int(latency_ms)},
    }
