"""One client connection on the server: the asyncio pump around a ``ServerProtocol``.

Bytes from the socket go into the connection's ``ServerProtocol``
(``rsh.protocol.server``), which owns its states (AUTH, READY, RUNNING, ...),
checks every frame against them and turns it into an event; this pump
loops over the events, hands each to its handler, and writes what the
protocol queued.  A frame that breaks the protocol, or comes in a state
where it has no meaning, gets an ``error`` frame and the connection is
closed; other connections never notice.

What the protocol cannot do without a clock or the system is here: the
authentication deadline and the fixed delay after a wrong token, the idle
limit, asking the ``Guard`` (``rsh.server.admission``) whether a command may
run, running it (``rsh.server.process``) or a transfer
(``rsh.server.transfers``), and the audit records.  Commands and transfers
reach the connection only through the ``Link`` it implements
(``rsh.server.link``); the connection reaches its server only through
``Host`` (``rsh.server.listener.Server`` is one).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ..errors import ProtocolError
from ..net.framed import FramedProtocol
from ..protocol.connection import NEED_DATA, Event, FrameEvent
from ..protocol.messages import ExecRequest, ExitStatus
from ..protocol.server import (
    Authenticated,
    AuthRejected,
    CompleteRequested,
    ExecRequested,
    GetRequested,
    OutputClosed,
    PutRequested,
    ServerProtocol,
    ServerState,
    SignalRequested,
    StdinReceived,
)
from ..transfer.messages import GetRequest, PutRequest
from ..version import __version__
from .admission import Slot
from .completion import complete_commands, complete_paths, complete_variables
from .exec_queue import QueuedCommand
from .fdwatch import FdWatcher
from .host import Host
from .idle import IdleWatch
from .live_shell import LiveShell
from .policy import CommandRefused
from .process import RunningCommand
from .shell_service import LIVE_EVENTS, ShellService, login_env
from .shell_state import ShellSession
from .spawn import SHELL, ChildEnv
from .transfers import GetHandler, PutHandler, TransferHandler

__all__ = ["Host", "ServerConnection"]


class ServerConnection(FramedProtocol):
    """One client connection (see the module docstring); the ``Link`` of its command or transfer.

    Args:
        host: the server that accepted it.
        slot: its claim on the server's limits (see ``rsh.server.admission.Gate``).
    """

    conn: ServerProtocol

    def __init__(self, host: Host, slot: Slot) -> None:
        config = host.config
        super().__init__(
            ServerProtocol(
                config.token,
                software=f"rsh/{__version__}",
                encoding=config.encoding,
                system=config.system,
                shell=SHELL,
                identity=config.identity,
                max_payload=config.max_payload,
            )
        )
        # Written to the command's pipe, or to the file being received, before the next read: no copy needed.
        self.conn.decoder.lend(("stdin", "data"))
        self.host = host
        #: Watches the command's pipes and exit (the server's, shared).
        self.watcher: FdWatcher = host.watcher
        self.config = config
        self.guard = host.guard
        self.slot = slot
        self.last_active = time.monotonic()
        self._idle_timer: IdleWatch | None = None
        self._command_audit: dict[str, Any] = {}
        #: What the connection is doing, when the protocol is RUNNING, RECEIVING or SENDING.
        self.command: RunningCommand | QueuedCommand | None = None
        self.transfer: TransferHandler | None = None
        self.peer = ("?", 0)
        self.base_env: Mapping[bytes, bytes] = {}
        # The prompt's cd/export state, made on its first session command.
        self.shell: ShellSession | None = None
        #: The live shell of a prompt session (``shell`` request), while it runs.
        self.live = ShellService(self, config.shell, allowed=not self.guard.policy)

    # -- the pump -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        local_port = int((transport.get_extra_info("sockname") or ("?", 0))[1])
        # Built once per connection, and as bytes, so that spawning a command
        # does not re-encode the whole environment every time.
        env = login_env(os.environb, self.config.shell)
        env[b"RSH_CLIENT"] = f"{self.peer[0]} {self.peer[1]} {local_port}".encode()
        self.base_env = ChildEnv(env)
        self.slot.on_deadline = self._auth_expired
        self.slot.occupant = self
        self.host.connections.add(self)
        self.flush()  # hello
        self.events_received()  # without a token: Authenticated

    def events_received(self) -> None:
        self.last_active = time.monotonic()
        conn = self.conn
        try:
            while not self.closed and (event := conn.next_event()) is not NEED_DATA:
                self._HANDLERS[type(event)](self, event)
        except ProtocolError as exc:
            self.protocol_error(exc)
            return
        self.flush()  # what the protocol answered by itself (auth_ok)

    def protocol_error(self, exc: ProtocolError) -> None:
        self.host.log(f"{self.peer[0]}:{self.peer[1]}: protocol error: {exc}")
        self.slot.end = exc.code
        # Closing brings connection_lost, which stops any running command.
        self._close(exc.code, exc.message)

    def closed_by_peer(self, exc: Exception | None) -> None:
        self.host.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        # No transport: a TLS handshake that failed, before hello went out.
        self.slot.release(self.conn.decoder.offset, self.conn.sent_bytes if self.transport is not None else 0)
        self.conn.close()
        command, self.command = self.command, None
        if command is not None:
            self._audit_command(aborted=True)
            command.abort()
            self.host.command_abandoned(command)
        transfer, self.transfer = self.transfer, None
        if transfer is not None:
            transfer.abort()
        shell = self.live.shell
        if shell is not None:
            self.live.abort()
            self.host.command_abandoned(shell)

    def write_resumed(self) -> None:
        if self.command is not None:
            self.command.resume_output()
        if self.transfer is not None:
            self.transfer.write_resumed()

    def shut_down(self) -> None:
        """The server is stopping: stop what this connection runs and close it."""
        self.slot.end = "server_stopped"
        self.closed_by_peer(None)
        self.close()

    def _close(self, code: str, message: str) -> None:
        """Say why, then close (whatever was queued before goes out first)."""
        self.conn.close(code, message)
        self.flush()
        self.close()

    # -- authentication and deadlines ---------------------------------------

    def _on_authenticated(self, event: Authenticated) -> None:
        self.slot.authenticated(self.config.user)
        if self.guard.limits.idle_timeout > 0:
            self._idle_timer = IdleWatch(self, self.guard.limits.idle_timeout)

    def _on_rejected(self, event: AuthRejected) -> None:
        self.host.log(f"{self.peer[0]}:{self.peer[1]}: authentication failed")
        # The same delay whatever was wrong, with nothing more read or
        # answered meanwhile: no timing oracle, and no fast guessing.
        self.slot.auth_failed()
        self.pause_input()
        asyncio.get_running_loop().call_later(self.guard.limits.auth_fail_delay, self._reject)

    def _reject(self) -> None:
        self.conn.fail_auth()
        self.flush()
        self.close()

    def _auth_expired(self) -> None:
        limit = self.guard.limits.auth_timeout
        self.host.log(f"{self.peer[0]}:{self.peer[1]}: not authenticated within {limit:g} s; closing")
        self._close("auth_timeout", f"not authenticated within {limit:g} s")

    # -- commands -----------------------------------------------------------

    def _on_exec(self, event: ExecRequested) -> None:
        request = event.request
        self.slot.commands += 1
        asked = request.command.decode("utf-8", "surrogateescape")
        cwd = request.cwd or (self._shell().cwd if request.session else self.config.home)
        self._command_audit = {"started": time.time(), "t0": time.monotonic(), "command": asked, "cwd": cwd, "bytes_in": 0}
        try:
            request, extra_env = self.guard.vet_command(request)
        except CommandRefused as exc:
            self.refuse_command(exc.code, exc.message)
            return
        if extra_env:
            self._command_audit["command"] = request.command.decode("utf-8", "surrogateescape")
            self._command_audit["original_command"] = asked
        session = self._shell() if request.session else None
        env = self.base_env
        if session is not None:
            env = {os.fsencode(k): os.fsencode(v) for k, v in session.env.items()}
        if request.env or extra_env:
            env = {**env, **{os.fsencode(k): os.fsencode(v) for k, v in (request.env or {}).items()}, **extra_env}
        # Past --max-commands it waits for a slot (rsh.server.exec_queue); the wait counts in its elapsed and timeout.
        t0, spawn = self._command_audit["t0"], functools.partial(self._spawn, request, env, session, self._command_audit["t0"])
        self.command = self.guard.queue.submit(self, spawn, timeout=request.timeout, encoding=request.encoding or self.config.encoding, t0=t0) or self.command

    def _spawn(self, request: ExecRequest, env: Mapping[bytes, bytes], session: ShellSession | None, t0: float) -> RunningCommand | None:
        try:
            command = RunningCommand(request, self, env=env, default_cwd=self.config.home, encoding=self.config.encoding, session=session, started=t0)
        except (OSError, ValueError) as exc:
            # ValueError: a NUL byte in the command or environment, which
            # no exec can carry.
            where = f" in {request.cwd}" if request.cwd else ""
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.refuse_command("spawn_failed", f"cannot run command{where}: {reason}")
            return None
        self.command = command
        self.host.command_started(command.pid)
        command.start()  # may finish it at once: see RunningCommand.start
        return command

    def refuse_command(self, code: str, message: str) -> None:
        self.command = None
        self._audit_command(refused=code)
        self.conn.refuse(code, message)
        self.flush()

    def _on_stdin(self, event: StdinReceived) -> None:
        command = self.command
        assert command is not None  # the protocol is RUNNING
        if event.data:
            self._command_audit["bytes_in"] += len(event.data)
            command.feed_stdin(event.data)
        if event.eof:
            command.close_stdin()

    def _on_signal(self, event: SignalRequested) -> None:
        if self.command is not None:
            self.command.signal(event.signum)
        else:
            self.live.on_signal(event.signum)

    def _on_closed(self, event: OutputClosed) -> None:
        if self.command is not None:
            self.command.close_output(event.stream)

    def _on_complete(self, event: CompleteRequested) -> None:
        shell = self._shell()
        items: list[str]
        if self.guard.policy:
            items = []  # restricted mode: no view of the server's commands or files
        elif event.kind == "variable" and self.live.shell is not None:
            self._complete_variables(event, self.live.shell)
            return
        elif event.kind == "command":
            items = complete_commands(event.prefix, shell.env.get("PATH", os.defpath))
        elif event.kind == "variable":
            items = []  # no live shell, no variables of its own to tell
        else:
            live = self.live.shell  # the prompt's live shell: where its last line left it
            items = complete_paths(event.prefix, live.cwd if live else shell.cwd, shell.env.get("HOME", self.config.home))
        self.send("completions", {"id": event.id, "items": items})

    def _complete_variables(self, event: CompleteRequested, live: LiveShell) -> None:
        """Answer with the live shell's own variables: it says them, a moment later."""
        live.list_variables(lambda names: self.send("completions", {"id": event.id, "items": complete_variables(names, event.prefix)}))

    def _shell(self) -> ShellSession:
        if self.shell is None:
            env = {os.fsdecode(k): os.fsdecode(v) for k, v in self.base_env.items()}
            self.shell = ShellSession(self.config.home, env)
        return self.shell

    def _audit_command(self, **outcome: object) -> None:
        """Write the command's audit record, with *outcome*."""
        record, self._command_audit = self._command_audit, {}
        log = self.guard.audit
        if record and log is not None:
            # Straight to the log, not through audit(): this runs after every command.
            started = record.pop("started")
            record["duration"] = round(time.monotonic() - record.pop("t0"), 6)
            log.write("command", started, conn=self.slot.id, peer=self.slot.peer_text, user=self.slot.user, **record, **outcome)

    # -- transfers ----------------------------------------------------------

    def _transfers_refused(self, event: str, request: PutRequest | GetRequest) -> bool:
        if self.guard.policy:
            # Restricted mode exposes commands, not the filesystem.
            self.audit(event, target=request.path, cwd=request.cwd, refused="not_allowed")
            self.conn.refuse("not_allowed", "file transfer is not allowed on this server (restricted mode)")
            self.flush()
            return True
        return False

    def _on_put(self, event: PutRequested) -> None:
        request = PutRequest.from_frame(event.frame)
        # Refused, the protocol drops the client's entries already on their
        # way behind the request, up to its end.
        if not self._transfers_refused("put", request):
            self.transfer = PutHandler(self, self.config.home, request)

    def _on_get(self, event: GetRequested) -> None:
        request = GetRequest.from_frame(event.frame)
        if not self._transfers_refused("get", request):
            handler = self.transfer = GetHandler(self, self.config.home, request)
            handler.start()

    def _on_transfer_frame(self, event: FrameEvent) -> None:
        transfer = self.transfer
        assert transfer is not None  # the protocol is RECEIVING or SENDING
        transfer.on_frame(event.frame)
        if self.conn.state is ServerState.READY:  # done, sent or received
            self.transfer = None

    _HANDLERS: ClassVar[dict[type[Event], Callable[[ServerConnection, Any], None]]] = {
        Authenticated: _on_authenticated,
        AuthRejected: _on_rejected,
        ExecRequested: _on_exec,
        StdinReceived: _on_stdin,
        SignalRequested: _on_signal,
        OutputClosed: _on_closed,
        CompleteRequested: _on_complete,
        PutRequested: _on_put,
        GetRequested: _on_get,
        FrameEvent: _on_transfer_frame,
        **dict.fromkeys(LIVE_EVENTS, lambda self, e: self.live.handle(e)),
    }

    # -- the Link of the command or transfer (rsh.server.link) ----------------

    @property
    def output_paused(self) -> bool:
        """The client is not keeping up, or is gone."""
        return self.writing_paused or self.closed

    def pause_input(self) -> None:
        """Stop reading the client."""
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_input(self) -> None:
        """Read the client again."""
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def audit(self, event: str, **fields: object) -> None:
        """Append a record about this connection to the audit log (if there is one).

        Time, connection number, peer and user are filled in; ``started``
        (a ``time.time()``) sets the record's time, else it is now.  A file
        transfer adds ``path``, ``size`` and ``sha256``, e.g.
        ``self.audit("put", started=t0, path=..., size=..., sha256=..., duration=...)``.
        """
        log = self.guard.audit
        if log is not None:
            started = fields.pop("started", None)
            log.write(
                event,
                started if isinstance(started, float) else time.time(),
                conn=self.slot.id,
                peer=self.slot.peer_text,
                user=self.slot.user,
                **fields,
            )

    def command_exited(self, status: ExitStatus) -> None:
        """The command is over: send its ``exit`` and audit it."""
        self.command = None
        self.send("exit", status.to_fields())
        self.last_active = time.monotonic()
        self._audit_command(
            exit_code=status.exit_code,
            signal=status.signal,
            timed_out=status.timed_out,
            bytes_out=status.stdout_bytes + status.stderr_bytes,
            stdout_bytes=status.stdout_bytes,
            stderr_bytes=status.stderr_bytes,
        )

    def command_reaped(self, pid: int) -> None:
        """The command's main process was reaped (after ``exit``, or after an abort)."""
        self.host.command_reaped(pid)
