"""TLS for rsh: the server's identity, its fingerprint, and both sides' contexts.

A server's identity is one PEM file holding an Ed25519 private key and a
self-signed certificate for it, created on first start in the config
directory (mode 0600).  Nobody vouches for it, so clients do what ssh does
with host keys: they pin its fingerprint on first use (``rsh.client.known_hosts``).

The fingerprint is ``SHA256:`` and the unpadded base64 of the SHA-256 of the
certificate's DER bytes, the form ssh prints, so anyone can recompute it
from what the server presents::

    openssl s_client -connect HOST:PORT </dev/null 2>/dev/null \\
      | openssl x509 -outform DER | openssl dgst -sha256 -binary | base64

Generating a key and certificate is not in the standard library; that one
step imports ``cryptography``.  Everything else here is stdlib ``ssl``.
"""

from __future__ import annotations

import _socket
import os
import re
import stat

from ..config import IDENTITY_FILE
from ..errors import RshError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from pathlib import Path

# ssl, socket, hashlib, base64 and ipaddress are imported where they are used, and
# the patterns compiled on first use (re keeps them): every `rsh exec`
# imports this module, and a plain connection needs little of it.

__all__ = [
    "IDENTITY_FILE",
    "IdentityError",
    "fingerprint",
    "parse_fingerprint",
    "load_or_create_identity",
    "identity_fingerprint",
    "server_context",
    "client_context",
    "is_loopback",
    "handshake_failure",
    "silent_server_hint",
    "TLS_PROBE_DELAY",
    "speaks_tls",
    "speaks_tls_async",
    "tls_server_error",
    "said_in_clear",
    "plain_greeting",
    "plain_greeting_async",
]


#: Seconds a plain client waits for the first byte before it asks, on a
#: second connection, whether the server speaks TLS.  A TLS server waits
#: for the client to speak first, and a plain client waits for ``hello``,
#: so otherwise both would sit until the deadline.  A plain server sends
#: ``hello`` as soon as it accepts, far within this; if it is slower still,
#: the probe only costs it one failed handshake (a protocol error in its log).
TLS_PROBE_DELAY = 0.5

_FINGERPRINT = r"^SHA256:([A-Za-z0-9+/]{43})=?$"
_CERT_BLOCK = rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----"


class IdentityError(RshError):
    """The server's TLS identity file cannot be used."""


def fingerprint(der: bytes) -> str:
    """Return ``SHA256:<base64>`` for a DER certificate (unpadded, as ssh writes it)."""
    import base64
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii").rstrip("=")


def parse_fingerprint(text: str) -> str:
    """Return *text* as a canonical fingerprint (without base64 padding).

    Raises:
        ValueError: it is not ``SHA256:`` followed by 43 base64 characters.
    """
    m = re.match(_FINGERPRINT, text.strip())
    if m is None:
        raise ValueError(f"not a fingerprint: {text!r} (expected SHA256: and 43 base64 characters, as the server prints it)")
    return "SHA256:" + m.group(1)


