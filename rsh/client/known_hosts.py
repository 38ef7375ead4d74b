"""Pinning server identities, as ssh's known_hosts does.

The file (``known_hosts`` in the client's config directory) has one pin a
line, ``ADDRESS FINGERPRINT``, where ADDRESS is ``host:port`` as the user
typed the host (``[v6addr]:port`` for IPv6) and FINGERPRINT is the form the
server prints, ``SHA256:<base64>``.  Blank lines and lines starting with
``#`` are ignored; so is anything after the fingerprint.

``ServerPin`` decides, for one connection: whether to speak TLS at all, and
whether the certificate the server presented may be trusted.  It is called
after the TLS handshake and before a single byte of the rsh protocol is
sent, so a server with the wrong identity never sees the ``auth`` frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..config import config_path, path_text
from ..errors import HostKeyChanged, UnknownHostKey
from ..net.tls import fingerprint as der_fingerprint
from ..net.tls import is_loopback, parse_fingerprint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ..typeshim import NamedTuple

__all__ = ["ConfirmCallback", "KnownHosts", "ServerPin", "host_address"]

#: ``confirm(address, fingerprint)`` asks a person whether to trust a new
#: server: True to trust and pin it, False to refuse, None when nobody can
#: be asked (no terminal).
ConfirmCallback = Callable[[str, str], "bool | None"]


def host_address(host: str, port: int) -> str:
    """The key of *host*:*port* in known_hosts (``[::1]:7022`` for IPv6)."""
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Entry(NamedTuple):
    """One pin: the line it is on and the fingerprint it holds."""

    line: int
    fingerprint: str


class KnownHosts:
    """The known_hosts file (it need not exist yet)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        #: As text (``rsh.config.path_text``): pathlib is left to the rare write.
        self.path = path_text(path) if path is not None else config_path("known_hosts")

    def lookup(self, address: str) -> list[Entry]:
        """Return the pins for *address*, in file order (none if the file is missing)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if len(words) < 2 or words[0].startswith("#") or words[0].lower() != address:
                continue
            try:
                entries.append(Entry(n, parse_fingerprint(words[1])))
            except ValueError:
                continue  # a damaged line pins nothing, as in ssh
        return entries

    def add(self, address: str, fp: str) -> None:
        """Append a pin (the file and its directory are created private if missing)."""
        from pathlib import Path

        Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            prefix = b""
            if os.fstat(fd).st_size:
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    prefix = b"" if f.read(1) == b"\n" else b"\n"
            # One write with O_APPEND: two clients pinning at once each add a whole line.
            os.write(fd, prefix + f"{address} {fp}\n".encode())
        finally:
            os.close(fd)


class ServerPin:
    """What one client trusts about one server.

    Args:
        host, port: the server as the user named it.
        fingerprint: pin this fingerprint for this connection only, ignoring known_hosts.
        known_hosts: the known_hosts file (default: the config directory's).
        accept_new: trust and pin a server that has no pin yet (ssh's accept-new).
        confirm: asks a person about a server that has no pin (see ``ConfirmCallback``).

    Raises:
        ValueError: *fingerprint* is not in ``SHA256:<base64>`` form.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        fingerprint: str | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        accept_new: bool = False,
        confirm: ConfirmCallback | None = None,
    ) -> None:
        self.host = host
        self.address = host_address(host, port)
        self.fingerprint = parse_fingerprint(fingerprint) if fingerprint is not None else None
        self.known_hosts = KnownHosts(known_hosts)
        self.accept_new = accept_new
        self.confirm = confirm
        #: Set by ``check`` when it pinned a new server: a person was asked (the
        #: connection may have sat idle meanwhile) or --accept-new was used.
        self.added: str | None = None
        self.asked = False

    def wants_tls(self, tls: bool | None) -> bool:
        """Whether to speak TLS: as *tls* says, else yes unless a loopback server has no pin (and none is asked for).

        Raises:
            ValueError: *tls* is False but a fingerprint was given.
        """
        if tls is False:
            if self.fingerprint is not None:
                raise ValueError("a fingerprint can only be checked over TLS")
            return False
        # Pinning only means something over TLS: a fingerprint or accept_new asks for it.
        if tls or self.fingerprint is not None or self.accept_new or not is_loopback(self.host):
            return True
        # A pinned loopback server spoke TLS before; expecting it again also
        # keeps a plain impostor on the same port from being accepted.
        return bool(self.known_hosts.lookup(self.address))

    def check(self, der: bytes) -> str:
        """Decide on the certificate *der* the server presented; return its fingerprint.

        Raises:
            HostKeyChanged: a pin exists and differs.
            UnknownHostKey: no pin exists and the server was not accepted.
        """
        actual = der_fingerprint(der)
        if self.fingerprint is not None:
            if actual != self.fingerprint:
                raise HostKeyChanged(
                    f"{self.address} presents {actual}, not the {self.fingerprint} given with --fingerprint; nothing was sent to it",
                    expected=self.fingerprint,
                    actual=actual,
                )
            return actual
        entries = self.known_hosts.lookup(self.address)
        if any(e.fingerprint == actual for e in entries):
            return actual
        if entries:
            first = entries[0]
            path = self.known_hosts.path
            raise HostKeyChanged(
                "\n".join(
                    [
                        f"WARNING: THE TLS IDENTITY OF {self.address} HAS CHANGED!",
                        "Someone may be intercepting this connection (a man-in-the-middle attack),",
                        "or the server was given a new identity.",
                        f"The server now presents {actual}",
                        f"but {path}:{first.line} pins {first.fingerprint}.",
                        f"If you know the change is genuine, delete line {first.line} of {path} and connect again.",
                        "Refusing to connect; nothing was sent.",
                    ]
                ),
                expected=first.fingerprint,
                actual=actual,
                path=str(path),
                line=first.line,
            )
        if not self.accept_new:
            answer = self.confirm(self.address, actual) if self.confirm is not None else None
            if answer is None:
                raise UnknownHostKey(
                    f"{self.address} is not a known host; its TLS fingerprint is {actual}. "
                    f"If that is the server's, connect with --fingerprint {actual} (or --accept-new to trust it on first use)"
                )
            if not answer:
                raise UnknownHostKey(f"{self.address}: fingerprint {actual} not accepted; not connecting")
            self.asked = True
        self.known_hosts.add(self.address, actual)
        self.added = actual
        return actual
