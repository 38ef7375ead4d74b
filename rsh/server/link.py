"""What a command or a transfer may ask of the connection it serves: the one interface between them.

A running command (``rsh.server.process``) and a transfer handler
(``rsh.server.transfers``) both send frames, hold back while the client is
not reading, stop reading the client while they cannot keep up, and write
audit records; a command also needs the loop's descriptor watcher and
reports its exit.  They get all of it from one ``Link``, which the
connection's pump (``rsh.server.connection.ServerConnection``) implements, and
nothing else of the connection: no transport, no protocol object, no import
of the pump.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from ..protocol.messages import ExitStatus
from .fdwatch import FdWatcher

__all__ = ["Link", "Reaped"]


class Reaped(Protocol):
    """Something the server started whose main process it reaps: a command, a live shell."""

    reaped: asyncio.Future[None]


class Link(Protocol):
    """The connection, as the work it runs sees it."""

    @property
    def watcher(self) -> FdWatcher:
        """Watches a command's pipes and exit (one for the whole server)."""
        ...

    @property
    def output_paused(self) -> bool:
        """True while the client is not keeping up, or is gone: send nothing more for now."""
        ...

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes | memoryview = b"") -> None:
        """Send one frame (a no-op once the connection is closed).

        A memoryview *payload* is read before this returns or, when corked,
        before ``uncork`` returns: its buffer may be reused after.

        Raises:
            ProtocolError: the frame may not be sent now (a bug in the caller).
        """
        ...

    def send_from_pipe(self, type: str, fd: int, size: int) -> bool:
        """Send one frame whose payload is the next *size* bytes of pipe *fd* (which holds them), without reading them.

        False, having sent nothing, when that cannot be done now: read them and ``send`` instead.
        """
        ...

    def cork(self) -> None:
        """Hold frames sent from now on until ``uncork``."""
        ...

    def uncork(self) -> None:
        """Write every frame held since ``cork`` at once, without joining their payloads."""
        ...

    def pause_input(self) -> None:
        """Stop reading the client until ``resume_input`` (the work cannot take more yet)."""
        ...

    def resume_input(self) -> None:
        """Read the client again."""
        ...

    def audit(self, event: str, **fields: object) -> None:
        """Append a record about this connection to the audit log, if there is one.

        Time, connection number, peer and user are filled in; ``started``
        (a ``time.time()``) sets the record's time, else it is now.
        """
        ...

    def command_exited(self, status: ExitStatus) -> None:
        """The running command is over (its last output is sent): send its ``exit``."""
        ...

    def command_reaped(self, pid: int) -> None:
        """The command's main process (the leader of its process group *pid*) has been reaped.

        Called even after the command was aborted: the server counts
        running commands by it.
        """
        ...
