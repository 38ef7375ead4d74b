"""How a client reaches a server, decided once: then open, then authenticate.

``Dial`` holds everything both clients decide before the first byte: the
token, the server's pin and so whether to speak TLS, the deadline, and how
an ``OSError`` of connecting becomes the one-line ``ConnectError`` a user
reads.  The drivers only open the socket their way (blocking or asyncio),
hand the peer's certificate to ``check_peer``, and pump the handshake.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..config import resolve_client_token
from ..errors import ConnectError, ConnectionLost, RemoteError, RshConnectionError, RshError
from ..net.tls import handshake_failure, silent_server_hint, tls_server_error
from ..protocol.client import ClientProtocol
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, TraceHook
from .known_hosts import ConfirmCallback, ServerPin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, TypedDict, Unpack
else:
    from ..typeshim import TypedDict

__all__ = ["Connected", "Dial", "DialOptions", "SpeaksTLS", "connect_error_reason"]


class SpeaksTLS(ConnectError):
    """A plain connection reached a server that waits for TLS.

    The clients then speak TLS instead, unless ``tls=False`` was asked for;
    only then does this reach the caller.
    """


def connect_error_reason(exc: OSError) -> str:
    """A short lower-case reason for a failed connect (``connection refused``)."""
    import socket

    if isinstance(exc, socket.gaierror):
        return (exc.strerror or str(exc)).lower()
    # asyncio's text is "Connect call failed (addr)"; the errno says why.
    return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()


class DialOptions(TypedDict, total=False):
    """How to reach a server, for ``rsh.connect()`` and ``rsh.connect_async()``; all optional."""

    #: Seconds allowed for connecting and authenticating (default 10).
    timeout: float
    #: The largest frame payload accepted from the server.
    max_payload: int
    #: Called with every frame sent and received (see ``rsh.protocol.trace``).
    trace: TraceHook | None
    #: True / False to force TLS on or off; None (default): TLS unless the
    #: host is loopback with no pin for it (nor *fingerprint* or
    #: *accept_new*), and then TLS all the same if the server waits for it.
    tls: bool | None
    #: The server's ``SHA256:...``; trust only that (known_hosts is then
    #: neither read nor written).
    fingerprint: str | None
    #: The file of pins (default: the config directory's).
    known_hosts: str | os.PathLike[str] | None
    #: Pin a server seen for the first time without asking.
    accept_new: bool
    #: Asks a person about a server seen for the first time
    #: (``rsh.client.known_hosts.ConfirmCallback``); without it and without
    #: *accept_new* such a server is refused.
    confirm: ConfirmCallback | None


class Dial:
    """One attempt to reach *host*:*port*: what to trust, how to speak, until when.

    Args:
        token: None looks where the command line does (``RSH_TOKEN``, then the
            default token file) and goes without if neither has it.
        options: see ``DialOptions``.

    Raises:
        ValueError: *fingerprint* is malformed, or given with ``tls=False``.
    """

    def __init__(self, host: str, port: int, token: str | None, **options: Unpack[DialOptions]) -> None:
        self.host, self.port = host, port
        self.timeout = options.get("timeout", 10.0)
        self.where = f"{host}:{port}"
        self.token = resolve_client_token(None) if token is None else token
        self.pin = ServerPin(
            host,
            port,
            fingerprint=options.get("fingerprint"),
            known_hosts=options.get("known_hosts"),
            accept_new=options.get("accept_new", False),
            confirm=options.get("confirm"),
        )
        self.tls_option = options.get("tls")
        self.tls = self.pin.wants_tls(self.tls_option)
        self.max_payload = options.get("max_payload", DEFAULT_MAX_PAYLOAD)
        self.trace = options.get("trace")
        #: The server's fingerprint once ``check_peer`` accepted it.
        self.fingerprint: str | None = None

    def protocol(self) -> ClientProtocol:
        """A fresh client end for this server."""
        return ClientProtocol(self.token, self.where, max_payload=self.max_payload, trace=self.trace)

    def check_peer(self, der: bytes) -> bool:
        """Check the certificate the server presented against the pin, before any protocol byte.

        Returns:
            True when a person was asked (which may have outlasted the
            server's authentication deadline): open a fresh connection, now
            pinned to the fingerprint accepted.

        Raises:
            HostKeyChanged, UnknownHostKey: the server is not to be trusted.
        """
        self.fingerprint = self.pin.check(der)
        if not self.pin.asked:
            return False
        self.pin = ServerPin(self.host, self.port, fingerprint=self.fingerprint)
        return True

    # -- errors, mapped here once -------------------------------------------

    def open_failed(self, exc: OSError, *, in_tls: bool | None = None) -> ConnectError:
        """The error for a connect, or its TLS handshake (*in_tls*; None: judge by *exc*), that failed."""
        if in_tls is None:
            in_tls = self.tls and not _is_connect_error(exc)
        if isinstance(exc, TimeoutError):
            what = "TLS handshake timed out" if in_tls else "timed out"
            return ConnectError(f"cannot connect to {self.where}: {what} after {self.timeout:g}s")
        if in_tls:
            return ConnectError(handshake_failure(self.where, exc))
        return ConnectError(f"cannot connect to {self.where}: {connect_error_reason(exc)}")

    def handshaking(self, conn: ClientProtocol, close: Callable[[], None]) -> _Handshaking:
        """Around the rsh handshake on an open connection: if it fails, *close*, and say how it failed.

        A timeout or a lost connection becomes the ``ConnectError`` or
        ``ConnectionLost`` naming the server (and, for a plain connection
        that never got ``hello``, what may be wrong); anything else passes.
        """
        return _Handshaking(self, conn, close)

    def handshake_failed(self, exc: RshConnectionError | TimeoutError, conn: ClientProtocol) -> RshConnectionError:
        """The error for a handshake that timed out or lost the connection."""
        hint = silent_server_hint(self.tls, conn.hello is not None)
        if isinstance(exc, (TimeoutError, ConnectError)):
            return ConnectError(f"{self.where} did not complete the rsh handshake within {self.timeout:g}s{hint}")
        return ConnectionLost(f"{self.where} closed the connection during the handshake{hint}")

    def speaks_tls_error(self) -> SpeaksTLS:
        """The error for a plain connection to a server that waits for TLS (see ``upgrade``)."""
        return SpeaksTLS(tls_server_error(self.where))

    def upgrade(self, exc: SpeaksTLS) -> None:
        """The server waits for TLS: speak it next time, if that was left to us (the pin is checked as ever).

        Raises:
            SpeaksTLS: *exc*, when ``tls=False`` was asked for.
        """
        if self.tls_option is False:
            raise exc
        self.tls = True

    def tls_failed(self, exc: OSError, greeting: bytes) -> RshError:
        """The error for a TLS handshake that failed with *exc*, given what the server said to a plain connection.

        A server that turns a peer away (``--deny``, its limits) says why in
        one frame in the clear, before any handshake: that is the error,
        the very one a plain client gets.
        """
        if greeting:
            conn = self.protocol()
            conn.receive_data(greeting)
            try:
                conn.next_event()
            except RemoteError as refusal:
                return refusal
            except RshError:
                pass
        return self.open_failed(exc, in_tls=True)


class _Handshaking:
    """``Dial.handshaking``: a class rather than a ``contextlib`` generator, as contextlib costs `rsh exec` 2%."""

    def __init__(self, dial: Dial, conn: ClientProtocol, close: Callable[[], None]) -> None:
        self.dial, self.conn, self.close = dial, conn, close

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            return
        self.close()
        if isinstance(exc, (TimeoutError, ConnectionLost)):
            raise self.dial.handshake_failed(exc, self.conn) from exc


class Connected:
    """What either client shows of its connection: the server's word on itself, its pin, the trace hook."""

    def __init__(self, conn: ClientProtocol, host: str, fingerprint: str | None) -> None:
        self._conn = conn
        self.host = host
        #: What the server said of itself: version, server, encoding, os,
        #: shell, and user, host, home once authenticated.
        self.server_info: dict[str, Any] = conn.info
        #: The server's TLS fingerprint (it matched the pin), None without TLS.
        self.fingerprint = fingerprint

    @property
    def trace(self) -> TraceHook | None:
        """Called with every frame sent and received (``rsh.protocol.trace``); settable."""
        return self._conn.trace

    @trace.setter
    def trace(self, hook: TraceHook | None) -> None:
        self._conn.trace = hook


def _is_connect_error(exc: OSError) -> bool:
    """A failure of the TCP connect itself (refused, unreachable), not of the TLS handshake on it."""
    import ssl

    return not isinstance(exc, (ssl.SSLError, ConnectionResetError, BrokenPipeError)) and exc.errno is not None
