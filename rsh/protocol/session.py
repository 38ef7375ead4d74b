"""The client's half of the conversation, without I/O.

Both clients drive these objects with frames they read however they read
them: ``AsyncClient`` from an asyncio protocol, the blocking ``Client`` from
a plain socket.  What to send and how to judge what came back lives here,
once.

``Handshake``: ``hello`` in, the ``auth`` frame out, ``auth_ok`` checked.
``CommandRun``: one command's frames in, output events and a
``CommandResult`` out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import auth
from ..errors import AuthError, CommandFailed, CommandTimeout, ProtocolError, RemoteError
from .frames import Frame
from .messages import PROTOCOL_VERSION, ExecRequest, ExitStatus, remote_error

if TYPE_CHECKING:
    from ..results import CommandResult

__all__ = [
    "DEFAULT_PORT",
    "STDIN_CHUNK",
    "OutputCallback",
    "Handshake",
    "CommandRun",
    "exec_request",
    "parse_address",
    "remote_error",
    "connect_error_reason",
]


#: The port ``rsh serve`` listens on unless told otherwise.
DEFAULT_PORT = 7022

# stdin is sent in chunks no larger than output's.
STDIN_CHUNK = 64 * 1024

OutputCallback = Callable[[bytes], None]


def parse_address(address: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split ``HOST[:PORT]`` (``[v6addr]:PORT`` for IPv6) into host and port.

    Raises:
        ValueError: the port is not a number from 1 to 65535.
    """
    host, port_s = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, port_s = address.partition(":")
    if not port_s:
        return host or "127.0.0.1", default_port
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"invalid port {port_s!r} in {address!r}")
    return host or "127.0.0.1", int(port_s)


def exec_request(
    command: str | bytes | Sequence[str],
    *,
    stdin: bool = False,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    encoding: str | None = None,
    session: bool = False,
) -> ExecRequest:
    """Build the ``exec`` for *command*, checking it before anything is sent.

    A string is sent as UTF-8 (lone surrogates as the bytes they stand for),
    bytes as they are, and a list of words, as ``subprocess.run`` takes
    them, quoted for the shell so each word arrives as one argument.

    Raises:
        TypeError: *command* is none of those.
        ValueError: it is empty.
    """
    if isinstance(command, (list, tuple)) and all(isinstance(w, str) for w in command):
        import shlex  # here: `rsh exec` sends a string, and need not load it

        command = shlex.join(command)
    if isinstance(command, str):
        raw = command.encode("utf-8", "surrogateescape")
    elif isinstance(command, (bytes, bytearray, memoryview)):
        raw = bytes(command)
    else:
        raise TypeError(f"command must be a str, bytes or a list of str, not {type(command).__name__}")
    if not raw.strip():
        raise ValueError("the command is empty")
    if b"\0" in raw:
        raise ValueError("the command contains a NUL byte, which no shell can be given")
    return ExecRequest(raw, cwd, dict(env) if env else None, timeout, stdin, encoding, session)


def connect_error_reason(exc: OSError) -> str:
    """A short lower-case reason for a failed connect (``connection refused``)."""
    import os
    import socket

    if isinstance(exc, socket.gaierror):
        return (exc.strerror or str(exc)).lower()
    # asyncio's text is "Connect call failed (addr)"; the errno says why.
    return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()


