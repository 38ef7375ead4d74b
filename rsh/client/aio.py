"""The asyncio client: connect, authenticate, run commands.

    async with await rsh.connect_async("127.0.0.1", 7022, token=...) as c:
        r = await c.run("uname -a")
        print(r.exit_code, r.stdout_text)

For output as it arrives, ``start()`` returns a ``RemoteCommand``: iterate it
for ``(stream, bytes)`` pairs, write its stdin, signal it, then ``wait()``.

Beyond loopback (or with ``tls=True``) the connection is TLS 1.3, and the
server's certificate must match its pin (``fingerprint=`` or known_hosts,
see ``rsh.client.known_hosts``) before a byte of the protocol is sent.
``run``, ``put`` and ``get`` are ``rsh.client.ops`` operations, the same the
blocking ``rsh.connect()`` drives; here they are driven with ``await``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from ..errors import ConnectionLost, ProtocolError
from ..protocol.address import DEFAULT_PORT, parse_address
from ..protocol.client import Authenticated, ClientState, Completions, Exited, Output, exec_request
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, TraceHook
from ..protocol.messages import SIGNALS, ExitStatus
from . import ops
from .aio_pump import AsyncPump, check_not_tls, open_pump
from .connect import Dial
from .known_hosts import ConfirmCallback

if TYPE_CHECKING:
    from ..results import CommandResult, TransferResult
    from ..transfer.plan import LocalPath, Sources
    from ..transfer.send import ProgressCallback

__all__ = ["DEFAULT_PORT", "AsyncClient", "RemoteCommand", "connect_async", "parse_address"]

T = TypeVar("T")

class RemoteCommand:
    """A command running on the server (asyncio).

    Iterate it (``async for stream, data in cmd``) for output as it arrives;
    ``stream`` is ``"stdout"`` or ``"stderr"``.  The iteration ends when the
    command has exited; ``status`` then holds how.
    """

    def __init__(self, client: AsyncClient, command: str) -> None:
        self._pump = client._pump
        self.command = command
        self._collector: ops.Collector | None = None
        self._stdin_closed = False
        #: How the command ended, once it has.
        self.status: ExitStatus | None = None

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        return self._events()

    async def _events(self) -> AsyncIterator[tuple[str, bytes]]:
        while self.status is None:
            event = await self._pump.next_event()
            if isinstance(event, Output):
                if self._collector is not None:
                    self._collector.take(event)
                yield event.stream, event.data
            elif isinstance(event, Exited):
                self.status = event.status
            else:
                raise ProtocolError(f"unexpected {type(event).__name__} while a command runs", code="unexpected_frame")

    async def write(self, data: bytes) -> None:
        """Send *data* to the command's stdin (started with ``stdin=True``).

        Raises:
            ConnectionLost: the connection is gone; the data will not arrive.
        """
        self._pump.conn.send_stdin(data)
        await self._pump.drain_all()

    def close_stdin(self) -> None:
        """Signal end of input to the command."""
        if not self._stdin_closed:
            self._stdin_closed = True
            self._pump.conn.close_stdin()
            self._pump.flush()

    def send_signal(self, name: str) -> None:
        """Ask the server to send signal *name* (INT, TERM, KILL, HUP, QUIT) to the command's group.

        Raises:
            ValueError: no such signal.
        """
        if name not in SIGNALS:
            raise ValueError(f"unknown signal {name!r}; one of {', '.join(SIGNALS)}")
        if self.status is None:
            self._pump.conn.send_signal(name)
            self._pump.flush()

    async def wait(
        self,
        *,
        on_stdout: ops.OutputCallback | None = None,
        on_stderr: ops.OutputCallback | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Collect the rest of the output and the exit status.

        Raises:
            CommandTimeout: the server stopped the command at its timeout.
            CommandFailed: *check* is set and the command did not exit 0.
        """
        self._collector = ops.Collector(self.command, on_stdout, on_stderr)
        async for _ in self:
            pass
        assert self.status is not None
        return self._collector.result(self.status, check=check)


