"""``rsh put`` and ``rsh get``: copy files, report every failure in one line each.

Exit statuses: 0 when everything arrived, 1 when anything did not (each
failure printed as ``rsh: PATH: cause``), 255 when rsh itself failed
(connection, authentication, protocol; raised to ``rsh.cli.main``), 2 for a
wrong command line, and 141, quietly, when the reader of ``get ... -``
closed its end early (as for ``rsh exec``).  On a terminal, stderr shows a progress bar for
transfers that take more than a moment and a one-line summary at the end;
otherwise only failures are printed.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import TransferFailed
from .exec import EXIT_SIGPIPE
from ..prompt.progress import ProgressBar, format_summary
from ..client.blocking import Client
from ..results import Failure, TransferResult, printable

__all__ = ["run_put", "run_get", "EXIT_FAILED", "EXIT_USAGE"]

#: Something did not arrive.
EXIT_FAILED = 1
#: The command line was wrong.
EXIT_USAGE = 2


def _say(message: str) -> None:
    print(f"rsh: {message}", file=sys.stderr, flush=True)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (ValueError, OSError):
        return False


def _run(label: str, transfer: Callable[[ProgressBar | None], TransferResult]) -> int:
    """Run *transfer* with a bar on a terminal; report how it went."""
    bar = ProgressBar(sys.stderr) if _stderr_is_terminal() else None
    start = time.monotonic()
    try:
        result = transfer(bar)
    except TransferFailed as exc:
        if bar is not None:
            bar.clear()
        failures = exc.result.failures
        if failures and all(_reader_left(f) for f in failures):
            # `rsh get HOST f - | head`: the reader had enough.  Quiet, as
            # `cat` and `rsh exec` are, with the status SIGPIPE would give.
            _quiet_stdout()
            return EXIT_SIGPIPE
        skipped = 0
        for failure in failures:
            if failure.code == "skipped":
                skipped += 1
            else:
                _say(failure.line(exc.host))
        if skipped:
            _say(f"{skipped} entr{'ies' if skipped != 1 else 'y'} inside directories that failed were not copied")
        return EXIT_FAILED
    finally:
        if bar is not None:
            bar.clear()
    if bar is not None:
        print(format_summary(label, result, time.monotonic() - start), file=sys.stderr, flush=True)
    return 0


def _reader_left(failure: Failure) -> bool:
    return failure.path == "-" and not failure.remote and failure.message == os.strerror(errno.EPIPE)


def _quiet_stdout() -> None:
    # The reader of our stdout left; point fd 1 at /dev/null so the
    # interpreter's last flush does not add a traceback to the report.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def run_put(
    host: str,
    port: int,
    token: str | None,
    paths: list[str],
    *,
    recursive: bool,
    resume: bool,
    connect_timeout: float,
    connect_options: Mapping[str, Any] | None = None,
) -> int:
    """``rsh put HOST LOCAL... REMOTE``; return the exit status.

    Raises:
        RshError: connection, authentication or protocol failure (exit 255).
    """
    *sources, remote = paths
    if "-" in sources and len(sources) > 1:
        _say("'-' (stdin) must be the only LOCAL")
        return EXIT_USAGE
    local = sys.stdin.buffer if sources == ["-"] else sources
    label = f"{' '.join(sources)} -> {host}:{remote}"
    with Client(host, port, token, timeout=connect_timeout, **(connect_options or {})) as client:
        return _run(label, lambda bar: client.put(local, remote, recursive=recursive, resume=resume, progress=bar))


def run_get(
    host: str,
    port: int,
    token: str | None,
    paths: list[str],
    *,
    recursive: bool,
    resume: bool,
    connect_timeout: float,
    connect_options: Mapping[str, Any] | None = None,
) -> int:
    """``rsh get HOST REMOTE... LOCAL``; return the exit status.

    Raises:
        RshError: connection, authentication or protocol failure (exit 255).
    """
    *remotes, local = paths
    if local == "-" and (recursive or resume):
        _say("'-' (stdout) takes files only: drop -r and --resume")
        return EXIT_USAGE
    label = f"{' '.join(f'{host}:{r}' for r in remotes)} -> {printable(local)}"
    with Client(host, port, token, timeout=connect_timeout, **(connect_options or {})) as client:
        dest = sys.stdout.buffer if local == "-" else local
        return _run(label, lambda bar: client.get(remotes, dest, recursive=recursive, resume=resume, progress=bar))
