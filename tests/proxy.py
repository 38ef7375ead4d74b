"""A loopback TCP proxy for tests that need the wire to misbehave on cue.

    with Proxy(server.port, corrupt="up") as proxy:      # flip a byte of the first data frame, client -> server
    with Proxy(server.port, hold="down", after=N) as p:  # forward N bytes server -> client, then stall
    with Proxy(server.port, hold="up", after=N, then="cut") as p:  # ... then drop the connection

One connection at a time; everything it starts is stopped by ``close()``.

    with SlowStart(server.port, 1.5) as p:               # every connection: the server's first bytes 1.5 s late

``Listener`` is what they are built on, for other fake servers too.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Literal, Self

from rsh.protocol.frames import FrameDecoder

Direction = Literal["up", "down"]


def _shut(*socks: socket.socket) -> None:
    """Shut both directions of each socket, whatever state it is in."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Listener:
    """A listener on a free loopback port, and the sockets and threads to stop with it.

    A subclass's ``_accept`` runs in ``_threads[0]``, which the subclass
    starts once it is ready; ``accepted()`` gives it the connections.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    def _accept(self) -> None:
        raise NotImplementedError

    def accepted(self) -> Iterator[socket.socket]:
        """Each connection as it arrives, until the listener is closed."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            yield conn

    def close(self) -> None:
        """Stop everything this proxy started."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes a pending accept(); close() alone does not
        except OSError:
            pass
        self.listener.close()
        _shut(*self._socks)
        for s in self._socks:
            s.close()
        for t in self._threads:
            t.join(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Relay(Listener):
    """What both proxies share: a listener that forwards to 127.0.0.1:*upstream*."""

    def __init__(self, upstream: int) -> None:
        super().__init__()
        self.upstream = upstream


class Proxy(_Relay):
    """Forward 127.0.0.1:``port`` to the upstream port, with optional mischief.

    Args:
        upstream: the real server's port.
        corrupt: flip one bit in the payload of the first ``data`` frame going
            this way ("up": client to server).
        hold: stop forwarding this way after *after* bytes; *then* "stall"
            keeps the connection open (the peer just waits, as on a stalled
            network), "cut" drops it at once.
    """

    def __init__(
        self,
        upstream: int,
        *,
        corrupt: Direction | None = None,
        hold: Direction | None = None,
        after: int = 0,
        then: Literal["stall", "cut"] = "stall",
    ) -> None:
        super().__init__(upstream)
        self.corrupt = corrupt
        self.hold = hold
        self.after = after
        self.then = then
        self.flipped = threading.Event()
        self.holding = threading.Event()
        self._threads[0].start()

    def _accept(self) -> None:
        client = next(self.accepted(), None)  # one connection at a time
        if client is None:
            return
        server = socket.create_connection(("127.0.0.1", self.upstream))
        self._socks += [client, server]
        for src, dst, way in ((client, server, "up"), (server, client, "down")):
            t = threading.Thread(target=self._pump, args=(src, dst, way), daemon=True)
            self._threads.append(t)
            t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: Direction) -> None:
        decoder = FrameDecoder() if self.corrupt == way else None
        sent = 0
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if decoder is not None:
                    data = self._reframe(decoder, data)
                if self.hold == way and sent + len(data) >= self.after:
                    dst.sendall(data[: self.after - sent])
                    self.holding.set()
                    if self.then == "stall":
                        self._drain(src)
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        # One side is gone: the other goes too, as a dead network would have it.
        _shut(src, dst)

    def _drain(self, src: socket.socket) -> None:
        # Stalled: read and drop until the sender goes away.
        while src.recv(1 << 16):
            pass

    def _reframe(self, decoder: FrameDecoder, data: bytes) -> bytes:
        """Re-emit the whole frames *data* completes, byte for byte, but one bit of the first data frame."""
        out = bytearray()
        for frame in decoder.feed(data):
            payload = frame.payload
            if frame.type == "data" and payload and not self.flipped.is_set():
                payload = bytes([payload[0] ^ 0x01]) + payload[1:]
                self.flipped.set()
            out += struct.pack("!I", len(frame.raw_header)) + frame.raw_header + payload
        return bytes(out)


class SlowStart(_Relay):
    """Forward every connection to 127.0.0.1:*upstream*, holding the server's first bytes back *delay* seconds.

    A server slow to say hello, as one on a loaded machine or far away would be.
    """

    def __init__(self, upstream: int, delay: float) -> None:
        super().__init__(upstream)
        self.delay = delay
        self.connections = 0
        self._threads[0].start()

    def _accept(self) -> None:
        for client in self.accepted():
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._socks += [client, server]
            for src, dst, delay in ((client, server, 0.0), (server, client, self.delay)):
                t = threading.Thread(target=self._pump, args=(src, dst, delay), daemon=True)
                self._threads.append(t)
                t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, delay: float) -> None:
        time.sleep(delay)
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        _shut(src, dst)
