"""``rsh exec``: run one remote command with local stdin, stdout, stderr and signals.

Bytes are passed through untouched: remote stdout to local fd 1, stderr to
fd 2, local stdin (when it is not a terminal) to the command.  The first
Ctrl-C is sent to the remote command as INT and rsh waits for it to end; a
second one leaves at once.

It runs on the blocking client (``Client.forward``), with no event loop:
a single command needs none, and not loading asyncio is a fifth of
``rsh exec``'s start-up.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from ..protocol.frames import TraceHook
from ..client.blocking import Client

__all__ = ["run_exec", "EXIT_TIMEOUT", "EXIT_SIGPIPE"]

#: The command ran past --timeout (as coreutils' timeout(1) reports it).
EXIT_TIMEOUT = 124
#: Local stdout was closed under us, as a process killed by SIGPIPE.
EXIT_SIGPIPE = 128 + signal.SIGPIPE


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
) -> int:
    """Run *command* on host:port and return the exit status rsh should exit with.

    *connect_options* go to ``rsh.Client`` (TLS and the server's pin).

    Raises:
        RshError: connection, authentication or protocol failure, or a
            command the server refused (exit 255).
    """
    with Client(host, port, token, timeout=connect_timeout, trace=trace, **(connect_options or {})) as client:
        try:
            status = client.forward(command, stdin=0 if forward_stdin else None, timeout=timeout, encoding=encoding)
        except KeyboardInterrupt:
            return 128 + signal.SIGINT
        except BrokenPipeError:
            # Like `ssh ... | head`: the reader left; stop quietly.  Point fd 1 at
            # /dev/null so the interpreter's final flush does not complain.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_SIGPIPE
    if status.timed_out:
        print(f"rsh: command timed out after {status.elapsed:.1f}s", file=sys.stderr, flush=True)
        return EXIT_TIMEOUT
    return status.exit_code if status.exit_code is not None else 128 + (status.signal or 0)
