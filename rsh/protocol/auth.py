"""Token authentication: HMAC-SHA256 challenge-response over both nonces.

Pure functions, no I/O.  The exchange (see docs/protocol.md)::

    server -> hello   {nonce: Ns}
    client -> auth    {nonce: Nc, mac: HMAC(token, "rsh-client" Ns Nc)}
    server -> auth_ok {mac: HMAC(token, "rsh-server" Ns Nc)}

The token never crosses the wire.  Ns is fresh for every connection, so a
captured ``auth`` is worthless on the next one; the server's answer proves to
the client that it holds the token too, and the distinct labels stop either
side's MAC being reflected back as the other's.

HMAC is computed here from CPython's own SHA-256 (``_sha256``; ``_sha2``
from 3.12), not with ``hmac`` and ``hashlib``: those load OpenSSL's
libcrypto, a twelfth of a cold ``rsh exec``.  Elsewhere, hashlib's.
"""

from __future__ import annotations

import os  # os.urandom, as secrets.token_hex does: secrets (and random) cost a start 1 ms
from _operator import _compare_digest as compare_digest  # hmac.compare_digest itself

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha256  # the same interface, and typed
else:
    try:
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256  # 3.12+
        except ImportError:
            from hashlib import sha256  # a build without them

__all__ = ["NONCE_BYTES", "new_nonce", "hmac_sha256", "client_mac", "server_mac", "macs_equal"]

#: 32 random bytes: far beyond guessing, and what HMAC-SHA256 keys itself with.
NONCE_BYTES = 32


def new_nonce() -> str:
    """Return a fresh random nonce, hex-encoded."""
    return os.urandom(NONCE_BYTES).hex()


# SHA-256's block, and the pads HMAC XORs the key with (RFC 2104), as translate() tables.
_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 of *msg* under *key*: ``hmac.new(key, msg, "sha256").digest()``."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(key.translate(_IPAD))
    inner.update(msg)
    return sha256(key.translate(_OPAD) + inner.digest()).digest()


def _mac(label: bytes, token: str, server_nonce: str, client_nonce: str) -> str:
    msg = label + b"\0" + server_nonce.encode("ascii") + b"\0" + client_nonce.encode("ascii")
    return hmac_sha256(token.encode("utf-8"), msg).hex()


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
    return compare_digest(a.encode("utf-8", "replace"), b.encode("ascii"))
