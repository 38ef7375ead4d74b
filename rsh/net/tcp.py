"""A TCP connection opened with the C ``_socket`` module, as ``socket.create_connection`` opens one.

Importing ``socket`` builds four ``IntEnum`` classes from the C module's
constants: some 3 ms, a twelfth of a cold ``rsh exec``, for names a plain
client never looks at.  ``_socket.socket`` is the class ``socket.socket``
extends, with every method the blocking client calls on it (``recv_into``,
``sendmsg``, ``setblocking``, ``fileno``, ``close``).  TLS wants a
``socket.socket``: ``as_socket`` makes one of it (``ssl`` imports
``socket`` anyway).
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

__all__ = ["connect_tcp", "as_socket"]


def connect_tcp(host: str | bytes, port: int, timeout: float | None) -> _socket.socket:
    """Connect to *host*:*port*, each address it resolves to in turn, with TCP_NODELAY set.

    Raises:
        OSError: the last address's failure (``socket.gaierror`` when the name does not resolve).
    """
    error: OSError | None = None
    for family, kind, proto, _, address in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error if error is not None else OSError(f"{host!r} resolves to no address")


def as_socket(sock: _socket.socket) -> socket.socket:
    """The same connection as a ``socket.socket`` (*sock* is left detached)."""
    import socket

    return socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
