"""Typed views of the protocol's messages, validated where they are parsed.

The codec guarantees a frame's shape (a JSON object with a known type); these
check what each message's fields must be, so the server never acts on a
field it has not checked.  Every check failure is a ``ProtocolError``.
"""

from __future__ import annotations

import codecs

from ..errors import ProtocolError, RemoteError
from .frames import Frame

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from typing import Any, NamedTuple
else:
    import _signal  # signal.py's functions and numbers, without the enums it makes (3% of a cold `rsh exec`)

    from ..typeshim import NamedTuple

__all__ = [
    "PROTOCOL_VERSION", "FEATURES", "SIGNALS", "ExecRequest", "ExitStatus", "ShellRequest", "LineEnd", "window_size",
    "check_encoding", "remote_error",
]  # fmt: skip

#: Bumped on any incompatible change to docs/protocol.md.
PROTOCOL_VERSION = 1

#: What this side speaks beyond version 1's first form, as ``hello`` lists
#: it: a client asks for a feature only of a server that names it.
FEATURES = ("shell", "closed")

#: Signals a client may ask the server to send to a running command.
SIGNALS: dict[str, int] = {
    "INT": _signal.SIGINT,
    "TERM": _signal.SIGTERM,
    "KILL": _signal.SIGKILL,
    "HUP": _signal.SIGHUP,
    "QUIT": _signal.SIGQUIT,
}


def _bad(frame: Frame, what: str) -> ProtocolError:
    return ProtocolError(f"{frame.type} frame: {what}", code="bad_field")


def remote_error(frame: Frame) -> RemoteError:
    """The exception an ``error`` frame from the peer stands for."""
    return RemoteError(str(frame.get("message", "unknown error")), code=str(frame.get("code", "error")))


def check_encoding(name: str) -> str:
    """Return the canonical name of codec *name*.

    Raises:
        LookupError: Python knows no such codec.
    """
    return codecs.lookup(name).name


# Messages are NamedTuples, not dataclasses: importing ``dataclasses`` (and
# ``inspect``) would be a fifth of ``rsh exec``'s start-up.
class ExecRequest(NamedTuple):
    """An ``exec`` frame: run ``command`` (its payload) through the shell."""

    command: bytes
    cwd: str | None = None
    env: dict[str, str] | None = None
    timeout: float | None = None
    stdin: bool = False
    encoding: str | None = None
    #: Run in the connection's shell session (cwd and exports persist).
    session: bool = False

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields of this request (the command is the payload)."""
        fields: dict[str, Any] = {}
        if self.cwd is not None:
            fields["cwd"] = self.cwd
        if self.env:
            fields["env"] = self.env
        if self.timeout is not None:
            fields["timeout"] = self.timeout
        if self.stdin:
            fields["stdin"] = True
        if self.encoding is not None:
            fields["encoding"] = self.encoding
        if self.session:
            fields["session"] = True
        return fields

    @classmethod
    def from_frame(cls, frame: Frame) -> ExecRequest:
        """Validate an ``exec`` frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        if not frame.payload:
            raise _bad(frame, "the command (the payload) is empty")
        f = frame.fields
        cwd = f.get("cwd")
        if cwd is not None and (not isinstance(cwd, str) or "\0" in cwd or not cwd):
            raise _bad(frame, "'cwd' must be a non-empty string")
        env = f.get("env")
        if env is not None:
            if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v for k, v in env.items()
            ):
                raise _bad(frame, "'env' must map variable names to strings")
        timeout = f.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
            raise _bad(frame, "'timeout' must be a positive number of seconds")
        stdin = f.get("stdin", False)
        session = f.get("session", False)
        if not isinstance(stdin, bool) or not isinstance(session, bool):
            raise _bad(frame, "'stdin' and 'session' must be true or false")
        encoding = f.get("encoding")
        if encoding is not None:
            try:
                encoding = check_encoding(encoding) if isinstance(encoding, str) else None
            except LookupError:
                encoding = None
            if encoding is None:
                raise _bad(frame, f"unknown encoding {frame.get('encoding')!r}")
        if session and cwd is not None:
            raise _bad(frame, "a session command runs in the session's cwd; 'cwd' cannot be given")
        return cls(frame.payload, cwd, env, float(timeout) if timeout is not None else None, stdin, encoding, session)


