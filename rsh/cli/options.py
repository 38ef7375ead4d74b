"""The security options of the command line, for ``rsh.cli.main``.

Server (``rsh serve``): TLS and when it is required, ``--allow``/``--deny``,
the limits, the audit log and restricted mode, turned into a ``Guard``.
Client (``exec``, and every other command that connects): ``--tls``,
``--accept-new``, ``--fingerprint``, ``--known-hosts``, turned into keyword
arguments for ``AsyncClient.connect`` / ``rsh.connect``, with the
first-use question asked on the terminal as ssh asks it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import default_audit_log, default_identity_file, default_known_hosts_file
from ..errors import RshError
from ..server.limits import Limits
from ..net.tls import identity_fingerprint, is_loopback, load_or_create_identity, parse_fingerprint, server_context

if TYPE_CHECKING:
    from ..server.guard import Guard

__all__ = ["UsageError", "add_serve_options", "serve_guard", "add_client_options", "client_options", "ask_on_tty"]

#: The flag that lets a server listen beyond loopback without TLS or without auth.
INSECURE_FLAG = "--i-know-this-is-insecure"

_DEFAULTS = Limits()


class UsageError(RshError):
    """The command line asks for something refused; exit status 2."""


def _say(message: str) -> None:
    print(f"rsh: {message}", file=sys.stderr, flush=True)


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """Add the security options of ``rsh serve`` to *p*."""
    g = p.add_argument_group("TLS (on by default beyond loopback)")
    tls = g.add_mutually_exclusive_group()
    tls.add_argument("--tls", action="store_true", help="use TLS on a loopback address too")
    tls.add_argument("--no-tls", action="store_true", help=f"plain TCP; refused beyond loopback unless {INSECURE_FLAG}")
    g.add_argument(
        INSECURE_FLAG,
        dest="insecure",
        action="store_true",
        help="allow --no-tls or --no-auth on a non-loopback address: anyone on the path can read the session, "
        "or anyone who can reach the port runs commands as you",
    )

    g = p.add_argument_group("who may connect")
    g.add_argument("--allow", action="append", default=[], metavar="ADDR[/BITS]", help="admit only these addresses or CIDR ranges (repeatable)")
    g.add_argument("--deny", action="append", default=[], metavar="ADDR[/BITS]", help="refuse these addresses or ranges, unread (repeatable; beats --allow)")

    g = p.add_argument_group("limits")
    g.add_argument("--max-conns", type=int, default=_DEFAULTS.max_conns, metavar="N", help=f"open connections at most (default {_DEFAULTS.max_conns})")
    g.add_argument(
        "--max-unauthenticated",
        type=int,
        default=_DEFAULTS.max_unauthenticated,
        metavar="N",
        help=f"connections not yet authenticated at most (default {_DEFAULTS.max_unauthenticated})",
    )
    g.add_argument("--max-commands", type=int, default=_DEFAULTS.max_commands, metavar="N", help=f"commands running at once at most (default {_DEFAULTS.max_commands})")
    g.add_argument(
        "--auth-timeout",
        type=float,
        default=_DEFAULTS.auth_timeout,
        metavar="SECONDS",
        help=f"close a connection not authenticated this long after connecting (default {_DEFAULTS.auth_timeout:g})",
    )
    g.add_argument(
        "--idle-timeout",
        type=float,
        default=_DEFAULTS.idle_timeout,
        metavar="SECONDS",
        help=f"close a connection idle this long with no command running; 0 never (default {_DEFAULTS.idle_timeout:g})",
    )
    g.add_argument(
        "--auth-fail-delay",
        type=float,
        default=_DEFAULTS.auth_fail_delay,
        metavar="SECONDS",
        help=f"answer a wrong token after this fixed delay (default {_DEFAULTS.auth_fail_delay:g})",
    )

    g = p.add_argument_group("audit and restricted mode")
    g.add_argument("--audit-log", metavar="PATH", help=f"append JSON lines, one per connection and per command (default {default_audit_log()})")
    g.add_argument(
        "--allow-command",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only commands matching PATTERN whole (repeatable; * and ? never match ; & | < > ( ) $ ` \\ quotes or newlines)",
    )
    g.add_argument("--force-command", metavar="CMD", help="run CMD whatever the client asks; the request is in $RSH_ORIGINAL_COMMAND")


def serve_guard(args: argparse.Namespace, *, no_auth: bool) -> Guard:
    """Check what ``rsh serve`` was asked to expose, and build its ``Guard``.

    Prints the TLS fingerprint (creating the identity on first start) and
    where the audit log goes.

    Raises:
        UsageError: an unsafe or contradictory combination of options.
        RshError: the TLS identity or the audit log cannot be used.
    """
    from ..server.guard import AccessList, AuditLog, CommandPolicy, Guard  # asyncio: only the server needs it

    host = args.host
    beyond = not is_loopback(host)
    if beyond and no_auth and not args.insecure:
        raise UsageError(
            f"--no-auth is refused on {host}: without a token anyone who can reach it runs commands as you; "
            f"bind to 127.0.0.1 or drop --no-auth (or add {INSECURE_FLAG})"
        )
    if beyond and args.no_tls and not args.insecure:
        raise UsageError(
            f"--no-tls is refused on {host}: the session, commands and output would cross the network in clear; "
            f"drop --no-tls (or add {INSECURE_FLAG})"
        )
    if beyond and args.insecure and (no_auth or args.no_tls):
        _say(f"WARNING: serving {host} {'without authentication' if no_auth else 'without TLS'} because of {INSECURE_FLAG}")
    try:
        limits = Limits(
            auth_timeout=args.auth_timeout,
            max_unauthenticated=args.max_unauthenticated,
            max_conns=args.max_conns,
            max_commands=args.max_commands,
            idle_timeout=args.idle_timeout,
            auth_fail_delay=args.auth_fail_delay,
        )
        access = AccessList(args.allow, args.deny)
        policy = CommandPolicy(args.allow_command, args.force_command)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    ssl_context = None
    if args.tls or (beyond and not args.no_tls):
        path = default_identity_file()
        if load_or_create_identity(path):
            _say(f"created a new TLS identity in {path} (mode 0600)")
        ssl_context = server_context(path)
        _say(f"TLS fingerprint {identity_fingerprint(path)}")

    audit_path = Path(args.audit_log) if args.audit_log else default_audit_log()
    try:
        audit = AuditLog(audit_path, _say)
    except OSError as exc:
        raise RshError(f"cannot open the audit log {audit_path}: {exc.strerror or exc}") from None
    _say(f"audit log: {audit_path}")
    if policy.force is not None:
        _say(f"restricted: every command runs as --force-command {args.force_command!r}")
    elif policy:
        _say(f"restricted: only commands matching {', '.join(repr(p) for p in policy.patterns)}")
    return Guard(limits=limits, access=access, policy=policy, audit=audit, ssl_context=ssl_context)


def add_client_options(p: argparse.ArgumentParser) -> None:
    """Add ``--tls``, ``--accept-new``, ``--fingerprint`` and ``--known-hosts`` to a connecting command."""
    p.add_argument("--tls", action="store_true", help="use TLS to a loopback address too (always on for other hosts and pinned ones)")
    p.add_argument("--accept-new", action="store_true", help="trust and pin a server seen for the first time without asking")
    p.add_argument("--fingerprint", metavar="SHA256:...", help="trust only this server fingerprint, as the server printed it (known_hosts is not used)")
    p.add_argument("--known-hosts", metavar="PATH", help="the file of pinned fingerprints (default: known_hosts in the config directory)")


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``AsyncClient.connect`` / ``rsh.connect`` from the client options.

    Raises:
        UsageError: a malformed ``--fingerprint``.
    """
    if args.fingerprint is not None:
        try:
            parse_fingerprint(args.fingerprint)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    known_hosts = Path(args.known_hosts) if args.known_hosts else default_known_hosts_file()

    def confirm(address: str, fingerprint: str) -> bool | None:
        # --accept-new goes through here too, so that it says what it pinned.
        answer = True if args.accept_new else ask_on_tty(address, fingerprint)
        if answer:
            _say(f"pinned {address} as {fingerprint} in {known_hosts}")
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

    def say(text: str) -> None:
        os.write(fd, text.encode("utf-8", "replace"))

    # A terminal is not seekable, so not open(..., "r+"): read through a
    # reader on the descriptor, write to it directly.
    with open(fd, "r", encoding="utf-8", errors="replace") as tty:
        say(
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
            say("Please type 'yes', 'no' or the fingerprint: ")
