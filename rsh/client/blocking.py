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

import _socket
import functools
import select
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from ..errors import ConnectionLost
from ..net.tcp import as_socket, connect_tcp
from ..net.tls import TLS_PROBE_DELAY, client_context, plain_greeting, said_in_clear, speaks_tls
from ..protocol.address import DEFAULT_PORT
from ..protocol.client import Authenticated, ClientProtocol, exec_request
from ..protocol.messages import ExitStatus
from . import ops
from .connect import Connected, Dial, DialOptions, SpeaksTLS
from .socket_pump import SocketPump

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Concatenate, ParamSpec, TypeVar, Unpack

    T = TypeVar("T")
    P = ParamSpec("P")

__all__ = ["Client", "connect"]


def _bound(op: Callable[Concatenate[ClientProtocol, P], ops.Op[T]], lend: tuple[str, ...] = ()) -> Callable[Concatenate[Client, P], T]:
    """The operation *op* as a method: run on this client's connection (its docstring is the method's).

    Frames of the types in *lend* arrive as views of the read buffer, not
    copies (``FrameDecoder.lend``): for an operation done with each before
    it asks for the next event, which is when this driver reads again.
    """

    @functools.wraps(op)
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not lend:
            return self._drive(op(self._pump.conn, *args, **kwargs))
        decoder = self._pump.conn.decoder
        decoder.lend(lend)
        try:
            return self._drive(op(self._pump.conn, *args, **kwargs))
        finally:
            decoder.lend(())

    return method


class Client(Connected):
    """A blocking connection to an rsh server; commands run one at a time.

    Args:
        host, port: where the server listens.
        token: the shared secret; None looks where the command line does
            (``RSH_TOKEN``, then the default token file), and connects
            without one if neither has it (a ``--no-auth`` server).
        options: timeout, TLS and the server's pin, tracing (see
            ``rsh.client.connect.DialOptions``).

    Raises:
        ConnectError, HostKeyChanged, UnknownHostKey, AuthError, ProtocolError,
        ConnectionLost; ValueError for a malformed fingerprint.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **options: Unpack[DialOptions]) -> None:
        dial = Dial(host, port, token, **options)
        try:
            self._pump = _authenticated(dial)
        except SpeaksTLS as exc:
            # A plain connection found a server waiting for TLS: speak it
            # (the pin decides, or the person is asked, as for any TLS server).
            dial.upgrade(exc)
            self._pump = _authenticated(dial)
        self.closed = False
        super().__init__(self._pump.conn, host, dial.fingerprint)

    def _drive(self, op: ops.Op[T]) -> T:
        """Run an operation to its end, answering what it needs from the socket."""
        if self.closed:
            raise ConnectionLost("this connection is closed")
        pump = self._pump
        try:
            result = ops.drive(op, self._answer)
        except BaseException:
            ops.settle(pump.conn, pump.flush, self.close)
            raise
        pump.flush()
        return result

    def _answer(self, need: ops.Need | ops.HashJob) -> object:
        pump = self._pump
        if need is ops.Need.EVENT:
            return pump.next_event()
        if need is ops.Need.POLL:
            return pump.poll_event()
        if need is ops.Need.ROOM:
            pump.make_room()
            return None
        assert isinstance(need, ops.HashJob)
        return need.job()

    run = _bound(ops.run)
    put = _bound(ops.put)
    get = _bound(ops.get, lend=("data",))  # each is written to its file before the next read

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

        A *stdout* or *stderr* whose reader leaves (EPIPE) gets nothing more
        and the server closes that pipe, as with ssh: the command meets EPIPE
        there, runs to its end, and its status is returned.

        Raises:
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
            ops.settle(self._pump.conn, self._pump.flush, self.close)
            raise

    def close(self) -> None:
        """Close the connection; a running command is stopped by the server."""
        if not self.closed:
            self.closed = True
            self._pump.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def connect(host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None, **options: Unpack[DialOptions]) -> Client:
    """Connect to an rsh server and return a blocking ``Client`` (see its arguments)."""
    return Client(host, port, token, **options)


def _authenticated(dial: Dial) -> SocketPump:
    """Connect as *dial* says and authenticate.

    Raises:
        SpeaksTLS: a plain connection found a server that waits for TLS.
    """
    sock = _open(dial)
    conn = dial.protocol()
    pump = SocketPump(sock, conn, tls=dial.tls)
    deadline = time.monotonic() + dial.timeout
    with dial.handshaking(conn, sock.close):
        if not dial.tls:
            _check_not_tls(sock, dial, deadline)
        while not isinstance(pump.next_event(deadline), Authenticated):
            pass
    return pump


def _open(dial: Dial) -> _socket.socket:
    """Connect; with TLS, also do the handshake (blocking) and check the pin, before any protocol byte."""
    try:
        # An ASCII name as the bytes the idna codec would give (labels of 1 to 63
        # characters), so getaddrinfo need not import it (with stringprep and
        # unicodedata: some 4% of `rsh exec`'s start-up); else the codec's own error.
        labels = dial.host.split(".")
        plain = dial.host.isascii() and all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64
        host = dial.host.encode() if plain else dial.host
        sock = connect_tcp(host, dial.port, dial.timeout)
    except OSError as exc:
        raise dial.open_failed(exc, in_tls=False) from exc
    if not dial.tls:
        return sock
    try:
        tls = client_context().wrap_socket(as_socket(sock), server_hostname=dial.host)
    except OSError as exc:
        sock.close()
        greeting = plain_greeting(dial.host, dial.port, dial.timeout / 2) if said_in_clear(exc) else b""
        raise dial.tls_failed(exc, greeting) from exc
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


def _check_not_tls(sock: _socket.socket, dial: Dial, deadline: float) -> None:
    """If the server is slow to say anything, make sure it is not waiting for TLS (see ``TLS_PROBE_DELAY``)."""
    wait = min(TLS_PROBE_DELAY, deadline - time.monotonic())
    if wait <= 0 or select.select([sock], [], [], wait)[0]:
        return
    # At most half of what is left, so a probe that hangs still leaves
    # time for a slow hello.
    left = deadline - time.monotonic()
    if left > 0 and speaks_tls(dial.host, dial.port, left / 2, unless=sock):
        raise dial.speaks_tls_error()
