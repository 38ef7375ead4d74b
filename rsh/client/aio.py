"""The asyncio client: connect, authenticate, run commands.

    async with await rsh.connect_async("127.0.0.1", 7022, token=...) as c:
        r = await c.run("uname -a")
        print(r.exit_code, r.stdout_text)

For output as it arrives, ``start()`` returns a ``RemoteCommand``: iterate it
for ``(stream, bytes)`` pairs, write its stdin, signal it, then ``wait()``.

Beyond loopback (or with ``tls=True``) the connection is TLS 1.3, and the
server's certificate must match its pin (``fingerprint=`` or known_hosts,
see ``rsh.client.known_hosts``) before a byte of the protocol is sent.
The blocking twin, ``rsh.connect()``, is in ``rsh.client.blocking``; both drive
the same sans-I/O ``rsh.protocol.session``.
"""

from __future__ import annotations

import asyncio
import collections
import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from ..config import resolve_client_token
from ..errors import ConnectError, ConnectionLost, ProtocolError, RemoteError
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, Frame
from .known_hosts import ConfirmCallback, ServerPin
from ..protocol.messages import SIGNALS, ExitStatus
from ..results import CommandResult
from ..protocol.session import DEFAULT_PORT, STDIN_CHUNK, CommandRun, Handshake, OutputCallback, connect_error_reason, exec_request, parse_address, remote_error
from ..net.tls import TLS_PROBE_DELAY, client_context, handshake_failure, silent_server_hint, speaks_tls_async, tls_server_error
from ..protocol.frames import TraceHook
from ..net.framed import FramedProtocol

if TYPE_CHECKING:
    # File transfers are imported where they are used, so that running a
    # command (``rsh exec``) does not load them at start-up.
    from ..transfer.rules import TransferResult
    from ..transfer.plan import LocalPath, Sources
    from ..transfer.receive import Receiver
    from ..transfer.send import ProgressCallback, Sender

__all__ = ["DEFAULT_PORT", "AsyncClient", "RemoteCommand", "connect_async", "parse_address"]

# Frames queued unread before we stop reading the socket (and so, through
# TCP, slow the server down rather than grow our memory).
_QUEUE_HIGH = 64
_QUEUE_LOW = 16


class _ClientProtocol(FramedProtocol):
    """Queues incoming frames for the coroutines of ``AsyncClient``."""

    def __init__(self, *, max_payload: int, trace: TraceHook | None) -> None:
        super().__init__(max_payload=max_payload, trace=trace)
        self._queue: collections.deque[Frame] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self.failure: Exception | None = None

    def frame_received(self, frame: Frame) -> None:
        self._queue.append(frame)
        if len(self._queue) >= _QUEUE_HIGH and not self._reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def protocol_error(self, exc: ProtocolError) -> None:
        if exc.code == "truncated":
            # The server went away mid-frame: a lost connection, not nonsense.
            self.failure = ConnectionLost("connection closed by server in the middle of a frame")
            self.close()
        else:
            self.failure = ProtocolError(f"server sent a malformed frame: {exc}", code=exc.code)
            self.send_error_and_close(exc)
        self._wake()

    def closed_by_peer(self, exc: Exception | None) -> None:
        if self.failure is None:
            reason = f": {exc}" if exc else ""
            self.failure = ConnectionLost(f"connection closed by server{reason}")
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def poll_frame(self) -> Frame | None:
        """Return the next frame if one has arrived, else None (without waiting).

        Raises:
            ConnectionLost, ProtocolError: as ``next_frame``.
        """
        if not self._queue:
            if self.failure is not None:
                raise self.failure
            return None
        frame = self._queue.popleft()
        if self._reading_paused and len(self._queue) <= _QUEUE_LOW and self.transport is not None:
            self.transport.resume_reading()
            self._reading_paused = False
        return frame

    async def wait_for_frame(self) -> None:
        """Wait until a frame has arrived or the connection has ended, without taking anything."""
        while not self._queue and self.failure is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def next_frame(self) -> Frame:
        """Return the next frame from the server.

        Raises:
            ConnectionLost: the connection ended first.
            ProtocolError: the server broke the protocol.
        """
        while not self._queue:
            if self.failure is not None:
                raise self.failure
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frame = self._queue.popleft()
        if self._reading_paused and len(self._queue) <= _QUEUE_LOW and self.transport is not None:
            self.transport.resume_reading()
            self._reading_paused = False
        return frame


