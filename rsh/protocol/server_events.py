"""The events a server connection hands its driver (``rsh.protocol.server.ServerProtocol.next_event``).

One per request or message of the client's the driver must act on, its
fields already checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from .connection import Event
from .frames import Frame
from .messages import ExecRequest, ShellRequest

__all__ = [
    "Authenticated",
    "AuthRejected",
    "ExecRequested",
    "StdinReceived",
    "SignalRequested",
    "OutputClosed",
    "CompleteRequested",
    "ShellRequested",
    "LineRequested",
    "InputReceived",
    "ResizeRequested",
    "CheckRequested",
    "PutRequested",
    "GetRequested",
]


@dataclass(slots=True)
class Authenticated(Event):
    """The client proved it holds the token (or the server needs none): commands may run now."""


@dataclass(slots=True)
class AuthRejected(Event):
    """A wrong MAC.  The driver waits its fixed delay, reading nothing, then calls ``fail_auth``."""


@dataclass(slots=True)
class ExecRequested(Event):
    """An ``exec``, its fields checked.  The driver runs it or ``refuse``\\ s it."""

    request: ExecRequest


@dataclass(slots=True)
class StdinReceived(Event):
    """Bytes for the running command's stdin; *eof*: there will be no more."""

    data: bytes
    eof: bool


@dataclass(slots=True)
class SignalRequested(Event):
    """Send *signum* to the running command."""

    signum: int


@dataclass(slots=True)
class OutputClosed(Event):
    """The client's reader of the command's *stream* (``stdout`` or ``stderr``) has gone: stop reading it."""

    stream: str


@dataclass(slots=True)
class CompleteRequested(Event):
    """Tab: names of *kind* (``command`` or ``path``) starting with *prefix*; answer with ``completions`` *id*."""

    kind: str
    prefix: str
    id: int


@dataclass(slots=True)
class ShellRequested(Event):
    """A ``shell``: start the live shell and answer ``shell_ok``, or ``refuse``."""

    request: ShellRequest


@dataclass(slots=True)
class LineRequested(Event):
    """A ``line`` for the live shell; *eof*: there will be none (the shell is to exit); *pipe*: its stdout and stderr on pipes."""

    text: bytes
    pipe: bool
    eof: bool


@dataclass(slots=True)
class InputReceived(Event):
    """Bytes typed at the client, for the live shell's terminal."""

    data: bytes


@dataclass(slots=True)
class ResizeRequested(Event):
    """The client's window is now *rows* by *cols*."""

    rows: int
    cols: int


@dataclass(slots=True)
class CheckRequested(Event):
    """Does *text* parse as complete shell input?  Answer with ``checked`` *id*."""

    text: bytes
    id: int


@dataclass(slots=True)
class PutRequested(Event):
    """A ``put``; its fields are checked by ``rsh.transfer.messages.PutRequest.from_frame``."""

    frame: Frame


@dataclass(slots=True)
class GetRequested(Event):
    """A ``get``; its fields are checked by ``rsh.transfer.messages.GetRequest.from_frame``."""

    frame: Frame
