"""What the subcommands share: exit statuses, one-line messages, and the options of a command that connects.

A connecting command (``exec``, ``connect``, ``put``, ``get``, ``config``)
takes ``[USER@]HOST[:PORT]``, ``-p``, ``-F``, ``--token-file``,
``--connect-timeout`` and the client's security options (``--tls``,
``--accept-new``, ``--fingerprint``, ``--known-hosts``).  Every one of them
defaults to None, so that ``rsh.cli.resolve`` can tell an option given from
one left to the config file.  ``ask_on_tty`` asks the first-use question
on the terminal, as ssh asks it.

Options are kept as data (``Option``), what ``add_argument`` is given, so
that ``rsh.cli.argv.quick_parse`` reads a plain ``rsh exec`` from the same
table without importing argparse or building a parser.

Light on purpose: every ``rsh exec`` imports this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from ..errors import RshError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = [
    "EXIT_RSH_ERROR",
    "EXIT_USAGE",
    "UsageError",
    "say",
    "Option",
    "CLIENT_OPTIONS",
    "add_options",
    "add_client_options",
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


class Option:
    """One option: the names and keyword arguments ``add_argument`` takes, and what argparse makes of them."""

    __slots__ = ("names", "kwargs")

    def __init__(self, *names: str, **kwargs: Any) -> None:
        self.names = names
        self.kwargs = kwargs

    @property
    def dest(self) -> str:
        """The attribute it sets: ``dest``, else the first long name's (``--token-file``: ``token_file``), as argparse derives it."""
        if "dest" in self.kwargs:
            return str(self.kwargs["dest"])
        name = next((n for n in self.names if n.startswith("--")), self.names[0])
        return name.lstrip("-").replace("-", "_")

    @property
    def action(self) -> str:
        return str(self.kwargs.get("action", "store"))

    @property
    def default(self) -> Any:
        """What the attribute is when the option is absent, as argparse sets it."""
        if "default" in self.kwargs:
            return self.kwargs["default"]
        return {"store_true": False, "store_false": True}.get(self.action)


def add_options(p: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """Add *options* to parser *p*."""
    for option in options:
        p.add_argument(*option.names, **option.kwargs)


#: The options of a command that connects, but for HOST itself.
CLIENT_OPTIONS = (
    Option("-p", "--port", dest="port", metavar="PORT", help="the server's port (as HOST:PORT does; default 7022)"),
    Option("-F", dest="config_file", metavar="PATH", help="the config file of named hosts (default: config.toml in the config directory)"),
    Option("--token-file", metavar="PATH", help="read the token from PATH (default: $RSH_TOKEN, then ~/.config/rsh/token)"),
    Option("--connect-timeout", type=float, metavar="SECONDS", help="give up connecting after SECONDS (default 10)"),
    # store_true with default None: absent leaves the setting to the config file.
    Option("--tls", action="store_true", default=None, help="use TLS to a loopback address too (always on for other hosts and pinned ones)"),
    Option("--accept-new", action="store_true", default=None, help="trust and pin a server seen for the first time without asking (implies --tls)"),
    Option("--fingerprint", metavar="SHA256:...", help="trust only this fingerprint, as the server printed it (implies --tls; known_hosts is not used)"),
    Option("--known-hosts", metavar="PATH", help="the file of pinned fingerprints (default: known_hosts in the config directory)"),
)


def add_client_options(p: argparse.ArgumentParser) -> None:
    """Add the options of a command that connects, but for HOST itself."""
    add_options(p, CLIENT_OPTIONS)


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
