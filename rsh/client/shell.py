"""A live shell on the server, from asyncio: lines in, the terminal's output out, keystrokes and window sizes.

    shell = await client.open_shell(term="xterm-256color", rows=24, cols=80, on_output=show)
    end = await shell.run("cd /tmp; ls")     # LineEnd(status=0, cwd="/tmp")
    await shell.close()                       # the shell exits with the last status

One shell process runs every line (docs/protocol.md, "The live shell"), so
the shell's state lives from one line to the next.  What the shell's
terminal shows comes to *on_output* as ``("tty", bytes)`` whenever it comes,
between lines too (a background job's output); a line run with
``pipe=True`` sends its stdout and stderr as ``"stdout"`` and ``"stderr"``.
Frames are read by one task, so a completion or a check can be asked for
while output streams in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConnectionLost, RshError
from ..protocol.client import Checked, Completions, Exited, LineEnded, Output, ShellStarted
from ..protocol.messages import SIGNALS, ExitStatus, LineEnd, ShellRequest

if TYPE_CHECKING:
    from .aio_pump import AsyncPump

__all__ = ["RemoteShell", "ShellExited", "OutputHandler"]

#: Called with ``(stream, data)`` for what the shell writes: ``tty``, or ``stdout``/``stderr`` in pipe mode.
OutputHandler = Callable[[str, bytes], None]


class ShellExited(RshError):
    """The shell ended (``exit``, the last line's end of input): ``status`` says how."""

    def __init__(self, status: ExitStatus) -> None:
        code = status.exit_code if status.exit_code is not None else 128 + (status.signal or 0)
        super().__init__(f"the shell exited with status {code}")
        self.status = status
        self.code = code


class RemoteShell:
    """A live shell (see the module docstring); made by ``AsyncClient.open_shell``."""

    def __init__(self, pump: AsyncPump, on_output: OutputHandler) -> None:
        self._pump = pump
        self._conn = pump.conn
        self.on_output = on_output
        #: The shell's path and process on the server, once started.
        self.shell = ""
        self.pid = 0
        #: How the shell ended, once it has.
        self.exit_status: ExitStatus | None = None
        #: Why the connection ended under it, if it did.
        self.lost: BaseException | None = None
        #: The terminal's size, as last told.
        self.size = (0, 0)
        #: The line in flight, if any (sent, its end not yet come).
        self.running: str | None = None
        self._line: asyncio.Future[LineEnd] | None = None
        self._checks: dict[int, asyncio.Future[bool]] = {}
        self._completion: asyncio.Future[list[str]] | None = None
        self._started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None

    async def _start(self, request: ShellRequest) -> None:
        self._conn.start_shell(request)
        self._pump.flush()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self._started

    async def _read(self) -> None:
        try:
            while True:
                event = await self._pump.next_event()
                if isinstance(event, Output):
                    self.on_output(event.stream, event.data)
                elif isinstance(event, LineEnded):
                    self.running = None
                    if self._line is not None and not self._line.done():
                        self._line.set_result(event.end)
                elif isinstance(event, Checked):
                    future = self._checks.pop(event.id, None)
                    if future is not None and not future.done():
                        future.set_result(event.complete)
                elif isinstance(event, Completions):
                    if self._completion is not None and not self._completion.done():
                        self._completion.set_result(event.items)
                elif isinstance(event, ShellStarted):
                    self.shell, self.pid = event.shell, event.pid
                    self._started.set_result(None)
                elif isinstance(event, Exited):
                    self.exit_status = event.status
                    self._fail(ShellExited(event.status))
                    return
        except BaseException as exc:
            self.lost = exc
            self._fail(exc if isinstance(exc, Exception) else ConnectionLost("the connection was closed"))
            if not isinstance(exc, Exception):
                raise

    def _fail(self, exc: Exception) -> None:
        waiting = [self._started, self._line, self._completion, *self._checks.values()]
        self._checks.clear()
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: nobody may be waiting for it any more

    def _check_open(self) -> None:
        if self.exit_status is not None:
            raise ShellExited(self.exit_status)
        if self.lost is not None:
            raise ConnectionLost(f"connection lost ({self.lost})")

    # -- lines --------------------------------------------------------------------

    async def run(self, line: str | bytes, *, pipe: bool = False) -> LineEnd:
        """Run *line* in the shell and wait for its end.

        Raises:
            ShellExited: the line ended the shell (``exit 3``): see its ``status``.
            ConnectionLost: the connection went while it ran (it may have run).
        """
        self._check_open()
        if self.running is not None:
            raise RuntimeError("a line is already running in this shell")
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        self._line = asyncio.get_running_loop().create_future()
        self.running = raw.decode("utf-8", "replace")
        self._conn.send_line(raw, pipe=pipe)
        self._pump.flush()
        return await self._line

    def send_input(self, data: bytes) -> None:
        """Keystrokes for the shell's terminal (to what runs in it)."""
        if self.exit_status is None and self.lost is None:
            self._conn.send_input(data)
            self._pump.flush()

    def resize(self, rows: int, cols: int) -> None:
        """Tell the shell's terminal its new size (nothing is sent when it is the size it has)."""
        if (rows, cols) == self.size:
            return
        self.size = (rows, cols)
        if self.exit_status is None and self.lost is None:
            self._conn.send_resize(rows, cols)
            self._pump.flush()

    def send_signal(self, name: str) -> None:
        """Send signal *name* (INT, TERM, KILL, HUP, QUIT) to the terminal's foreground job."""
        if name not in SIGNALS:
            raise ValueError(f"unknown signal {name!r}; one of {', '.join(SIGNALS)}")
        if self.exit_status is None and self.lost is None:
            self._conn.send_signal(name)
            self._pump.flush()

    # -- between lines ----------------------------------------------------------------

    async def check(self, text: str) -> bool:
        """Whether *text* is complete input for the shell (False: an open quote, ``if`` without ``fi``, ...)."""
        self._check_open()
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._checks[self._conn.request_check(text.encode("utf-8", "surrogateescape"))] = future
        self._pump.flush()
        return await future

    async def complete(self, kind: str, prefix: str) -> list[str]:
        """Completions of *prefix*: ``command`` names on the shell's PATH, or ``path``\\ s from its directory."""
        self._check_open()
        if self.running is not None:
            return []
        self._completion = asyncio.get_running_loop().create_future()
        self._conn.request_completions(kind, prefix)
        self._pump.flush()
        return await self._completion

    async def close(self) -> ExitStatus | None:
        """End the shell (as Ctrl-D does) and wait until it has exited; returns how, or None if the connection is gone."""
        if self.exit_status is None and self.lost is None:
            if self.running is None:
                self._conn.end_shell()
                self._pump.flush()
            else:
                self.send_signal("HUP")
            if self._reader is not None:
                await asyncio.wait([self._reader], timeout=5)
        return self.exit_status

    def detach(self) -> None:
        """Stop reading (the connection is being closed under the shell)."""
        if self._reader is not None:
            self._reader.cancel()
