"""``rsh put`` and ``rsh get``: copy files, report every failure in one line each.

Exit statuses: 0 when everything arrived, 1 when anything did not (each
failure printed as ``rsh: PATH: cause``), 255 when rsh itself failed
(connection, authentication, protocol; raised to ``rsh.cli.main``), 2 for a
wrong command line, and 141, quietly, when the reader of ``get ... -``
closed its end early (as for ``rsh exec``).  On a terminal, stderr shows a progress bar for
transfers that take more than a moment and a one-line summary at the end;
otherwise only failures are printed.

The two differ only in which end the last path names; everything else is
one code path.  The client and the progress bar are imported when a copy
runs, not with the parser, which every subcommand builds.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import fanout
from .argv import PATHS
from .exec import EXIT_SIGPIPE, quiet_stdout
from .options import UsageError, add_client_options, say

if TYPE_CHECKING:
    from ..client.blocking import Client
    from ..prompt.progress import ProgressBar
    from ..results import Failure, TransferResult

    #: One copy, given the client and the bar (None off a terminal).
    Copy = Callable[[Client, ProgressBar | None], TransferResult]

__all__ = ["add_parser", "run", "EXIT_FAILED"]

#: Something did not arrive.
EXIT_FAILED = 1

# name -> (its paths, scp's form of them, one-line help, what it copies where, what the last path may be)
_KINDS: dict[str, tuple[str, str, str, str, str]] = {
    "put": (
        "LOCAL... REMOTE",
        "LOCAL... HOST:REMOTE",
        "copy files to HOST, like 'scp LOCAL HOST:REMOTE'",
        "Copy LOCAL files to REMOTE on HOST.",
        "Several LOCALs need REMOTE to be a directory. '-' as LOCAL reads stdin.",
    ),
    "get": (
        "REMOTE... LOCAL",
        "HOST:REMOTE... LOCAL",
        "copy files from HOST, like 'scp HOST:REMOTE LOCAL'",
        "Copy REMOTE files on HOST to LOCAL.",
        "Several REMOTEs need LOCAL to be a directory. '-' as LOCAL writes to stdout.",
    ),
}

# With -H/-g/-f: the paths, no HOST (a get puts each host's copy in DIR/HOST/).
_MANY = {"put": "LOCAL... REMOTE", "get": "REMOTE... DIR"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh put`` or ``rsh get`` (*name*) to the subcommands."""
    paths, scp, summary, what, last = _KINDS[name]
    p = sub.add_parser(
        name,
        usage=f"rsh {name} [OPTIONS] [USER@]HOST[:PORT] {paths}\n       rsh {name} [OPTIONS] {scp}\n"
        f"       rsh {name} -H HOST,...|-g GROUP|-f FILE [OPTIONS] {_MANY[name]}",
        help=summary,
        description=f"{what} Every file's SHA-256 is verified before it appears under its name; REMOTE is relative to the server's home directory "
        f"('HOST:' alone is that directory). {last} Options may come anywhere; as with scp, a colon before any slash marks HOST:, "
        "so write a local or remote path with a colon as ./a:b.",
    )
    add_client_options(p)
    fanout.add_options(p)
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories: structure, modes, mtimes, symlinks as links")
    p.add_argument("--resume", action="store_true", help="keep partial data if interrupted, and continue from what an earlier --resume kept")
    p.add_argument("paths", nargs="*", metavar="PATHS")
    p.set_defaults(run=run, words=PATHS)


def run(args: argparse.Namespace) -> int:
    """``rsh put HOST LOCAL... REMOTE`` or ``rsh get HOST REMOTE... LOCAL``; return the exit status.

    Raises:
        UsageError: fewer than two paths, a misplaced ``-``, a malformed address.
        RshError: connection, authentication or protocol failure (exit 255).
    """
    if fanout.requested(args):
        return fanout.run_transfer(args)
    address, paths = _host_and_paths(args.subcommand, args.paths)
    from .resolve import check_user, reach

    settings, token, connect_options = reach(args, address)
    plan = _put if args.subcommand == "put" else _get
    label, copy = plan(settings.name, paths, recursive=args.recursive, resume=args.resume)
    from ..client.blocking import Client

    with settings.explained(), Client(settings.host, settings.port, token, **connect_options) as client:
        check_user(settings, client.server_info)
        return _report(label, lambda bar: copy(client, bar))


