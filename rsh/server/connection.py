"""The rsh server: accept connections, authenticate, run commands.

Each connection is a ``ServerConnection`` moving through these states::

    AUTH --auth ok--> READY --exec--> RUNNING --exit sent--> READY
                      READY --put---> RECEIVING --done sent--> READY
                                      (refused: its frames dropped --end--> READY)
                      READY --get---> SENDING --done received--> READY

Nothing runs before READY.  A frame that breaks the protocol, or comes in a
state where it has no meaning, gets an ``error`` frame and the connection is
closed; other connections never notice.

Before any of that, ``rsh.server.admission`` admits the connection (address, limits)
and, with TLS, completes the handshake; the connection then reports to its
``Slot`` (authenticated, failed, closed) and asks the ``Guard`` before it
runs a command.  A wrong ``auth`` moves to REJECTED, where everything is
ignored until the fixed delay has passed and ``auth_failed`` is sent.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import functools
import getpass
import locale
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..version import __version__

from ..protocol import auth
from ..errors import ProtocolError
from .fdwatch import FdWatcher
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, MESSAGE_TYPES, Frame
from .admission import Gate, Guard, Slot
from .policy import CommandRefused
from ..protocol.messages import PROTOCOL_VERSION, SIGNALS, ExecRequest, ExitStatus
from .process import KILL_GRACE, SHELL, RunningCommand
from .completion import complete_commands, complete_paths
from .shell_state import ShellSession
from ..net.tls import is_loopback
from ..transfer.rules import RECEIVER_TYPES, SENDER_TYPES, GetRequest, PutRequest
from .transfers import GetHandler, PutHandler, RefusedPut, TransferHandler
from ..net.legacy_framed import FramedProtocol

__all__ = ["Server", "ServerConnection", "is_loopback"]


class State(enum.Enum):
    AUTH = "auth"
    READY = "ready"
    RUNNING = "running"
    REJECTED = "rejected"
    RECEIVING = "receiving"  # a put: the client sends files
    SENDING = "sending"  # a get: the client receives files



def locale_encoding() -> str:
    """The server's default encoding: its locale's, by canonical codec name."""
    return codecs.lookup(locale.getencoding()).name


@dataclass
class ServerConfig:
    """What every connection of one server shares."""

    token: str | None
    encoding: str = field(default_factory=locale_encoding)
    max_payload: int = DEFAULT_MAX_PAYLOAD
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    #: The account commands run as: the audit log's ``user``.
    user: str = field(default_factory=getpass.getuser)
    #: user, host and home, for the prompt (sent once authenticated).
    identity: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.identity = {"user": self.user, "host": socket.gethostname(), "home": self.home}


class ServerConnection(FramedProtocol):
    """One client connection (see the module docstring for its states)."""

    def __init__(self, config: ServerConfig, server: Server, slot: Slot) -> None:
        super().__init__(max_payload=config.max_payload)
        self.config = config
        self.server = server
        self.guard = server.guard
        self.slot = slot
        self.last_active = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._command_audit: dict[str, object] = {}
        self.state = State.AUTH if config.token is not None else State.READY
        self.nonce = auth.new_nonce()
        self.command: RunningCommand | None = None
        self.transfer: TransferHandler | None = None
        self.peer = ("?", 0)
        self.local_port = 0
        self.base_env: dict[bytes, bytes] = {}
        # The prompt's cd/export state, made on its first session command.
        self.shell: ShellSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname") or ("?", 0)
        self.local_port = int(sock[1])
        # Built once per connection, and as bytes, so that spawning a command
        # does not re-encode the whole environment every time.
        self.base_env = dict(os.environb)
        self.base_env[b"RSH_CLIENT"] = f"{self.peer[0]} {self.peer[1]} {self.local_port}".encode()
        self.slot.on_deadline = self._auth_expired
        self.server.connections.add(self)
        self.send(
            "hello",
            {
                "version": PROTOCOL_VERSION,
                "server": f"rsh/{__version__}",
                "nonce": self.nonce,
                "auth": "hmac-sha256" if self.config.token is not None else "none",
                "encoding": self.config.encoding,
                "os": f"{platform.system()} {platform.release()}",
                "shell": SHELL,
                # Who and where commands run: said only after authentication,
                # or here when there is none.
                **(self.config.identity if self.config.token is None else {}),
            },
        )
        if self.state is State.READY:
            self._authenticated()

    def closed_by_peer(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self.slot.release(self.decoder.offset, self.sent_bytes)
        if self.command is not None:
            self._audit_command(aborted=True)
            self.command.abort()
            self.server.aborted.add(self.command)
            self.command.reaped.add_done_callback(functools.partial(_forget_aborted, self.server.aborted, self.command))
            self.command = None
        if self.transfer is not None:
            transfer, self.transfer = self.transfer, None
            transfer.abort()

    def protocol_error(self, exc: ProtocolError) -> None:
        self.server.log(f"{self.peer[0]}:{self.peer[1]}: protocol error: {exc}")
        self.slot.end = exc.code
        # Closing brings connection_lost, which stops any running command.
        self.send_error_and_close(exc)

    def write_resumed(self) -> None:
        if self.command is not None:
            self.command.resume_output()
        if self.transfer is not None:
            self.transfer.write_resumed()

    # -- dispatch -----------------------------------------------------------

    def frame_received(self, frame: Frame) -> None:
        self.last_active = time.monotonic()
        try:
            handler = self._handlers[self.state].get(frame.type)
            if handler is None:
                raise ProtocolError(f"{frame.type!r} frame not allowed while {self.state.value}", code="unexpected_frame")
            handler(self, frame)
        except ProtocolError as exc:
            self.protocol_error(exc)

    def _on_auth(self, frame: Frame) -> None:
        assert self.config.token is not None
        client_nonce, mac = frame.get("nonce"), frame.get("mac")
        if not isinstance(client_nonce, str) or not 16 <= len(client_nonce) <= 256:
            raise ProtocolError("auth frame: 'nonce' must be a string of 16 to 256 characters", code="bad_field")
        expected = auth.client_mac(self.config.token, self.nonce, client_nonce)
        if not auth.macs_equal(mac, expected):
            self.server.log(f"{self.peer[0]}:{self.peer[1]}: authentication failed")
            # The same delay whatever was wrong, with nothing more read or
            # answered meanwhile: no timing oracle, and no fast guessing.
            self.state = State.REJECTED
            self.slot.auth_failed()
            assert self.transport is not None
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(self.guard.limits.auth_fail_delay, self._reject)
            return
        self.state = State.READY
        self.send("auth_ok", {"mac": auth.server_mac(self.config.token, self.nonce, client_nonce), **self.config.identity})
        self._authenticated()

    def _reject(self) -> None:
        self.send("error", {"code": "auth_failed", "message": "authentication failed: wrong token"})
        self.close()

    def _auth_expired(self) -> None:
        limit = self.guard.limits.auth_timeout
        self.server.log(f"{self.peer[0]}:{self.peer[1]}: not authenticated within {limit:g} s; closing")
        self.send("error", {"code": "auth_timeout", "message": f"not authenticated within {limit:g} s"})
        self.close()

    def _authenticated(self) -> None:
        self.slot.authenticated(self.config.user)
        if self.guard.limits.idle_timeout > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(self.guard.limits.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        limit = self.guard.limits.idle_timeout
        idle = time.monotonic() - self.last_active
        if self.command is None and idle >= limit:
            self.slot.end = "idle_timeout"
            self.send("error", {"code": "idle_timeout", "message": f"closed after {limit:g} s idle"})
            self.close()
            return
        self._idle_timer = asyncio.get_running_loop().call_later(limit if self.command is not None else limit - idle, self._idle_check)

    def audit(self, event: str, **fields: object) -> None:
        """Append a record about this connection to the audit log (if there is one).

        Time, connection number, peer and user are filled in; ``started``
        (a ``time.time()``) sets the record's time, else it is now.  A file
        transfer adds ``path``, ``size`` and ``sha256``, e.g.
        ``self.audit("put", started=t0, path=..., size=..., sha256=..., duration=...)``.
        """
        if self.guard.audit is not None:
            started = fields.pop("started", None)
            self.guard.audit.write(
                event,
                started if isinstance(started, float) else time.time(),
                conn=self.slot.id,
                peer=self.slot.peer_text,
                user=self.slot.user,
                **fields,
            )

    def _audit_command(self, **outcome: object) -> None:
        record, self._command_audit = self._command_audit, {}
        if record:
            record["duration"] = round(time.monotonic() - record.pop("t0"), 6)  # type: ignore[operator]
            self.audit("command", **record, **outcome)

    def _shell(self) -> ShellSession:
        if self.shell is None:
            env = {os.fsdecode(k): os.fsdecode(v) for k, v in self.base_env.items()}
            self.shell = ShellSession(self.config.home, env)
        return self.shell

    def _on_exec(self, frame: Frame) -> None:
        request = ExecRequest.from_frame(frame)
        self.slot.commands += 1
        asked = request.command.decode("utf-8", "surrogateescape")
        self._command_audit = {"started": time.time(), "t0": time.monotonic(), "command": asked, "cwd": request.cwd or (self._shell().cwd if request.session else self.config.home), "bytes_in": 0}
        try:
            request, extra_env = self.guard.vet_command(request)
        except CommandRefused as exc:
            self._audit_command(refused=exc.code)
            self.send("error", {"code": exc.code, "message": exc.message})
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
        transport = self.transport
        assert transport is not None
        try:
            self.command = RunningCommand(
                request,
                env=env,
                default_cwd=self.config.home,
                encoding=self.config.encoding,
                send_output=self._send_output,
                output_paused=lambda: self.writing_paused,
                cork=self.cork,
                uncork=self.uncork,
                pause_input=transport.pause_reading,
                resume_input=transport.resume_reading,
                on_exit=self._command_exited,
                watcher=self.server.watcher,
                on_reaped=self._command_reaped,
                session=session,
            )
        except (OSError, ValueError) as exc:
            # ValueError: a NUL byte in the command or environment, which
            # no exec can carry.
            where = f" in {request.cwd}" if request.cwd else ""
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._audit_command(refused="spawn_failed")
            self.send("error", {"code": "spawn_failed", "message": f"cannot run command{where}: {reason}"})
            return
        self.state = State.RUNNING
        if self.server.kill_leftovers:
            self.server.groups.add(self.command.pid)
        self.guard.running += 1
        self.command.start()  # may finish it at once: see RunningCommand.start

    def _command_reaped(self, pgid: int) -> None:
        self.guard.running -= 1
        groups = self.server.groups
        if pgid in groups:
            # Forget a group with nothing left in it: the set would grow by
            # one per command for as long as the prompt runs, and a group's
            # number, once free, may be taken by someone else's group.
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                groups.discard(pgid)
            except PermissionError:
                pass

    def _send_output(self, stream: str, data: bytes | memoryview) -> None:
        self.send(stream, None, data)

    def _command_exited(self, status: ExitStatus) -> None:
        self.command = None
        self.state = State.READY
        self.last_active = time.monotonic()
        self.send("exit", status.to_fields())
        self._audit_command(
            exit_code=status.exit_code,
            signal=status.signal,
            timed_out=status.timed_out,
            bytes_out=status.stdout_bytes + status.stderr_bytes,
            stdout_bytes=status.stdout_bytes,
            stderr_bytes=status.stderr_bytes,
        )

    def _on_stdin(self, frame: Frame) -> None:
        eof = frame.get("eof", False)
        if not isinstance(eof, bool):
            raise ProtocolError("stdin frame: 'eof' must be true or false", code="bad_field")
        if self.command is None:
            return
        if frame.payload:
            self._command_audit["bytes_in"] += len(frame.payload)  # type: ignore[operator]
            self.command.feed_stdin(frame.payload)
        if eof:
            self.command.close_stdin()

    def _on_signal(self, frame: Frame) -> None:
        name = frame.get("signal")
        if name not in SIGNALS:
            raise ProtocolError(f"signal frame: unknown signal {name!r} (one of {', '.join(SIGNALS)})", code="bad_field")
        if self.command is not None:
            self.command.signal(SIGNALS[name])

    def _on_complete(self, frame: Frame) -> None:
        kind, prefix, req_id = frame.get("kind"), frame.get("prefix", ""), frame.get("id", 0)
        if kind not in ("command", "path") or not isinstance(prefix, str) or not isinstance(req_id, int):
            raise ProtocolError("complete frame: 'kind' must be command or path, 'prefix' a string, 'id' an integer", code="bad_field")
        shell = self._shell()
        items: list[str]
        if self.guard.policy:
            items = []  # restricted mode: no view of the server's commands or files
        elif kind == "command":
            items = complete_commands(prefix, shell.env.get("PATH", os.defpath))
        else:
            items = complete_paths(prefix, shell.cwd, shell.env.get("HOME", self.config.home))
        self.send("completions", {"id": req_id, "items": items})

    def _ignore(self, frame: Frame) -> None:
        # stdin or signal racing the exit of the command they were meant for.
        pass

    def _transfers_refused(self, event: str, request: PutRequest | GetRequest) -> bool:
        if self.guard.policy:
            # Restricted mode exposes commands, not the filesystem.
            self.audit(event, target=request.path, cwd=request.cwd, refused="not_allowed")
            self.send("error", {"code": "not_allowed", "message": "file transfer is not allowed on this server (restricted mode)"})
            return True
        return False

    def _on_put(self, frame: Frame) -> None:
        request = PutRequest.from_frame(frame)
        # Refused or not, the client's entries are already on their way behind
        # the request: a refused put reads them (and drops them) up to its end.
        self.transfer = RefusedPut() if self._transfers_refused("put", request) else PutHandler(self, request)
        self.state = State.RECEIVING

    def _on_get(self, frame: Frame) -> None:
        request = GetRequest.from_frame(frame)
        if self._transfers_refused("get", request):
            return
        handler = GetHandler(self, request)
        self.transfer = handler
        self.state = State.SENDING
        handler.start()

    def _on_transfer_frame(self, frame: Frame) -> None:
        transfer = self.transfer
        assert transfer is not None
        transfer.on_frame(frame)
        if transfer.finished and self.transfer is transfer:
            self.transfer = None
            self.state = State.READY

    _handlers: dict[State, dict[str, Callable[[ServerConnection, Frame], None]]] = {
        State.AUTH: {"auth": _on_auth},
        State.READY: {"exec": _on_exec, "complete": _on_complete, "put": _on_put, "get": _on_get, "stdin": _ignore, "signal": _ignore},
        State.RUNNING: {"stdin": _on_stdin, "signal": _on_signal},
        State.REJECTED: dict.fromkeys(MESSAGE_TYPES, _ignore),
        # One transfer at a time, never beside a command: the transfer's own
        # frames, and nothing else, until it is over.
        State.RECEIVING: dict.fromkeys(SENDER_TYPES, _on_transfer_frame),
        State.SENDING: dict.fromkeys(RECEIVER_TYPES, _on_transfer_frame),
    }


def _forget_aborted(aborted: set[RunningCommand], command: RunningCommand, _: object) -> None:
    aborted.discard(command)


async def _end_groups(groups: set[int]) -> None:
    """TERM every process group still there, then KILL what is left after a grace period."""
    import signal as _signal

    def send(sig: int) -> set[int]:
        alive = set()
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
                alive.add(pgid)
            except (ProcessLookupError, PermissionError):
                pass
        return alive

    groups = send(_signal.SIGTERM)
    deadline = asyncio.get_running_loop().time() + KILL_GRACE
    while groups and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        groups = send(0)
    send(_signal.SIGKILL)


class Server:
    """A listening rsh server.

    Args:
        host: address to bind (loopback by default).
        port: TCP port; 0 picks a free one (read it back from ``port``).
        token: the shared secret, or None to run without authentication.
        log: where one-line notices go (stderr by default).
        guard: admission, limits, TLS, restricted mode and audit (see
            ``rsh.server.admission``); the default has the default limits, plain TCP,
            no restrictions and no audit log.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        encoding: str | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        log: Callable[[str], None] | None = None,
        kill_leftovers: bool = False,
        guard: Guard | None = None,
    ) -> None:
        self.host = host
        #: On close, also end what commands left running in the background
        #: (``sleep 100 &``): for the private server of ``rsh`` alone.
        self.kill_leftovers = kill_leftovers
        self.groups: set[int] = set()
        self.port = port
        self.config = ServerConfig(token=token, max_payload=max_payload)
        if encoding is not None:
            self.config.encoding = codecs.lookup(encoding).name
        self.connections: set[ServerConnection] = set()
        # Commands of closed connections whose process is not yet reaped.
        self.aborted: set[RunningCommand] = set()
        self._log = log
        self._server: asyncio.Server | None = None
        self._watcher: FdWatcher | None = None
        self.guard = guard or Guard()
        self.guard.log = self.log

    def log(self, message: str) -> None:
        """Write a one-line notice."""
        if self._log is not None:
            self._log(message)
        else:
            print(f"rsh: {message}", file=sys.stderr, flush=True)

    @property
    def watcher(self) -> FdWatcher:
        """Watches every command's pipes and exit, for all connections."""
        if self._watcher is None:
            self._watcher = FdWatcher()
        return self._watcher

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Gate(self.guard, lambda slot: ServerConnection(self.config, self, slot)), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        """``HOST:PORT`` as a client would name it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def serve_forever(self) -> None:
        """Serve until cancelled, then close."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, drop every connection and stop its command."""
        if self._server is not None:
            self._server.close()
        self.guard.close()
        for conn in list(self.connections):
            conn.slot.end = "server_stopped"
            conn.closed_by_peer(None)
            conn.close()
        # Let TERM, then KILL, take effect so no command outlives the server.
        if self.aborted:
            await asyncio.wait([c.reaped for c in self.aborted], timeout=KILL_GRACE + 1)
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self.kill_leftovers:
            await _end_groups(self.groups)
        if self._server is not None:
            await self._server.wait_closed()
        if self.guard.audit is not None:
            self.guard.audit.flush()
