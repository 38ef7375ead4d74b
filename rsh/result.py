"""What a finished command gave back: ``CommandResult``."""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass

__all__ = ["CommandResult", "signal_name"]


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
