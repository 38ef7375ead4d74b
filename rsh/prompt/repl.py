"""The interactive prompt: edit a line locally, run it in one live remote shell, on a terminal.

``Repl.run()`` is the loop.  The session has one shell on the server, on a
pseudo-terminal of the local terminal's type and size
(``AsyncClient.open_shell``), and every line runs in it, so everything a
shell keeps lives on from line to line.  Lines are edited here, with
prompt_toolkit's history, Ctrl-R, suggestions and completion; a line that
the remote shell says is incomplete (an open quote, ``if`` without ``fi``)
gets a continuation prompt.  While a line runs the local terminal is
attached to the remote one (``rsh.prompt.attach``): keys go there as typed,
and Ctrl-C, Ctrl-Z and full-screen programs work as in a terminal.  Lines
starting with ``:`` are the prompt's own (``rsh.prompt.commands``).

A lost connection is reported honestly: a line that was sent may have run.
A reconnect starts a new shell, in the directory the old one was in.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.filters import is_searching
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.styles import Style

from ..client.aio import AsyncClient
from ..client.shell import RemoteShell, ShellExited
from ..config import state_dir
from ..errors import ConnectionLost, RshError
from . import commands
from .attach import Disconnected, Stopped, run_attached
from .completion import RshCompleter
from .output import Output
from .terminal import LocalTerminal, ScreenWriter

__all__ = ["Repl", "history_file"]

_STYLE = Style.from_dict(
    {
        "status": "ansired bold",
        "user": "ansigreen bold",
        "path": "ansiblue bold",
    }
)


def history_file() -> Path:
    """The prompt history, shared by all sessions of this user (dir 0700, file 0600).

    Command lines can hold secrets, so the file is made private before
    prompt_toolkit first appends to it (bash keeps its history 0600 too).
    """
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "history"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # made by an older rsh, which left it readable
    return path


def _output() -> Vt100_Output | None:
    """The terminal, for prompt_toolkit, without cursor-position queries.

    prompt_toolkit asks the terminal where the cursor is and, after each
    line, keeps reading keys until the answer comes, for up to a second
    when it never does (a plain pty, some serial consoles): keys typed to
    the command meanwhile, Ctrl-C first, would be its.  The line's keys are
    the remote terminal's from the moment Enter is pressed.
    """
    if not sys.stdout.isatty():
        return None
    output = Vt100_Output.from_pty(sys.stdout, term=os.environ.get("TERM"))
    output.enable_cpr = False
    return output


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter", filter=is_searching)
    def _(event: KeyPressEvent) -> None:
        # Enter in a Ctrl-R search runs the line found, as in bash.
        from prompt_toolkit import search

        search.accept_search()
        event.current_buffer.validate_and_handle()

    return bindings


class Repl:
    """One interactive session against one server.

    Args:
        connect: makes a fresh authenticated client (called again to reconnect, and for transfers).
        label: how to name the server in messages (``HOST:PORT``).
        vi: Vi key bindings instead of Emacs ones.
        history: the history file (None: in memory only).
        trace: show every frame on stderr.
        pty: lines run on the terminal (False: pipe mode, stdout and stderr apart).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[AsyncClient]],
        *,
        label: str,
        vi: bool = False,
        history: Path | None = None,
        trace: bool = False,
        pty: bool = True,
    ) -> None:
        self._connect = connect
        self.label = label
        self.vi = vi
        self.history = history
        self.trace = trace
        self.pty = pty
        self.client: AsyncClient | None = None
        self.shell: RemoteShell | None = None
        self._transfers: AsyncClient | None = None
        self.cwd = "~"
        self.last_status = 0
        self.encoding = "utf-8"
        self.pinned_encoding: str | None = None
        self._out = Output()
        self._terminal = LocalTerminal(0)
        self._screen = ScreenWriter("utf-8")
        self._session: PromptSession[str] | None = None
        self._quiet = False
        self._received = 0

    # -- the loop -------------------------------------------------------------

    async def run(self) -> int:
        """Run until the shell exits (``exit [N]``), ``:exit [N]`` or Ctrl-D; return the status to leave with."""
        try:
            await self._open()
            return await self._loop()
        finally:
            self._terminal.restore()
            for client in (self.client, self._transfers):
                if client is not None:
                    await client.close()

    async def _open(self) -> None:
        self.client = client = await self._connect()
        if self.trace:
            self._set_trace(client, True)
        info = client.server_info
        self.encoding = self.pinned_encoding or str(info.get("encoding", "utf-8"))
        self._screen = ScreenWriter(self.encoding, pinned=self.pinned_encoding is not None)
        rows, cols = self._terminal.size()
        self.shell = await client.open_shell(self._on_output, term=os.environ.get("TERM") or "dumb", rows=rows, cols=cols)
        self.cwd = str(info.get("home", self.cwd))

    async def _loop(self) -> int:
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(self.history)) if self.history else None,
            auto_suggest=AutoSuggestFromHistory(),
            completer=RshCompleter(self._complete),
            complete_while_typing=False,
            vi_mode=self.vi,
            style=_STYLE,
            key_bindings=_key_bindings(),
            output=_output(),
        )
        self._session = session
        while True:
            self._screen.end_line()
            try:
                text = await self._read(session)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt: a fresh line
            except EOFError:
                break
            if not text.strip():
                continue
            try:
                builtin = commands.parse(text)
            except commands.CommandLineError as exc:
                self._out.error(str(exc))
                continue
            if builtin is not None:
                leave = await self._builtin(builtin)
                if leave is not None:
                    return leave
                continue
            leave = await self._run_line(text)
            if leave is not None:
                return leave
        assert self.shell is not None
        try:
            status = await self.shell.close()
        except RshError:
            status = None
        if status is not None and status.exit_code is not None:
            return status.exit_code & 0xFF
        return self.last_status & 0xFF  # Ctrl-D leaves as a shell does on end of input

    async def _read(self, session: PromptSession[str]) -> str:
        """One line, with continuation lines for as long as the remote shell says it is incomplete."""
        text = await session.prompt_async(self._message)
        more: PromptSession[str] | None = None
        while commands.maybe_incomplete(text):
            assert self.shell is not None
            try:
                if await self.shell.check(text):
                    break
            except RshError:
                break  # the line itself will meet the lost connection
            more = more or PromptSession(vi_mode=self.vi, output=_output())
            try:
                text += "\n" + await more.prompt_async("> ")
            except EOFError:
                break  # run it as it is: the shell says what is wrong with it
        return text

    async def _run_line(self, text: str) -> int | None:
        """Run *text*; the status to leave with if the session is over, else None."""
        shell = self.shell
        assert shell is not None
        self._received = 0
        try:
            end = await run_attached(shell, text, self._terminal, self._screen, pipe=not self.pty)
        except ShellExited as exc:
            self._screen.end_line()
            return exc.code & 0xFF
        except Disconnected as exc:
            self._screen.end_line()
            self._out.error(f"{exc}; connection to {self.label} closed")
            return 255
        except Stopped as exc:
            return 128 + exc.signum
        except ConnectionLost as exc:
            self._screen.end_line()
            if shell.running is None:
                self._out.error(f"connection to {self.label} lost ({exc}); that line was not sent, so it did not run")
            else:
                ran = f"it may have run, in part or whole ({self._received} bytes of its output arrived)"
                self._out.error(f"connection to {self.label} lost ({exc}) while that line ran: {ran}")
            return None if await self._offer_reconnect() else 255
        except RshError as exc:
            self._out.error(str(exc))
            return None
        self.last_status = end.status
        self.cwd = end.cwd or self.cwd
        return None

    def _on_output(self, stream: str, data: bytes) -> None:
        self._received += len(data)
        if self._quiet:
            return
        session = self._session
        if session is not None and session.app.is_running:
            # Between lines (a background job's output): above the prompt.
            asyncio.ensure_future(run_in_terminal(lambda: self._show(stream, data, raw=False), in_executor=False))
        else:
            self._show(stream, data, raw=self._terminal.is_tty)

    def _show(self, stream: str, data: bytes, *, raw: bool) -> None:
        if stream == "tty":
            self._screen.write(data)
            return
        # Pipe mode: a pipe's bare newlines, on a raw terminal, need their carriage returns.
        self._screen.write(data, stream=stream, newline=b"\r\n" if raw else b"\n", red=stream == "stderr" and self._out.colour)

    def _message(self) -> FormattedText:
        parts: list[tuple[str, str]] = []
        if self.last_status:
            parts.append(("class:status", f"[{self.last_status}] "))
        assert self.client is not None
        info = self.client.server_info
        parts.append(("class:user", f"{info.get('user', '?')}@{info.get('host', '?')}"))
        parts.append(("", ":"))
        parts.append(("class:path", self._short(self.cwd)))
        parts.append(("", "$ "))
        return FormattedText(parts)

    def _short(self, path: str) -> str:
        assert self.client is not None
        home = self.client.server_info.get("home")
        if home and (path == home or path.startswith(home.rstrip("/") + "/")):
            return "~" + path[len(home.rstrip("/")) :]
        return path

    async def _complete(self, kind: str, prefix: str) -> list[str]:
        assert self.shell is not None
        return await self.shell.complete(kind, prefix)

    async def _offer_reconnect(self) -> bool:
        answer_session: PromptSession[str] = PromptSession(output=_output())
        while True:
            try:
                answer = await answer_session.prompt_async(f"Reconnect to {self.label}? [Y/n] ")
            except (EOFError, KeyboardInterrupt):
                return False
            if answer.strip().lower() in ("n", "no"):
                return False
            cwd = self.cwd
            if self.client is not None:
                await self.client.close()
            try:
                await self._open()
            except RshError as exc:
                self._out.error(str(exc))
                continue
            assert self.shell is not None
            self._quiet = True
            try:
                end = await self.shell.run(f"cd -- {shlex.quote(cwd)}")
                if end.status == 0:
                    self.cwd = end.cwd
            except RshError:
                pass
            finally:
                self._quiet = False
            self.last_status = 0
            print(
                f"rsh: a new shell on {self.label}, in {self._short(self.cwd)}; what the old one held (variables, functions, aliases, jobs) is gone",
                file=sys.stderr,
                flush=True,
            )
            return True

    # -- the prompt's own commands ----------------------------------------------

    async def _builtin(self, b: commands.Builtin) -> int | None:
        """Run a ``:command``; the status to leave with for ``:exit``, else None."""
        if b.name == "exit":
            if not b.args:
                return self.last_status & 0xFF
            if len(b.args) == 1 and b.args[0].isdigit():
                return int(b.args[0]) & 0xFF
            self._out.error("usage: :exit [N]")
        elif b.name == "help":
            print(commands.help_text(), flush=True)
        elif b.name == "encoding":
            self._encoding(b.args)
        elif b.name == "trace":
            if b.args not in ((), ("on",), ("off",)):
                self._out.error("usage: :trace on|off")
                return None
            if b.args:
                self.trace = b.args[0] == "on"
                assert self.client is not None
                self._set_trace(self.client, self.trace)
            print(f"trace is {'on: frames are shown on stderr' if self.trace else 'off'}", flush=True)
        elif b.name == "pty":
            if b.args not in ((), ("on",), ("off",)):
                self._out.error("usage: :pty on|off")
                return None
            if b.args:
                self.pty = b.args[0] == "on"
            print(f"pty is {'on: lines run on the terminal' if self.pty else 'off: stdout and stderr apart, stderr in red'}", flush=True)
        else:
            from .transfers import copy  # only for a transfer: the progress bar and the rest

            try:
                if self._transfers is None:
                    # The session's connection is its shell's: transfers take one of their own.
                    self._transfers = await self._connect()
                self.last_status = await copy(self._transfers, b, self.cwd, self._out)
            except RshError as exc:
                self._transfers = None
                self._out.error(str(exc))
                self.last_status = 1
        return None

    def _encoding(self, args: tuple[str, ...]) -> None:
        assert self.client is not None
        server = str(self.client.server_info.get("encoding", "utf-8"))
        if len(args) > 1:
            self._out.error("usage: :encoding [NAME|auto]")
            return
        if args:
            if args[0] == "auto":
                self.pinned_encoding = None
            else:
                try:
                    self.pinned_encoding = codecs.lookup(args[0]).name
                except LookupError:
                    self._out.error(f"unknown encoding {args[0]!r}")
                    return
            self.encoding = self.pinned_encoding or server
            self._screen = ScreenWriter(self.encoding, pinned=self.pinned_encoding is not None)
        if self.pinned_encoding:
            print(f"output decoded as {self.pinned_encoding} (pinned; :encoding auto to undo)", flush=True)
        else:
            print(f"output decoded as {server}, the server's", flush=True)

    def _set_trace(self, client: AsyncClient, on: bool) -> None:
        from ..protocol.trace import make_tracer

        client.trace = make_tracer(sys.stderr) if on else None
