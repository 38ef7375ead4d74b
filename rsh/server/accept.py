"""Accepting connections: the listening sockets, when to stop accepting, and descriptors.

asyncio's own accept loop accepts whatever arrives and, out of descriptors,
logs a traceback every second.  ``Acceptor`` instead accepts only while the
``Guard`` has room (``rsh.server.admission``); past a limit it stops, and the
kernel holds new connections in the listen backlog (sized by ``--backlog``)
until a place frees.  A connection that waits there while every place is
taken gets one by eviction: the least-progressed connection past its grace
is closed for it (``Guard.victim``).  Out of descriptors (EMFILE) it stops
accepting, says so once, and tries again when a connection closes, or every
``STARVED_RETRY`` seconds.

Accepted sockets get TCP keepalive and a user timeout, so that a peer that
vanished (a dead route, a machine switched off) is noticed by the kernel
in about ``KEEPALIVE_IDLE + KEEPALIVE_COUNT * KEEPALIVE_INTERVAL`` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path

from .admission import Guard

__all__ = ["Acceptor", "bind", "raise_nofile", "somaxconn", "STARVED_RETRY"]

# Connections accepted per wake-up before other work gets the loop.
ACCEPT_BATCH = 64
# Out of descriptors: how often to try again when nothing else says to, and
# to say so at most (freed descriptors are often taken again at once).
STARVED_RETRY = 1.0
STARVED_SAY_EVERY = 60.0
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 6
_OUT_OF = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as far as allowed); return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        for want in (hard, 1 << 20):  # "unlimited" is refused for NOFILE: try the usual nr_open
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                return int(want)
            except (ValueError, OSError):
                continue
    return int(soft)


def somaxconn() -> int | None:
    """The kernel's cap on any listen backlog (Linux), or None if unknown."""
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return None


def bind(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening, non-blocking sockets for every address *host* names, all on one port.

    Raises:
        OSError: an address cannot be resolved or bound.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[:2]) in seen:
                continue
            seen.add((family, addr[:2]))
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio does
            if port == 0 and len(socks) > 1:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])  # every address on the first's free port
            sock.bind(addr)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _keepalive(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            # Data unacknowledged this long: the peer is gone, even mid-stream.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, (KEEPALIVE_IDLE + KEEPALIVE_COUNT * KEEPALIVE_INTERVAL) * 1000)
    except OSError:
        pass  # not TCP (a test's socketpair), or an old kernel: best effort


class Acceptor:
    """Accept on *socks* while *guard* has room, handing each connection to ``protocol_factory()``.

    Args:
        socks: from ``bind``.
        guard: the limits (it calls ``room`` whenever a place frees).
        protocol_factory: the first protocol of each connection (a ``Gate``).
        log: one-line notices.
    """

    def __init__(self, socks: list[socket.socket], guard: Guard, protocol_factory: Callable[[], asyncio.Protocol], log: Callable[[str], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self.socks = socks
        self._guard = guard
        self._factory = protocol_factory
        self._log = log
        self._watched: set[socket.socket] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.paused = False
        #: Out of descriptors since this ``time.monotonic()`` (None: not).
        self.starved_since: float | None = None
        self._said: float | None = None  # when that was last said
        self._told = False  # ... and whether for this time
        self.closed = False
        guard.on_room = self.room

    def start(self) -> None:
        """Begin accepting."""
        self._resume()

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        self.closed = True
        self._pause(None)
        for sock in self.socks:
            sock.close()

    def room(self) -> None:
        """A place freed (or a descriptor): accept again if we had stopped."""
        if self.paused and not self.closed:
            self._resume()

    def _resume(self) -> None:
        self.paused = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sock in self.socks:
            if sock not in self._watched:
                self._loop.add_reader(sock.fileno(), self._ready, sock)
                self._watched.add(sock)

    def _pause(self, until: float | None) -> None:
        """Stop watching the sockets (the backlog holds what arrives) until ``room``, or *until* (monotonic)."""
        self.paused = True
        for sock in self._watched:
            self._loop.remove_reader(sock.fileno())
        self._watched.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if until is not None and not self.closed:
            self._timer = self._loop.call_later(max(0.0, until - time.monotonic()), self._resume)

    def _ready(self, sock: socket.socket) -> None:
        guard = self._guard
        for _ in range(ACCEPT_BATCH):
            if not guard.has_room():
                # Someone waits (the socket is readable): make room, or stop until there is some.
                victim, due = guard.victim(time.monotonic())
                if victim is None:
                    self._pause(due)
                    return
                victim.evict()
                continue
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF:
                    self._starve(exc)
                    return
                continue  # the peer gave up meanwhile (ECONNABORTED): next one
            if self.starved_since is not None:
                if self._told:
                    self._log(f"accepting connections again (after {time.monotonic() - self.starved_since:.1f} s out of descriptors)")
                self.starved_since = None
            self._hand_over(conn)

    def _starve(self, exc: OSError) -> None:
        now = time.monotonic()
        if self.starved_since is None:
            self.starved_since = now
            # Said once; again only if it happens again a while later.
            self._told = self._said is None or now - self._said >= STARVED_SAY_EVERY
            if self._told:
                self._said = now
                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                self._log(
                    f"out of file descriptors ({exc.strerror}; the limit is {soft}): not accepting new connections until some close; "
                    "raise the hard RLIMIT_NOFILE (ulimit -Hn) or lower --max-conns"
                )
        self._pause(now + STARVED_RETRY)

    def _hand_over(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        _keepalive(conn)
        self._guard.arriving += 1  # holds its place until the Gate has taken a Slot
        self._guard.spawn(self._connect(conn))

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except BaseException:
            conn.close()
            raise
        finally:
            # Counted twice for a moment once its Slot is made: never too few.
            self._guard.arriving -= 1
            self.room()
