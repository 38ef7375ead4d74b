"""Run one line of a live shell with the local terminal attached: keys out, screen in, back to normal after.

``run_attached`` is what the prompt does with each line, and what ``rsh
exec -t`` does with its one command: the local terminal goes raw, keys go
to the remote terminal as typed (through ssh's escapes), a window resize
follows, a TERM or HUP sent to rsh ends it; when the line ends, in every
way it can, the terminal's modes are put back and what a program left set
is undone.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from ..client.shell import RemoteShell
from ..errors import RshError
from ..protocol.messages import LineEnd
from .terminal import DISCONNECT, ESCAPE_HELP, HELP, EscapeFilter, LocalTerminal, ScreenWriter, strip_answers

__all__ = ["Disconnected", "Stopped", "run_attached"]


class Disconnected(RshError):
    """The person typed ``~.``."""


class Stopped(RshError):
    """rsh was sent TERM or HUP while the line ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


async def run_attached(shell: RemoteShell, line: str, terminal: LocalTerminal, screen: ScreenWriter, *, pipe: bool = False) -> LineEnd:
    """Run *line* in *shell* with *terminal* attached; return its end.

    Raises:
        ShellExited: the line ended the shell.
        ConnectionLost: the connection went while it ran.
        Disconnected: ``~.`` was typed.
        Stopped: rsh got TERM or HUP.
    """
    loop = asyncio.get_running_loop()
    escapes = EscapeFilter()
    cut: asyncio.Future[None] = loop.create_future()
    size = terminal.size()

    def keys() -> None:
        try:
            data = os.read(terminal.fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(terminal.fd)  # a stdin that ended (rsh exec -tt < file)
            return
        action = None
        if terminal.is_tty:
            data, action = escapes.feed(strip_answers(data))
        if data:
            shell.send_input(data)
        if action == HELP:
            screen.write(ESCAPE_HELP.encode())
        elif action == DISCONNECT and not cut.done():
            cut.set_exception(Disconnected("disconnected (~.)"))

    def resized() -> None:
        nonlocal size
        now = terminal.size()
        if now != size and all(now):
            size = now
            shell.resize(*now)

    def stop(signum: int) -> None:
        if not cut.done():
            cut.set_exception(Stopped(signum))

    if all(size):
        shell.resize(*size)
    with terminal.raw():
        loop.add_reader(terminal.fd, keys)
        loop.add_signal_handler(signal.SIGWINCH, resized)
        loop.add_signal_handler(signal.SIGINT, shell.send_signal, "INT")
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop, signum)
        running = asyncio.ensure_future(shell.run(line, pipe=pipe))
        try:
            waiting: list[asyncio.Future[Any]] = [running, cut]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if cut.done():
                running.cancel()
                cut.result()
            return running.result()
        finally:
            loop.remove_reader(terminal.fd)
            for signum in (signal.SIGWINCH, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            if not cut.done():
                cut.cancel()
            screen.finish(b"\r\n" if terminal.is_tty else b"\n")
            screen.reset_modes()
