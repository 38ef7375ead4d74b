"""What the client API hands back: a command's ``CommandResult``, a transfer's ``TransferResult``.

Plain data, below everything else in the package, so that ``rsh.errors`` can
name them without importing any layer above it.
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass
from typing import Any

__all__ = ["CommandResult", "Failure", "GroupResult", "TransferProgress", "TransferResult", "printable", "signal_name"]


def signal_name(signum: int) -> str:
    """Return ``SIGINT`` for 2, and so on (``signal 99`` for unknown ones)."""
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one remote command, like ``subprocess.CompletedProcess``.

    ``stdout`` and ``stderr`` are the exact bytes; ``encoding`` is what the
    server says they are in, used by the ``*_text`` helpers.
    """

    command: str
    stdout: bytes
    stderr: bytes
    exit_code: int | None
    signal: int | None
    encoding: str
    elapsed: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.exit_code == 0

    @property
    def returncode(self) -> int:
        """As ``subprocess``: the exit code, or minus the signal that ended it."""
        return self.exit_code if self.exit_code is not None else -(self.signal or 0)

    @property
    def exit_status(self) -> int:
        """As a shell reports it: the exit code, or 128 + the signal number."""
        return self.exit_code if self.exit_code is not None else 128 + (self.signal or 0)

    @property
    def stdout_text(self) -> str:
        """stdout decoded in ``encoding`` (invalid bytes become U+FFFD)."""
        return self.stdout.decode(self.encoding, "replace")

    @property
    def stderr_text(self) -> str:
        """stderr decoded in ``encoding`` (invalid bytes become U+FFFD)."""
        return self.stderr.decode(self.encoding, "replace")

    text = stdout_text

    def status_text(self) -> str:
        """``exit status 1``, ``signal SIGKILL`` or ``timeout (signal SIGTERM)``."""
        if self.signal is not None:
            what = f"signal {signal_name(self.signal)}"
        else:
            what = f"exit status {self.exit_code}"
        return f"timeout ({what})" if self.timed_out else what


def printable(path: str) -> str:
    """*path* safe to print: undecodable bytes (surrogate escapes) as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class Failure:
    """One entry that could not be transferred, and why.

    ``path`` names it as the side that failed sees it; ``remote`` says that
    side was the peer (so a client prints ``HOST:path``).
    """

    path: str
    code: str
    message: str
    remote: bool = False

    def line(self, host: str | None = None) -> str:
        """The one-line report, e.g. ``docs/a.txt: Permission denied``."""
        where = f"{host}:{self.path}" if self.remote and host else self.path
        return f"{printable(where)}: {self.message}"

    def to_fields(self) -> dict[str, Any]:
        """The fields of the ``error`` frame reporting it."""
        return {"code": self.code, "path": printable(self.path), "message": self.message}


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """Where a transfer stands, given to a ``progress`` callback as data moves."""

    #: The file being transferred, as the local side names it.
    path: str
    #: Bytes of it now at the receiver (including any resumed prefix).
    done: int
    #: Its size, when known.
    size: int | None
    #: Bytes sent as data in this whole call so far (all files).
    sent: int


@dataclass(frozen=True)
class TransferResult:
    """What a ``put`` or ``get`` did."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    #: Bytes of the files now in place, all verified.
    bytes: int = 0
    #: Bytes that crossed the wire as data (less than ``bytes`` after a resume).
    sent: int = 0
    #: Bytes a resume did not need to send again.
    resumed: int = 0
    elapsed: float = 0.0
    #: The SHA-256 of the file, when exactly one file was transferred.
    sha256: str | None = None
    failures: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every entry arrived."""
        return not self.failures

    def __add__(self, other: TransferResult) -> TransferResult:
        files = self.files + other.files
        return TransferResult(
            files=files,
            dirs=self.dirs + other.dirs,
            symlinks=self.symlinks + other.symlinks,
            bytes=self.bytes + other.bytes,
            sent=self.sent + other.sent,
            resumed=self.resumed + other.resumed,
            elapsed=self.elapsed + other.elapsed,
            sha256=(self.sha256 or other.sha256) if files == 1 else None,
            failures=self.failures + other.failures,
        )


class GroupResult(dict[str, Any]):
    """What a ``Group`` call did on each host: host -> its result, or the error it raised.

    A ``dict`` in the order the hosts were given, as Fabric's ``GroupResult``:
    each value is a ``CommandResult`` / ``TransferResult``, or the exception
    that host raised (``ConnectError``, ``AuthError``, ``CommandTimeout``, ...).
    ``elapsed`` has each host's seconds, errors included.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.elapsed: dict[str, float] = {}

    @property
    def succeeded(self) -> dict[str, Any]:
        """The hosts whose result is ``ok`` (exited 0, or every file arrived)."""
        return {host: r for host, r in self.items() if not isinstance(r, BaseException) and getattr(r, "ok", True)}

    @property
    def failed(self) -> dict[str, Any]:
        """The rest: an error raised, a non-zero exit, a file that did not arrive."""
        return {host: r for host, r in self.items() if host not in self.succeeded}

    @property
    def ok(self) -> bool:
        """True when every host succeeded."""
        return not self.failed
