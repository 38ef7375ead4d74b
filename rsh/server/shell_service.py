"""A connection's live shell, from its ``shell`` request to its ``exit``: the handlers the connection delegates to.

``rsh.server.connection`` hands every live-shell event here: the ``shell``
request (start the user's login shell on a terminal, ``rsh.server.live_shell``),
``line``, ``input``, ``resize``, ``signal`` and ``check``.  Answers go out
through the connection, which is this shell's ``ShellLink``.

``check`` asks the shell itself, not a guess in Python, whether a text is
complete input: ``SHELL -n`` reads it without running it.  A text is
incomplete when the shell's complaint is about the end of its input (an
open quote, an ``if`` without ``fi``, a heredoc without its end) or when a
``;`` on a line after it is taken into its last line (a trailing ``\\``).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from ..protocol.connection import Event
from ..protocol.messages import ExitStatus
from ..protocol.server import CheckRequested, InputReceived, LineRequested, ResizeRequested, ServerProtocol, ShellRequested
from .fdwatch import FdWatcher
from .live_shell import LiveShell
from .shell_driver import driver_for

__all__ = ["LIVE_EVENTS", "ShellOwner", "ShellService", "login_env"]

#: The events of a live shell: the connection hands them to ``ShellService.handle``.
LIVE_EVENTS = (ShellRequested, LineRequested, InputReceived, ResizeRequested, CheckRequested)

# How shells say that what they read ended too soon.
_AT_END = re.compile(rb"end of file|unexpected EOF|[Uu]nterminated|here-document")
#: sshd's PATH (Debian's build of OpenSSH) for a server started without one.
USER_PATH = b"/usr/local/bin:/usr/bin:/bin:/usr/games"
ROOT_PATH = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Where MAIL points, as sshd sets it.
MAIL_DIR = "/var/mail"
#: Longest a completeness check may take before the text is taken as complete.
CHECK_TIMEOUT = 2.0


class _Counter(Protocol):
    def command_started(self, pid: int) -> None: ...

    def command_reaped(self, pid: int) -> None: ...


class ShellOwner(Protocol):
    """The connection, as its live shell sees it."""

    conn: ServerProtocol
    base_env: Mapping[bytes, bytes]

    @property
    def watcher(self) -> FdWatcher: ...

    @property
    def output_paused(self) -> bool: ...

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes | memoryview = b"") -> None: ...

    def flush(self) -> None: ...

    def pause_input(self) -> None: ...

    def resume_input(self) -> None: ...

    def audit(self, event: str, **fields: object) -> None: ...

    @property
    def host(self) -> _Counter: ...


def login_env(base: Mapping[bytes, bytes], shell: str, term: str | None = None) -> dict[bytes, bytes]:
    """*base* with what a login sets, as sshd does, and the client's TERM if given.

    USER, LOGNAME, HOME and MAIL come from the passwd entry, SHELL is the
    server's shell; PATH is *base*'s when it has one (the server runs as
    its one user, so its PATH is that user's, a venv's for instance) and
    sshd's default otherwise, so that a server started with ``env -i``
    still gives its commands one.  The server's own PWD and OLDPWD are not
    a login's: ``cd -`` in a fresh session says OLDPWD is not set, as it
    does after ssh.
    """
    env = {k: v for k, v in base.items() if k not in (b"PWD", b"OLDPWD")}
    try:
        entry = pwd.getpwuid(os.getuid())
        env[b"USER"] = env[b"LOGNAME"] = os.fsencode(entry.pw_name)
        env[b"HOME"] = os.fsencode(entry.pw_dir)
        env[b"MAIL"] = os.fsencode(os.path.join(MAIL_DIR, entry.pw_name))
    except KeyError:
        pass
    env[b"SHELL"] = os.fsencode(shell)
    if not env.get(b"PATH"):
        env[b"PATH"] = ROOT_PATH if os.getuid() == 0 else USER_PATH
    if term is not None:
        env[b"TERM"] = term.encode()
    return env


class ShellService:
    """Starts and runs one connection's live shell (see the module docstring).

    Args:
        owner: the connection.
        shell: the login shell to start.
        allowed: whether the server lets clients have a shell at all (not in restricted mode).
    """

    def __init__(self, owner: ShellOwner, shell: str, *, allowed: bool) -> None:
        # Weak: the connection holds this service, and a cycle would keep it
        # (and its buffers) until the next full garbage collection.
        self._owner_ref = weakref.ref(owner)
        self._shell_path = shell
        self._allowed = allowed
        self.shell: LiveShell | None = None

    @property
    def _owner(self) -> ShellOwner:
        owner = self._owner_ref()
        assert owner is not None  # the connection outlives the events it hands here
        return owner

    def handle(self, event: Event) -> None:
        """Act on one of the live shell's events."""
        self._HANDLERS[type(event)](self, event)

    def on_shell(self, event: ShellRequested) -> None:
        """Start the shell and answer ``shell_ok``, or refuse."""
        owner = self._owner
        if not self._allowed:
            owner.conn.refuse("not_allowed", "this server runs only the commands it allows; it gives no shell (restricted mode)")
            owner.flush()
            return
        driver = driver_for(self._shell_path)
        env = login_env(owner.base_env, driver.name, event.request.term)
        try:
            self.shell = LiveShell(_Link(self), driver, env, event.request)
        except OSError as exc:
            owner.conn.refuse("spawn_failed", f"cannot start the shell {driver.name}: {exc.strerror or exc}")
            owner.flush()
            return
        owner.host.command_started(self.shell.pid)  # a shell counts as a command running
        owner.send("shell_ok", {"shell": driver.name, "pid": self.shell.pid})
        owner.audit("shell", shell=driver.name, term=event.request.term)

    def on_line(self, event: LineRequested) -> None:
        shell = self.shell
        assert shell is not None  # the protocol is SHELL
        if event.eof:
            shell.finish()
        else:
            shell.submit(event.text, pipe=event.pipe)

    def on_input(self, event: InputReceived) -> None:
        if self.shell is not None:
            self.shell.feed(event.data)

    def on_resize(self, event: ResizeRequested) -> None:
        if self.shell is not None:
            self.shell.resize(event.rows, event.cols)

    def on_signal(self, signum: int) -> None:
        if self.shell is not None:
            self.shell.signal(signum)

    def on_check(self, event: CheckRequested) -> None:
        asyncio.get_running_loop().create_task(self._check(event))

    async def _check(self, event: CheckRequested) -> None:
        driver = self.shell.driver if self.shell is not None else driver_for(self._shell_path)
        argv = driver.check_argv()
        complete = True
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                status, errors = await _parse(argv, event.text)
                if _AT_END.search(errors):
                    complete = False
                elif status == 0:
                    # A trailing backslash joins the next line to the last: the shell then takes a lone ";" in.
                    joined, _ = await _parse(argv, event.text + b"\n;")
                    complete = joined != 0
        except (OSError, TimeoutError):
            pass
        if self._owner.conn.state.value in ("shell", "line"):
            self._owner.send("checked", {"id": event.id, "complete": complete})
            self._owner.flush()

    _HANDLERS: ClassVar[dict[type[Event], Callable[[ShellService, Any], None]]] = {
        ShellRequested: on_shell,
        LineRequested: on_line,
        InputReceived: on_input,
        ResizeRequested: on_resize,
        CheckRequested: on_check,
    }

    def abort(self) -> None:
        """The connection is gone: hang the shell up."""
        shell, self.shell = self.shell, None
        if shell is not None:
            shell.abort()


