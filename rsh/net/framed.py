"""The asyncio pump around a sans-I/O connection, shared by server and client.

``FramedProtocol`` is an ``asyncio.BufferedProtocol``: the socket is read
straight into the connection's frame buffer (``Connection.get_buffer``), the
subclass is told (``events_received``) and drains ``conn.next_event()``, and
what the connection queues with ``send`` is written to the transport.  It
also carries the two flow-control signals both sides need:
``writing_paused`` (the peer reads slower than we write) and
``pause_reading`` (we cannot keep up with the peer).

A buffered Protocol rather than streams keeps the hot path (64 KiB output
chunks) to one ``recv_into``, one callback and one copy per payload.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, cast

from ..errors import ConnectionLost, ProtocolError
from ..protocol.connection import Connection

__all__ = ["FramedProtocol", "WRITE_HIGH_WATER"]

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


def _read_exactly(fd: int, size: int) -> bytes | None:
    """The next *size* bytes of pipe *fd*, which holds at least that many (None if it did not)."""
    parts = []
    while size > 0:
        try:
            data = os.read(fd, size)
        except OSError:
            return None
        if not data:
            return None
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


class FramedProtocol(asyncio.BufferedProtocol):
    """A ``Connection`` over an asyncio transport.  Subclasses override the hooks.

    Args:
        conn: the sans-I/O connection whose bytes this carries.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._corked = False
        # The socket, where frames may be written to it directly: plain TCP.
        self._fd = -1
        # A duplicate of it, made on the first splice: for send(MSG_MORE),
        # which asyncio's socket wrapper does not offer.
        self._sock: socket.socket | None = None
        self._lost = False
        self._lost_exc: ConnectionLost | None = None
        self._lost_waiter: asyncio.Future[None] | None = None

    # -- hooks for subclasses ------------------------------------------------

    def events_received(self) -> None:
        """Bytes arrived: take the events they completed from ``self.conn.next_event()``."""

    def protocol_error(self, exc: ProtocolError) -> None:
        """The peer's bytes broke the framing; the connection can no longer be trusted."""
        self.close()

    def closed_by_peer(self, exc: Exception | None) -> None:
        """The connection is gone (``exc`` is None on a clean close)."""

    def write_resumed(self) -> None:
        """The send buffer drained below the low-water mark."""

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports are not subclasses.
        self.transport = cast(asyncio.Transport, transport)
        tls = transport.get_extra_info("sslcontext") is not None
        # Under TLS the encrypted copy of what is queued waits too (in asyncio's own buffers): queue less.
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER // 4 if tls else WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        # Never under TLS: there the transport's bytes are not the frames'.
        if sock is not None and not tls:
            self._fd = sock.fileno()

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return self.conn.get_buffer(sizehint)
        except ProtocolError:
            # The decoder died on an earlier read; swallow what still comes
            # in while the connection closes.
            return memoryview(bytearray(65536))

    def buffer_updated(self, nbytes: int) -> None:
        if self.closed:
            return
        try:
            self.conn.buffer_updated(nbytes)
        except ProtocolError as exc:
            self.protocol_error(exc)
            return
        self.events_received()

    def eof_received(self) -> bool:
        if not self.closed:
            try:
                self.conn.buffer_updated(0)
            except ProtocolError as exc:
                self.protocol_error(exc)
                return False
            self.events_received()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        reason = f": {exc}" if exc else ""
        self._lost_exc = ConnectionLost(f"connection closed{reason}")
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        self.writing_paused = False
        self._wake_drainers()
        self.closed_by_peer(exc)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drainers()
        self.write_resumed()

    # -- sending ------------------------------------------------------------

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes | memoryview = b"") -> None:
        """Send one frame through the connection; a no-op once the connection is closed.

        A memoryview *payload* is read before ``send`` returns or, when
        corked, before ``uncork`` returns: its buffer may be reused after.
        """
        if self.closed:
            return
        self.conn.send(type, fields, payload)
        if not self._corked:
            self.flush()

    def flush(self) -> None:
        """Write what the connection has queued to the transport."""
        parts = self.conn.data_to_send()
        transport = self.transport
        if not parts or transport is None or transport.is_closing():
            return
        if self._fd >= 0 and not transport.get_write_buffer_size():
            # Nothing queued before them: hand the headers and payloads to
            # the socket as they lie, with no copy into one buffer, and
            # queue only what it did not take.  (The bench/stream.py floor
            # copies each chunk once more than this.)
            try:
                sent = os.writev(self._fd, parts)
            except OSError:
                sent = 0  # BlockingIOError, or an error the transport meets itself, below
            if len(parts) > 1 or sent < len(parts[0]):
                rest = _unsent(parts, sent)
                if rest:
                    transport.write(rest)
            return
        # One write, of a copy: the transport may keep what it is given, and
        # a payload may be a view of a buffer its owner reuses.
        transport.write(b"".join(parts))

    def send_from_pipe(self, type: str, fd: int, size: int) -> bool:
        """Send one frame whose payload is the next *size* bytes of pipe *fd*, moved by ``splice``.

        The payload never enters our memory: the kernel hands the pipe's
        pages to the socket, which saves both copies a read and a write
        would make (half the server's CPU in a stream).  *fd* must hold at
        least *size* bytes and have no other reader.  Returns False, having
        taken nothing from the pipe, where that cannot be done: under TLS or
        ``--trace``, while frames are corked, or while the transport holds
        unsent bytes (they must go first).
        """
        transport = self.transport
        if self._fd < 0 or self._corked or self.closed or transport is None or transport.is_closing():
            return False
        self.flush()  # anything the connection queued goes first
        if self.conn.trace is not None or transport.get_write_buffer_size():
            return False
        if self._sock is None:
            self._sock = socket.socket(fileno=os.dup(self._fd))
        head = self.conn.send_header(type, size)
        sent = moved = 0
        try:
            # MSG_MORE: the header waits for the payload, one segment for both.
            sent = self._sock.send(head, socket.MSG_MORE)
            if sent == len(head):
                moved = os.splice(fd, self._fd, size, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
        except OSError:
            pass  # BlockingIOError (the socket is full), or an error the transport meets itself, below
        if sent < len(head) or moved < size:
            # The socket took only part: the rest of the frame is queued in
            # the transport like any other write, so nothing can come between.
            rest = _read_exactly(fd, size - moved)
            if rest is None:
                transport.abort()  # only a second reader could do this; the stream is out of step
            else:
                transport.write(head[sent:] + rest)
        return True

    def cork(self) -> None:
        """Hold frames sent from now on until ``uncork``, then write them at once."""
        self._corked = True

    def uncork(self) -> None:
        """Write every frame held since ``cork`` in one system call."""
        if self._corked:
            self._corked = False
            self.flush()

    async def wait_lost(self) -> None:
        """Return once ``connection_lost`` has run: the transport's socket is closed."""
        if not self._lost:
            if self._lost_waiter is None:
                self._lost_waiter = asyncio.get_running_loop().create_future()
            await self._lost_waiter

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark.

        Raises:
            ConnectionLost: the connection is gone, before or while waiting:
                what was sent may never arrive.
        """
        if self._lost_exc is not None:
            raise self._lost_exc
        if not self.writing_paused:
            return
        fut = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(fut)
        await fut
        if self._lost_exc is not None:
            raise self._lost_exc

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def close(self) -> None:
        """Close the connection after writing what is buffered."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True
