"""Who may connect, and how many: the server's admission rules and limits.

A remote shell runs code by design, so everything that is not the
authenticated user is kept out, and a hostile or broken peer must not take
the server down.  The guarantees follow OpenSSH (LoginGraceTime,
MaxStartups) and ncat (``--allow``, ``--deny``, ``--max-conns``):

- ``Gate`` is the first protocol of every accepted TCP connection.  It
  checks the peer's address (``AccessList``) and the connection limits
  *before a byte is read*, then hands the connection to the rsh protocol,
  plain or through a TLS handshake.
- ``Slot`` is one admitted connection's claim on the limits: its
  authentication deadline, its place among the not-yet-authenticated, and
  its audit record.
- ``Guard`` holds them for one server, with the command policy (``rsh.server.policy``)
  and the audit log (``rsh.server.audit``); connections know nothing of the rules.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..protocol.frames import encode_frame
from ..protocol.messages import ExecRequest
from .audit import AuditLog
from .limits import Limits
from .policy import CommandPolicy, CommandRefused

__all__ = ["AccessList", "Guard", "Gate", "Slot", "peer_address"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# How long a TLS connection may take to say goodbye (close_notify) after we
# close it before it is cut off; asyncio's default of 30 s would let a peer
# that never answers hold its slot that much longer.
TLS_SHUTDOWN_TIMEOUT = 5.0

# Refused connections are logged one by one only this often; in between
# they are counted and summed up, so a flood cannot flood the log too.
REFUSAL_LOG_INTERVAL = 10.0


def peer_address(host: str) -> Address:
    """The address of a peer as the access list sees it (IPv4-mapped IPv6 as IPv4)."""
    addr = ipaddress.ip_address(host.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class AccessList:
    """``--allow`` / ``--deny``: addresses and CIDR ranges, IPv4 and IPv6.

    With any ``allow`` entry only matching peers get in; a ``deny`` match
    keeps a peer out whatever ``allow`` says.

    Raises:
        ValueError: an entry is not an address or a CIDR range.
    """

    def __init__(self, allow: Sequence[str] = (), deny: Sequence[str] = ()) -> None:
        self.allow = [self._network(a) for a in allow]
        self.deny = [self._network(d) for d in deny]

    @staticmethod
    def _network(text: str) -> Network:
        try:
            net = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or CIDR range (like 192.0.2.0/24 or 2001:db8::/32)") from exc
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None and net.prefixlen >= 96:
            # ::ffff:a.b.c.d/n means the IPv4 range; peers are compared as IPv4.
            return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
        return net

    def permits(self, addr: Address) -> bool:
        """True when *addr* may connect."""
        if any(addr in net for net in self.deny):
            return False
        return not self.allow or any(addr in net for net in self.allow)

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)


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
        self._next_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused: Counter[str] = Counter()
        self._refusal_timer: asyncio.TimerHandle | None = None

    # -- connections ----------------------------------------------------------

    def admission(self, addr: Address | None) -> tuple[str, str] | None:
        """Why a new connection from *addr* is refused (code, message), or None to admit it."""
        if addr is None or not self.access.permits(addr):
            return "denied", f"connections from {addr if addr is not None else 'this address'} are not allowed here"
        if self.open >= self.limits.max_conns:
            return "too_many_connections", f"server busy: {self.open} connections open, the limit is {self.limits.max_conns}; try again later"
        if self.unauthenticated >= self.limits.max_unauthenticated:
            return (
                "too_many_connections",
                f"server busy: {self.unauthenticated} connections are authenticating, the limit is {self.limits.max_unauthenticated}; try again later",
            )
        return None

    def next_id(self) -> int:
        """A number for a new connection, unique for this server's life."""
        self._next_id += 1
        return self._next_id

    def refused(self, peer: tuple[str, int], code: str) -> None:
        """Count and log a refused connection, and audit it."""
        if self.audit is not None:
            self.audit.write("connection", time.time(), conn=self.next_id(), peer=f"{peer[0]}:{peer[1]}", end=code, duration=0.0)
        if self._refusal_timer is None:
            self.log(f"{peer[0]}:{peer[1]}: connection refused ({code.replace('_', ' ')})")
            self._refusal_timer = asyncio.get_running_loop().call_later(REFUSAL_LOG_INTERVAL, self._log_refusals)
        else:
            self._refused[code] += 1

    def _log_refusals(self) -> None:
        self._refusal_timer = None
        if self._refused:
            what = ", ".join(f"{n} {code.replace('_', ' ')}" for code, n in self._refused.items())
            self.log(f"refused {sum(self._refused.values())} more connections in {REFUSAL_LOG_INTERVAL:g} s ({what})")
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
        """Return what to run for *request* and environment to add.

        Raises:
            CommandRefused: ``busy`` (too many running) or ``not_allowed``.
        """
        if self.running >= self.limits.max_commands:
            raise CommandRefused("busy", f"server busy: {self.running} commands running, the limit is {self.limits.max_commands}; try again later")
        if self.policy:
            return self.policy.decide(request)
        return request, {}


