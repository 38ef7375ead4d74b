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
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, Unpack

from ..errors import ConnectionLost, ProtocolError
from ..protocol.address import DEFAULT_PORT, parse_address
from ..protocol.client import Authenticated, ClientProtocol, Completions, ExecOptions, Exited, Output, exec_request
from ..protocol.messages import SIGNALS, ExitStatus, ShellRequest
from . import ops
from .aio_pump import AsyncPump, check_not_tls, open_pump
from .connect import Connected, Dial, DialOptions, SpeaksTLS

if TYPE_CHECKING:
    from ..results import CommandResult
    from .shell import OutputHandler, RemoteShell

__all__ = ["DEFAULT_PORT", "AsyncClient", "RemoteCommand", "connect_async", "parse_address"]

T = TypeVar("T")
P = ParamSpec("P")


def _bound(op: Callable[Concatenate[ClientProtocol, P], ops.Op[T]]) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """The operation *op* as a coroutine method on this client's connection (its docstring is the method's).

    Local files are read and written on the event loop's thread, a chunk at a time.
    """

    @functools.wraps(op)
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._drive(op(self._pump.conn, *args, **kwargs))

    return method


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
        await self._pump.make_room()

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


class AsyncClient(Connected):
    """An authenticated connection to an rsh server (asyncio API).

    Make one with ``await AsyncClient.connect(...)`` or ``connect_async``.
    Commands run one at a time per connection.
    """

    def __init__(self, pump: AsyncPump, fingerprint: str | None = None, host: str = "") -> None:
        super().__init__(pump.conn, host, fingerprint)
        self._pump = pump

    @classmethod
    async def connect(cls, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **options: Unpack[DialOptions]) -> AsyncClient:
        """Connect and authenticate; *options* as ``rsh.client.connect.DialOptions`` has them.

        Raises:
            ConnectError: nothing answered at host:port within *timeout*, or the TLS handshake failed.
            HostKeyChanged: the server's fingerprint is not the pinned one (nothing was sent).
            UnknownHostKey: no pin for the server and it was not accepted (nothing was sent).
            AuthError: the token was wrong or missing, or the server could not prove it has it.
            ProtocolError: the peer does not speak this protocol.
            ValueError: *fingerprint* is malformed, or given with ``tls=False``.
        """
        dial = Dial(host, port, token, **options)
        try:
            pump = await _authenticated(dial)
        except SpeaksTLS as exc:
            # As the blocking client: TLS after all, the pin deciding.
            dial.upgrade(exc)
            pump = await _authenticated(dial)
        return cls(pump, dial.fingerprint, host)

    async def _drive(self, op: ops.Op[T]) -> T:
        """Run an operation to its end, answering what it needs with ``await`` (see ``Client._drive``)."""
        self._check_idle()
        pump = self._pump
        try:
            # As ops.drive, with await.
            need = op.send(None)
            while True:
                try:
                    answer = await self._answer(need)
                except BaseException as exc:
                    need = op.throw(exc)
                else:
                    need = op.send(answer)
        except StopIteration as stop:
            pump.flush()
            result: T = stop.value
            return result
        except BaseException:
            ops.settle(pump.conn, pump.flush, pump.close)
            raise

    async def _answer(self, need: ops.Need | ops.HashJob) -> object:
        pump = self._pump
        if need is ops.Need.EVENT:
            return await pump.next_event()
        if need is ops.Need.POLL:
            return pump.poll_event()
        if need is ops.Need.ROOM:
            await pump.make_room()
            return None
        assert isinstance(need, ops.HashJob)
        # Hashing may read a whole file: not on the loop's thread.
        return await asyncio.get_running_loop().run_in_executor(None, need.job)

    def _check_idle(self) -> None:
        if self._pump.conn.busy:
            raise RuntimeError("a command is already running on this connection")
        if self._pump.closed or self._pump.conn.at_eof:
            raise ConnectionLost("connection closed by server")

    async def start(self, command: str | bytes | Sequence[str], **options: Unpack[ExecOptions]) -> RemoteCommand:
        """Start *command* through the server's shell and return it running (*options*: ``ExecOptions``).

        With ``stdin=True`` the command reads what you ``write()`` until
        ``close_stdin()``; otherwise its stdin is empty.  With
        ``session=True`` it runs in this connection's shell session: it
        starts where the last session command left off (``cd``), with what
        that exported, and the exit status says where it ended (``cwd``).
        """
        self._check_idle()
        request = exec_request(command, **options)
        self._pump.conn.start_command(request)
        self._pump.flush()
        return RemoteCommand(self, request.command.decode("utf-8", "replace"))

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

    async def open_shell(self, on_output: OutputHandler, *, term: str = "dumb", rows: int = 0, cols: int = 0) -> RemoteShell:
        """Start a live shell on a terminal of type *term* and size *rows* x *cols* (0: unknown).

        The connection is the shell's until it exits.  See ``rsh.client.shell``.

        Raises:
            RshError: the server has no live shells (an older rsh).
            RemoteError: it would not start one (restricted mode, a shell it cannot run).
        """
        from ..errors import RshError
        from .shell import RemoteShell

        self._check_idle()
        if "shell" not in (self._pump.conn.info.get("features") or ()):
            raise RshError(f"{self._pump.conn.where} runs an rsh without live shells ({self._pump.conn.info.get('server', '?')}); upgrade it, or use rsh exec")
        shell = RemoteShell(self._pump, on_output)
        shell.size = (rows, cols)
        await shell._start(ShellRequest(term, rows, cols))
        return shell

    run = _bound(ops.run)
    put = _bound(ops.put)
    get = _bound(ops.get)

    async def close(self) -> None:
        """Close the connection and wait until it is; a running command is stopped by the server."""
        await self._pump.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _authenticated(dial: Dial) -> AsyncPump:
    """Connect as *dial* says and authenticate (``SpeaksTLS``: a plain connection found a TLS server)."""
    pump = await open_pump(dial)
    with dial.handshaking(pump.conn, pump.close):
        async with asyncio.timeout(dial.timeout) as limit:
            if not dial.tls:
                await check_not_tls(pump, dial, limit.when() or 0.0)
            while not isinstance(await pump.next_event(), Authenticated):
                pass
    return pump


async def connect_async(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **options: Unpack[DialOptions]) -> AsyncClient:
    """Connect to an rsh server (asyncio); see ``AsyncClient.connect``."""
    return await AsyncClient.connect(host, port, token, **options)
