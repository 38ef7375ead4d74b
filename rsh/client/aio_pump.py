"""A ``ClientProtocol`` over an asyncio transport: the asyncio client's I/O, and how it connects.

``AsyncPump`` is ``rsh.net.framed``'s pump with what the client's coroutines
wait on: the next event, a look for one, room to send.  ``open_pump``
connects as ``rsh.client.connect.Dial`` decided (TLS, the pin checked before
any protocol byte).
"""

from __future__ import annotations

import asyncio

from ..net.framed import FramedProtocol
from ..net.tls import TLS_PROBE_DELAY, client_context, plain_greeting_async, said_in_clear, speaks_tls_async
from ..protocol.client import ClientProtocol
from ..protocol.connection import NEED_DATA, Event
from .connect import Dial

__all__ = ["AsyncPump", "open_pump", "check_not_tls"]

# Frames decoded but not yet taken before we stop reading the socket (and
# so, through TCP, slow the server down rather than grow our memory).
_QUEUE_HIGH = 64
_QUEUE_LOW = 16

# Seconds a closing connection may take to say goodbye (TLS's close_notify).
CLOSE_WAIT = 5.0


class AsyncPump(FramedProtocol):
    """A ``ClientProtocol`` over an asyncio transport, waited on by the coroutines of ``rsh.client.aio``."""

    conn: ClientProtocol

    def __init__(self, conn: ClientProtocol) -> None:
        super().__init__(conn)
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False

    def events_received(self) -> None:
        if self.conn.frames_waiting >= _QUEUE_HIGH and not self._reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def closed_by_peer(self, exc: Exception | None) -> None:
        if not self.conn.at_eof:
            self.conn.buffer_updated(0)  # the connection ends here, whatever the transport said
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def poll_event(self) -> Event | None:
        """The next event if it has already arrived, else None (without waiting)."""
        event = self.conn.next_event()
        # After it: what the caller sent, and what the connection answered
        # by itself (the handshake's auth).
        self.flush()
        if self._reading_paused and self.conn.frames_waiting <= _QUEUE_LOW and self.transport is not None:
            self.transport.resume_reading()
            self._reading_paused = False
        return None if event is NEED_DATA else event

    async def wait_data(self) -> None:
        """Wait until something has arrived (or the connection has ended), taking nothing."""
        while not self.conn.frames_waiting and not self.conn.at_eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def next_event(self) -> Event:
        """Send what is queued, then wait for the connection's next event.

        Raises:
            ConnectionLost, ProtocolError, RemoteError, AuthError: from the connection.
        """
        while (event := self.poll_event()) is None:
            await self.wait_data()
        return event

    async def aclose(self) -> None:
        """Close, and return once the socket is: a caller whose loop ends next leaks nothing.

        A TLS close waits for the peer's goodbye; one that does not come in
        ``CLOSE_WAIT`` seconds is cut short.
        """
        self.close()
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await self.wait_lost()
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()
            await self.wait_lost()

    async def make_room(self) -> None:
        """Send what is queued and wait while the transport's buffer is full."""
        self.flush()
        await self.drain()


async def open_pump(dial: Dial) -> AsyncPump:
    """Connect; with TLS, also do the handshake and check the pin, before any protocol byte."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(dial.timeout):
            _, pump = await loop.create_connection(
                lambda: AsyncPump(dial.protocol()),
                dial.host,
                dial.port,
                ssl=client_context() if dial.tls else None,
                ssl_handshake_timeout=dial.timeout if dial.tls else None,
            )
    except TimeoutError as exc:
        raise dial.open_failed(exc, in_tls=False) from exc
    except OSError as exc:
        if dial.tls and said_in_clear(exc):
            raise dial.tls_failed(exc, await plain_greeting_async(dial.host, dial.port, dial.timeout / 2)) from exc
        raise dial.open_failed(exc) from exc
    if not dial.tls:
        return pump
    try:
        assert pump.transport is not None
        again = dial.check_peer(pump.transport.get_extra_info("ssl_object").getpeercert(binary_form=True))
    except BaseException:
        assert pump.transport is not None
        pump.transport.abort()
        # The socket is closed a few turns of the loop later: wait for it, so
        # a caller whose loop ends right after this leaks nothing.
        await pump.wait_lost()
        raise
    if again:
        await pump.aclose()
        return await open_pump(dial)
    return pump


async def check_not_tls(pump: AsyncPump, dial: Dial, deadline: float) -> None:
    """If the server is slow to say anything, make sure it is not waiting for TLS (see ``TLS_PROBE_DELAY``)."""
    try:
        async with asyncio.timeout(TLS_PROBE_DELAY):
            await pump.wait_data()
        return
    except TimeoutError:
        pass
    # At most half of what is left, so a probe that hangs still leaves
    # time for a slow hello.
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        return
    # Racing the hello: a server that kept this connection waiting for a place answers it after all.
    probe, hello = asyncio.ensure_future(speaks_tls_async(dial.host, dial.port, left / 2)), asyncio.ensure_future(pump.wait_data())
    done, _ = await asyncio.wait({probe, hello}, return_when=asyncio.FIRST_COMPLETED)
    for task in (probe, hello):
        task.cancel()
    await asyncio.gather(probe, hello, return_exceptions=True)
    if hello not in done and probe.exception() is None and probe.result():
        raise dial.speaks_tls_error()
