"""The demos' socket harness: loopback sockets whose timing is the same on every run.

The TCP sockets set ``TCP_NODELAY`` (so each ``send()`` leaves at once,
unmerged), and every ``Endpoint.recv()`` first waits, polling ``select()``
and ``ioctl(FIONREAD)``, until every byte the peer has sent so far is in the
socket's receive buffer, then checks it got them all.  The waiting lives
here so that the code under study (``rsh.teach.specimens``) is just what a
learner would write.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from ..errors import RshError

__all__ = ["WAIT_LIMIT", "Conn", "DemoError", "Endpoint", "Recv", "WouldBlockForever", "tcp_link", "udp_link", "wait_buffered"]

#: A recv() that has to wait longer than this on loopback is broken, not slow.
WAIT_LIMIT = 5.0


class DemoError(RshError):
    """A demo could not set up the conditions it needs, or saw something it did not expect."""


class WouldBlockForever(DemoError):
    """A naive receiver called recv() when its peer had sent everything: it would wait forever."""


def _fionread(sock: socket.socket) -> int:
    """How many bytes wait unread in *sock*'s receive buffer."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def wait_buffered(sock: socket.socket, count: int, timeout: float = WAIT_LIMIT) -> int:
    """Block until at least *count* bytes wait in *sock*'s receive buffer; return how many do.

    Raises:
        DemoError: they did not all arrive within *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        have = _fionread(sock)
        if have >= count:
            return have
        left = deadline - time.monotonic()
        if left <= 0:
            raise DemoError(f"only {have} of {count} bytes reached the receive buffer within {timeout:g}s")
        if have == 0:
            select.select([sock], [], [], left)  # wakes on the first byte
        else:
            time.sleep(0.0005)  # select() would return at once: part is there


class Conn(Protocol):
    """What the naive and framed code under study needs of a socket."""

    def sendall(self, data: bytes) -> None: ...

    def recv(self, bufsize: int) -> bytes: ...


#: One recv() as an Endpoint logs it: (bufsize, bytes waiting before the call, bytes returned).
Recv = tuple[int, int, bytes]


class Endpoint:
    """One end of a loopback TCP connection whose ``recv()`` is repeatable.

    ``recv()`` first waits until every byte the peer has sent so far is in
    the receive buffer, then checks that it returned all of them (or
    *bufsize*).  Both ends count what they send, so the receiver knows what
    to wait for.  Every call is logged for the demo to show.
    """

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.peer: Endpoint | None = None
        self.sent = 0
        self.received = 0
        self.recvs: list[Recv] = []
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)
        self.sends.append(bytes(data))

    def pending(self) -> int:
        """Bytes the peer has sent that this end has not read yet."""
        assert self.peer is not None
        return self.peer.sent - self.received

    def recv(self, bufsize: int) -> bytes:
        pending = self.pending()
        if pending == 0:
            raise WouldBlockForever(f"{self.name} called recv() with nothing more coming: it would wait forever")
        waiting = wait_buffered(self.sock, pending)
        data = self.sock.recv(bufsize)
        if len(data) != min(bufsize, pending):
            raise DemoError(f"recv({bufsize}) returned {len(data)} bytes with {waiting} waiting; the demo cannot control this machine's timing")
        self.received += len(data)
        self.recvs.append((bufsize, waiting, data))
        return data


@contextmanager
def tcp_link() -> Iterator[tuple[Endpoint, Endpoint]]:
    """Yield (client, server) ends of a fresh TCP connection on 127.0.0.1, port picked by the OS."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client_sock = socket.create_connection(listener.getsockname()[:2])
        try:
            server_sock, _ = listener.accept()
        except BaseException:
            client_sock.close()
            raise
    try:
        for s in (client_sock, server_sock):
            # Each send() leaves at once as its own segment: what merges them
            # is the receiver's buffer, not Nagle's algorithm on the sender.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(WAIT_LIMIT)  # a bug must fail, not hang
        client, server = Endpoint(client_sock, "client"), Endpoint(server_sock, "server")
        client.peer, server.peer = server, client
        yield client, server
    finally:
        client_sock.close()
        server_sock.close()


@contextmanager
def udp_link() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Yield (receiver, sender) UDP sockets; the receiver is bound to 127.0.0.1, port picked by the OS.

    No waiting is needed here: recvfrom() never returns more than one
    datagram, however many are queued.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(WAIT_LIMIT)  # a lost datagram must fail, not hang
        yield rx, tx