class RemoteCommand:
    """A command running on the server (asyncio).

    Iterate it (``async for stream, data in cmd``) for output as it arrives;
    ``stream`` is ``"stdout"`` or ``"stderr"``.  The iteration ends when the
    command has exited; ``status`` then holds how.
    """

    def __init__(self, client: AsyncClient, command: str) -> None:
        self._client = client
        self._run = CommandRun(command)
        self.command = command
        self._keep = False
        self._stdin_closed = False

    @property
    def status(self) -> ExitStatus | None:
        """How the command ended, once it has."""
        return self._run.status

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        return self._events()

    async def _events(self) -> AsyncIterator[tuple[str, bytes]]:
        proto = self._client._proto
        while not self._run.done:
            try:
                event = self._run.on_frame(await proto.next_frame(), keep=self._keep)
            except RemoteError:
                self._client._running = None
                raise
            if event is not None:
                yield event
        self._client._running = None

    async def write(self, data: bytes) -> None:
        """Send *data* to the command's stdin (started with ``stdin=True``)."""
        proto = self._client._proto
        for i in range(0, len(data), STDIN_CHUNK):
            proto.send("stdin", None, data[i : i + STDIN_CHUNK])
            await proto.drain()

    def close_stdin(self) -> None:
        """Signal end of input to the command."""
        if not self._stdin_closed:
            self._stdin_closed = True
            self._client._proto.send("stdin", {"eof": True})

    def send_signal(self, name: str) -> None:
        """Ask the server to send signal *name* (INT, TERM, KILL, HUP, QUIT) to the command's group."""
        if name not in SIGNALS:
            raise ValueError(f"unknown signal {name!r}; one of {', '.join(SIGNALS)}")
        if self.status is None:
            self._client._proto.send("signal", {"signal": name})

    async def wait(
        self,
        *,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Collect the rest of the output and the exit status.

        Raises:
            CommandTimeout: the server stopped the command at its timeout.
            CommandFailed: *check* is set and the command did not exit 0.
        """
        self._keep = True
        async for stream, data in self:
            callback = on_stdout if stream == "stdout" else on_stderr
            if callback is not None:
                callback(data)
        return self._run.result(check=check)


class AsyncClient:
    """An authenticated connection to an rsh server (asyncio API).

    Make one with ``await AsyncClient.connect(...)`` or ``connect_async``.
    Commands run one at a time per connection.
    """

    def __init__(self, proto: _ClientProtocol, info: dict[str, Any], fingerprint: str | None = None, host: str = "") -> None:
        self._proto = proto
        self.host = host
        self._running: RemoteCommand | None = None
        self._complete_id = 0
        #: What the server said of itself: version, server, encoding, os,
        #: shell, and user, host, home once authenticated.
        self.server_info: dict[str, Any] = info
        #: The server's TLS fingerprint (it matched the pin), None without TLS.
        self.fingerprint = fingerprint

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
        loop = asyncio.get_running_loop()
        where = f"{host}:{port}"
        if token is None:
            token = resolve_client_token(None)
        pin = ServerPin(host, port, fingerprint=fingerprint, known_hosts=known_hosts, accept_new=accept_new, confirm=confirm)
        use_tls = pin.wants_tls(tls)
        try:
            async with asyncio.timeout(timeout):
                _, proto = await loop.create_connection(
                    lambda: _ClientProtocol(max_payload=max_payload, trace=trace),
                    host,
                    port,
                    ssl=client_context() if use_tls else None,
                    ssl_handshake_timeout=timeout if use_tls else None,
                )
        except TimeoutError:
            raise ConnectError(f"cannot connect to {where}: timed out after {timeout:g}s") from None
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            if not use_tls:
                raise ConnectError(f"cannot connect to {where}: {connect_error_reason(exc)}") from None
            raise ConnectError(handshake_failure(where, exc)) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {connect_error_reason(exc)}") from None
        server_fingerprint = None
        if use_tls:
            # Before a byte of the protocol goes out: a server with the wrong
            # identity never even sees the auth frame.
            try:
                assert proto.transport is not None
                server_fingerprint = pin.check(proto.transport.get_extra_info("ssl_object").getpeercert(binary_form=True))
            except BaseException:
                proto.transport.abort()  # type: ignore[union-attr]
                # The socket is closed a few turns of the loop later: wait for
                # it, so a caller whose loop ends right after this leaks nothing.
                await proto.wait_lost()
                raise
            if pin.asked:
                # A person was asked, which may have outlasted the server's
                # authentication deadline: start again on a fresh connection.
                proto.close()
                return await cls.connect(
                    host, port, token, timeout=timeout, max_payload=max_payload, trace=trace, fingerprint=server_fingerprint
                )
        handshake = Handshake(token, where)
        try:
            async with asyncio.timeout(timeout) as limit:
                if not use_tls:
                    await cls._check_not_tls(proto, host, port, where, limit.when() or 0.0)
                hello = await cls._handshake(proto, handshake)
        except TimeoutError:
            proto.close()
            hint = silent_server_hint(use_tls, handshake.hello is not None)
            raise ConnectError(f"{where} did not complete the rsh handshake within {timeout:g}s{hint}") from None
        except ConnectionLost as exc:
            proto.close()
            hint = silent_server_hint(use_tls, handshake.hello is not None)
            raise ConnectionLost(f"{where} closed the connection during the handshake{hint}") from exc
        except BaseException:
            proto.close()
            raise
        return cls(proto, hello, server_fingerprint, host)

    @staticmethod
    async def _check_not_tls(proto: _ClientProtocol, host: str, port: int, where: str, deadline: float) -> None:
        """If the server is slow to say anything, make sure it is not waiting for TLS (see ``TLS_PROBE_DELAY``)."""
        try:
            async with asyncio.timeout(TLS_PROBE_DELAY):
                await proto.wait_for_frame()
            return
        except TimeoutError:
            pass
        # At most half of what is left, so a probe that hangs still leaves
        # time for a slow hello.
        left = deadline - asyncio.get_running_loop().time()
        if left > 0 and await speaks_tls_async(host, port, left / 2):
            raise ConnectError(tls_server_error(where))

    @staticmethod
    async def _handshake(proto: _ClientProtocol, handshake: Handshake) -> dict[str, Any]:
        reply = handshake.on_hello(await proto.next_frame())
        if reply is not None:
            proto.send(*reply)
            handshake.on_reply(await proto.next_frame())
        return handshake.info

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
        if self._running is not None and self._running.status is None:
            raise RuntimeError("a command is already running on this connection")
        if self._proto.failure is not None:
            raise self._proto.failure
        request = exec_request(command, stdin=stdin, cwd=cwd, env=env, timeout=timeout, encoding=encoding, session=session)
        self._proto.send("exec", request.to_fields(), request.command)
        self._running = RemoteCommand(self, request.command.decode("utf-8", "replace"))
        return self._running

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
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> CommandResult:
        """Run *command* to completion, like ``subprocess.run``.

        Args:
            input: bytes for the command's stdin (empty when None).
            cwd / env: where it runs and extra environment variables.
            timeout: seconds before the server stops it (TERM, then KILL).
            encoding: declare the output to be in this encoding.
            check: raise ``CommandFailed`` unless it exits 0.
            on_stdout / on_stderr: called with each chunk as it arrives.

        Raises:
            CommandTimeout, CommandFailed, RemoteError, ConnectionLost.
        """
        cmd = await self.start(command, stdin=input is not None, cwd=cwd, env=env, timeout=timeout, encoding=encoding)
        if input is not None:
            await cmd.write(input)
            cmd.close_stdin()
        return await cmd.wait(on_stdout=on_stdout, on_stderr=on_stderr, check=check)

    async def complete(self, kind: str, prefix: str) -> list[str]:
        """Ask the server for completions of *prefix*.

        Args:
            kind: ``"command"`` (names on the session's PATH) or ``"path"``
                (relative to the session's working directory).
        """
        if self._running is not None and self._running.status is None:
            raise RuntimeError("a command is running on this connection")
        self._complete_id += 1
        self._proto.send("complete", {"id": self._complete_id, "kind": kind, "prefix": prefix})
        # Answers to requests abandoned half-way (a Tab cancelled by the
        # next key) arrive first; their ids say they are stale.
        while True:
            frame = await self._proto.next_frame()
            if frame.type == "error":
                raise remote_error(frame)
            if frame.type != "completions":
                raise ProtocolError(f"unexpected {frame.type!r} frame in answer to complete", code="unexpected_frame")
            if frame.get("id") == self._complete_id:
                items = frame.get("items")
                return [i for i in items if isinstance(i, str)] if isinstance(items, list) else []

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
        from ..transfer.rules import TransferResult
        from ..transfer.plan import checked, put_plan
        from ..transfer.send import Sender

        total = TransferResult()
        for request, source in put_plan(local, remote, recursive=recursive, resume=resume, cwd=cwd):
            self._check_idle()
            self._proto.send("put", request.to_fields())
            total += await self._send_source(Sender(source, progress=progress, sent_before=total.sent))
        return checked(total, self.host)

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
        from ..transfer.rules import TransferResult
        from ..transfer.plan import checked, get_requests, make_receiver

        requests = get_requests(remote, recursive=recursive, cwd=cwd)
        total = TransferResult()
        for request in requests:
            self._check_idle()
            receiver = make_receiver(local, several=len(requests) > 1, resume=resume, progress=progress, sent_before=total.sent)
            self._proto.send("get", request.to_fields())
            total += await self._receive(receiver)
        return checked(total, self.host)

    def _check_idle(self) -> None:
        if self._running is not None and self._running.status is None:
            raise RuntimeError("a command is running on this connection")
        if self._proto.failure is not None:
            raise self._proto.failure

    async def _send_source(self, sender: Sender) -> TransferResult:
        from ..transfer.plan import lost

        proto = self._proto
        loop = asyncio.get_running_loop()
        try:
            while not sender.finished:
                frame = proto.poll_frame()
                if frame is not None:
                    sender.on_reply(frame)
                    continue
                if sender.pending_hash:
                    sender.hash_done(await loop.run_in_executor(None, sender.hash_job()))
                out = sender.next_frame()
                if out is None:
                    sender.on_reply(await proto.next_frame())
                    continue
                proto.send(out.type, out.fields, out.payload)
                # Back-pressure: read no more of the file than the socket takes.
                await proto.drain()
        except ConnectionLost as exc:
            proto.close()
            raise lost(sender.where, exc) from exc
        except RemoteError:
            if not sender.refused:
                proto.close()
                raise
            # Refused (restricted mode): the server drops what we sent up to
            # our `end` and is ready for the next request.
            out = sender.next_frame()
            if out is not None:
                proto.send(out.type, out.fields, out.payload)
            raise
        except BaseException:
            proto.close()  # interrupted or out of step: the stream cannot be reused
            raise
        finally:
            sender.close()
        return sender.result()

    async def _receive(self, receiver: Receiver) -> TransferResult:
        from ..transfer.plan import lost

        proto = self._proto
        loop = asyncio.get_running_loop()
        try:
            while not receiver.finished:
                for out in receiver.on_frame(await proto.next_frame()):
                    proto.send(out.type, out.fields, out.payload)
                if receiver.pending_hash:
                    for out in receiver.hash_done(await loop.run_in_executor(None, receiver.hash_job())):
                        proto.send(out.type, out.fields, out.payload)
        except ConnectionLost as exc:
            where = receiver.where
            receiver.abort(interrupted=True)
            proto.close()
            raise lost(where, exc) from exc
        except BaseException:
            receiver.abort(interrupted=True)
            if not receiver.refused:  # refused (restricted mode): the server stays ready
                proto.close()
            raise
        return receiver.result()

    async def close(self) -> None:
        """Close the connection; a running command is stopped by the server."""
        self._proto.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect_async(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **kwargs: Any) -> AsyncClient:
    """Connect to an rsh server (asyncio); see ``AsyncClient.connect``."""
    return await AsyncClient.connect(host, port, token, **kwargs)
