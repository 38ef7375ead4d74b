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
from collections.abc import Callable, Collection

from ..errors import ProtocolError
from .header_json import encode_json, scan_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, cast
else:
    from ..typeshim import cast

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
        "closed",
        "exit",
        "error",
        "complete",
        "completions",
        # The live shell (docs/protocol.md, "The live shell").
        "shell",
        "shell_ok",
        "line",
        "line_end",
        "tty",
        "input",
        "resize",
        "check",
        "checked",
        # File transfer (docs/protocol.md, "Transfers"; rsh.transfer.messages).
        "put",
        "get",
        "file",
        "dir",
        "symlink",
        "ready",
        "resume",
        "data",
        "file_end",
        "ok",
        "end",
        "done",
    }
)

# A header is a handful of short fields; 64 KiB is generous for any of them
# (environment maps included) while keeping a hostile peer from making us
# buffer an unbounded JSON document.  Long data (a big script as a command)
# travels in the payload instead.
MAX_HEADER_SIZE = 64 * 1024

# 1 MiB: room for a several-hundred-KiB command in one frame, and for output
# sent a whole grown pipe at a time, while bounding what one frame can make
# the receiver hold in memory.
DEFAULT_MAX_PAYLOAD = 1024 * 1024

_PREFIX = struct.Struct("!I")
_PREFIX_SIZE = _PREFIX.size


class Frame:
    """One decoded message: its type, the rest of its header, its payload.

    A plain class, not a dataclass: importing ``dataclasses`` (and the
    ``inspect`` it brings) would be a fifth of ``rsh exec``'s start-up.
    Two frames are equal when their type, fields and payload are.
    """

    __slots__ = ("type", "fields", "payload", "offset", "raw_header")

    def __init__(
        self,
        type: str,
        fields: dict[str, Any] | None = None,
        payload: bytes = b"",
        offset: int = -1,
        raw_header: bytes = b"",
    ) -> None:
        self.type = type
        self.fields: dict[str, Any] = {} if fields is None else fields
        self.payload = payload
        #: Where the frame started in the stream and its header exactly as it
        #: arrived: what ``--trace`` shows.  Set by the decoder only.
        self.offset = offset
        self.raw_header = raw_header

    def get(self, name: str, default: Any = None) -> Any:
        """Return header field *name*, or *default* when absent."""
        return self.fields.get(name, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.type, self.fields, self.payload) == (other.type, other.fields, other.payload)

    __hash__ = None  # type: ignore[assignment]  # fields is a dict: as unhashable as it

    def __repr__(self) -> str:
        return f"Frame(type={self.type!r}, fields={self.fields!r}, payload={self.payload!r})"


def encode_header(type: str, fields: dict[str, Any] | None = None, size: int = 0) -> bytes:
    """Return the length prefix and JSON header of a frame (no payload).

    Senders that already hold the payload in its own buffer can write the
    two pieces separately and avoid concatenating a large payload.

    Raises:
        ProtocolError: the type is unknown or the header is too large.
    """
    if type not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {type!r}", code="unknown_type")
    if not fields:
        # The hot path (every output chunk): the same bytes json.dumps would
        # give, without its cost.  Type names are plain ASCII words.
        raw = b'{"type":"%s","size":%d}' % (type.encode(), size) if size else b'{"type":"%s"}' % type.encode()
        return _PREFIX.pack(len(raw)) + raw
    header: dict[str, Any] = {"type": type}
    header.update(fields)
    if size:
        header["size"] = size
    raw = encode_json(header).encode("utf-8")
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
    return encode_header(type, fields, len(payload)) + payload


# The decoder's buffer starts this big and grows (doubling, up to
# MAX_READ_BUFFER) while reads keep filling it, so an idle connection holds
# 64 KiB and a streaming one reads in gulps of up to 4 MiB: fewer wake-ups.
MIN_READ_BUFFER = 64 * 1024
MAX_READ_BUFFER = 4 * 1024 * 1024