def is_loopback(host: str) -> bool:
    """True when *host* names only loopback addresses (127.0.0.0/8, ::1).

    An address literal is judged without any lookup; a name is resolved.
    """
    try:
        # A dotted quad, the usual case, without ipaddress (some 4% of `rsh exec`'s start-up);
        # what inet_pton refuses is judged below as before.
        return _socket.inet_pton(_socket.AF_INET, host)[0] == 127
    except OSError:
        pass
    import ipaddress

    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        pass
    try:
        infos = _socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def _create_identity_pem() -> bytes:
    # Imported here: only a server's first start needs it.
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rsh server {_socket.gethostname()}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        # RFC 5280 4.1.2.5: "no well-defined expiration date".  The pin is
        # the trust, not the dates; an expiring certificate would only make
        # every client's pin break on the same day.
        .not_valid_after(datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, None)
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def load_or_create_identity(path: Path) -> bool:
    """Make sure *path* holds a usable identity, creating one if it is missing.

    Returns:
        True when the identity was created just now.

    Raises:
        IdentityError: the file exists but is readable by others, or holds no certificate.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = _create_identity_pem()
        # Written whole to a private temporary name, then linked into place:
        # a server starting at the same moment sees either no file or a
        # complete one, and never has its own clobbered (link refuses).
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            try:
                os.link(tmp, path)
                created = True
            except FileExistsError:
                created = False
        finally:
            tmp.unlink()
        if created:
            return True
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IdentityError(f"{path} holds the server's private key and is readable by others (mode {mode:04o}); run: chmod 600 {path}")
    identity_fingerprint(path)  # fails early on a file without a certificate
    return False


def identity_fingerprint(path: Path) -> str:
    """Return the fingerprint of the certificate in identity file *path*.

    Raises:
        IdentityError: the file holds no certificate.
    """
    try:
        m = re.search(_CERT_BLOCK, path.read_bytes(), re.S)
    except OSError as exc:
        raise IdentityError(f"cannot read {path}: {exc.strerror}") from exc
    if m is None:
        raise IdentityError(f"{path} holds no certificate; delete it and the server makes a new identity")
    import ssl

    return fingerprint(ssl.PEM_cert_to_DER_cert(m.group().decode("ascii")))


def server_context(path: Path) -> ssl.SSLContext:
    """Return a TLS 1.3-only server context presenting the identity in *path*.

    Raises:
        IdentityError: the key or certificate cannot be loaded.
    """
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    # rsh clients never resume sessions, so tickets would be bytes for nothing.
    ctx.num_tickets = 0
    try:
        ctx.load_cert_chain(path)
    except (OSError, ssl.SSLError) as exc:
        raise IdentityError(f"cannot load the TLS identity in {path}: {exc}") from exc
    return ctx


def client_context() -> ssl.SSLContext:
    """Return a TLS 1.3-only client context that leaves the server's certificate to the pin.

    No CA vouches for an rsh server, so the chain is not verified here;
    the caller must compare ``fingerprint(peer certificate)`` with the pinned
    one before sending a single byte of the protocol.
    """
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def silent_server_hint(tls: bool, got_hello: bool) -> str:
    """What to add when a plain connection ended or timed out before any ``hello``.

    An rsh server says ``hello``, or why not, to a plain client; a TLS one
    that turns a connection away closes it before its handshake, without a
    word.  (A TLS server that is merely waiting for TLS is found by
    ``speaks_tls`` instead.)
    """
    if tls or got_hello:
        return ""
    return " without saying hello (a TLS server that does not admit this address, or is at its connection limit; or not an rsh server)"


def tls_server_error(where: str) -> str:
    """The one-line error for a plain connection to *where*, a server that speaks TLS."""
    return f"cannot connect to {where}: it speaks TLS, and TLS was turned off (tls=False)"


# What OpenSSL says when the peer's first bytes are not a TLS record (an rsh frame, say).
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


def said_in_clear(exc: OSError) -> bool:
    """Whether a TLS handshake that failed with *exc* is worth a look at what the server says to a plain connection.

    It is when the server answered with bytes that are not TLS or closed the
    connection: an rsh server that turns a peer away says why in one frame
    in the clear (``access_denied``), before any handshake.  Not after a
    timeout, nor a TLS alert: those are the handshake's own failures.
    """
    import ssl

    if isinstance(exc, TimeoutError):
        return False
    if isinstance(exc, ssl.SSLError):
        return exc.reason in (None, "UNEXPECTED_EOF_WHILE_READING", *_NOT_TLS)
    return isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError))


def plain_greeting(host: str, port: int, timeout: float) -> bytes:
    """The first frame's bytes a plain connection to *host*:*port* is sent (less, or none, if it closes or waits first).

    Nothing is sent; the answer only decides what to tell the person.
    """
    import socket

    from ..protocol.frames import FrameDecoder

    decoder, data = FrameDecoder(), b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            while not decoder.feed(chunk := sock.recv(65536)) and chunk:
                data += chunk
            data += chunk
    except (OSError, RshError):  # a timeout, a reset, bytes that are no frame
        pass
    return data


async def plain_greeting_async(host: str, port: int, timeout: float) -> bytes:
    """``plain_greeting`` for asyncio."""
    import asyncio

    from ..protocol.frames import FrameDecoder

    decoder, data = FrameDecoder(), b""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                while not decoder.feed(chunk := await reader.read(65536)) and chunk:
                    data += chunk
                data += chunk
            finally:
                writer.close()
                await writer.wait_closed()
    except (OSError, TimeoutError, RshError):
        pass
    return data


def speaks_tls(host: str, port: int, timeout: float, *, unless: _socket.socket | None = None) -> bool:
    """True when a TLS handshake with *host*:*port* completes (blocking).

    Nothing is sent after the handshake and the certificate is not
    checked: the answer only decides what to tell the person.  False at
    once when *unless* (the plain connection this probe is about) becomes
    readable: a server that kept it waiting for a place has answered after all.
    """
    import select
    import socket
    import ssl
    import time

    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.setblocking(False)
            with client_context().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False) as tls:
                while True:
                    try:
                        tls.do_handshake()
                        return True
                    except ssl.SSLWantReadError:
                        writing: list[ssl.SSLSocket] = []
                    except ssl.SSLWantWriteError:
                        writing = [tls]
                    left = deadline - time.monotonic()
                    watch = [tls] if unless is None else [tls, unless]
                    ready = select.select(watch, writing, [], left)[0] if left > 0 else []
                    if left <= 0 or unless in ready:
                        return False
    except OSError:
        return False


async def speaks_tls_async(host: str, port: int, timeout: float) -> bool:
    """``speaks_tls`` for asyncio."""
    import asyncio  # here: the blocking client, and so `rsh exec`, never loads asyncio

    loop = asyncio.get_running_loop()
    lost = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(None)

    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(Probe, host, port, ssl=client_context(), ssl_handshake_timeout=timeout)
    except (OSError, TimeoutError):
        return False
    transport.abort()
    # The socket is closed a few turns of the loop later: wait for it, so a
    # caller whose loop ends right after this leaks nothing.
    await lost
    return True


def handshake_failure(where: str, exc: OSError) -> str:
    """A one-line reason for a TLS handshake with *where* that failed with *exc*."""
    import ssl

    if isinstance(exc, ssl.SSLError) and exc.reason in _NOT_TLS:
        return (
            f"cannot connect to {where}: it does not speak TLS (a server on loopback speaks TLS only when "
            "started with --tls; leave out --tls and --fingerprint, and remove its known_hosts pin if it has one)"
        )
    if isinstance(exc, ssl.SSLError) and exc.reason not in (None, "UNEXPECTED_EOF_WHILE_READING"):
        return f"cannot connect to {where}: TLS handshake failed ({exc.reason.lower().replace('_', ' ')})"
    return (
        f"cannot connect to {where}: the server closed the connection during the TLS handshake "
        "(it may not admit this address, be at its connection limit, or not speak TLS)"
    )