class AsyncClient:
    """An authenticated connection to an rsh server (asyncio API).

    Make one with ``await AsyncClient.connect(...)`` or ``connect_async``.
    Commands run one at a time per connection.
    """

    def __init__(self, pump: AsyncPump, fingerprint: str | None = None, host: str = "") -> None:
        self._pump = pump
        self.host = host
        #: What the server said of itself: version, server, encoding, os,
        #: shell, and user, host, home once authenticated.
        self.server_info: dict[str, Any] = pump.conn.info
        #: The server's TLS fingerprint (it matched the pin), None without TLS.
        self.fingerprint = fingerprint

    @property
    def trace(self) -> TraceHook | None:
        """Called with every frame sent and received (``rsh.protocol.trace``); settable."""
        return self._pump.conn.trace

    @trace.setter
    def trace(self, hook: TraceHook | None) -> None:
        self._pump.conn.trace = hook

    @classmethod
    async def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        trace: TraceHook | None = None,
        tls: bool | None = None,
        fingerprint: str | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        accept_new: bool = False,
        confirm: ConfirmCallback | None = None,
    ) -> AsyncClient:
        """Connect and authenticate.

        Args:
            tls: True / False to force TLS on or off; None (default): TLS
                unless the host is loopback with no pin for it.
            fingerprint: the server's ``SHA256:...``; trust only that
                (known_hosts is then neither read nor written).
            known_hosts: the file of pins (default: the config directory's).
            accept_new: pin a server seen for the first time without asking.
            confirm: asks a person about a server seen for the first time
                (``rsh.client.known_hosts.ConfirmCallback``); without it and without
                *accept_new* such a server is refused.

        Raises:
            ConnectError: nothing answered at host:port within *timeout*, or the TLS handshake failed.
            HostKeyChanged: the server's fingerprint is not the pinned one (nothing was sent).
            UnknownHostKey: no pin for the server and it was not accepted (nothing was sent).
            AuthError: the token was wrong or missing, or the server could not prove it has it.
            ProtocolError: the peer does not speak this protocol.
            ValueError: *fingerprint* is malformed, or given with ``tls=False``.
        """
        dial = Dial(
            host,
            port,
            token,
            timeout=timeout,
            max_payload=max_payload,
            trace=trace,
            tls=tls,
            fingerprint=fingerprint,
            known_hosts=known_hosts,
            accept_new=accept_new,
            confirm=confirm,
        )
        pump = await open_pump(dial)
        try:
            async with asyncio.timeout(timeout) as limit:
                if not dial.tls:
                    await check_not_tls(pump, dial, limit.when() or 0.0)
                while not isinstance(await pump.next_event(), Authenticated):
                    pass
        except (TimeoutError, ConnectionLost) as exc:
            pump.close()
            raise dial.handshake_failed(exc, pump.conn) from exc
        except BaseException:
            pump.close()
            raise
        return cls(pump, dial.fingerprint, host)

    async def _drive(self, op: ops.Op[T]) -> T:
        """Run an operation to its end, answering what it needs with ``await``."""
        pump = self._pump
        try:
            need = next(op)
            while True:
                # The I/O's errors go into the operation, which names what it was doing.
                try:
                    if need is ops.Need.EVENT:
                        answer: Any = await pump.next_event()
                    elif need is ops.Need.POLL:
                        answer = pump.poll_event()
                    elif need is ops.Need.DRAIN:
                        await pump.drain_all()
                        answer = None
                    else:
                        answer = await asyncio.get_running_loop().run_in_executor(None, need.job)
                except BaseException as exc:
                    need = op.throw(exc)
                else:
                    need = op.send(answer)
        except StopIteration as done:
            pump.flush()
            return done.value  # type: ignore[no-any-return]
        except BaseException:
            # As Client._drive: a refusal leaves the connection ready, anything else out of step.
            if pump.conn.state is ClientState.READY and not pump.conn.at_eof:
                pump.flush()
            else:
                pump.close()
            raise

    def _check_idle(self) -> None:
        if self._pump.conn.busy:
            raise RuntimeError("a command is already running on this connection")
        if self._pump.closed or self._pump.conn.at_eof:
            raise ConnectionLost("connection closed by server")

    async def start(
        self,
        command: str | bytes | Sequence[str],
        *,
        stdin: bool = False,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        encoding: str | None = None,
        session: bool = False,
    ) -> RemoteCommand:
        """Start *command* through the server's shell and return it running.

        With ``stdin=True`` the command reads what you ``write()`` until
        ``close_stdin()``; otherwise its stdin is empty.  With
        ``session=True`` it runs in this connection's shell session: it
        starts where the last session command left off (``cd``), with what
        that exported, and the exit status says where it ended (``cwd``).
        """
        self._check_idle()
        request = exec_request(command, stdin=stdin, cwd=cwd, env=env, timeout=timeout, encoding=encoding, session=session)
        self._pump.conn.start_command(request)
        self._pump.flush()
        return RemoteCommand(self, request.command.decode("utf-8", "replace"))

    async def run(
        self,
        command: str | bytes | Sequence[str],
        *,
        input: bytes | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        encoding: str | None = None,
        check: bool = False,
        on_stdout: ops.OutputCallback | None = None,
        on_stderr: ops.OutputCallback | None = None,
    ) -> CommandResult:
        """Run *command* to completion, like ``subprocess.run``; see ``rsh.Client.run``.

        Raises:
            CommandTimeout, CommandFailed, RemoteError, ConnectionLost.
        """
        self._check_idle()
        conn = self._pump.conn
        op = ops.run(conn, command, input=input, cwd=cwd, env=env, timeout=timeout, encoding=encoding, check=check, on_stdout=on_stdout, on_stderr=on_stderr)
        return await self._drive(op)

    async def complete(self, kind: str, prefix: str) -> list[str]:
        """Ask the server for completions of *prefix*.

        Args:
            kind: ``"command"`` (names on the session's PATH) or ``"path"``
                (relative to the session's working directory).
        """
        if self._pump.conn.busy:
            raise RuntimeError("a command is running on this connection")
        self._pump.conn.request_completions(kind, prefix)
        # Answers to requests abandoned half-way (a Tab cancelled by the
        # next key) are dropped by the connection: their ids say they are stale.
        while True:
            event = await self._pump.next_event()
            if isinstance(event, Completions):
                return event.items

    async def put(
        self,
        local: Sources,
        remote: str,
        *,
        recursive: bool = False,
        resume: bool = False,
        cwd: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransferResult:
        """Copy local files to the server; see ``rsh.Client.put`` (same arguments, same errors).

        Local files are read on the event loop's thread, a chunk at a time.
        """
        self._check_idle()
        conn = self._pump.conn
        return await self._drive(ops.put(conn, local, remote, host=self.host, recursive=recursive, resume=resume, cwd=cwd, progress=progress))

    async def get(
        self,
        remote: str | Sequence[str],
        local: LocalPath | BinaryIO,
        *,
        recursive: bool = False,
        resume: bool = False,
        cwd: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransferResult:
        """Copy files from the server; see ``rsh.Client.get`` (same arguments, same errors).

        Local files are written on the event loop's thread, a chunk at a time.
        """
        self._check_idle()
        conn = self._pump.conn
        return await self._drive(ops.get(conn, remote, local, host=self.host, recursive=recursive, resume=resume, cwd=cwd, progress=progress))

    async def close(self) -> None:
        """Close the connection; a running command is stopped by the server."""
        self._pump.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect_async(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **kwargs: Any) -> AsyncClient:
    """Connect to an rsh server (asyncio); see ``AsyncClient.connect``."""
    return await AsyncClient.connect(host, port, token, **kwargs)
