"""``rsh connect [HOST]`` (also ``rsh HOST``, and bare ``rsh``): the prompt.

Against HOST, or, without one, against a private server started on a free
loopback port for this prompt alone and stopped with it, so that nothing it
ran outlives the session.  Hanging up the terminal or SIGTERM ends the
prompt cleanly either way.

asyncio, the client and the prompt are imported when the prompt starts,
not with the parser, which every subcommand builds.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .argv import HOST_ONLY
from .options import EXIT_USAGE, UsageError, add_client_options, say

if TYPE_CHECKING:
    from ..client.aio import AsyncClient

__all__ = ["add_parser", "run", "SCRIPT_COMMAND"]

#: What runs a script read from stdin: the login shell (the server sets SHELL to it).
SCRIPT_COMMAND = 'exec "${SHELL:-/bin/sh}"'


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh connect`` to the subcommands."""
    p = sub.add_parser(
        name,
        usage="rsh [connect] [OPTIONS] [[USER@]HOST[:PORT]] [OPTIONS]",
        help="open a prompt on HOST (also: rsh HOST; rsh alone starts a private local server)",
        description="An interactive prompt whose commands run on HOST, a name from the config file or an address. "
        "Options may come before or after HOST. Without HOST (plain 'rsh'), "
        "a private server on 127.0.0.1 is started for the session and stopped after it. "
        "'rsh HOST CMD...' runs CMD as 'rsh exec HOST -- CMD...' does, as 'ssh HOST CMD' would.",
    )
    add_client_options(p)
    p.add_argument("--vi", action="store_true", help="Vi key bindings (default: Emacs)")
    p.add_argument("--trace", action="store_true", help="print every frame sent and received to stderr")
    p.add_argument("--no-pty", dest="pty", action="store_false", help="run lines with stdout and stderr apart (stderr red), not on a terminal (:pty on|off)")
    p.add_argument("address", nargs="?", metavar="HOST[:PORT]")
    from . import fanout

    fanout.add_options(p)
    p.set_defaults(run=run, words=HOST_ONLY)


def run(args: argparse.Namespace) -> int:
    """Run the prompt until the person leaves; return its exit status.

    Raises:
        UsageError: a malformed address or ``--fingerprint``.
        RshError: the first connection failed (exit 255).
    """
    import asyncio  # here, not at the top: `rsh exec` never needs it

    from . import fanout
    from .resolve import check_user, reach

    if fanout.requested(args):
        # `rsh -H h1,h2`: one prompt for many hosts.
        if args.address is not None:
            raise UsageError(f"{args.address}: name the hosts with -H/-g/-f only, or run it with: rsh exec -H ... -- CMD")
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError("the prompt for many hosts needs a terminal; to run one command on them: rsh exec -H HOST,... -- CMD")
        from .fanout_prompt import run_prompt

        return run_prompt(args)
    # A mistake in HOST or the config file is said first, terminal or not.
    if args.address is not None:
        settings, token, options = reach(args, args.address)
    if not sys.stdin.isatty():
        # As ssh with no command and no terminal: the login shell reads stdin as its script.
        if args.address is None:
            return asyncio.run(_private_script())
        from .exec import run_exec

        with settings.explained():
            return run_exec(
                settings.host, settings.port, token, SCRIPT_COMMAND, forward_stdin=True,
                connect_options=options, on_connect=lambda info: check_user(settings, info),
            )  # fmt: skip
    if not sys.stdout.isatty():
        say("the prompt needs a terminal; to run one command, use: rsh exec HOST -- CMD")
        return EXIT_USAGE
    if args.address is None:
        return asyncio.run(_until_hangup(_private_prompt(args)))
    from .resolve import async_connector

    return asyncio.run(_until_hangup(_prompt(args, async_connector(settings, token, options), settings.where)))


def _prompt(args: argparse.Namespace, connect: Callable[[], Awaitable[AsyncClient]], label: str) -> Awaitable[int]:
    """The prompt's loop against what *connect* reaches, as the options ask for it."""
    from ..prompt.repl import Repl, history_file

    return Repl(connect, label=label, vi=args.vi, history=history_file(), trace=args.trace, pty=args.pty).run()


async def _until_hangup(work: Awaitable[int]) -> int:
    """Run *work*, but end it cleanly (finally blocks run) when the terminal hangs up or we are told to stop."""
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    got: list[int] = []

    def stop(sig: int) -> None:
        got.append(sig)
        task.cancel()

    for sig in (signal.SIGHUP, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await task
    except asyncio.CancelledError:
        return 128 + (got[0] if got else signal.SIGHUP)  # as if the signal had ended us: 129 or 143


async def _private_script() -> int:
    """``... | rsh``: the script on stdin, run by a private server's login shell."""
    import asyncio
    import secrets

    from ..server.listener import Server
    from .exec import run_exec

    token = secrets.token_hex(32)
    server = Server("127.0.0.1", 0, token, kill_leftovers=True)
    await server.start()
    try:
        return await asyncio.to_thread(run_exec, "127.0.0.1", server.port, token, SCRIPT_COMMAND, forward_stdin=True, connect_options={"tls": False})
    finally:
        await server.close()


async def _private_prompt(args: argparse.Namespace) -> int:
    """A server on a free loopback port with a token that never touches the disk, for this prompt alone."""
    import secrets

    from ..client.aio import AsyncClient
    from ..server.listener import Server

    token = secrets.token_hex(32)
    server = Server("127.0.0.1", 0, token, kill_leftovers=True)
    await server.start()
    try:
        # Plain TCP whatever known_hosts says of this (random) port.
        def connect() -> Awaitable[AsyncClient]:
            return AsyncClient.connect("127.0.0.1", server.port, token, tls=False)

        return await _prompt(args, connect, f"local server {server.address}")
    finally:
        # Every command, and whatever they left running, ends with the prompt.
        await server.close()
