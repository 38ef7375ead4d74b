"""The blocking client, for scripts: ``rsh.connect()``.

    with rsh.connect("127.0.0.1", 7022, token=...) as c:
        r = c.run("uname -a")
        print(r.exit_code, r.stdout_text)

A ``ClientProtocol`` over a ``SocketPump``: ``run``, ``put`` and ``get`` are
the operations of ``rsh.client.ops``, driven here by ``poll()``; ``forward``
(``rsh exec``) is ``rsh.client.forward``'s loop.  No event loop, so a short
command costs one send and the reads its answer needs.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from ..errors import ConnectionLost
from ..net.tls import TLS_PROBE_DELAY, client_context, speaks_tls
from ..protocol.address import DEFAULT_PORT
from ..protocol.client import Authenticated, ClientState, exec_request
from ..protocol.frames import DEFAULT_MAX_PAYLOAD, TraceHook
from ..protocol.messages import ExitStatus
from . import ops
from .connect import Dial
from .known_hosts import ConfirmCallback
from .socket_pump import SocketPump

if TYPE_CHECKING:
    from ..results import CommandResult, TransferResult
    from ..transfer.plan import LocalPath, Sources
    from ..transfer.send import ProgressCallback

__all__ = ["Client", "connect"]

T = TypeVar("T")


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
        sock = _open(dial)
        sock.setblocking(False)
        conn = dial.protocol()
        self._pump = SocketPump(sock, conn, tls=dial.tls)
        self.host = host
        self.closed = False
        #: The server's TLS fingerprint (it matched the pin), None without TLS.
        self.fingerprint = dial.fingerprint
        deadline = time.monotonic() + timeout
        try:
            if not dial.tls:
                _check_not_tls(sock, dial, deadline)
            while not isinstance(self._pump.next_event(deadline), Authenticated):
                pass
        except (TimeoutError, ConnectionLost) as exc:
            sock.close()
            raise dial.handshake_failed(exc, conn) from exc
        except BaseException:
            sock.close()
            raise
        #: What the server said of itself: version, server, encoding, os,
        #: shell, and user, host, home once authenticated.
        self.server_info: dict[str, Any] = conn.info

    @property
    def trace(self) -> TraceHook | None:
        """Called with every frame sent and received (``rsh.protocol.trace``); settable."""
        return self._pump.conn.trace

    @trace.setter
    def trace(self, hook: TraceHook | None) -> None:
        self._pump.conn.trace = hook

    def _drive(self, op: ops.Op[T]) -> T:
        """Run an operation to its end, answering what it needs from the socket."""
        if self.closed:
            raise ConnectionLost("this connection is closed")
        pump = self._pump
        try:
            need = next(op)
            while True:
                # The I/O's errors go into the operation, which names what it was doing.
                try:
                    if need is ops.Need.EVENT:
                        answer: Any = pump.next_event()
                    elif need is ops.Need.POLL:
                        answer = pump.poll_event()
                    elif need is ops.Need.DRAIN:
                        pump.drain()
                        answer = None
                    else:
                        answer = need.job()
                except BaseException as exc:
                    need = op.throw(exc)
                else:
                    need = op.send(answer)
        except StopIteration as done:
            pump.flush()
            return done.value  # type: ignore[no-any-return]
        except BaseException:
            # A refused command or transfer leaves the connection ready; an
            # interrupt or a broken stream leaves it out of step: close it
            # (the server then stops whatever it was doing for us).
            if pump.conn.state is ClientState.READY and not pump.conn.at_eof:
                pump.flush()
            else:
                self.close()
            raise

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
        on_stdout: ops.OutputCallback | None = None,
        on_stderr: ops.OutputCallback | None = None,
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
        conn = self._pump.conn
        op = ops.run(conn, command, input=input, cwd=cwd, env=env, timeout=timeout, encoding=encoding, check=check, on_stdout=on_stdout, on_stderr=on_stderr)
        return self._drive(op)

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
        from .forward import forward

        if self.closed:
            raise ConnectionLost("this connection is closed")
        request = exec_request(command, stdin=stdin is not None, timeout=timeout, encoding=encoding)
        try:
            return forward(self._pump, request, stdin, stdout, stderr)
        except BaseException:
            if self._pump.conn.state is not ClientState.READY:
                self.close()
            raise

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
        conn = self._pump.conn
        return self._drive(ops.put(conn, local, remote, host=self.host, recursive=recursive, resume=resume, cwd=cwd, progress=progress))

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
        conn = self._pump.conn
        return self._drive(ops.get(conn, remote, local, host=self.host, recursive=recursive, resume=resume, cwd=cwd, progress=progress))

    def close(self) -> None:
        """Close the connection; a running command is stopped by the server."""
        if not self.closed:
            self.closed = True
            self._pump.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def connect(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **kwargs: Any) -> Client:
    """Connect to an rsh server and return a blocking ``Client`` (see its arguments)."""
    return Client(host, port, token, **kwargs)


def _open(dial: Dial) -> socket.socket:
    """Connect; with TLS, also do the handshake (blocking) and check the pin, before any protocol byte."""
    try:
        sock = socket.create_connection((dial.host, dial.port), timeout=dial.timeout)
    except OSError as exc:
        raise dial.open_failed(exc, in_tls=False) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not dial.tls:
        return sock
    try:
        tls = client_context().wrap_socket(sock, server_hostname=dial.host)
    except OSError as exc:
        sock.close()
        raise dial.open_failed(exc, in_tls=True) from exc
    try:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        again = dial.check_peer(der)
    except BaseException:
        tls.close()
        raise
    if again:
        tls.close()
        return _open(dial)
    return tls


def _check_not_tls(sock: socket.socket, dial: Dial, deadline: float) -> None:
    """If the server is slow to say anything, make sure it is not waiting for TLS (see ``TLS_PROBE_DELAY``)."""
    wait = min(TLS_PROBE_DELAY, deadline - time.monotonic())
    if wait <= 0 or select.select([sock], [], [], wait)[0]:
        return
    # At most half of what is left, so a probe that hangs still leaves
    # time for a slow hello.
    left = deadline - time.monotonic()
    if left > 0 and speaks_tls(dial.host, dial.port, left / 2):
        raise dial.speaks_tls_error()

