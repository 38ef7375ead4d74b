"""FramedProtocol: corked writes straight to the socket, the rest queued, views never kept; drain after a loss."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import pytest

from rsh.errors import ConnectionLost
from rsh.net.framed import FramedProtocol, _unsent
from rsh.protocol.connection import STAY, Connection, Direction
from rsh.protocol.frames import FrameDecoder


class Sending(Connection):
    """A connection whose only moves are sending output and an exit: what these tests write."""

    TRANSITIONS = {"open": {(Direction.SEND, "stdout"): STAY, (Direction.SEND, "exit"): STAY}}


def framed() -> FramedProtocol:
    return FramedProtocol(Sending("open"))


@contextlib.asynccontextmanager
async def framed_pair() -> AsyncIterator[tuple[asyncio.Transport, FramedProtocol, socket.socket]]:
    """A FramedProtocol on one end of a socket pair with a small send buffer, and the other end."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    transport, proto = await asyncio.get_running_loop().connect_accepted_socket(framed, ours)
    try:
        yield transport, proto, theirs
    finally:
        transport.close()
        theirs.close()
        await asyncio.sleep(0)


def test_unsent_skips_whole_parts_and_cuts_the_first_partial_one() -> None:
    parts: list[bytes | memoryview] = [b"ab", memoryview(b"cdef"), b"g"]
    assert _unsent(parts, 0) == b"abcdefg"
    assert _unsent(parts, 2) == b"cdefg"
    assert _unsent(parts, 3) == b"defg"
    assert _unsent(parts, 7) == b""


async def test_corked_views_survive_a_full_socket_and_the_buffer_being_reused() -> None:
    async with framed_pair() as (transport, proto, theirs):
        buffer = bytearray(os.urandom(4 * 65536))
        expected = bytes(buffer)
        proto.cork()
        for i in range(4):
            proto.send("stdout", None, memoryview(buffer)[i * 65536 : (i + 1) * 65536])
        proto.uncork()
        # The socket took a part; the rest waits in the transport, as a copy.
        assert transport.get_write_buffer_size() > 0
        buffer[:] = bytes(len(buffer))
        proto.send("exit", {"exit_code": 0})  # queued behind, in order
        decoder = FrameDecoder()
        frames = []
        theirs.setblocking(False)
        while not frames or frames[-1].type != "exit":
            await asyncio.sleep(0.001)
            try:
                data = theirs.recv(1 << 20)
            except BlockingIOError:
                continue
            frames += decoder.feed(data)
        assert [f.type for f in frames] == ["stdout"] * 4 + ["exit"]
        assert b"".join(f.payload for f in frames[:4]) == expected


async def test_drain_raises_once_the_connection_is_lost() -> None:
    # It used to return as if all were well, so a writer went on "sending"
    # into a closed transport.
    async with framed_pair() as (_, proto, theirs):
        chunk = bytes(65536)
        while not proto.writing_paused:
            proto.send("stdout", None, chunk)
        waiter = asyncio.ensure_future(proto.drain())
        await asyncio.sleep(0)
        assert not waiter.done()
        theirs.close()
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(waiter, 10)
        with pytest.raises(ConnectionLost):
            await proto.drain()
