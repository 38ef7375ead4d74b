"""TEMPORARY: the pre-refactor asyncio layer, kept only until the server pump moves onto rsh.net.framed.

The asyncio layer over the frame codec, shared by server and client.

``FramedProtocol`` is an ``asyncio.BufferedProtocol``: the socket is read
straight into the ``FrameDecoder``'s buffer and out come calls to
``frame_received``; ``send`` encodes
a frame and writes it.  It also carries the two flow-control signals both
sides need: ``writing_paused`` (the peer reads slower than we write) and
``pause_reading`` (we cannot keep up with the peer).

Using a buffered Protocol rather than streams keeps the hot path (64 KiB
output chunks) to one ``recv_into``, one callback and one copy per payload.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, cast

from ..errors import ProtocolError
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, Frame, FrameDecoder, TraceHook, encode_header

__all__ = ["FramedProtocol", "TraceHook", "WRITE_HIGH_WATER"]

# How much may sit in our send buffer before writers must wait.  asyncio's
# default (64 KiB) is one output chunk, which stalls a fast stream on every
# chunk; 4 MiB keeps the socket full through scheduling hiccups (measured
# with bench/stream.py) while still bounding memory per connection.
WRITE_HIGH_WATER = 4194304



def _unsent(parts: list[bytes | memoryview], sent: int) -> bytes:
    """What is left of *parts*, joined, after the first *sent* bytes went out."""
    for i, part in enumerate(parts):
        if sent < len(part):
            return b"".join([part[sent:], *parts[i + 1 :]])
        sent -= len(part)
    return b""


class FramedProtocol(asyncio.BufferedProtocol):
    """Frames over an asyncio transport.  Subclasses override the hooks."""

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD, trace: TraceHook | None = None) -> None:
        self.decoder = FrameDecoder(max_payload)
        self.transport: asyncio.Transport | None = None
        self.trace = trace
        self.sent_bytes = 0
        self.closed = False
        self.writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._corked: list[bytes | memoryview] | None = None
        # The socket, where frames may be written to it directly: plain TCP.
        self._fd = -1
        self._lost = False
        self._lost_waiter: asyncio.Future[None] | None = None

    # -- hooks for subclasses ------------------------------------------------

    def frame_received(self, frame: Frame) -> None:
        """Handle one frame from the peer."""

    def protocol_error(self, exc: ProtocolError) -> None:
        """The peer's bytes broke the protocol; the decoder is now dead."""
        self.close()

    def closed_by_peer(self, exc: Exception | None) -> None:
        """The connection is gone (``exc`` is None on a clean close)."""

    def write_resumed(self) -> None:
        """The send buffer drained below the low-water mark."""

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports are not subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        # Never under TLS: there the transport's bytes are not the frames'.
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self._fd = sock.fileno()

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return self.decoder.get_buffer(sizehint)
        except ProtocolError:
            # The decoder died on an earlier read; swallow what still comes
            # in while the connection closes.
            return memoryview(bytearray(65536))

    def buffer_updated(self, nbytes: int) -> None:
        if self.closed:
            return
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except ProtocolError as exc:
            self.protocol_error(exc)
            return
        for frame in frames:
            if self.trace is not None:
                self.trace("recv", frame, frame.raw_header, frame.offset)
            self.frame_received(frame)
            if self.closed:
                return

    def eof_received(self) -> bool:
        if not self.closed:
            try:
                self.decoder.buffer_updated(0)
            except ProtocolError as exc:
                self.protocol_error(exc)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = True
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        self.writing_paused = False
        self._wake_drainers(exc)
        self.closed_by_peer(exc)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drainers(None)
        self.write_resumed()

    # -- sending ------------------------------------------------------------

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes | memoryview = b"") -> None:
        """Encode and write one frame; a no-op once the connection is closed.

        A memoryview *payload* is read before ``send`` returns or, when
        corked, before ``uncork`` returns: its buffer may be reused after.
        """
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        head = encode_header(type, fields, len(payload))
        if self.trace is not None:
            self.trace("send", Frame(type, dict(fields or {}), bytes(payload)), head[4:], self.sent_bytes)
        self.sent_bytes += len(head) + len(payload)
        if self._corked is not None:
            self._corked += (head, payload)
            return
        # One write: two would cost a second send() syscall per chunk, and
        # copying a 64 KiB chunk is cheaper than that.
        self.transport.write(head + payload if payload else head)

    def cork(self) -> None:
        """Hold frames sent from now on until ``uncork``, then write them at once."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        """Write every frame held since ``cork`` in one system call."""
        parts, self._corked = self._corked, None
        if not parts or self.transport is None or self.transport.is_closing():
            return
        if self._fd >= 0 and not self.transport.get_write_buffer_size():
            # Nothing queued before them: hand the headers and payloads to
            # the socket as they lie, with no copy into one buffer, and
            # queue only what it did not take.  (The bench/stream.py floor
            # copies each chunk once more than this.)
            try:
                sent = os.writev(self._fd, parts)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # the transport meets the error itself, below
            rest = _unsent(parts, sent)
            if rest:
                self.transport.write(rest)
            return
        self.transport.write(b"".join(parts))

    async def wait_lost(self) -> None:
        """Return once ``connection_lost`` has run: the transport's socket is closed."""
        if not self._lost:
            if self._lost_waiter is None:
                self._lost_waiter = asyncio.get_running_loop().create_future()
            await self._lost_waiter

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark."""
        if not self.writing_paused or self.closed:
            return
        fut = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(fut)
        await fut

    def _wake_drainers(self, exc: Exception | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def close(self) -> None:
        """Close the connection after writing what is buffered."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True

    def send_error_and_close(self, exc: ProtocolError) -> None:
        """Tell the peer why, then close: the stream cannot be trusted any more."""
        self.send("error", {"code": exc.code, "message": exc.message})
        self.close()
