"""``rsh exec``: run one remote command with local stdin, stdout, stderr and signals.

Bytes are passed through untouched: remote stdout to local fd 1, stderr to
fd 2, local stdin (when it is not a terminal) to the command.  The first
Ctrl-C is sent to the remote command as INT and rsh waits for it to end; a
second one leaves at once.  A local reader that leaves early (``| head``)
gets nothing more, the command meets a closed pipe there and runs to its
end, and its status is rsh's, as with ssh.  A closed
stdin, stdout or stderr is opened on /dev/null before any socket is, as
ssh does: otherwise the connection would take its number, and the remote
command's output would be written into it.

It runs on the blocking client (``Client.forward``), with no event loop:
a single command needs none, and not loading asyncio is a fifth of
``rsh exec``'s start-up.  The client is imported when the command runs, not
with the parser, which every subcommand builds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace

from . import fanout
from .argv import COMMAND, quick_parse
from .options import CLIENT_OPTIONS, Option, UsageError, add_options, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import signal
    from typing import Any, cast

    from ..protocol.frames import TraceHook
else:
    import _signal as signal  # signal.py's functions and numbers, without the enums it makes (3% of a cold `rsh exec`)

    from ..typeshim import cast

__all__ = ["add_parser", "quick_args", "run", "run_exec", "open_std_descriptors", "OPTIONS", "EXIT_TIMEOUT", "EXIT_SIGPIPE"]

#: The command ran past --timeout (as coreutils' timeout(1) reports it).
EXIT_TIMEOUT = 124
#: Local stdout was closed under us, as a process killed by SIGPIPE (``rsh get``'s; ``rsh exec`` lets the command finish).
EXIT_SIGPIPE = 128 + signal.SIGPIPE


#: ``rsh exec``'s own options, after the client's and before fan-out's (``_OPTIONS``: all of them, in --help's order).
OPTIONS = (
    Option("-n", dest="no_stdin", action="store_true", help="do not forward stdin (the command reads an empty one)"),
    Option("-t", dest="tty", action="count", default=0, help="run CMD on a pseudo-terminal, as ssh -t (-tt: even when stdin is not a terminal)"),
    Option("--timeout", type=float, metavar="SECONDS", help="stop the command after SECONDS (exit status 124)"),
    Option("--shell", metavar="PATH", help="run CMD with this shell on the server (PATH -c CMD) instead of the server's own"),
    Option("--encoding", help="ask the server to declare output in this encoding"),
    Option("--trace", action="store_true", help="print every frame sent and received to stderr"),
)
_OPTIONS = (*CLIENT_OPTIONS, *OPTIONS, *fanout.OPTIONS, *fanout.OUTPUT_OPTIONS)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh exec`` to the subcommands."""
    p = sub.add_parser(
        name,
        help="run one command, like 'ssh HOST CMD'",
        usage="rsh exec [OPTIONS] [USER@]HOST[:PORT] [OPTIONS] [--] CMD [ARG...]\n       rsh exec -H HOST,... | -g GROUP | -f FILE [OPTIONS] [--] CMD [ARG...]",
        description="Run CMD on HOST: its stdout and stderr bytes come out here, its exit status is rsh's. "
        "As with ssh, rsh's options may come before or after HOST; '--' or the first word that is not an option starts CMD. "
        "The words of CMD are joined with spaces and the remote shell parses the result: "
        "quote a command line as one word (rsh exec HOST -- \"sh -c 'echo a b'\"). HOST may be a name from the config file.",
    )
    add_options(p, _OPTIONS)
    p.add_argument("address", metavar="HOST[:PORT]", nargs="?")
    # Filled in by rsh.cli.argv: what follows HOST and rsh's options after it.
    p.set_defaults(run=run, words=COMMAND, command=[])


def quick_args(words: Sequence[str]) -> argparse.Namespace | None:
    """What the parser would make of ``rsh exec WORDS`` for one HOST and a command, read without it (``rsh.cli.argv.quick_parse``).

    None when *words* are anything else (``-h``, ``-H``, a mistake...): the
    parser must read them.  Importing argparse and building the parser
    (gettext, locale, shutil) cost a short ``rsh exec`` some 15% more; what
    this gives back is an attribute bag, as argparse's Namespace is, with
    the subcommand's defaults.
    """
    values = quick_parse(_OPTIONS, words)
    if values is None:
        return None
    return cast("argparse.Namespace", SimpleNamespace(**values, run=run, words=COMMAND, subcommand="exec"))


