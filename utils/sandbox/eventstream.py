"""AWS event-stream framing (``application/vnd.amazon.eventstream``), the encoder half.

Bedrock's streaming operations (``ConverseStream``, ``InvokeModelWithResponseStream``) answer
with a sequence of binary messages. Each message is (all integers big-endian)::

    total length (uint32) | headers length (uint32) | prelude CRC32 (of the 8 bytes before it)
    headers | payload | message CRC32 (of every byte before it)

and each header is ``name length (uint8) | name | value type (uint8) | value``; the service
only sends string headers (type 7: ``length (uint16) | UTF-8 bytes``). An event carries
``:event-type`` (the member name of the stream union, e.g. ``contentBlockDelta``),
``:content-type`` (``application/json``) and ``:message-type`` (``event``); its payload is the
event structure as JSON. Sources: the Transcribe streaming page "Event stream encoding"
(https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html), botocore's decoder
(``botocore/eventstream.py``: ``EventStreamMessage``, ``_validate_checksum``) and the
``eventstream`` traits of the ``bedrock-runtime`` service model. botocore checks both CRCs, so
a test that reads a stream through boto3 validates this encoder.
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from typing import Any

STRING_HEADER = 7  # header value type of a string
CONTENT_TYPE = "application/vnd.amazon.eventstream"


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    return (struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", STRING_HEADER, len(raw_value))
            + raw_value)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string ``headers`` (in order) and ``payload``."""
    head = b"".join(_header(name, value) for name, value in headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    body = prelude + head + payload
    return body + struct.pack(">I", crc32(body) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """An ``event`` message of ``event_type`` whose payload is ``payload`` as compact JSON."""
    headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    return encode_message(headers, json.dumps(payload, separators=(",", ":")).encode("utf-8"))
