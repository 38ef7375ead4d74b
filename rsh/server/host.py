"""``Host``: the server a connection belongs to, as the connection sees it.

Apart from the listener (``rsh.server.listener.Server`` is one), so that a
connection names what it needs of its server without importing it.
"""

from __future__ import annotations

from typing import Any, Protocol

from .admission import Guard
from .fdwatch import FdWatcher
from .link import Reaped
from .settings import ServerConfig

__all__ = ["Host"]


class Host(Protocol):
    """The server a connection belongs to, as the connection sees it."""

    config: ServerConfig
    guard: Guard
    #: Every open connection (``Server.close`` stops them).
    connections: set[Any]

    @property
    def watcher(self) -> FdWatcher:
        """Watches every command's pipes and exit, for all connections."""
        ...

    def log(self, message: str) -> None:
        """Write a one-line notice."""
        ...

    def command_started(self, pid: int) -> None:
        """A command started, in process group *pid*."""
        ...

    def command_reaped(self, pid: int) -> None:
        """The main process of the command in group *pid* was reaped."""
        ...

    def command_abandoned(self, command: Reaped) -> None:
        """*command*'s connection is gone; it is being stopped but may not be reaped yet."""
        ...
