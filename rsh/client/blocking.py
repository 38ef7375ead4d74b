"""The blocking client, for scripts: ``rsh.connect()``.

    with rsh.connect("127.0.0.1", 7022, token=...) as c:
        r = c.run("uname -a")
        print(r.exit_code, r.stdout_text)

It speaks to the socket directly (no event loop), driving the same sans-I/O
``rsh.protocol.session`` as the asyncio client: a command then costs one send and the
reads its answer needs, which is what keeps a loop of short commands close to
running them locally (bench/latency.py).

With TLS the handshake is done blocking, the server's certificate is checked
against its pin, and only then does the socket turn non-blocking; from there
an ``SSLSocket`` may want to read or write at any call (``SSLWant*Error``)
and may hold decrypted bytes that poll() cannot see (``pending()``).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..config import resolve_client_token
from ..errors import ConnectError, ConnectionLost, ProtocolError, RemoteError
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, Frame, FrameDecoder, TraceHook, encode_header
from .known_hosts import ConfirmCallback, ServerPin
from ..protocol.messages import ExitStatus
from ..protocol.session import DEFAULT_PORT, STDIN_CHUNK, CommandRun, Handshake, OutputCallback, connect_error_reason, exec_request
from ..net.tls import TLS_PROBE_DELAY, client_context, handshake_failure, silent_server_hint, speaks_tls, tls_server_error

if TYPE_CHECKING:
    import ssl

    from ..results import CommandResult

    # File transfers are imported where they are used, so that running a
    # command (``rsh exec``) does not load them at start-up.
    from ..transfer.rules import TransferResult
    from ..transfer.plan import LocalPath, Sources
    from ..transfer.receive import Receiver
    from ..transfer.send import ProgressCallback, Sender

__all__ = ["Client", "connect"]

# Keep at most this much queued stdin (or file data) encoded ahead of the socket.
_OUT_HIGH = 256 * 1024

# Payloads larger than this are queued as they are and go out with the
# header in one sendmsg() (scatter-gather) instead of being copied into the
# queue: a file streams through here at memory speed, and a copy per chunk
# was measurable.  Smaller frames are joined with their header (one buffer).
_GATHER_MIN = 16 * 1024

# Buffers handed to one sendmsg(), well under any IOV_MAX.
_IOV_BATCH = 64


def _would_block(tls: bool) -> tuple[type[Exception], ...]:
    """What a non-blocking socket raises for "not now"; an SSLSocket says it with its own errors too."""
    if not tls:
        return (BlockingIOError,)
    import ssl  # only here: a plain client never loads it (a tenth of `rsh exec`'s start-up)

    return (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _FrameSocket:
    """Frames over a non-blocking socket, waited on with poll().

    With *tls*, *sock* is an ``ssl.SSLSocket``.
    """

    def __init__(self, sock: socket.socket, max_payload: int, trace: TraceHook | None, *, tls: bool = False) -> None:
        self.sock = sock
        self.tls = tls
        self._would_block = _would_block(tls)
        self.decoder = FrameDecoder(max_payload)
        self.trace = trace
        self.frames: deque[Frame] = deque()
        # Queued output: whole buffers, the first possibly partly sent.
        self.out: deque[bytes | memoryview] = deque()
        self.out_len = 0
        self.sent_bytes = 0
        self.failure: Exception | None = None
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._polling_out = False

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes = b"") -> None:
        """Queue one frame; it leaves with the next ``flush`` or ``next_frame``."""
        head = encode_header(type, fields, len(payload))
        if self.trace is not None:
            self.trace("send", Frame(type, dict(fields or {}), payload), head[4:], self.sent_bytes)
        self.sent_bytes += len(head) + len(payload)
        if len(payload) < _GATHER_MIN:
            self.out.append(head + payload)
        else:
            self.out.append(head)
            self.out.append(payload)
        self.out_len += len(head) + len(payload)

    def next_frame(self, refill: Iterator[None] | None = None) -> Frame:
        """Send what is queued while waiting for the next frame.

        *refill* is advanced whenever the queue runs low (it queues more stdin).

        Raises:
            ConnectionLost, ProtocolError.
        """
        while not self.frames:
            if self.failure is not None:
                raise self.failure
            while refill is not None and self.out_len < _OUT_HIGH:
                if next(refill, StopIteration) is StopIteration:
                    refill = None  # all queued; only the socket is left
            if self.out:
                self._write()  # usually all goes at once: no poll needed for it
            if self.pending():
                self._read()  # decrypted already: poll() would not wake for it
                continue
            # Wake for writing while anything is left to send, queued or not.
            want_out = bool(self.out) or refill is not None
            if want_out != self._polling_out:
                self._poll.modify(self.sock, select.POLLIN | (select.POLLOUT if want_out else 0))
                self._polling_out = want_out
            for _, ev in self._poll.poll():
                if ev & select.POLLOUT and self.out:
                    self._write()
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self._read()
        return self.frames.popleft()

    def flush(self) -> None:
        """Try to send what is queued without waiting for frames."""
        if self.out:
            self._write()

    def pending(self) -> bool:
        """True when TLS holds decrypted bytes not yet read (the socket may look idle)."""
        return self.tls and cast("ssl.SSLSocket", self.sock).pending() > 0

    def _write(self) -> None:
        out = self.out
        try:
            if self.tls:
                # No sendmsg under TLS: one buffer at a time.
                n = self.sock.send(out[0])
            else:
                n = self.sock.sendmsg(list(islice(out, _IOV_BATCH)))
        except self._would_block:
            return
        except OSError as exc:
            self.failure = ConnectionLost(f"connection lost while sending: {exc.strerror or exc}")
            out.clear()
            self.out_len = 0
            return
        self.out_len -= n
        while n:
            first = out[0]
            if len(first) <= n:
                n -= len(first)
                out.popleft()
            else:
                out[0] = memoryview(first)[n:]
                n = 0

    def _read(self) -> bool:
        """Take what the socket has; False if it had nothing yet (a failure is True: there is news)."""
        try:
            with self.decoder.get_buffer() as buf:
                n = self.sock.recv_into(buf)
        except self._would_block:
            return False
        except OSError as exc:
            self.failure = ConnectionLost(f"connection lost: {exc.strerror or exc}")
            return True
        try:
            frames = self.decoder.buffer_updated(n)
        except ProtocolError as exc:
            if exc.code == "truncated":
                # The server went away mid-frame (a crash, a cut cable): a lost
                # connection, not a server speaking nonsense.
                self.failure = ConnectionLost("connection closed by server in the middle of a frame")
            else:
                self.failure = ProtocolError(f"server sent a malformed frame: {exc}", code=exc.code)
            return True
        if n == 0:
            self.failure = ConnectionLost("connection closed by server")
        for frame in frames:
            if self.trace is not None:
                self.trace("recv", frame, frame.raw_header, frame.offset)
            self.frames.append(frame)
        return True


class Client:
    """A blocking connection to an rsh server; commands run one at a time.

    Args:
        host, port: where the server listens.
        token: the shared secret; None looks where the command line does
            (``RSH_TOKEN``, then the default token file), and connects
            without one if neither has it (a ``--no-auth`` server).
        timeout: seconds allowed for connecting and authenticating.
        max_payload: the largest frame payload accepted from the server.
        trace: called with every frame sent and received (see ``rsh.protocol.trace``).
        tls, fingerprint, known_hosts, accept_new, confirm: TLS and the
            server's pin, as for ``AsyncClient.connect``.

    Raises:
        ConnectError, HostKeyChanged, UnknownHostKey, AuthError, ProtocolError,
        ConnectionLost; ValueError for a malformed fingerprint.
    """

    def __init__(
        self,
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
    ) -> None:
        where = f"{host}:{port}"
        if token is None:
            token = resolve_client_token(None)
        pin = ServerPin(host, port, fingerprint=fingerprint, known_hosts=known_hosts, accept_new=accept_new, confirm=confirm)
        use_tls = pin.wants_tls(tls)
        #: The server's TLS fingerprint (it matched the pin), None without TLS.
        self.fingerprint: str | None = None
        sock = self._open(host, port, where, timeout, pin if use_tls else None)
        if pin.asked:
            # A person was asked, which may have outlasted the server's
            # authentication deadline: start again on a fresh connection.
            sock.close()
            sock = self._open(host, port, where, timeout, ServerPin(host, port, fingerprint=self.fingerprint))
        sock.setblocking(False)
        self._conn = _FrameSocket(sock, max_payload, trace, tls=use_tls)
        self.host = host
        self.closed = False
        deadline = time.monotonic() + timeout
        if not use_tls:
            self._check_not_tls(sock, host, port, where, deadline)
        handshake = Handshake(token, where)
        try:
            self._handshake(handshake, deadline)
        except (ConnectError, ConnectionLost) as exc:
            sock.close()
            hint = silent_server_hint(use_tls, handshake.hello is not None)
            if not hint:
                raise
            raise type(exc)(f"{exc}{hint}") from exc.__cause__
        except BaseException:
            sock.close()
            raise

    def _open(self, host: str, port: int, where: str, timeout: float, pin: ServerPin | None) -> socket.socket:
        """Connect; with a *pin*, also do the TLS handshake (blocking) and check the pin, before any protocol byte."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise ConnectError(f"cannot connect to {where}: timed out after {timeout:g}s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {connect_error_reason(exc)}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if pin is None:
            return sock
        try:
            tls = client_context().wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            sock.close()
            raise ConnectError(f"cannot connect to {where}: TLS handshake timed out after {timeout:g}s") from None
        except OSError as exc:
            sock.close()
            raise ConnectError(handshake_failure(where, exc)) from None
        try:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            self.fingerprint = pin.check(der)
        except BaseException:
            tls.close()
            raise
        return tls

    @staticmethod
    def _check_not_tls(sock: socket.socket, host: str, port: int, where: str, deadline: float) -> None:
        """If the server is slow to say anything, make sure it is not waiting for TLS (see ``TLS_PROBE_DELAY``)."""
        try:
            wait = min(TLS_PROBE_DELAY, deadline - time.monotonic())
            if wait <= 0 or select.select([sock], [], [], wait)[0]:
                return
            # At most half of what is left, so a probe that hangs still
            # leaves time for a slow hello.
            left = deadline - time.monotonic()
            if left > 0 and speaks_tls(host, port, left / 2):
                raise ConnectError(tls_server_error(where))
        except BaseException:
            sock.close()
            raise

    def _handshake(self, handshake: Handshake, deadline: float) -> None:
        conn = self._conn
        try:
            reply = handshake.on_hello(self._frame_before(deadline))
            if reply is not None:
                conn.send(*reply)
                handshake.on_reply(self._frame_before(deadline))
        except ConnectionLost as exc:
            raise ConnectionLost(f"{handshake.where} closed the connection during the handshake") from exc
        #: What the server said of itself: version, server, encoding, os,
        #: shell, and user, host, home once authenticated.
        self.server_info: dict[str, Any] = handshake.info

    def _frame_before(self, deadline: float) -> Frame:
        # Only the handshake has a deadline; commands may run as long as they like.
        conn = self._conn
        conn.flush()
        while not conn.frames and conn.failure is None:
            left = deadline - time.monotonic()
            if not conn.pending() and (left <= 0 or not select.select([conn.sock], [], [], left)[0]):
                raise ConnectError("the server did not complete the rsh handshake in time")
            conn._read()
        return conn.next_frame()

    def run(
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
            On KeyboardInterrupt the connection is closed (the server then
            stops the command) and the interrupt propagates.
        """
        if self.closed:
            raise ConnectionLost("this connection is closed")
        conn = self._conn
        request = exec_request(command, stdin=input is not None, cwd=cwd, env=env, timeout=timeout, encoding=encoding)
        conn.send("exec", request.to_fields(), request.command)
        run = CommandRun(request.command.decode("utf-8", "replace"))
        refill = self._stdin_frames(input) if input is not None else None
        try:
            while True:
                event = run.on_frame(conn.next_frame(refill))
                if event is None:
                    break
                callback = on_stdout if event[0] == "stdout" else on_stderr
                if callback is not None:
                    callback(event[1])
        except KeyboardInterrupt:
            self.close()
            raise
        return run.result(check=check)

    def forward(
        self,
        command: str | bytes | Sequence[str],
        *,
        stdin: int | None = None,
        stdout: int = 1,
        stderr: int = 2,
        timeout: float | None = None,
        encoding: str | None = None,
    ) -> ExitStatus:
        """Run *command* wired to local file descriptors, as ``ssh HOST CMD`` is.

        Output goes to *stdout* and *stderr* as it arrives, byte for byte;
        *stdin* (a descriptor, or None for an empty stdin) is read only as
        fast as the server takes it.  In the main thread, Ctrl-C (SIGINT)
        sends INT to the remote command and keeps waiting for it to end; a
        second Ctrl-C raises KeyboardInterrupt.

        Returns:
            How the command ended (``timed_out`` if its *timeout* passed).

        Raises:
            BrokenPipeError: *stdout* or *stderr* was closed under us; the
                connection is closed, and with it the server stops the command.
            RemoteError, ConnectionLost; KeyboardInterrupt (the second Ctrl-C,
                the connection is then closed).
        """
        if self.closed:
            raise ConnectionLost("this connection is closed")
        conn = self._conn
        request = exec_request(command, stdin=stdin is not None, timeout=timeout, encoding=encoding)
        conn.send("exec", request.to_fields(), request.command)
        run = CommandRun(request.command.decode("utf-8", "replace"))
        sock_fd = conn.sock.fileno()
        interrupts = _Interrupts()
        try:
            while True:
                while conn.frames:
                    event = run.on_frame(conn.frames.popleft(), keep=False)
                    if event is None:
                        assert run.status is not None
                        return run.status
                    _write_all(stdout if event[0] == "stdout" else stderr, event[1])
                if conn.failure is not None:
                    raise conn.failure
                if conn.out:
                    conn._write()
                if conn.pending():
                    conn._read()  # decrypted already: poll() would not wake for it
                    continue
                # Output streaming in: read before waiting, and wait only when
                # nothing has come (a poll() per read was 3% of a 1 GiB stream).
                # Anything else to watch (stdin, Ctrl-C, unsent frames) takes the poll.
                if stdin is None and not conn.out and not interrupts.new() and conn._read():
                    continue
                poller = select.poll()
                poller.register(sock_fd, select.POLLIN | (select.POLLOUT if conn.out else 0))
                if stdin is not None and conn.out_len < _OUT_HIGH:
                    poller.register(stdin, select.POLLIN)
                if interrupts.fd >= 0:
                    poller.register(interrupts.fd, select.POLLIN)
                for fd, ev in poller.poll():
                    if fd == sock_fd:
                        if ev & select.POLLOUT and conn.out:
                            conn._write()
                        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                            conn._read()
                    elif fd == stdin:
                        try:
                            data = os.read(stdin, STDIN_CHUNK)
                        except OSError:
                            data = b""
                        if data:
                            conn.send("stdin", None, data)
                        else:
                            conn.send("stdin", {"eof": True})
                            stdin = None
                    else:
                        pressed = interrupts.take()
                        if pressed == 1:
                            conn.send("signal", {"signal": "INT"})
                        elif pressed > 1:
                            raise KeyboardInterrupt
        except (KeyboardInterrupt, BrokenPipeError):
            self.close()
            raise
        finally:
            interrupts.close()

    def put(
        self,
        local: Sources,
        remote: str,
        *,
        recursive: bool = False,
        resume: bool = False,
        cwd: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransferResult:
        """Copy local files to the server, like ``scp LOCAL HOST:REMOTE``.

        Args:
            local: a path, a list of paths (then *remote* must be an existing
                directory), or a readable binary stream (sent as one file).
            remote: where it goes: into it if it is a directory, else that name.
                Relative to *cwd*, else to the server's home directory.
            recursive: copy directories (structure, modes, mtimes, symlinks
                as links, empty directories).
            resume: keep partial data if interrupted, and continue from the
                partial an earlier ``resume=True`` call kept, once its first
                bytes are verified to match.
            progress: called with a ``TransferProgress`` as data moves.

        Returns:
            What was copied; every file's SHA-256 was verified by the server
            before it appeared under its name.

        Raises:
            TransferFailed: something did not arrive (``result.failures``);
                the connection is still usable.
            ConnectionLost: the connection broke (it is closed).
            RemoteError: the server refused the transfer (``not_allowed``,
                restricted mode); the connection is still usable.
            ValueError: nothing to send.
        """
        from ..transfer.rules import TransferResult
        from ..transfer.plan import checked, put_plan
        from ..transfer.send import Sender

        total = TransferResult()
        for request, source in put_plan(local, remote, recursive=recursive, resume=resume, cwd=cwd):
            self._check_open()
            self._conn.send("put", request.to_fields())
            total += self._send_source(Sender(source, progress=progress, sent_before=total.sent))
        return checked(total, self.host)

    def get(
        self,
        remote: str | Sequence[str],
        local: LocalPath | BinaryIO,
        *,
        recursive: bool = False,
        resume: bool = False,
        cwd: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransferResult:
        """Copy files from the server, like ``scp HOST:REMOTE LOCAL``.

        Args:
            remote: a path on the server, or several (then *local* must be an
                existing directory); relative to *cwd*, else to its home.
            local: where it goes: into it if it is a directory, else that
                name; or a writable binary stream (files only, verified
                after they are written to it).
            recursive, resume, progress: as for ``put``.

        Returns:
            What was copied; every file's SHA-256 was verified here before it
            appeared under its name.

        Raises:
            TransferFailed, ConnectionLost, RemoteError, ValueError: as for ``put``.
        """
        from ..transfer.rules import TransferResult
        from ..transfer.plan import checked, get_requests, make_receiver

        requests = get_requests(remote, recursive=recursive, cwd=cwd)
        total = TransferResult()
        for request in requests:
            self._check_open()
            receiver = make_receiver(local, several=len(requests) > 1, resume=resume, progress=progress, sent_before=total.sent)
            self._conn.send("get", request.to_fields())
            total += self._receive(receiver)
        return checked(total, self.host)

    def _check_open(self) -> None:
        if self.closed:
            raise ConnectionLost("this connection is closed")

    def _send_source(self, sender: Sender) -> TransferResult:
        """Run one transfer as its sender: frames out as the socket takes them, replies in."""
        from ..transfer.plan import lost

        conn = self._conn

        def frames() -> Iterator[None]:
            # Pulled by next_frame() only while the send queue has room:
            # the file is read as fast as the socket drains, no faster.
            while True:
                if sender.pending_hash:
                    sender.hash_done(sender.hash_job()())
                out = sender.next_frame()
                if out is None:
                    return
                conn.send(out.type, out.fields, out.payload)
                yield None

        try:
            while not sender.finished:
                sender.on_reply(conn.next_frame(frames()))
        except ConnectionLost as exc:
            self.close()
            raise lost(sender.where, exc) from exc
        except RemoteError:
            if not sender.refused:
                self.close()
                raise
            # Refused (restricted mode): the server drops what we sent up to
            # our `end` and is ready for the next request.
            out = sender.next_frame()
            if out is not None:
                conn.send(out.type, out.fields, out.payload)
            conn.flush()
            raise
        except BaseException:
            # Interrupted, or the stream is out of step: it cannot be reused.
            self.close()
            raise
        finally:
            sender.close()
        return sender.result()

    def _receive(self, receiver: Receiver) -> TransferResult:
        """Run one transfer as its receiver: frames in, replies out."""
        from ..transfer.plan import lost

        conn = self._conn
        try:
            while not receiver.finished:
                for out in receiver.on_frame(conn.next_frame()):
                    conn.send(out.type, out.fields, out.payload)
                if receiver.pending_hash:
                    for out in receiver.hash_done(receiver.hash_job()()):
                        conn.send(out.type, out.fields, out.payload)
            conn.flush()  # the final `done`
        except ConnectionLost as exc:
            where = receiver.where
            receiver.abort(interrupted=True)
            self.close()
            raise lost(where, exc) from exc
        except BaseException:
            receiver.abort(interrupted=True)
            if not receiver.refused:  # refused (restricted mode): the server stays ready
                self.close()
            raise
        return receiver.result()

    def _stdin_frames(self, data: bytes) -> Iterator[None]:
        view = memoryview(data)
        for i in range(0, len(data), STDIN_CHUNK):
            self._conn.send("stdin", None, bytes(view[i : i + STDIN_CHUNK]))
            yield None
        self._conn.send("stdin", {"eof": True})

    def close(self) -> None:
        """Close the connection; a running command is stopped by the server."""
        if not self.closed:
            self.closed = True
            self._conn.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def connect(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **kwargs: Any) -> Client:
    """Connect to an rsh server and return a blocking ``Client`` (see its arguments)."""
    return Client(host, port, token, **kwargs)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd*, waiting while a non-blocking one is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


class _Interrupts:
    """Ctrl-C while ``Client.forward`` waits: counted, and made to wake its poll().

    Outside the main thread (where Python allows no signal handler) it
    catches nothing, and ``fd`` is -1.
    """

    def __init__(self) -> None:
        self.count = 0
        self._seen = 0
        self.fd = -1
        try:
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:
            return
        self.fd, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.count += 1

    def new(self) -> bool:
        """True when Ctrl-C was pressed since the last ``take``."""
        return self.count != self._seen

    def take(self) -> int:
        """Drain the wake-up pipe; return how many Ctrl-Cs there have been (0 if none new)."""
        try:
            os.read(self.fd, 512)
        except BlockingIOError:
            pass
        if self.count == self._seen:
            return 0
        self._seen = self.count
        return self.count

    def close(self) -> None:
        """Put back the previous SIGINT handling."""
        if self.fd >= 0:
            signal.set_wakeup_fd(self._old_wakeup)
            signal.signal(signal.SIGINT, self._old_handler)
            os.close(self.fd)
            os.close(self._w)
            self.fd = -1
