"""``rsh exec -t HOST -- CMD`` (and ``rsh HOST`` for a script on stdin): what ssh does with ``-t`` and with no command.

With ``-t`` the command runs as the one line of a live shell on a
pseudo-terminal of the local terminal's type and size, attached as the
prompt attaches its lines (``rsh.prompt.attach``), so that a full-screen
program, a password prompt or Ctrl-C behave as in a terminal; its output
and its errors share the terminal, as under ``ssh -t``.  Without a local
terminal, ``-t`` is declined with ssh's words; ``-tt`` insists.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client.aio import AsyncClient

__all__ = ["run_on_terminal", "NO_TERMINAL"]

NO_TERMINAL = "Pseudo-terminal will not be allocated because stdin is not a terminal."


def run_on_terminal(connect: Callable[[], Awaitable[AsyncClient]], command: str) -> int:
    """Run *command* on a remote terminal through what *connect* opens; return its exit status."""
    import asyncio

    return asyncio.run(_run(connect, command))


async def _run(connect: Callable[[], Awaitable[AsyncClient]], command: str) -> int:
    from ..client.shell import ShellExited
    from ..prompt.attach import Stopped, run_attached
    from ..prompt.terminal import LocalTerminal, ScreenWriter

    client = await connect()
    terminal = LocalTerminal(0)
    screen = ScreenWriter(str(client.server_info.get("encoding", "utf-8")))
    try:
        rows, cols = terminal.size()
        shell = await client.open_shell(lambda stream, data: screen.write(data, stream=stream), term=os.environ.get("TERM") or "dumb", rows=rows, cols=cols)
        try:
            await run_attached(shell, command, terminal, screen)
        except ShellExited as exc:
            return exc.code & 0xFF
        except Stopped as exc:
            return 128 + exc.signum
        status = await shell.close()
        if status is None:
            return 255
        return status.exit_code if status.exit_code is not None else 128 + (status.signal or 0)
    finally:
        terminal.restore()
        await client.close()
