"""What the subcommands share: exit statuses, one-line messages, and the options of a command that connects.

A connecting command (``exec``, ``connect``, ``put``, ``get``) takes
``HOST[:PORT]``, ``--token-file``, ``--connect-timeout`` and the client's
security options (``--tls``, ``--accept-new``, ``--fingerprint``,
``--known-hosts``); ``client_options`` turns the latter into keyword
arguments for ``AsyncClient.connect`` / ``rsh.connect``, with the first-use
question asked on the terminal as ssh asks it.

Light on purpose: every ``rsh exec`` imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..config import default_known_hosts_file, resolve_client_token
from ..errors import RshError
from ..net.tls import parse_fingerprint
from ..protocol.address import parse_address

__all__ = [
    "EXIT_RSH_ERROR",
    "EXIT_USAGE",
    "UsageError",
    "say",
    "add_client_options",
    "client_options",
    "target",
    "ask_on_tty",
]

#: rsh itself failed (connection, authentication, protocol), as with ssh.
EXIT_RSH_ERROR = 255
#: The command line was wrong.
EXIT_USAGE = 2


class UsageError(RshError):
    """The command line asks for something refused or malformed; exit status 2."""


def say(message: str) -> None:
    """Print ``rsh: message`` on stderr, the one form all of rsh's own messages take."""
    print(f"rsh: {message}", file=sys.stderr, flush=True)


def add_client_options(p: argparse.ArgumentParser) -> None:
    """Add the options of a command that connects, but for ``HOST[:PORT]`` itself."""
    p.add_argument("--token-file", metavar="PATH", help="read the token from PATH (default: $RSH_TOKEN, then ~/.config/rsh/token)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS", help="give up connecting after SECONDS (default 10)")
    p.add_argument("--tls", action="store_true", help="use TLS to a loopback address too (always on for other hosts and pinned ones)")
    p.add_argument("--accept-new", action="store_true", help="trust and pin a server seen for the first time without asking")
    p.add_argument("--fingerprint", metavar="SHA256:...", help="trust only this server fingerprint, as the server printed it (known_hosts is not used)")
    p.add_argument("--known-hosts", metavar="PATH", help="the file of pinned fingerprints (default: known_hosts in the config directory)")


def target(args: argparse.Namespace) -> tuple[str, int, str | None]:
    """Host, port and token of a connecting command's ``HOST[:PORT]`` and ``--token-file``.

    Raises:
        UsageError: the address is malformed.
        AuthError: a named token file cannot be read.
    """
    try:
        host, port = parse_address(args.address)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return host, port, resolve_client_token(args.token_file)


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``AsyncClient.connect`` / ``rsh.connect`` from the client options.

    Raises:
        UsageError: a malformed ``--fingerprint``.
    """
    if args.fingerprint is not None:
        try:
            parse_fingerprint(args.fingerprint)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    known_hosts = Path(args.known_hosts) if args.known_hosts else default_known_hosts_file()

    def confirm(address: str, fingerprint: str) -> bool | None:
        # --accept-new goes through here too, so that it says what it pinned.
        answer = True if args.accept_new else ask_on_tty(address, fingerprint)
        if answer:
            say(f"pinned {address} as {fingerprint} in {known_hosts}")
        return answer

    return {"tls": True if args.tls else None, "fingerprint": args.fingerprint, "known_hosts": known_hosts, "confirm": confirm}


def ask_on_tty(address: str, fingerprint: str) -> bool | None:
    """Ask on the controlling terminal whether to trust a new server, as ssh does.

    Returns:
        True for "yes" (or the fingerprint typed back), False for anything
        else, None when there is no terminal to ask on.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None

    def ask(text: str) -> None:
        os.write(fd, text.encode("utf-8", "replace"))

    # A terminal is not seekable, so not open(..., "r+"): read through a
    # reader on the descriptor, write to it directly.
    with open(fd, encoding="utf-8", errors="replace") as tty:
        ask(
            f"The authenticity of rsh server {address} can't be established.\n"
            f"Its TLS fingerprint is {fingerprint}.\n"
            "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
        )
        while True:
            line = tty.readline()
            answer = line.strip()
            if answer == "yes" or answer == fingerprint:
                return True
            if answer == "no" or not line:
                return False
            ask("Please type 'yes', 'no' or the fingerprint: ")
