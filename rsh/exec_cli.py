"""``rsh exec``: run one remote command with local stdin, stdout, stderr and signals.

Bytes are passed through untouched: remote stdout to local fd 1, stderr to
fd 2, local stdin (when it is not a terminal) to the command.  The first
Ctrl-C is sent to the remote command as INT and rsh waits for it to end; a
second one leaves at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from .client import STDIN_CHUNK, AsyncClient, RemoteCommand
from .messages import ExitStatus
from .transport import TraceHook

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

    *connect_options* go to ``AsyncClient.connect`` (TLS and the server's pin).

    Raises:
        RshError: connection, authentication or protocol failure, or a
            command the server refused (exit 255).
    """
    return asyncio.run(
        _run(host, port, token, command, forward_stdin, timeout, encoding, connect_timeout, trace, connect_options or {})
    )


async def _run(
    host: str,
    port: int,
    token: str | None,
    command: str,
    forward_stdin: bool,
    timeout: float | None,
    encoding: str | None,
    connect_timeout: float,
    trace: TraceHook | None,
    connect_options: Mapping[str, Any],
) -> int:
    client = await AsyncClient.connect(host, port, token, timeout=connect_timeout, trace=trace, **connect_options)
    try:
        cmd = await client.start(command, stdin=forward_stdin, timeout=timeout, encoding=encoding)
        if forward_stdin:
            _start_stdin_pump(cmd, asyncio.get_running_loop())
        output = asyncio.create_task(_copy_output(cmd))
        interrupts = 0

        def on_sigint() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                cmd.send_signal("INT")
            else:
                output.cancel()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            status = await output
        except asyncio.CancelledError:
            return 128 + signal.SIGINT
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        if status is None:
            return EXIT_SIGPIPE
        if status.timed_out:
            print(f"rsh: command timed out after {status.elapsed:.1f}s", file=sys.stderr, flush=True)
            return EXIT_TIMEOUT
        return status.exit_code if status.exit_code is not None else 128 + (status.signal or 0)
    finally:
        await client.close()


async def _copy_output(cmd: RemoteCommand) -> ExitStatus | None:
    """Copy output to fds 1 and 2; return the exit status, or None if stdout closed."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        async for stream, data in cmd:
            f = out if stream == "stdout" else err
            f.write(data)
            f.flush()
    except BrokenPipeError:
        # Like `ssh ... | head`: the reader left; stop quietly.  Point fd 1 at
        # /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return None
    return cmd.status


def _start_stdin_pump(cmd: RemoteCommand, loop: asyncio.AbstractEventLoop) -> None:
    """Forward local stdin from a thread: a blocking read works for pipes and files alike."""

    def pump() -> None:
        try:
            while True:
                try:
                    data = os.read(0, STDIN_CHUNK)
                except OSError:
                    data = b""
                if not data:
                    loop.call_soon_threadsafe(cmd.close_stdin)
                    return
                # Wait for the send to drain: back-pressure reaches our reads.
                asyncio.run_coroutine_threadsafe(cmd.write(data), loop).result()
        except Exception:
            # The loop closed under us (the command finished first): nothing to do.
            return

    threading.Thread(target=pump, name="rsh-stdin", daemon=True).start()
