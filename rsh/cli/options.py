"""What the subcommands share: exit statuses, one-line messages, and the options of a command that connects.

A connecting command (``exec``, ``connect``, ``put``, ``get``, ``config``)
takes ``[USER@]HOST[:PORT]``, ``-p``, ``-F``, ``--token-file``,
``--connect-timeout`` and the client's security options (``--tls``,
``--accept-new``, ``--fingerprint``, ``--known-hosts``).  Every one of them
defaults to None, so that ``rsh.cli.resolve`` can tell an option given from
one left to the config file.  ``ask_on_tty`` asks the first-use question
on the terminal, as ssh asks it.

Light on purpose: every ``rsh exec`` imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import RshError

__all__ = [
    "EXIT_RSH_ERROR",
    "EXIT_USAGE",
    "UsageError",
    "say",
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


def add_client_options(p: argparse.ArgumentParser) -> None:
    """Add the options of a command that connects, but for HOST itself."""
    p.add_argument("-p", "--port", dest="port", metavar="PORT", help="the server's port (as HOST:PORT does; default 7022)")
    p.add_argument("-F", dest="config_file", metavar="PATH", help="the config file of named hosts (default: config.toml in the config directory)")
    p.add_argument("--token-file", metavar="PATH", help="read the token from PATH (default: $RSH_TOKEN, then ~/.config/rsh/token)")
    p.add_argument("--connect-timeout", type=float, metavar="SECONDS", help="give up connecting after SECONDS (default 10)")
    # store_true with default None: absent leaves the setting to the config file.
    p.add_argument("--tls", action="store_true", default=None, help="use TLS to a loopback address too (always on for other hosts and pinned ones)")
    p.add_argument("--accept-new", action="store_true", default=None, help="trust and pin a server seen for the first time without asking (implies --tls)")
    p.add_argument("--fingerprint", metavar="SHA256:...", help="trust only this fingerprint, as the server printed it (implies --tls; known_hosts is not used)")
    p.add_argument("--known-hosts", metavar="PATH", help="the file of pinned fingerprints (default: known_hosts in the config directory)")


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
