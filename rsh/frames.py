"""The sans-I/O frame codec: bytes in, frames out; frames in, bytes out.

TCP delivers a stream of bytes, not messages: two ``send()`` calls may arrive
as one ``recv()``, and one ``send()`` may arrive in pieces.  Every rsh message
is therefore a *frame* that says how long it is::

    +----------------+----------------------+----------------------+
    | H: uint32, BE  | H bytes: UTF-8 JSON  | size bytes: payload  |
    +----------------+----------------------+----------------------+

The JSON header is an object with at least ``"type"``; ``"size"`` (0 when
absent) says how many payload bytes follow it.  This module knows nothing of
sockets or asyncio: feed it any split of the byte stream and it hands back
whole frames.  ``docs/protocol.md`` is the authority on the format.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError

__all__ = [
    "MESSAGE_TYPES",
    "MAX_HEADER_SIZE",
    "DEFAULT_MAX_PAYLOAD",
    "Frame",
    "FrameDecoder",
    "encode_frame",
]

#: Every message type the protocol defines; anything else is a protocol error.
MESSAGE_TYPES = frozenset(
    {
        "hello",
        "auth",
        "auth_ok",
        "exec",
        "stdin",
        "stdout",
        "stderr",
        "signal",
        "exit",
        "error",
    }
)

# A header is a handful of short fields; 64 KiB is generous for any of them
# (environment maps included) while keeping a hostile peer from making us
# buffer an unbounded JSON document.  Long data (a big script as a command)
# travels in the payload instead.
MAX_HEADER_SIZE = 64 * 1024

# Output is sent in chunks of at most 64 KiB, so 1 MiB leaves room for a
# several-hundred-KiB command in one frame while bounding what one frame can
# make the receiver hold in memory.
DEFAULT_MAX_PAYLOAD = 1024 * 1024

_PREFIX = struct.Struct("!I")
_PREFIX_SIZE = _PREFIX.size


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message: its type, the rest of its header, its payload."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""
    #: Where the frame started in the stream and its header exactly as it
    #: arrived: what ``--trace`` shows.  Set by the decoder only.
    offset: int = field(default=-1, compare=False, repr=False)
    raw_header: bytes = field(default=b"", compare=False, repr=False)

    def get(self, name: str, default: Any = None) -> Any:
        """Return header field *name*, or *default* when absent."""
        return self.fields.get(name, default)


def encode_header(type: str, fields: dict[str, Any] | None = None, size: int = 0) -> bytes:
    """Return the length prefix and JSON header of a frame (no payload).

    Senders that already hold the payload in its own buffer can write the
    two pieces separately and avoid concatenating a large payload.
    """
    header: dict[str, Any] = {"type": type}
    if fields:
        header.update(fields)
    if size:
        header["size"] = size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(raw) > MAX_HEADER_SIZE:
        raise ProtocolError(f"{type} header is {len(raw)} bytes, over the {MAX_HEADER_SIZE}-byte limit", code="header_too_large")
    return _PREFIX.pack(len(raw)) + raw


def encode_frame(type: str, fields: dict[str, Any] | None = None, payload: bytes = b"") -> bytes:
    """Return the bytes of one frame.

    Args:
        type: the message type, one of ``MESSAGE_TYPES``.
        fields: further header fields; ``type`` and ``size`` are set here.
        payload: the bytes that follow the header.

    Raises:
        ProtocolError: the type is unknown or the header is too large.
    """
    if type not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {type!r}", code="unknown_type")
    return encode_header(type, fields, len(payload)) + payload


class FrameDecoder:
    """Turn an arbitrarily split byte stream back into frames.

    ``feed(data)`` returns every frame completed by *data* (possibly none);
    ``feed(b"")`` signals end of stream and raises if it cut a frame short.
    After a ``ProtocolError`` the decoder is dead: the stream can no longer be
    trusted to be in step, so every later call raises again.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        # Header of the frame whose payload we are waiting for.
        self._pending: tuple[str, dict[str, Any], int, bytes, int] | None = None
        self._error: ProtocolError | None = None
        #: Bytes consumed so far: the stream offset of the next frame's start
        #: once every frame fed so far has been returned.
        self.offset = 0

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add *data* to the stream and return the frames it completes.

        Raises:
            ProtocolError: the stream is malformed, or ended mid-frame.
        """
        if self._error is not None:
            raise self._error
        if not data:
            if self._buf or self._pending is not None:
                self._fail(ProtocolError("connection closed in the middle of a frame", code="truncated"))
            return []
        self._buf += data
        frames: list[Frame] = []
        try:
            while (frame := self._next()) is not None:
                frames.append(frame)
        except ProtocolError as exc:
            self._fail(exc)
        return frames

    def _fail(self, exc: ProtocolError) -> None:
        self._error = exc
        self._buf.clear()
        raise exc

    def _next(self) -> Frame | None:
        buf = self._buf
        if self._pending is None:
            if len(buf) < _PREFIX_SIZE:
                return None
            (hlen,) = _PREFIX.unpack_from(buf)
            # Checked before waiting for the header, so a 0xFFFFFFFF prefix
            # costs nothing but these four bytes.
            if hlen > MAX_HEADER_SIZE:
                raise ProtocolError(f"header length {hlen} is over the {MAX_HEADER_SIZE}-byte limit", code="header_too_large")
            if len(buf) < _PREFIX_SIZE + hlen:
                return None
            raw = bytes(buf[_PREFIX_SIZE : _PREFIX_SIZE + hlen])
            type_, fields, size = self._parse_header(raw)
            del buf[: _PREFIX_SIZE + hlen]
            self._pending = (type_, fields, size, raw, self.offset)
            self.offset += _PREFIX_SIZE + hlen
        type_, fields, size, raw, start = self._pending
        if len(buf) < size:
            return None
        if size == 0:
            payload = b""
        elif len(buf) == size:
            payload = bytes(buf)
            buf.clear()
        else:
            payload = bytes(buf[:size])
            del buf[:size]
        self.offset += size
        self._pending = None
        return Frame(type_, fields, payload, start, raw)

    def _parse_header(self, raw: bytes) -> tuple[str, dict[str, Any], int]:
        try:
            header = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"header is not valid UTF-8 ({exc.reason} at byte {exc.start})", code="bad_header") from None
        except ValueError as exc:
            raise ProtocolError(f"header is not valid JSON ({exc})", code="bad_header") from None
        if not isinstance(header, dict):
            raise ProtocolError(f"header is a JSON {type(header).__name__}, not an object", code="bad_header")
        type_ = header.pop("type", None)
        if type_ is None:
            raise ProtocolError("header has no 'type'", code="bad_header")
        if not isinstance(type_, str) or type_ not in MESSAGE_TYPES:
            raise ProtocolError(f"unknown message type {type_!r}", code="unknown_type")
        size = header.pop("size", 0)
        # bool is an int in Python, but "size": true is not a size.
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f"{type_} frame has invalid size {size!r}", code="bad_size")
        if size > self.max_payload:
            raise ProtocolError(f"{type_} payload of {size} bytes is over the {self.max_payload}-byte limit", code="payload_too_large")
        return type_, header, size
