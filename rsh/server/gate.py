"""The first protocol of every accepted connection: check it, then hand it to the rsh protocol.

``Gate`` checks the peer's address (``rsh.server.admission.AccessList``)
*before a byte is read*, takes a ``Slot`` for it, then gives the transport,
directly or after a TLS handshake, to the rsh protocol.  Whether there is
room for it at all was decided before it was accepted (``rsh.server.accept``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Callable

from ..protocol.frames import encode_frame
from .access import Address, peer_address
from .admission import TLS_SHUTDOWN_TIMEOUT, Guard, Slot

__all__ = ["Gate", "round_trip"]


def round_trip(sock: object) -> float:
    """The kernel's smoothed round-trip time of a TCP socket, in seconds (0 if unknown).

    Read from ``TCP_INFO`` (Linux: ``tcpi_rtt``, microseconds, at byte 68):
    at accept it is measured on the handshake itself.
    """
    getsockopt = getattr(sock, "getsockopt", None)
    if getsockopt is None or not hasattr(socket, "TCP_INFO"):
        return 0.0
    try:
        info = getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return float(struct.unpack_from("I", info, 68)[0]) / 1e6 if len(info) >= 72 else 0.0
    except (OSError, struct.error):
        return 0.0


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
    ``access_denied``, in the clear under TLS too, and is closed unread),
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
            raw.write(encode_frame("error", {"code": "access_denied", "message": message}))
            raw.close()
            return
        slot = Slot(guard, peer, raw.abort, round_trip(raw.get_extra_info("socket")))
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