#: ``trace(direction, frame, raw_header, offset)``: direction is "send" or
#: "recv"; offset is the frame's first byte in that direction's stream.
TraceHook = Callable[[str, Frame, bytes, int], None]


class FrameDecoder:
    """Turn an arbitrarily split byte stream back into frames.

    Two ways in, one buffer behind both:

    - ``feed(data)`` returns every frame completed by *data* (possibly none);
      ``feed(b"")`` signals end of stream and raises if it cut a frame short.
    - ``get_buffer()`` / ``buffer_updated(n)`` let the caller read straight
      into the decoder's buffer (``socket.recv_into``, or asyncio's
      ``BufferedProtocol``), which saves a copy of every byte received;
      ``buffer_updated(0)`` is end of stream.

    After a ``ProtocolError`` the decoder is dead: the stream can no longer be
    trusted to be in step, so every later call raises again.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        # Unparsed bytes are self._buf[self._start:self._end]; the rest is
        # free space for the next read.
        self._buf = bytearray(MIN_READ_BUFFER)
        self._start = 0
        self._end = 0
        self._grow = False
        # Header of the frame whose payload we are waiting for.
        self._pending: tuple[str, dict[str, Any], int, bytes, int] | None = None
        self._error: ProtocolError | None = None
        #: Frame types whose payloads are views of the read buffer, not copies (see ``lend``).
        self._lending: frozenset[str] = frozenset()
        self._lent: list[memoryview] = []
        #: Bytes consumed so far: the stream offset of the next frame's start
        #: once every frame fed so far has been returned.
        self.offset = 0

    def lend(self, types: Collection[str]) -> None:
        """From now on, make the payload of each frame of these *types* a view of the read buffer, not a copy.

        For a driver that is done with such frames before it reads again
        (``rsh exec`` writing output to its descriptors, the server writing
        stdin to a pipe): a stream then skips one copy of every byte.  A
        lent payload is a ``memoryview`` (typed as the ``bytes`` it stands
        for) and is released at the next ``get_buffer`` or ``feed``: used
        after that, it raises ValueError.  ``lend(())`` lends no more.
        """
        self._lending = frozenset(types)

    def detach(self) -> Frame | None:
        """Give out now what has come of the payload of the frame being received, if it is of a lent type; else None.

        For a driver that hands each payload on as it comes (``rsh exec``
        writing output): a frame's first bytes need not wait for its last.
        The piece is a frame of the same type and header, its payload a lent
        view (see ``lend``); the rest of the payload comes out as further
        pieces or with the frame's end.  None when no payload byte has come.
        """
        pending = self._pending
        have = self._end - self._start
        if pending is None or not have or pending[0] not in self._lending:
            return None
        type_, fields, size, raw, start = pending
        lent = memoryview(self._buf)[self._start : self._end]
        self._lent.append(lent)
        self._start = self._end = 0  # the rest of the payload is read to the front
        self.offset += have
        self._pending = (type_, fields, size - have, raw, start)
        return Frame(type_, fields, cast(bytes, lent), start, raw)

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a frame."""
        return self._end - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add *data* to the stream and return the frames it completes.

        Raises:
            ProtocolError: the stream is malformed, or ended mid-frame.
        """
        n = len(data)
        if n:
            with self.get_buffer(n) as buf:
                buf[:n] = data
        return self.buffer_updated(n)

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Return writable space for at least *sizehint* more bytes (a read's worth if -1).

        Write received bytes into it, then call ``buffer_updated(n)``.
        """
        if self._error is not None:
            raise self._error
        if self._lent:
            for lent in self._lent:
                lent.release()
            self._lent.clear()
        want = max(sizehint, 1)
        if self._grow:
            self._grow = False
            self._buf.extend(bytes(len(self._buf)))
        free = len(self._buf) - self._end
        if free < want or free < MIN_READ_BUFFER // 4:
            # Move the unparsed tail to the front; grow if that is not enough.
            held = self._end - self._start
            if self._start:
                self._buf[:held] = self._buf[self._start : self._end]
                self._start, self._end = 0, held
            if len(self._buf) - held < want or held * 2 > len(self._buf):
                # Doubling keeps a large frame arriving in pieces linear.
                self._buf.extend(bytes(max(len(self._buf), held + want - len(self._buf))))
        return memoryview(self._buf)[self._end :]

    def buffer_updated(self, nbytes: int) -> list[Frame]:
        """*nbytes* were written at the start of the last ``get_buffer()``; return the frames completed.

        Raises:
            ProtocolError: the stream is malformed, or ended mid-frame.
        """
        if self._error is not None:
            raise self._error
        if nbytes == 0:
            if self._end > self._start or self._pending is not None:
                self._fail(ProtocolError("connection closed in the middle of a frame", code="truncated"))
            return []
        # A read that filled all we offered: offer more next time (the buffer
        # may only be resized in get_buffer, when no view of it is out).
        self._grow = self._end + nbytes == len(self._buf) and len(self._buf) < MAX_READ_BUFFER
        self._end += nbytes
        frames: list[Frame] = []
        pos = self._start
        try:
            with memoryview(self._buf) as view:
                while True:
                    frame, pos = self._next(view, pos, self._end)
                    if frame is None:
                        break
                    frames.append(frame)
        except ProtocolError as exc:
            self._fail(exc)
        if pos == self._end:
            self._start = self._end = 0  # all parsed: reuse from the front
        else:
            self._start = pos
        return frames

    def _fail(self, exc: ProtocolError) -> None:
        self._error = exc
        self._start = self._end = 0
        raise exc

    def _next(self, view: memoryview, pos: int, end: int) -> tuple[Frame | None, int]:
        """Parse from *view* at *pos*; return a frame (or None) and the new position."""
        avail = end - pos
        if self._pending is None:
            if avail < _PREFIX_SIZE:
                return None, pos
            (hlen,) = _PREFIX.unpack_from(view, pos)
            # Checked before waiting for the header, so a 0xFFFFFFFF prefix
            # costs nothing but these four bytes.
            if hlen > MAX_HEADER_SIZE:
                raise ProtocolError(f"header length {hlen} is over the {MAX_HEADER_SIZE}-byte limit", code="header_too_large")
            if avail < _PREFIX_SIZE + hlen:
                return None, pos
            raw = bytes(view[pos + _PREFIX_SIZE : pos + _PREFIX_SIZE + hlen])
            type_, fields, size = self._parse_header(raw)
            self._pending = (type_, fields, size, raw, self.offset)
            self.offset += _PREFIX_SIZE + hlen
            pos += _PREFIX_SIZE + hlen
            avail -= _PREFIX_SIZE + hlen
        type_, fields, size, raw, start = self._pending
        if avail < size:
            return None, pos
        if not size:
            payload = b""
        elif type_ in self._lending:
            lent = view[pos : pos + size]
            self._lent.append(lent)
            payload = cast(bytes, lent)
        else:
            payload = bytes(view[pos : pos + size])
        self.offset += size
        self._pending = None
        return Frame(type_, fields, payload, start, raw), pos + size

    def _parse_header(self, raw: bytes) -> tuple[str, dict[str, Any], int]:
        try:
            text = raw.decode("utf-8")
            try:
                # json's own C scanner, as json.loads uses it, minus the two
                # whitespace regexes around it: headers we send have none.
                header, end = scan_json(text, 0)
                if end != len(text):
                    raise ValueError
            except (ValueError, StopIteration):
                header = json.loads(text)  # the whole parser: its error message, or surrounding spaces
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"header is not valid UTF-8 ({exc.reason} at byte {exc.start})", code="bad_header") from exc
        except ValueError as exc:
            raise ProtocolError(f"header is not valid JSON ({exc})", code="bad_header") from exc
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
