"""The events a client connection hands its driver (``rsh.protocol.client.ClientProtocol.next_event``)."""

from __future__ import annotations

from .connection import Event
from .messages import ExitStatus, LineEnd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Authenticated",
    "Output",
    "Exited",
    "Completions",
    "ShellStarted",
    "LineEnded",
    "Checked",
]


class Authenticated(Event):
    """The handshake is done; ``info`` is what the server said of itself."""

    __slots__ = ("info",)

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info


class Output(Event):
    """A chunk of the running command's ``stdout`` or ``stderr``."""

    __slots__ = ("stream", "data")

    def __init__(self, stream: str, data: bytes) -> None:
        self.stream = stream
        self.data = data


class Exited(Event):
    """The command has ended: how (``status``)."""

    __slots__ = ("status",)

    def __init__(self, status: ExitStatus) -> None:
        self.status = status


class Completions(Event):
    """The answer to the latest ``complete`` request."""

    __slots__ = ("items",)

    def __init__(self, items: list[str]) -> None:
        self.items = items


class ShellStarted(Event):
    """The live shell runs: *shell* is its path, *pid* its process."""

    __slots__ = ("shell", "pid")

    def __init__(self, shell: str, pid: int) -> None:
        self.shell = shell
        self.pid = pid


class LineEnded(Event):
    """The live shell finished a line: its status and where the shell is now."""

    __slots__ = ("end",)

    def __init__(self, end: LineEnd) -> None:
        self.end = end


class Checked(Event):
    """The answer to a ``check``: whether the text is complete shell input."""

    __slots__ = ("id", "complete")

    def __init__(self, id: int, complete: bool) -> None:
        self.id = id
        self.complete = complete
