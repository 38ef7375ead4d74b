"""Who may connect, and how many: the server's admission rules and limits.

A remote shell runs code by design, so everything that is not the
authenticated user is kept out, and a hostile or broken peer must not take
the server down.  The guarantees follow OpenSSH (LoginGraceTime,
MaxStartups) and ncat (``--allow``, ``--deny``, ``--max-conns``):

- ``Slot`` is one admitted connection's claim on the limits: its
  authentication deadline, its place among the not-yet-authenticated, and
  its audit record.
- ``Guard`` holds them for one server, with the address rules (``rsh.server.access``),
  the command policy (``rsh.server.policy``),
  the queue of commands waiting for a slot (``rsh.server.exec_queue``) and the
  audit log (``rsh.server.audit``); connections know nothing of the rules.
  When every place is taken and a connection waits in the listen backlog,
  ``Guard.victim`` names the one to close for it: the not-yet-authenticated
  one that has waited longest for its ``auth`` (past a grace period), or, when
  every place is authenticated, the one idle longest.

``rsh.server.gate`` checks each new connection against them before a byte is
read; ``rsh.server.accept`` decides when to accept at all.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Protocol

from ..protocol.messages import ExecRequest
from .access import AccessList, Address, peer_address
from .audit import AuditLog
from .exec_queue import ExecQueue
from .limits import IDLE_GRACE, PREAUTH_GRACE, Limits
from .policy import CommandPolicy

__all__ = ["AccessList", "Guard", "Occupant", "Slot", "TLS_SHUTDOWN_TIMEOUT", "peer_address"]

# How long a TLS connection may take to say goodbye (close_notify) after we
# close it before it is cut off; asyncio's default of 30 s would let a peer
# that never answers hold its slot that much longer.
TLS_SHUTDOWN_TIMEOUT = 5.0

# Refused connections are logged one by one only this often; in between
# they are counted and summed up, so a flood cannot flood the log too.
REFUSAL_LOG_INTERVAL = 10.0


class _Closable(Protocol):
    def close(self, code: str | None = None, message: str = "") -> None: ...


class _Live(Protocol):
    @property
    def shell(self) -> object | None: ...


class Occupant(Protocol):
    """The connection holding a ``Slot``, as eviction sees it (a ``ServerConnection``)."""

    #: ``time.monotonic()`` of its last frame in or command finished.
    last_active: float

    @property
    def command(self) -> object | None:
        """Its command, running or waiting: a connection with one is never closed to make room."""
        ...

    @property
    def transfer(self) -> object | None:
        """Its transfer, likewise."""
        ...

    @property
    def live(self) -> _Live:
        """Its live shell (the prompt's), if one runs: likewise."""
        ...

    @property
    def conn(self) -> _Closable:
        """Its protocol, which says why it closes."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Guard:
    """One server's admission rules, limits, policy, audit log and counters.

    Args:
        limits: see ``Limits``.
        access: ``--allow`` / ``--deny``.
        policy: restricted mode.
        audit: where records go (None: nowhere).
        ssl_context: TLS for every connection (None: plain TCP).
        log: one-line notices.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        access: AccessList | None = None,
        policy: CommandPolicy | None = None,
        audit: AuditLog | None = None,
        ssl_context: ssl.SSLContext | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.access = access or AccessList()
        self.policy = policy or CommandPolicy()
        self.audit = audit
        self.ssl_context = ssl_context
        self.log: Callable[[str], None] = log or (lambda message: None)
        #: Open connections, those of them not yet authenticated, running commands.
        self.open = 0
        self.unauthenticated = 0
        self.running = 0
        #: Accepted connections whose ``Slot`` is not made yet (they hold a place).
        self.arriving = 0
        #: Places, oldest first: not yet authenticated, and authenticated.
        self.pending: dict[Slot, None] = {}
        self.authed: dict[Slot, None] = {}
        self.evicted = 0
        #: Seconds the last handshakes that succeeded took, accept to ``auth_ok``.
        self.handshakes: deque[float] = deque(maxlen=64)
        #: Called whenever a place frees (the acceptor resumes).
        self.on_room: Callable[[], None] = lambda: None
        #: Commands waiting for a slot.
        self.queue = ExecQueue(self)
        self._next_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused: Counter[str] = Counter()
        self._refusal_timer: asyncio.TimerHandle | None = None

    # -- connections ----------------------------------------------------------

    def admission(self, addr: Address | None) -> tuple[str, str] | None:
        """Why a new connection from *addr* is refused (code, message), or None to admit it."""
        if addr is None or not self.access.permits(addr):
            return "denied", f"connections from {addr if addr is not None else 'this address'} are not allowed here"
        return None

    def has_room(self) -> bool:
        """Whether one more connection may be accepted now."""
        limits = self.limits
        return self.open + self.arriving < limits.max_conns and self.unauthenticated + self.arriving < limits.max_unauthenticated

    def victim(self, now: float) -> tuple[Slot | None, float | None]:
        """The connection to close so that one waiting may come in, or when to ask again (None: not before a place frees).

        Least progress goes first: the not-yet-authenticated connection that
        has waited longest for its ``auth``, once past its grace.  An
        authenticated one is closed only at the connection cap with no
        place left authenticating (a flood of those must never push out a
        session), and only if idle past ``IDLE_GRACE``: one that never ran
        anything first, then the one idle longest.
        """
        if self.arriving:
            return None, None  # a place is being taken: look again when it is
        if self.unauthenticated >= self.limits.max_unauthenticated or self.pending:
            # What honest handshakes take now (they slow down with the machine
            # or the network): four times the 90th percentile of the last ones.
            # A peer without the token cannot lengthen it.
            done = sorted(self.handshakes)
            recent = 4 * done[len(done) * 9 // 10] if done else 0.0
            for slot in self.pending:
                if not slot.held:
                    due = slot.since + min(max(slot.grace, recent), self.limits.auth_timeout)
                    return (slot, None) if due <= now else (None, due)
            return None, None  # held after a wrong auth: free within auth_fail_delay
        best: tuple[bool, float] | None = None
        chosen = None
        for slot in self.authed:
            occ = slot.occupant
            if occ is None or occ.command is not None or occ.transfer is not None or occ.live.shell is not None:
                continue
            key = (slot.commands > 0, occ.last_active)
            if best is None or key < best:
                best, chosen = key, slot
        if chosen is None or best is None:
            return None, None
        due = best[1] + IDLE_GRACE
        return (chosen, None) if due <= now else (None, due)

    def next_id(self) -> int:
        """A number for a new connection, unique for this server's life."""
        self._next_id += 1
        return self._next_id

    def refused(self, peer: tuple[str, int], code: str, line: str | None = None) -> None:
        """Count and log a refused connection (or one closed to make room: *line* says how), and audit a refusal."""
        if self.audit is not None and line is None:
            self.audit.write("connection", time.time(), conn=self.next_id(), peer=f"{peer[0]}:{peer[1]}", end=code, duration=0.0)
        if self._refusal_timer is None:
            self.log(line or f"{peer[0]}:{peer[1]}: connection refused ({code.replace('_', ' ')})")
            self._refusal_timer = asyncio.get_running_loop().call_later(REFUSAL_LOG_INTERVAL, self._log_refusals)
        else:
            self._refused[code] += 1

    def _log_refusals(self) -> None:
        self._refusal_timer = None
        if self._refused:
            what = ", ".join(f"{n} {code.replace('_', ' ')}" for code, n in self._refused.items())
            self.log(f"refused or closed {sum(self._refused.values())} more connections in {REFUSAL_LOG_INTERVAL:g} s ({what})")
            self._refused.clear()
            self._refusal_timer = asyncio.get_running_loop().call_later(REFUSAL_LOG_INTERVAL, self._log_refusals)

    def spawn(self, coro: Any) -> None:
        """Run *coro* as a task the guard keeps (and cancels on ``close``)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Cancel handshakes in flight and stop logging refusals."""
        for task in list(self._tasks):
            task.cancel()
        if self._refusal_timer is not None:
            self._refusal_timer.cancel()
            self._refusal_timer = None

    # -- commands ---------------------------------------------------------------

    def vet_command(self, request: ExecRequest) -> tuple[ExecRequest, dict[bytes, bytes]]:
        """Return what to run for *request* and environment to add (whether it may start now is ``queue``'s).

        Raises:
            CommandRefused: ``not_allowed``.
        """
        if self.policy:
            return self.policy.decide(request)
        return request, {}


class Slot:
    """One admitted connection's claim on the limits, its deadline and audit record.

    Created by ``Gate`` when the connection is accepted; the rsh protocol
    object then reports to it: ``authenticated``, ``auth_failed``, ``release``,
    and becomes its ``occupant``.  *rtt* (seconds, the kernel's estimate)
    lengthens its grace against eviction by four round trips.
    """

    def __init__(self, guard: Guard, peer: tuple[str, int], on_deadline: Callable[[], None], rtt: float = 0.0) -> None:
        self.guard = guard
        self.id = guard.next_id()
        self.peer = peer
        #: ``HOST:PORT`` of the peer.
        self.peer_text = f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}"
        self.tls = guard.ssl_context is not None
        self.started = time.time()
        self._t0 = self.since = time.monotonic()
        self.grace = PREAUTH_GRACE + 4 * rtt
        #: Who commands run as once authenticated (None until then).
        self.user: str | None = None
        #: Why the connection ended; the audit record's ``end``.
        self.end = "closed"
        self.commands = 0
        #: Called when the authentication deadline passes; the protocol
        #: object replaces it with one that says why before closing.
        self.on_deadline = on_deadline
        #: The connection, once it has the transport (until then eviction aborts it).
        self.occupant: Occupant | None = None
        self._pending = True  # counted among the not yet authenticated
        self.held = False  # ... and stays so after a failed auth, for the delay
        self._released = False
        self._placed = True  # counted among the open
        guard.open += 1
        guard.unauthenticated += 1
        guard.pending[self] = None
        self._deadline: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(guard.limits.auth_timeout, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self._pending and not self._released:
            self.end = "auth_timeout"
            self.on_deadline()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _leave_pending(self) -> None:
        self.guard.pending.pop(self, None)
        if self._pending:
            self._pending = False
            self.guard.unauthenticated -= 1
            self.guard.on_room()

    def _unplace(self) -> None:
        """Give back the place among the open (once)."""
        self.guard.authed.pop(self, None)
        if self._placed:
            self._placed = False
            self.guard.open -= 1
            self.guard.on_room()

    def authenticated(self, user: str) -> None:
        """The peer proved it holds the token (or the server needs none)."""
        self.user = user
        if self._pending:
            self.guard.handshakes.append(time.monotonic() - self.since)
        self._cancel_deadline()
        self._leave_pending()
        if self._placed:
            self.guard.authed[self] = None

    def auth_failed(self) -> None:
        """A wrong ``auth``: keep this place taken for the failure delay, whatever the peer does."""
        self.end = "auth_failed"
        self._cancel_deadline()
        self.held = True

        def unhold() -> None:
            self.held = False
            if self._released:
                self._leave_pending()

        asyncio.get_running_loop().call_later(self.guard.limits.auth_fail_delay, unhold)

    def evict(self) -> None:
        """Close this connection to make room for one waiting; its places are free at once."""
        guard = self.guard
        guard.evicted += 1
        self.end = "evicted"
        if self._pending:
            message = f"server busy: closed after {time.monotonic() - self.since:.1f} s without authenticating, to make room; try again"
        else:
            message = f"server busy: closed while idle, to make room (the limit is {guard.limits.max_conns} connections); try again"
        self._cancel_deadline()
        self._leave_pending()
        self._unplace()
        guard.refused((self.peer_text, 0), "evicted", f"{self.peer_text}: {message.removeprefix('server busy: ')}")
        occ = self.occupant
        if occ is not None:
            occ.conn.close("too_many_connections", message)
            occ.flush()
            occ.close()
        else:
            self.on_deadline()  # still in its TLS handshake: cut it off

    def release(self, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """The connection is gone: give its place back and write its audit record (once)."""
        if self._released:
            return
        self._released = True
        self._cancel_deadline()
        # The connection and this slot refer to each other: let go, so that
        # its buffers go with its last reference rather than at the next full
        # garbage collection (a soak grew by hundreds of MiB of those).
        self.occupant = None
        self.on_deadline = _nothing
        self._unplace()
        if not self.held:
            self._leave_pending()
        else:
            self.guard.pending.pop(self, None)  # held, but not a connection to evict
        if self.guard.audit is not None:
            self.guard.audit.write(
                "connection",
                self.started,
                conn=self.id,
                peer=self.peer_text,
                tls=self.tls,
                user=self.user,
                authenticated=self.user is not None,
                end=self.end,
                commands=self.commands,
                bytes_in=bytes_in,
                bytes_out=bytes_out,
                duration=round(time.monotonic() - self._t0, 6),
            )


def _nothing() -> None:
    pass
