"""The ``rsh`` command line: parse arguments, hand off, map errors to exit codes.

Exit statuses follow ssh: the remote command's own status, 128+N when
signal N ended it, and 255 when rsh itself failed (connection, auth,
protocol), with a one-line ``rsh: ...`` message and no traceback.

Imports of the heavier parts (the server, the prompt) happen inside the
subcommand that needs them, so ``rsh exec`` starts quickly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path

from ..version import __version__
from ..protocol.address import DEFAULT_PORT, parse_address
from ..config import default_token_file, ensure_token, resolve_client_token
from ..errors import RshError
from .options import UsageError, add_serve_options, client_options, serve_guard
from .options import add_client_options as _add_security_options

__all__ = ["main", "EXIT_RSH_ERROR", "EXIT_USAGE"]

#: rsh itself failed (connection, authentication, protocol), as with ssh.
EXIT_RSH_ERROR = 255
#: The command line was wrong.
EXIT_USAGE = 2

SUBCOMMANDS = ("serve", "exec", "connect", "put", "get", "demo")


def _error(message: str) -> None:
    print(f"rsh: {message}", file=sys.stderr, flush=True)


def _add_client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-file", metavar="PATH", help="read the token from PATH (default: $RSH_TOKEN, then ~/.config/rsh/token)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS", help="give up connecting after SECONDS (default 10)")
    _add_security_options(p)


def _add_transfer_options(p: argparse.ArgumentParser) -> None:
    _add_client_options(p)
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories: structure, modes, mtimes, symlinks as links")
    p.add_argument("--resume", action="store_true", help="keep partial data if interrupted, and continue from what an earlier --resume kept")
    p.add_argument("address", metavar="HOST[:PORT]")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rsh",
        description="A remote shell over a small, exact framed protocol.",
        epilog="Run 'rsh COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"rsh {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    p = sub.add_parser("serve", help="run a server", description="Serve commands to authenticated clients.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on; 0 picks a free one (default {DEFAULT_PORT})")
    p.add_argument("--token-file", metavar="PATH", help=f"token file, created (mode 0600) if missing (default {default_token_file()})")
    p.add_argument("--no-auth", action="store_true", help="accept clients without a token (refused beyond loopback unless --i-know-this-is-insecure)")
    p.add_argument("--encoding", help="declare command output to be in this encoding (default: the locale's)")
    add_serve_options(p)

    p = sub.add_parser(
        "exec",
        help="run one command, like 'ssh HOST CMD'",
        description="Run CMD on HOST: its stdout and stderr bytes come out here, its exit status is rsh's. "
        "As with ssh, the words of CMD are joined with spaces and the remote shell parses the result: "
        "quote a command line as one word (rsh exec HOST -- \"sh -c 'echo a b'\").",
    )
    _add_client_options(p)
    p.add_argument("-n", dest="no_stdin", action="store_true", help="do not forward stdin (the command reads an empty one)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the command after SECONDS (exit status 124)")
    p.add_argument("--encoding", help="ask the server to declare output in this encoding")
    p.add_argument("--trace", action="store_true", help="print every frame sent and received to stderr")
    p.add_argument("address", metavar="HOST[:PORT]")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")

    p = sub.add_parser(
        "connect",
        help="open a prompt on HOST (also: rsh HOST; rsh alone starts a private local server)",
        description="An interactive prompt whose commands run on HOST. Without HOST (plain 'rsh'), "
        "a private server on 127.0.0.1 is started for the session and stopped after it.",
    )
    _add_client_options(p)
    p.add_argument("--vi", action="store_true", help="Vi key bindings (default: Emacs)")
    p.add_argument("--trace", action="store_true", help="print every frame sent and received to stderr")
    p.add_argument("address", nargs="?", metavar="HOST[:PORT]")

    p = sub.add_parser(
        "put",
        usage="rsh put [-h] [--token-file PATH] [--connect-timeout SECONDS] [-r] [--resume] HOST[:PORT] LOCAL... REMOTE",
        help="copy files to HOST, like 'scp LOCAL HOST:REMOTE'",
        description="Copy LOCAL files to REMOTE on HOST. Every file's SHA-256 is verified before it appears under its name; "
        "REMOTE is relative to the server's home directory. Several LOCALs need REMOTE to be a directory. '-' as LOCAL reads stdin.",
    )
    _add_transfer_options(p)
    p.add_argument("paths", nargs="+", metavar="LOCAL... REMOTE")

    p = sub.add_parser(
        "get",
        usage="rsh get [-h] [--token-file PATH] [--connect-timeout SECONDS] [-r] [--resume] HOST[:PORT] REMOTE... LOCAL",
        help="copy files from HOST, like 'scp HOST:REMOTE LOCAL'",
        description="Copy REMOTE files on HOST to LOCAL. Every file's SHA-256 is verified before it appears under its name; "
        "REMOTE is relative to the server's home directory. Several REMOTEs need LOCAL to be a directory. '-' as LOCAL writes to stdout.",
    )
    _add_transfer_options(p)
    p.add_argument("paths", nargs="+", metavar="REMOTE... LOCAL")

    p = sub.add_parser(
        "demo",
        help="watch TCP 'sticky packets' happen, and framing fix them",
        description="Teaching demos on 127.0.0.1, no server needed. Without NAME, list them.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="coalesce, truncate, header, markers, udp, or all")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="narration language; zh adds Chinese above the English")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `rsh` alone and `rsh HOST` mean `rsh connect [HOST]`, as `ssh HOST` does.
    if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "connect")
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        if args.subcommand == "serve":
            return _serve(args)
        if args.subcommand == "exec":
            return _exec(args, parser)
        if args.subcommand == "connect":
            return _connect(args)
        if args.subcommand in ("put", "get"):
            return _transfer(args)
        if args.subcommand == "demo":
            from ..teach.demo import main as demo_main

            return demo_main(args.name, args.lang)
        parser.print_help()
        return EXIT_USAGE
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except RshError as exc:
        _error(str(exc))
        return EXIT_RSH_ERROR
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


def _serve(args: argparse.Namespace) -> int:
    import asyncio  # here, not at the top: `rsh exec` never needs it

    from ..server.connection import Server

    guard = serve_guard(args, no_auth=args.no_auth)
    token: str | None = None
    if not args.no_auth:
        path = Path(args.token_file) if args.token_file else default_token_file()
        if args.token_file and not path.parent.is_dir():
            _error(f"cannot create token file {path}: directory {path.parent} does not exist")
            return EXIT_USAGE
        token, created = ensure_token(path)
        if created:
            _error(f"created a new token in {path} (mode 0600); clients read it from there, or from RSH_TOKEN")
        else:
            _error(f"using the token in {path}")
    if args.encoding:
        import codecs

        try:
            codecs.lookup(args.encoding)
        except LookupError:
            _error(f"unknown encoding {args.encoding!r}")
            return EXIT_USAGE
    server = Server(args.host, args.port, token, encoding=args.encoding, guard=guard)
    # Like any daemon, leave the directory we were started in (it may be
    # unmounted later); commands start in the home directory anyway, and
    # spawning there from there is the fast path (see rsh.server.process).
    try:
        os.chdir(server.config.home)
    except OSError:
        pass

    async def run() -> None:
        try:
            await server.start()
        except OSError as exc:
            raise _ListenError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        _error(f"listening on {server.address}")
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
        asyncio.run(run())
    except _ListenError as exc:
        _error(str(exc))
        return 1
    return 0


class _ListenError(Exception):
    pass


def _exec(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not " ".join(command).strip():
        raise UsageError("no command given: rsh exec HOST[:PORT] -- CMD [ARG...]")
    host, port, token = _target(args)
    connect_options = client_options(args)
    from .exec import run_exec
    from ..protocol.trace import make_tracer

    # Like ssh: the words are joined with spaces and the remote shell parses them.
    return run_exec(
        host,
        port,
        token,
        " ".join(command),
        forward_stdin=not args.no_stdin and _stdin_is_data(),
        timeout=args.timeout,
        encoding=args.encoding,
        connect_timeout=args.connect_timeout,
        trace=make_tracer(sys.stderr) if args.trace else None,
        connect_options=connect_options,
    )


def _connect(args: argparse.Namespace) -> int:
    """``rsh connect [HOST]``: the prompt, against HOST or a private local server."""
    import asyncio  # here, not at the top: `rsh exec` never needs it

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _error("the prompt needs a terminal; to run one command, use: rsh exec HOST -- CMD")
        return EXIT_USAGE
    from ..client.aio import AsyncClient
    from ..prompt.repl import Repl, history_file

    if args.address is None:
        return asyncio.run(_until_hangup(_private_prompt(args)))
    host, port, token = _target(args)

    options = client_options(args)

    def connect() -> Awaitable[AsyncClient]:
        return AsyncClient.connect(host, port, token, timeout=args.connect_timeout, **options)

    repl = Repl(connect, label=f"{host}:{port}", vi=args.vi, history=history_file(), trace=args.trace)
    return asyncio.run(_until_hangup(repl.run()))


async def _until_hangup(work: Awaitable[int]) -> int:
    """Run *work*, but end it cleanly (finally blocks run) when the terminal hangs up or we are told to stop."""
    import asyncio  # here, not at the top: `rsh exec` never needs it

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return 128 + signal.SIGHUP


async def _private_prompt(args: argparse.Namespace) -> int:
    """A server on a free loopback port with a token that never touches the disk, for this prompt alone."""
    import secrets

    from ..client.aio import AsyncClient
    from ..prompt.repl import Repl, history_file
    from ..server.connection import Server

    token = secrets.token_hex(32)
    server = Server("127.0.0.1", 0, token, kill_leftovers=True)
    await server.start()
    try:
        repl = Repl(
            # Plain TCP whatever known_hosts says of this (random) port.
            lambda: AsyncClient.connect("127.0.0.1", server.port, token, tls=False),
            label=f"local server {server.address}",
            vi=args.vi,
            history=history_file(),
            trace=args.trace,
        )
        return await repl.run()
    finally:
        # Every command, and whatever they left running, ends with the prompt.
        await server.close()


def _target(args: argparse.Namespace) -> tuple[str, int, str | None]:
    """Host, port and token of a client subcommand's ``HOST[:PORT]`` and ``--token-file``.

    Raises:
        UsageError: the address is malformed.
        AuthError: a named token file cannot be read.
    """
    try:
        host, port = parse_address(args.address)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return host, port, resolve_client_token(args.token_file)


def _transfer(args: argparse.Namespace) -> int:
    if len(args.paths) < 2:
        what = "LOCAL... REMOTE" if args.subcommand == "put" else "REMOTE... LOCAL"
        _error(f"{args.subcommand} needs at least two paths: {what}")
        return EXIT_USAGE
    host, port, token = _target(args)
    from .transfer import run_get, run_put

    run = run_put if args.subcommand == "put" else run_get
    return run(
        host,
        port,
        token,
        args.paths,
        recursive=args.recursive,
        resume=args.resume,
        connect_timeout=args.connect_timeout,
        connect_options=client_options(args),
    )


def _stdin_is_data() -> bool:
    """Forward stdin when it is a pipe or file, not a terminal (as ssh does without -t)."""
    try:
        return not os.isatty(0)
    except OSError:
        return False
