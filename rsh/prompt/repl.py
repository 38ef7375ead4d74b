"""The interactive prompt: read a line, run it remotely, show its output live.

``Repl.run()`` is the loop.  Each line is either one of the prompt's own
``:commands`` (rsh.prompt.commands) or a shell command, which runs in the
connection's shell session so that ``cd`` and ``export`` persist.  Output
is written as it arrives (rsh.prompt.output).  Ctrl-C while a command runs
interrupts it on the remote host; at the prompt it clears the line.  A
dropped connection is reported in one line with an offer to reconnect, and
the new session picks up the old one's directory and exports.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.styles import Style

from ..client.aio import AsyncClient
from ..config import state_dir
from ..errors import RemoteError, RshConnectionError, RshError
from ..results import signal_name
from . import commands
from .completion import RshCompleter
from .exports import restore_script
from .output import Output, show

__all__ = ["Repl", "history_file", "INTERRUPT_GRACE"]

#: After Ctrl-C sends INT, how long a command may take to end before KILL,
#: so the prompt is back within a second even if the command ignores INT.
INTERRUPT_GRACE = 1.0

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


class Repl:
    """One interactive session against one server.

    Args:
        connect: makes a fresh authenticated client (called again to reconnect).
        label: how to name the server in messages (``HOST:PORT``).
        vi: Vi key bindings instead of Emacs ones.
        history: the history file (None: in memory only).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[AsyncClient]],
        *,
        label: str,
        vi: bool = False,
        history: Path | None = None,
        trace: bool = False,
    ) -> None:
        self._connect = connect
        self.label = label
        self.vi = vi
        self.history = history
        self.client: AsyncClient | None = None
        self.cwd = "~"
        #: What export/unset changed in the session, to redo after a reconnect.
        self.exports: dict[str, str | None] = {}
        self.last_status = 0
        self.pinned_encoding: str | None = None
        self.trace = trace
        self._out = Output()

    # -- the loop -------------------------------------------------------------

    async def run(self) -> int:
        """Run until :exit, ``exit [N]`` or Ctrl-D; return the exit status for the program (the last command's, unless N)."""
        self.client = await self._connect()
        self._adopt(self.client)
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(self.history)) if self.history else None,
            auto_suggest=AutoSuggestFromHistory(),
            completer=RshCompleter(self._complete),
            complete_while_typing=False,
            vi_mode=self.vi,
            style=_STYLE,
        )
        while True:
            self._out.end_line()
            try:
                line = await session.prompt_async(self._message)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt: a fresh line
            except EOFError:
                break
            if not line.strip():
                continue
            leave = commands.leave_status(line, self.last_status)
            if leave is not None:
                # Each command has a shell of its own, so `exit` there would
                # end only itself: take it as the person means it.
                await self.client.close()
                return leave
            try:
                if not await self._handle(line):
                    break
            except RshConnectionError as exc:
                self._out.error(f"connection to {self.label} lost ({exc}); that line was not run")
                if not await self._offer_reconnect():
                    return 255
            except RshError as exc:
                self._out.error(str(exc))
        await self.client.close()
        return self.last_status & 0xFF  # Ctrl-D and :exit leave as a shell does on EOF

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

    def _adopt(self, client: AsyncClient) -> None:
        self.cwd = client.server_info.get("home", self.cwd)
        if self.trace:
            self._set_trace(client, True)

    async def _complete(self, kind: str, prefix: str) -> list[str]:
        assert self.client is not None
        return await self.client.complete(kind, prefix)

    async def _offer_reconnect(self) -> bool:
        answer_session: PromptSession[str] = PromptSession()
        while True:
            try:
                answer = await answer_session.prompt_async(f"Reconnect to {self.label}? [Y/n] ")
            except (EOFError, KeyboardInterrupt):
                return False
            if answer.strip().lower() in ("n", "no"):
                return False
            cwd, exports = self.cwd, self.exports
            try:
                self.client = await self._connect()
            except RshError as exc:
                self._out.error(str(exc))
                continue
            self._adopt(self.client)
            # Pick up where the lost session was: its directory, if still
            # there, and what it exported or unset.
            restore = "; ".join(filter(None, [f"cd -- {_quote(cwd)}", restore_script(exports)]))
            try:
                await self._run(restore, quiet=True)
            except RshError:
                pass
            return True

    # -- one line -------------------------------------------------------------

    async def _handle(self, line: str) -> bool:
        """Run one line; False means leave."""
        try:
            builtin = commands.parse(line)
        except commands.CommandLineError as exc:
            self._out.error(str(exc))
            return True
        if builtin is not None:
            return await self._builtin(builtin)
        program = commands.needs_terminal(line)
        if program is not None:
            self._out.error(f"{program} needs a terminal, and rsh has no pseudo-terminal mode yet (commands here read an empty stdin)")
            self.last_status = 1
            return True
        await self._run(line)
        return True

    async def _builtin(self, b: commands.Builtin) -> bool:
        if b.name == "exit":
            return False
        if b.name == "help":
            print(commands.help_text(), flush=True)
        elif b.name == "encoding":
            self._encoding(b.args)
        elif b.name == "trace":
            if b.args not in ((), ("on",), ("off",)):
                self._out.error("usage: :trace on|off")
                return True
            if b.args:
                self.trace = b.args[0] == "on"
                assert self.client is not None
                self._set_trace(self.client, self.trace)
            print(f"trace is {'on: frames are shown on stderr' if self.trace else 'off'}", flush=True)
        else:
            from .transfers import copy  # only for a transfer: the progress bar and the rest

            assert self.client is not None
            self.last_status = await copy(self.client, b, self.cwd, self._out)
        return True

    def _encoding(self, args: tuple[str, ...]) -> None:
        assert self.client is not None
        server = self.client.server_info.get("encoding", "utf-8")
        if not args:
            if self.pinned_encoding:
                print(f"output decoded as {self.pinned_encoding} (pinned; :encoding auto to undo)", flush=True)
            else:
                print(f"output decoded as {server}, the server's, switching if it is clearly another", flush=True)
            return
        if args[0] == "auto":
            self.pinned_encoding = None
            return
        try:
            self.pinned_encoding = codecs.lookup(args[0]).name
        except LookupError:
            self._out.error(f"unknown encoding {args[0]!r}")

    def _set_trace(self, client: AsyncClient, on: bool) -> None:
        from ..protocol.trace import make_tracer

        client.trace = make_tracer(sys.stderr) if on else None

    async def _run(self, line: str, *, quiet: bool = False) -> None:
        assert self.client is not None
        cmd = await self.client.start(line, session=True)
        loop = asyncio.get_running_loop()
        killer: asyncio.TimerHandle | None = None

        def interrupt() -> None:
            nonlocal killer
            cmd.send_signal("INT")
            if killer is None:
                killer = loop.call_later(INTERRUPT_GRACE, cmd.send_signal, "KILL")

        pinned = self.pinned_encoding
        encoding = pinned or self.client.server_info.get("encoding", "utf-8")
        loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            await show(cmd, self._out, encoding=encoding, pinned=pinned is not None, quiet=quiet)
        except RemoteError as exc:
            self._out.error(str(exc))
            self.last_status = 1
            return
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            if killer is not None:
                killer.cancel()
        status = cmd.status
        assert status is not None
        if status.cwd:
            self.cwd = status.cwd
        if status.exports is not None:
            self.exports = status.exports
        if status.signal is not None:
            self.last_status = 128 + status.signal
            if not quiet:
                why = "interrupted" if killer is not None else "killed"
                self._out.error(f"{why} ({signal_name(status.signal)})")
        else:
            self.last_status = status.exit_code or 0


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)
