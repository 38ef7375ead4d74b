"""The rsh server: accept connections, authenticate, run commands.

Each connection is a ``ServerConnection`` moving through these states::

    AUTH --auth ok--> READY --exec--> RUNNING --exit sent--> READY
                      READY --put---> RECEIVING --done sent--> READY
                      READY --get---> SENDING --done received--> READY

Nothing runs before READY.  A frame that breaks the protocol, or comes in a
state where it has no meaning, gets an ``error`` frame and the connection is
closed; other connections never notice.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import locale
import os
import platform
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from . import __version__, auth
from .errors import ProtocolError
from .frames import DEFAULT_MAX_PAYLOAD, Frame
from .messages import PROTOCOL_VERSION, SIGNALS, ExecRequest, ExitStatus
from .process import KILL_GRACE, SHELL, RunningCommand
from .transfer import RECEIVER_TYPES, SENDER_TYPES, GetRequest, PutRequest
from .transfer_server import GetHandler, PutHandler, TransferHandler
from .transport import FramedProtocol

__all__ = ["Server", "ServerConnection", "is_loopback"]


class State(enum.Enum):
    AUTH = "auth"
    READY = "ready"
    RUNNING = "running"
    RECEIVING = "receiving"  # a put: the client sends files
    SENDING = "sending"  # a get: the client receives files


def is_loopback(host: str) -> bool:
    """True when *host* resolves only to loopback addresses."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


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


class ServerConnection(FramedProtocol):
    """One client connection (see the module docstring for its states)."""

    def __init__(self, config: ServerConfig, server: Server) -> None:
        super().__init__(max_payload=config.max_payload)
        self.config = config
        self.server = server
        self.state = State.AUTH if config.token is not None else State.READY
        self.nonce = auth.new_nonce()
        self.command: RunningCommand | None = None
        self.transfer: TransferHandler | None = None
        self.peer = ("?", 0)
        self.local_port = 0
        self.base_env: dict[bytes, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname") or ("?", 0)
        self.local_port = int(sock[1])
        # Built once per connection, and as bytes, so that spawning a command
        # does not re-encode the whole environment every time.
        self.base_env: dict[bytes, bytes] = dict(os.environb)
        self.base_env[b"RSH_CLIENT"] = f"{self.peer[0]} {self.peer[1]} {self.local_port}".encode()
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
            },
        )

    def closed_by_peer(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.command is not None:
            self.command.abort()
            self.server.aborted.add(self.command)
            self.command.reaped.add_done_callback(lambda _f, c=self.command: self.server.aborted.discard(c))
            self.command = None
        if self.transfer is not None:
            transfer, self.transfer = self.transfer, None
            transfer.abort()

    def protocol_error(self, exc: ProtocolError) -> None:
        self.server.log(f"{self.peer[0]}:{self.peer[1]}: protocol error: {exc}")
        # Closing brings connection_lost, which stops any running command.
        self.send_error_and_close(exc)

    def write_resumed(self) -> None:
        if self.command is not None:
            self.command.resume_output()
        if self.transfer is not None:
            self.transfer.write_resumed()

    # -- dispatch -----------------------------------------------------------

    def frame_received(self, frame: Frame) -> None:
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
            self.send("error", {"code": "auth_failed", "message": "authentication failed: wrong token"})
            self.close()
            return
        self.state = State.READY
        self.send("auth_ok", {"mac": auth.server_mac(self.config.token, self.nonce, client_nonce)})

    def _on_exec(self, frame: Frame) -> None:
        request = ExecRequest.from_frame(frame)
        env = self.base_env
        if request.env:
            env = {**env, **{os.fsencode(k): os.fsencode(v) for k, v in request.env.items()}}
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
            )
        except OSError as exc:
            where = f" in {request.cwd}" if request.cwd else ""
            self.send("error", {"code": "spawn_failed", "message": f"cannot run command{where}: {exc.strerror or exc}"})
            return
        self.state = State.RUNNING

    def _send_output(self, stream: str, data: bytes) -> None:
        self.send(stream, None, data)

    def _command_exited(self, status: ExitStatus) -> None:
        self.command = None
        self.state = State.READY
        self.send("exit", status.to_fields())

    def _on_stdin(self, frame: Frame) -> None:
        eof = frame.get("eof", False)
        if not isinstance(eof, bool):
            raise ProtocolError("stdin frame: 'eof' must be true or false", code="bad_field")
        if self.command is None:
            return
        if frame.payload:
            self.command.feed_stdin(frame.payload)
        if eof:
            self.command.close_stdin()

    def _on_signal(self, frame: Frame) -> None:
        name = frame.get("signal")
        if name not in SIGNALS:
            raise ProtocolError(f"signal frame: unknown signal {name!r} (one of {', '.join(SIGNALS)})", code="bad_field")
        if self.command is not None:
            self.command.signal(SIGNALS[name])

    def _ignore(self, frame: Frame) -> None:
        # stdin or signal racing the exit of the command they were meant for.
        pass

    def _on_put(self, frame: Frame) -> None:
        self.transfer = PutHandler(self, PutRequest.from_frame(frame))
        self.state = State.RECEIVING

    def _on_get(self, frame: Frame) -> None:
        handler = GetHandler(self, GetRequest.from_frame(frame))
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
        State.READY: {"exec": _on_exec, "put": _on_put, "get": _on_get, "stdin": _ignore, "signal": _ignore},
        State.RUNNING: {"stdin": _on_stdin, "signal": _on_signal},
        # One transfer at a time, never beside a command: the transfer's own
        # frames, and nothing else, until it is over.
        State.RECEIVING: dict.fromkeys(SENDER_TYPES, _on_transfer_frame),
        State.SENDING: dict.fromkeys(RECEIVER_TYPES, _on_transfer_frame),
    }


class Server:
    """A listening rsh server.

    Args:
        host: address to bind (loopback by default).
        port: TCP port; 0 picks a free one (read it back from ``port``).
        token: the shared secret, or None to run without authentication.
        log: where one-line notices go (stderr by default).
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
    ) -> None:
        self.host = host
        self.port = port
        self.config = ServerConfig(token=token, max_payload=max_payload)
        if encoding is not None:
            self.config.encoding = codecs.lookup(encoding).name
        self.connections: set[ServerConnection] = set()
        # Commands of closed connections whose process is not yet reaped.
        self.aborted: set[RunningCommand] = set()
        self._log = log
        self._server: asyncio.Server | None = None

    def log(self, message: str) -> None:
        """Write a one-line notice."""
        if self._log is not None:
            self._log(message)
        else:
            print(f"rsh: {message}", file=sys.stderr, flush=True)

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ServerConnection(self.config, self), self.host, self.port, reuse_address=True
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
        for conn in list(self.connections):
            conn.closed_by_peer(None)
            conn.close()
        # Let TERM, then KILL, take effect so no command outlives the server.
        if self.aborted:
            await asyncio.wait([c.reaped for c in self.aborted], timeout=KILL_GRACE + 1)
        if self._server is not None:
            await self._server.wait_closed()