def _host_and_paths(name: str, words: list[str]) -> tuple[str, list[str]]:
    """HOST and the paths, from ``HOST PATH... PATH`` or scp's ``LOCAL... HOST:REMOTE`` / ``HOST:REMOTE... LOCAL``.

    Raises:
        UsageError: too few paths, or scp-style REMOTEs on different hosts.
    """
    from ..protocol.address import split_remote

    if name == "put" and len(words) >= 2 and (remote := split_remote(words[-1])) is not None:
        return remote[0], [*words[:-1], remote[1] or "."]
    first = split_remote(words[0]) if words else None
    # `get web1:7100 f .` is HOST:PORT; `get web1:f .` and `get web1:7100 .` are scp's (too few paths otherwise).
    if name == "get" and first is not None and (not first[1].isdigit() or len(words) == 2):
        host = first[0]
        remotes = [split_remote(w) for w in words[:-1]]
        if any(r is None or r[0] != host for r in remotes):
            raise UsageError(f"every REMOTE must be on the same host: {_KINDS[name][1]} (got {' '.join(words[:-1])})")
        return host, [*(r[1] or "." for r in remotes if r is not None), words[-1]]
    if len(words) < 3:
        raise UsageError(f"{name} needs at least two paths: {_KINDS[name][0]}")
    return words[0], words[1:]


def _put(host: str, paths: list[str], *, recursive: bool, resume: bool) -> tuple[str, Copy]:
    *sources, remote = paths
    if "-" in sources and len(sources) > 1:
        raise UsageError("'-' (stdin) must be the only LOCAL")
    local = sys.stdin.buffer if sources == ["-"] else sources
    label = f"{' '.join(sources)} -> {host}:{remote}"
    return label, lambda client, bar: client.put(local, remote, recursive=recursive, resume=resume, progress=bar)


def _get(host: str, paths: list[str], *, recursive: bool, resume: bool) -> tuple[str, Copy]:
    from ..results import printable

    *remotes, local = paths
    if local == "-" and (recursive or resume):
        raise UsageError("'-' (stdout) takes files only: drop -r and --resume")
    dest = sys.stdout.buffer if local == "-" else local
    label = f"{' '.join(f'{host}:{r}' for r in remotes)} -> {printable(local)}"
    return label, lambda client, bar: client.get(remotes, dest, recursive=recursive, resume=resume, progress=bar)


def _report(label: str, copy: Callable[[ProgressBar | None], TransferResult]) -> int:
    """Run *copy* with a bar on a terminal; report how it went."""
    from ..errors import TransferFailed

    bar = None
    if _stderr_is_terminal():  # only then: the bar's module is not light
        from ..prompt.progress import ProgressBar

        bar = ProgressBar(sys.stderr)
    start = time.monotonic()
    try:
        result = copy(bar)
    except TransferFailed as exc:
        if bar is not None:
            bar.clear()
        failures = exc.result.failures
        if failures and all(_reader_left(f) for f in failures):
            # `rsh get HOST f - | head`: the reader had enough.  Quiet, as
            # `cat` and `rsh exec` are, with the status SIGPIPE would give.
            quiet_stdout()
            return EXIT_SIGPIPE
        skipped = 0
        for failure in failures:
            if failure.code == "skipped":
                skipped += 1
            else:
                say(failure.line(exc.host))
        if skipped:
            say(f"{skipped} entr{'ies' if skipped != 1 else 'y'} inside directories that failed were not copied")
        return EXIT_FAILED
    finally:
        if bar is not None:
            bar.clear()
    if bar is not None:
        from ..prompt.progress import format_summary

        print(format_summary(label, result, time.monotonic() - start), file=sys.stderr, flush=True)
    return 0


def _reader_left(failure: Failure) -> bool:
    return failure.path == "-" and not failure.remote and failure.message == os.strerror(errno.EPIPE)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (ValueError, OSError):
        return False