class ExitStatus(NamedTuple):
    """An ``exit`` frame: how the command ended."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    elapsed: float
    stdout_bytes: int
    stderr_bytes: int
    encoding: str
    #: A session command's working directory afterwards (see rsh.server.shell_state).
    cwd: str | None = None
    #: After a session command: what export/unset changed since the session
    #: began, NAME -> value or None when unset (see ShellSession.exports).
    exports: dict[str, str | None] | None = None

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields of this message."""
        fields: dict[str, Any] = {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "timed_out": self.timed_out,
            "elapsed": round(self.elapsed, 6),
            "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes,
            "encoding": self.encoding,
        }
        if self.cwd is not None:
            fields["cwd"] = self.cwd
        if self.exports is not None:
            fields["exports"] = self.exports
        return fields

    @classmethod
    def from_frame(cls, frame: Frame) -> ExitStatus:
        """Validate an ``exit`` frame.

        Raises:
            ProtocolError: a field has the wrong type.
        """
        f = frame.fields
        code, sig, out, err = f.get("exit_code"), f.get("signal"), f.get("stdout_bytes"), f.get("stderr_bytes")
        for name, v in (("exit_code", code), ("signal", sig), ("stdout_bytes", out), ("stderr_bytes", err)):
            if v is not None and type(v) is not int:  # not a bool either (a subclass of int)
                raise _bad(frame, f"{name!r} must be an integer or null")
        if (code is None) == (sig is None):
            raise _bad(frame, "exactly one of 'exit_code' and 'signal' must be set")
        elapsed = f.get("elapsed", 0.0)
        encoding = f.get("encoding", "utf-8")
        cwd = f.get("cwd")
        if not isinstance(elapsed, (int, float)) or not isinstance(encoding, str) or not isinstance(cwd, (str, type(None))):
            raise _bad(frame, "'elapsed' must be a number, 'encoding' and 'cwd' strings")
        exports = f.get("exports")
        if exports is not None and not (isinstance(exports, dict) and all(isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in exports.items())):
            raise _bad(frame, "'exports' must map names to strings or null")
        return cls(
            exit_code=code,
            signal=sig,
            timed_out=bool(f.get("timed_out", False)),
            elapsed=float(elapsed),
            stdout_bytes=out or 0,
            stderr_bytes=err or 0,
            encoding=encoding,
            cwd=cwd,
            exports=exports,
        )


_TERM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")


def window_size(frame: Frame) -> tuple[int, int]:
    """A frame's ``rows`` and ``cols`` (0 each when absent: size unknown).

    Raises:
        ProtocolError: not integers from 0 to 65535.
    """
    rows, cols = frame.get("rows", 0), frame.get("cols", 0)
    for v in (rows, cols):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFF:
            raise _bad(frame, "'rows' and 'cols' must be integers from 0 to 65535")
    return rows, cols


class ShellRequest(NamedTuple):
    """A ``shell`` frame: start the session's live shell on a pseudo-terminal."""

    term: str = "dumb"
    rows: int = 0
    cols: int = 0

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields of this request."""
        return {"term": self.term, "rows": self.rows, "cols": self.cols}

    @classmethod
    def from_frame(cls, frame: Frame) -> ShellRequest:
        """Validate a ``shell`` frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        term = frame.get("term", "dumb")
        # TERM names a terminfo file: a path separator or a control character has no place in it.
        if not isinstance(term, str) or not 0 < len(term) <= 64 or not set(term) <= _TERM_CHARS:
            raise _bad(frame, "'term' must be a terminal type name (letters, digits, . _ + -)")
        return cls(term, *window_size(frame))


class LineEnd(NamedTuple):
    """A ``line_end`` frame: the live shell finished a line and waits for the next."""

    status: int
    cwd: str

    @classmethod
    def from_frame(cls, frame: Frame) -> LineEnd:
        """Validate a ``line_end`` frame.

        Raises:
            ProtocolError: a field has the wrong type.
        """
        status, cwd = frame.get("status"), frame.get("cwd", "")
        if isinstance(status, bool) or not isinstance(status, int) or not isinstance(cwd, str):
            raise _bad(frame, "'status' must be an integer and 'cwd' a string")
        return cls(status, cwd)


# A transfer's own frames, by who sends them (docs/protocol.md, "Transfers"):
# what both roles' state tables let through while a put or a get runs.  Here,
# below rsh.transfer, which imports them and checks what their fields mean.
#: Frames that announce an entry (sender to receiver).
ENTRY_TYPES = frozenset({"file", "dir", "symlink"})
#: Frames the sender of a transfer sends (the client during a put).
TRANSFER_SENDER_TYPES = ENTRY_TYPES | {"resume", "data", "file_end", "error", "end"}
#: Frames the receiver of a transfer sends (the client during a get).
TRANSFER_RECEIVER_TYPES = frozenset({"ready", "ok", "error", "done"})