async def _parse(argv: list[str], text: bytes) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True
    )
    try:
        _, errors = await proc.communicate(text + b"\n")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, errors


class _Link:
    """The live shell's ``ShellLink``: the connection, and its service for the shell's end."""

    def __init__(self, service: ShellService) -> None:
        self._service = service
        self._owner = service._owner

    @property
    def watcher(self) -> FdWatcher:
        return self._owner.watcher

    @property
    def output_paused(self) -> bool:
        return self._owner.output_paused

    def send(self, type: str, fields: dict[str, object] | None = None, payload: bytes | memoryview = b"") -> None:
        self._owner.send(type, fields, payload)

    def pause_input(self) -> None:
        self._owner.pause_input()

    def resume_input(self) -> None:
        self._owner.resume_input()

    def shell_line_ended(self, status: int, cwd: str) -> None:
        if self._owner.conn.state.value == "line":
            self._owner.send("line_end", {"status": status, "cwd": cwd})
            self._owner.flush()

    def shell_exited(self, status: ExitStatus) -> None:
        shell, self._service.shell = self._service.shell, None
        fields = status.to_fields()
        del fields["stdout_bytes"], fields["stderr_bytes"], fields["encoding"]
        self._owner.send("exit", fields)
        self._owner.flush()
        if shell is not None:
            self._owner.host.command_reaped(shell.pid)