def run(args: argparse.Namespace) -> int:
    """``rsh exec HOST -- CMD``; return the exit status.

    Raises:
        UsageError: no command, a malformed address or ``--fingerprint``.
        RshError: connection, authentication or protocol failure (exit 255).
    """
    open_std_descriptors()  # before any socket, for many hosts too
    if fanout.requested(args):
        return fanout.run_exec(args)
    if args.address is None:
        # HOST is optional to argparse only because -H/-g/-f stand for it: its words, then.
        raise UsageError("the following arguments are required: HOST[:PORT] (or -H/-g/-f for many hosts)")
    # Like ssh: the words are joined with spaces and the remote shell parses them.
    command = " ".join(args.command)
    # No words at all is a mistake; a blank one is a command, as ssh runs it (it does nothing, status 0).
    if not command:
        raise UsageError("no command given: rsh exec HOST[:PORT] -- CMD [ARG...]")
    from .resolve import check_user, reach

    settings, token, connect_options = reach(args, args.address)
    if settings.shell:
        command = f"exec {_quoted(settings.shell)} -c {_quoted(command)}"
    if args.tty:
        if args.tty > 1 or _is_tty(0):
            return _on_terminal(settings, token, connect_options, command)
        from .tty_exec import NO_TERMINAL

        say(NO_TERMINAL)
    with settings.explained():
        return run_exec(
            settings.host,
            settings.port,
            token,
            command,
            forward_stdin=not args.no_stdin and _stdin_is_data(),
            timeout=settings.timeout,
            encoding=args.encoding,
            trace=_tracer() if args.trace else None,
            connect_options=connect_options,
            on_connect=lambda info: check_user(settings, info),
        )


def _on_terminal(settings: Any, token: str | None, options: Mapping[str, Any], command: str) -> int:
    from .resolve import async_connector
    from .tty_exec import run_on_terminal

    with settings.explained():
        return run_on_terminal(async_connector(settings, token, options), command)


def _tracer() -> TraceHook:
    from ..protocol.trace import make_tracer

    return make_tracer(sys.stderr)


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _quoted(word: str) -> str:
    """*word* as one word for a POSIX shell (shlex.quote, without loading shlex for it)."""
    return "'" + word.replace("'", "'\\''") + "'"


def run_exec(
    host: str,
    port: int,
    token: str | None,
    command: str,
    *,
    forward_stdin: bool,
    timeout: float | None = None,
    encoding: str | None = None,
    connect_timeout: float = 10.0,
    trace: TraceHook | None = None,
    connect_options: Mapping[str, Any] | None = None,
    on_connect: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run *command* on host:port and return the exit status rsh should exit with.

    *connect_options* go to ``rsh.Client`` (TLS and the server's pin);
    *on_connect* is given what the server said of itself once
    authenticated, before the command is sent, and may refuse it by raising.

    Raises:
        RshError: connection, authentication or protocol failure, or a
            command the server refused (exit 255).
    """
    from ..client.blocking import Client
    from ..client.forward import Stopped

    options = {"timeout": connect_timeout, **(connect_options or {})}
    with Client(host, port, token, trace=trace, **options) as client:
        if on_connect is not None:
            on_connect(client.server_info)
        try:
            status = client.forward(command, stdin=0 if forward_stdin else None, timeout=timeout, encoding=encoding)
        except KeyboardInterrupt:
            return 128 + signal.SIGINT
        except Stopped as exc:
            # As ssh: told twice to stop, leave at once (the server then stops the command).
            say(f"stopped by SIG{exc.name}; the server stops the command")
            return 255
    if status.timed_out:
        say(f"command timed out after {status.elapsed:.1f}s")
        return EXIT_TIMEOUT
    return status.exit_code if status.exit_code is not None else 128 + (status.signal or 0)


def open_std_descriptors() -> None:
    """Open /dev/null on whichever of descriptors 0, 1 and 2 is closed, as ssh does first thing.

    A socket opened while one is closed would take its number: a closed
    stdout would send the remote command's output into the connection.
    Python leaves ``sys.stdout`` or ``sys.stderr`` None for a descriptor
    closed at start; they are pointed at the new one, so that rsh's own
    messages go where ssh's would (nowhere), not to the other stream.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)
        if fd and getattr(sys, ("stdout", "stderr")[fd - 1]) is None:
            setattr(sys, ("stdout", "stderr")[fd - 1], open(fd, "w", closefd=False))  # kept for the process


def quiet_stdout() -> None:
    """The reader of our stdout left: point fd 1 at /dev/null, so the interpreter's last flush adds no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _stdin_is_data() -> bool:
    """Forward stdin when it is a pipe or file, not a terminal (as ssh does without -t)."""
    try:
        return not os.isatty(0)
    except OSError:
        return False
