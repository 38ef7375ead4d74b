"""``--idle-timeout`` for one authenticated connection, and a network that went silent under a command.

A connection is idle when no frame came and no command ran for the limit:
it gets ``idle_timeout`` and is closed.  A running command keeps it open,
unless the client takes none of its output for the limit: the send buffer
full and nothing more sent, as when the network in between stops answering
(a dead route, a proxy that blackholes).  Then it is closed the same way,
and closing stops the command.  That is noticed between half the limit and
the limit after the output stopped moving; the kernel's TCP
keepalive and user timeout (``rsh.server.accept``) catch a peer that vanished
while nothing was being sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from ..protocol.server import ServerProtocol, ServerState
from .admission import Slot

__all__ = ["IdleWatch"]


class Watched(Protocol):
    """The connection, as the watch sees it (a ``ServerConnection``)."""

    #: ``time.monotonic()`` of its last frame in or command finished.
    last_active: float
    #: The client is not taking what we send.
    writing_paused: bool
    conn: ServerProtocol
    slot: Slot
    transport: asyncio.Transport | None

    def flush(self) -> None: ...

    def close(self) -> None: ...


class IdleWatch:
    """Close *conn* with ``idle_timeout`` when idle, or stalled under a command, for *limit* seconds (positive)."""

    def __init__(self, conn: Watched, limit: float) -> None:
        self._conn: Watched | None = conn
        self._limit = limit
        self._stall: tuple[float, int] | None = None  # since when, at how many bytes sent
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(limit, self._check)

    def cancel(self) -> None:
        """Stop watching (the connection is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._conn = None  # the connection refers to this watch: leave no cycle behind

    def _check(self) -> None:
        limit, now, conn = self._limit, time.monotonic(), self._conn
        assert conn is not None  # never after cancel
        busy = conn.conn.state is ServerState.RUNNING or conn.conn.state is ServerState.LINE  # a command, or a live shell's line
        if busy and conn.writing_paused:
            sent = conn.conn.sent_bytes
            if self._stall is None or self._stall[1] != sent:
                self._stall = (now, sent)
            elif now - self._stall[0] >= limit / 2:
                # Seen stalled at two checks half a limit apart, after a
                # stall that began up to half a limit before the first.
                self._close(f"closed: the client took no output for {limit:g} s")
                # What is buffered will never go: do not wait for it to.
                if conn.transport is not None:
                    conn.transport.abort()
                return
        else:
            self._stall = None
        idle = now - conn.last_active
        if not busy and idle >= limit:
            self._close(f"closed after {limit:g} s idle")
            return
        wait = limit / 2 if busy else limit - idle
        self._timer = asyncio.get_running_loop().call_later(wait, self._check)

    def _close(self, message: str) -> None:
        self._timer = None
        conn = self._conn
        assert conn is not None
        conn.slot.end = "idle_timeout"
        # Closing brings connection_lost, which stops any running command.
        conn.conn.close("idle_timeout", message)
        conn.flush()
        conn.close()