class Handshake:
    """Authenticate to a server: feed it ``hello``, send what it returns, feed it the reply."""

    def __init__(self, token: str | None, where: str) -> None:
        self.token = token
        self.where = where
        self.hello: Frame | None = None
        #: What the server said of itself: hello's fields, and once
        #: authenticated who and where commands run (user, host, home).
        self.info: dict[str, Any] = {}
        self._client_nonce = ""

    def on_hello(self, frame: Frame) -> tuple[str, dict[str, Any]] | None:
        """Check the server's first frame.

        Returns:
            The ``auth`` frame (type, fields) to send, or None when the server
            needs no authentication and the handshake is done.

        Raises:
            RemoteError, ProtocolError, AuthError.
        """
        where = self.where
        if frame.type == "error":
            error = remote_error(frame)
            if error.code == "access_denied":
                raise RemoteError(f"{where} refused the connection: {error.message}", code=error.code)
            raise error
        if frame.type != "hello":
            raise ProtocolError(f"{where} sent {frame.type!r} instead of hello: not an rsh server?", code="unexpected_frame")
        if frame.get("version") != PROTOCOL_VERSION:
            raise ProtocolError(f"{where} speaks protocol version {frame.get('version')!r}, not {PROTOCOL_VERSION}", code="version")
        self.hello = frame
        self.info = {k: v for k, v in frame.fields.items() if k != "nonce"}
        if frame.get("auth") == "none":
            return None
        if not isinstance(frame.get("nonce"), str):
            raise ProtocolError(f"{where} sent a hello without a nonce", code="bad_field")
        if self.token is None:
            raise AuthError(f"{where} requires a token and none was found (give one with --token-file or token=, or set RSH_TOKEN)")
        self._client_nonce = auth.new_nonce()
        mac = auth.client_mac(self.token, frame.get("nonce"), self._client_nonce)
        return "auth", {"nonce": self._client_nonce, "mac": mac}

    def on_reply(self, frame: Frame) -> None:
        """Check the server's answer to ``auth``.

        Raises:
            AuthError: wrong token, or the server could not prove it has it.
        """
        assert self.hello is not None and self.token is not None
        where = self.where
        if frame.type == "error":
            if frame.get("code") == "auth_failed":
                raise AuthError(f"{where}: authentication failed (wrong token)")
            raise remote_error(frame)
        if frame.type != "auth_ok":
            raise ProtocolError(f"{where} sent {frame.type!r} instead of auth_ok", code="unexpected_frame")
        expected = auth.server_mac(self.token, self.hello.get("nonce"), self._client_nonce)
        if not auth.macs_equal(frame.get("mac"), expected):
            raise AuthError(f"{where} could not prove it knows the token: not the server you think it is")
        self.info.update((k, v) for k, v in frame.fields.items() if k != "mac")


class CommandRun:
    """One command's frames, turned into output events and a result."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.status: ExitStatus | None = None
        self._out: list[bytes] = []
        self._err: list[bytes] = []

    @property
    def done(self) -> bool:
        """True once the ``exit`` frame has arrived."""
        return self.status is not None

    def on_frame(self, frame: Frame, *, keep: bool = True) -> tuple[str, bytes] | None:
        """Take the next frame of this command.

        Args:
            keep: also keep output for ``result()`` (off when only streaming).

        Returns:
            ``(stream, data)`` for output, None once the command has exited.

        Raises:
            RemoteError: the server could not run it.
            ProtocolError: a frame that has no place here.
        """
        if frame.type == "stdout" or frame.type == "stderr":
            if keep:
                (self._out if frame.type == "stdout" else self._err).append(frame.payload)
            return frame.type, frame.payload
        if frame.type == "exit":
            self.status = ExitStatus.from_frame(frame)
            return None
        if frame.type == "error":
            raise remote_error(frame)
        raise ProtocolError(f"unexpected {frame.type!r} frame while a command runs", code="unexpected_frame")

    def result(self, *, check: bool = False) -> CommandResult:
        """The finished command's result.

        Raises:
            CommandTimeout: the server stopped the command at its timeout.
            CommandFailed: *check* is set and the command did not exit 0.
        """
        from ..results import CommandResult  # here: `rsh exec` (forward) never makes one

        status = self.status
        assert status is not None, "the command has not finished"
        result = CommandResult(
            command=self.command,
            stdout=b"".join(self._out),
            stderr=b"".join(self._err),
            exit_code=status.exit_code,
            signal=status.signal,
            encoding=status.encoding,
            elapsed=status.elapsed,
            timed_out=status.timed_out,
        )
        if result.timed_out:
            raise CommandTimeout(result, f"command {self.command!r} timed out after {status.elapsed:.1f}s")
        if check and not result.ok:
            raise CommandFailed(result)
        return result
