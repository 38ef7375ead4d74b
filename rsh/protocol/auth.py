"""Token authentication: HMAC-SHA256 challenge-response over both nonces.

Pure functions, no I/O.  The exchange (see docs/protocol.md)::

    server -> hello   {nonce: Ns}
    client -> auth    {nonce: Nc, mac: HMAC(token, "rsh-client" Ns Nc)}
    server -> auth_ok {mac: HMAC(token, "rsh-server" Ns Nc)}

The token never crosses the wire.  Ns is fresh for every connection, so a
captured ``auth`` is worthless on the next one; the server's answer proves to
the client that it holds the token too, and the distinct labels stop either
side's MAC being reflected back as the other's.
"""

from __future__ import annotations

import hashlib
import hmac
import os  # os.urandom, as secrets.token_hex does: secrets (and random) cost a start 1 ms

__all__ = ["NONCE_BYTES", "new_nonce", "client_mac", "server_mac", "macs_equal"]

#: 32 random bytes: far beyond guessing, and what HMAC-SHA256 keys itself with.
NONCE_BYTES = 32


def new_nonce() -> str:
    """Return a fresh random nonce, hex-encoded."""
    return os.urandom(NONCE_BYTES).hex()


def _mac(label: bytes, token: str, server_nonce: str, client_nonce: str) -> str:
    msg = label + b"\0" + server_nonce.encode("ascii") + b"\0" + client_nonce.encode("ascii")
    return hmac.new(token.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def client_mac(token: str, server_nonce: str, client_nonce: str) -> str:
    """Return the MAC the client sends to prove it holds *token*."""
    return _mac(b"rsh-client", token, server_nonce, client_nonce)


def server_mac(token: str, server_nonce: str, client_nonce: str) -> str:
    """Return the MAC the server sends back to prove it holds *token* too."""
    return _mac(b"rsh-server", token, server_nonce, client_nonce)


def macs_equal(a: object, b: str) -> bool:
    """Compare a received MAC with the expected one in constant time."""
    if not isinstance(a, str):
        return False
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("ascii"))