class Slot:
    """One admitted connection's claim on the limits, its deadline and audit record.

    Created by ``Gate`` when the connection is accepted; the rsh protocol
    object then reports to it: ``authenticated``, ``auth_failed``, ``release``.
    """

    def __init__(self, guard: Guard, peer: tuple[str, int], on_deadline: Callable[[], None]) -> None:
        self.guard = guard
        self.id = guard.next_id()
        self.peer = peer
        self.tls = guard.ssl_context is not None
        self.started = time.time()
        self._t0 = time.monotonic()
        #: Who commands run as once authenticated (None until then).
        self.user: str | None = None
        #: Why the connection ended; the audit record's ``end``.
        self.end = "closed"
        self.commands = 0
        #: Called when the authentication deadline passes; the protocol
        #: object replaces it with one that says why before closing.
        self.on_deadline = on_deadline
        self._pending = True  # counted among the not yet authenticated
        self._held = False  # ... and stays so after a failed auth, for the delay
        self._released = False
        guard.open += 1
        guard.unauthenticated += 1
        self._deadline: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(guard.limits.auth_timeout, self._expired)

    @property
    def peer_text(self) -> str:
        """``HOST:PORT`` of the peer."""
        host = f"[{self.peer[0]}]" if ":" in self.peer[0] else self.peer[0]
        return f"{host}:{self.peer[1]}"

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
        if self._pending:
            self._pending = False
            self.guard.unauthenticated -= 1

    def authenticated(self, user: str) -> None:
        """The peer proved it holds the token (or the server needs none)."""
        self.user = user
        self._cancel_deadline()
        self._leave_pending()

    def auth_failed(self) -> None:
        """A wrong ``auth``: keep this place taken for the failure delay, whatever the peer does."""
        self.end = "auth_failed"
        self._cancel_deadline()
        self._held = True

        def unhold() -> None:
            self._held = False
            if self._released:
                self._leave_pending()

        asyncio.get_running_loop().call_later(self.guard.limits.auth_fail_delay, unhold)

    def release(self, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """The connection is gone: give its place back and write its audit record (once)."""
        if self._released:
            return
        self._released = True
        self._cancel_deadline()
        self.guard.open -= 1
        if not self._held:
            self._leave_pending()
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


class _Handover(asyncio.Protocol):
    """Holds what arrives between the end of a TLS handshake and the hand-over.

    ``loop.start_tls`` resolves before our coroutine resumes, and a peer may
    send data right behind its last handshake message; this keeps it until
    the rsh protocol takes the transport.
    """

    def __init__(self) -> None:
        self.early: list[bytes] = []
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.early.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class Gate(asyncio.Protocol):
    """The first protocol of every accepted connection.

    Admits or refuses it before reading a byte (a refused peer gets
    ``access_denied`` or ``too_many_connections``, in the clear under TLS
    too, and is closed unread),
    then gives the transport, directly or after a TLS handshake, to the
    protocol object that ``make_connection(slot)`` returns.
    """

    def __init__(self, guard: Guard, make_connection: Callable[[Slot], asyncio.BufferedProtocol]) -> None:
        self.guard = guard
        self.make_connection = make_connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw: asyncio.Transport = transport  # type: ignore[assignment]
        guard = self.guard
        peer = raw.get_extra_info("peername") or ("?", 0)
        peer = (str(peer[0]), int(peer[1]))
        try:
            addr: Address | None = peer_address(peer[0])
        except ValueError:
            addr = None
        refusal = guard.admission(addr)
        if refusal is not None:
            code, message = refusal
            guard.refused(peer, code)
            # Nothing is read; one frame says why instead of hello, so the
            # client can tell the person rather than guess.  Under TLS too,
            # in the clear before any handshake: the client's handshake then
            # fails on it, and the client reads it on a plain connection.
            # (The audit log's `end` stays `denied`, as documented.)
            wire_code = "access_denied" if code == "denied" else code
            raw.write(encode_frame("error", {"code": wire_code, "message": message}))
            raw.close()
            return
        slot = Slot(guard, peer, raw.abort)
        conn = self.make_connection(slot)
        if guard.ssl_context is None:
            # The transport has not started reading yet (it does right after
            # this callback), so the new protocol sees every byte.
            raw.set_protocol(conn)
            conn.connection_made(raw)
        else:
            guard.spawn(self._start_tls(raw, conn, guard.ssl_context))

    async def _start_tls(self, raw: asyncio.Transport, conn: asyncio.BufferedProtocol, ctx: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        holder = _Handover()
        tls: asyncio.Transport | None = None
        try:
            tls = await loop.start_tls(
                raw,
                holder,
                ctx,
                server_side=True,
                # The slot's deadline cuts a stalled handshake off first.
                ssl_handshake_timeout=self.guard.limits.auth_timeout + 5,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT,
            )
        except Exception:
            tls = None  # garbage, an old TLS version, a reset: nothing to tell
        finally:
            if tls is None or holder.lost or tls.is_closing():
                raw.abort()
                conn.connection_lost(None)
        if tls is None or holder.lost or tls.is_closing():
            return
        tls.set_protocol(conn)
        conn.connection_made(tls)
        for chunk in holder.early:
            _feed(conn, chunk)
        if holder.eof and not conn.eof_received():
            tls.close()  # what asyncio does when eof_received() says so


def _feed(proto: asyncio.BufferedProtocol, data: bytes) -> None:
    """Deliver *data* to a buffered protocol as if it had just been read."""
    view = memoryview(data)
    while view:
        buf = memoryview(proto.get_buffer(len(view)))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        proto.buffer_updated(n)
        view = view[n:]
