"""``rsh serve``: its options, what it agrees to expose, and the server's life until a signal.

Unsafe combinations (no token or no TLS beyond loopback) are refused
before anything is bound or written.  ``serve_guard`` turns the security
options (TLS, ``--allow``/``--deny``, the limits, the audit log, restricted
mode) into the server's ``Guard``.

The server itself, and asyncio with it, is imported only when it runs:
building the parser is part of every ``rsh exec``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import default_audit_log, default_identity_file, default_token_file, ensure_token
from ..errors import RshError
from ..net.tls import identity_fingerprint, is_loopback, load_or_create_identity, server_context
from ..protocol.address import DEFAULT_PORT
from ..server.limits import Limits
from .options import UsageError, say

if TYPE_CHECKING:
    from ..server.admission import Guard

__all__ = ["add_parser", "run", "serve_guard", "INSECURE_FLAG"]

#: The flag that lets a server listen beyond loopback without TLS or without auth.
INSECURE_FLAG = "--i-know-this-is-insecure"

_DEFAULTS = Limits()

# One option per ``Limits`` field, named after it: (field, type, what it bounds).
_LIMIT_OPTIONS: tuple[tuple[str, type[int] | type[float], str], ...] = (
    ("max_conns", int, "open connections at most; more wait in the backlog, and an idle one may be closed for them"),
    ("max_unauthenticated", int, "connections not yet authenticated at most; more wait in the backlog"),
    ("max_commands", int, "commands running at once at most; more wait in a queue"),
    ("max_queued", int, "commands waiting for a slot at most; past it an exec gets 'server busy'"),
    ("queue_timeout", float, "an exec waiting longer than this for a slot gets 'server busy'"),
    ("backlog", int, "connections the kernel holds while none can be accepted (capped by net.core.somaxconn)"),
    ("auth_timeout", float, "close a connection not authenticated this long after connecting"),
    ("idle_timeout", float, "close a connection idle this long with no command running, or taking no output this long; 0 never"),
    ("auth_fail_delay", float, "answer a wrong token after this fixed delay"),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh serve`` to the subcommands."""
    p = sub.add_parser(name, help="run a server", description="Serve commands to authenticated clients.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on; 0 picks a free one (default {DEFAULT_PORT})")
    p.add_argument("--token-file", metavar="PATH", help=f"token file, created (mode 0600) if missing (default {default_token_file()})")
    p.add_argument("--no-auth", action="store_true", help="accept clients without a token (refused beyond loopback unless --i-know-this-is-insecure)")
    p.add_argument("--encoding", help="declare command output to be in this encoding (default: the locale's)")
    p.add_argument("--shell", metavar="PATH", help="the shell a prompt session runs (default: the server user's login shell)")

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
    for field, kind, what in _LIMIT_OPTIONS:
        default = getattr(_DEFAULTS, field)
        metavar = "N" if kind is int else "SECONDS"
        g.add_argument("--" + field.replace("_", "-"), type=kind, default=default, metavar=metavar, help=f"{what} (default {default:g})")

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
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status (1 when the address cannot be bound).

    Raises:
        UsageError: a refused or malformed combination of options.
        RshError: the TLS identity, audit log or token cannot be used.
    """
    import asyncio  # here, not at the top: `rsh exec` never needs it

    from ..server.accept import raise_nofile
    from ..server.heap import keep_freed_memory
    from ..server.listener import Server

    # What is plainly wrong is refused before anything is created or opened.
    token_path = Path(args.token_file) if args.token_file else default_token_file()
    if not args.no_auth and args.token_file and not token_path.parent.is_dir():
        raise UsageError(f"cannot create token file {token_path}: directory {token_path.parent} does not exist")
    if args.encoding:
        import codecs

        try:
            codecs.lookup(args.encoding)
        except LookupError as exc:
            raise UsageError(f"unknown encoding {args.encoding!r}") from exc
    if args.shell and not (os.path.isfile(args.shell) and os.access(args.shell, os.X_OK)):
        raise UsageError(f"--shell {args.shell}: no such executable file")
    guard = serve_guard(args, no_auth=args.no_auth)
    token: str | None = None
    if not args.no_auth:
        token, created = ensure_token(token_path)
        if created:
            say(f"created a new token in {token_path} (mode 0600); clients read it from there, or from RSH_TOKEN")
        else:
            say(f"using the token in {token_path}")
    server = Server(args.host, args.port, token, encoding=args.encoding, guard=guard, shell=args.shell)
    # Each connection and each command's pipes take descriptors: as many as allowed.
    descriptors = raise_nofile()
    keep_freed_memory()  # a TLS stream's buffers, reused rather than faulted in anew
    # Like any daemon, leave the directory we were started in (it may be
    # unmounted later); commands start in the home directory anyway, and
    # spawning there from there is the fast path (see rsh.server.process).
    try:
        os.chdir(server.config.home)
    except OSError:
        pass

    async def serve() -> None:
        try:
            await server.start()
        except OSError as exc:
            raise _ListenError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
        say(server.capacity(descriptors))
        say(f"listening on {server.address}")
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(serve())
    except _ListenError as exc:
        say(str(exc))
        return 1
    return 0


class _ListenError(Exception):
    pass


def serve_guard(args: argparse.Namespace, *, no_auth: bool) -> Guard:
    """Check what ``rsh serve`` was asked to expose, and build its ``Guard``.

    Prints the TLS fingerprint (creating the identity on first start) and
    where the audit log goes.

    Raises:
        UsageError: an unsafe or contradictory combination of options.
        RshError: the TLS identity or the audit log cannot be used.
    """
    from ..server.admission import AccessList, Guard  # asyncio: only the server needs it
    from ..server.audit import AuditLog
    from ..server.policy import CommandPolicy

    host = args.host
    beyond = not is_loopback(host)
    if beyond and no_auth and not args.insecure:
        raise UsageError(
            f"--no-auth is refused on {host}: without a token anyone who can reach it runs commands as you; "
            f"bind to 127.0.0.1 or drop --no-auth (or add {INSECURE_FLAG})"
        )
    if beyond and args.no_tls and not args.insecure:
        raise UsageError(
            f"--no-tls is refused on {host}: the session, commands and output would cross the network in clear; drop --no-tls (or add {INSECURE_FLAG})"
        )
    if beyond and args.insecure and (no_auth or args.no_tls):
        say(f"WARNING: serving {host} {'without authentication' if no_auth else 'without TLS'} because of {INSECURE_FLAG}")
    try:
        limits = Limits(**{field: getattr(args, field) for field, _, _ in _LIMIT_OPTIONS})
        access = AccessList(args.allow, args.deny)
        policy = CommandPolicy(args.allow_command, args.force_command)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc

    ssl_context = None
    if args.tls or (beyond and not args.no_tls):
        path = default_identity_file()
        if load_or_create_identity(path):
            say(f"created a new TLS identity in {path} (mode 0600)")
        ssl_context = server_context(path)
        say(f"TLS fingerprint {identity_fingerprint(path)}")

    audit_path = Path(args.audit_log) if args.audit_log else default_audit_log()
    try:
        audit = AuditLog(audit_path, say)
    except OSError as exc:
        raise RshError(f"cannot open the audit log {audit_path}: {exc.strerror or exc}") from exc
    say(f"audit log: {audit_path}")
    if policy.force is not None:
        say(f"restricted: every command runs as --force-command {args.force_command!r}")
    elif policy:
        say(f"restricted: only commands matching {', '.join(repr(p) for p in policy.patterns)}")
    return Guard(limits=limits, access=access, policy=policy, audit=audit, ssl_context=ssl_context)
