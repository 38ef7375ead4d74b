"""Every error rsh raises, rooted at ``RshError``::

    RshError
    ├── RshConnectionError     the connection could not be made or was lost
    │   ├── ConnectError       nothing answered at HOST:PORT (refused, unknown host, timeout)
    │   └── ConnectionLost     the peer went away mid-session
    ├── AuthError              wrong or missing token, or the server could not prove it has it
    ├── HostKeyError           the server's TLS identity is not the one pinned for it
    │   ├── UnknownHostKey     no pin yet, and none was accepted (--accept-new, a "yes", --fingerprint)
    │   └── HostKeyChanged     the pin differs: a hard failure, nothing was sent
    ├── ProtocolError          a malformed or out-of-place frame (``code`` says which rule)
    │   └── RemoteError        the peer sent an ``error`` frame (``code``, ``message``)
    ├── CommandFailed          ``run(..., check=True)`` and the command did not succeed
    │   └── CommandTimeout     the command ran past its timeout (also a ``TimeoutError``)
    ├── TransferFailed         a ``put`` or ``get`` left something behind (``result.failures``)
    └── GroupFailed            a ``Group`` call with ``check=True`` failed on some host (``result``: every host's)

Catch ``RshError`` to handle anything rsh can raise.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .results import CommandResult, GroupResult, TransferResult

__all__ = [
    "RshError",
    "RshConnectionError",
    "ConnectError",
    "ConnectionLost",
    "AuthError",
    "HostKeyError",
    "UnknownHostKey",
    "HostKeyChanged",
    "ProtocolError",
    "RemoteError",
    "CommandFailed",
    "CommandTimeout",
    "TransferFailed",
    "GroupFailed",
]


class RshError(Exception):
    """Base class of every error rsh raises."""


class RshConnectionError(RshError):
    """The connection could not be made, or was lost."""


class ConnectError(RshConnectionError):
    """Nothing answered at the address (refused, unknown host, timed out)."""


class ConnectionLost(RshConnectionError):
    """The peer closed the connection or it broke mid-session."""


class AuthError(RshError):
    """Authentication failed, in either direction."""


class HostKeyError(RshError):
    """The server's TLS identity does not match, or cannot yet be trusted."""


class UnknownHostKey(HostKeyError):
    """No fingerprint is pinned for this server and none was accepted."""


class HostKeyChanged(HostKeyError):
    """The server presents a fingerprint other than the pinned one.

    ``path`` and ``line`` name the known_hosts entry (None when the pin came
    from ``fingerprint=``); ``expected`` and ``actual`` are the fingerprints.
    """

    def __init__(self, message: str, *, expected: str, actual: str, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.path = path
        self.line = line


class ProtocolError(RshError):
    """A frame broke the wire protocol.

    ``code`` is a short machine-readable name of the rule that was broken
    (``bad_header``, ``payload_too_large``, ...); it is what goes into the
    ``error`` frame sent to the peer.
    """

    def __init__(self, message: str, *, code: str = "protocol_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RemoteError(ProtocolError):
    """The peer reported an error with an ``error`` frame."""


class CommandFailed(RshError):
    """The command exited unsuccessfully; ``result`` holds everything it produced."""

    def __init__(self, result: CommandResult, message: str | None = None) -> None:
        super().__init__(message or f"command {result.command!r} failed with {result.status_text()}")
        self.result = result


class CommandTimeout(CommandFailed, TimeoutError):
    """The command ran past its timeout and was stopped."""


class TransferFailed(RshError):
    """Some of a ``put`` or ``get`` did not arrive; the connection is still usable.

    ``result`` is the whole ``TransferResult``: what did arrive, and in
    ``result.failures`` one ``Failure`` per entry that did not, each with a
    one-line ``line()`` naming the path and the cause.
    """

    def __init__(self, result: TransferResult, host: str | None = None) -> None:
        lines = [f.line(host) for f in result.failures]
        super().__init__(lines[0] if len(lines) == 1 else f"{len(lines)} failures: " + "; ".join(lines[:3]) + ("; ..." if len(lines) > 3 else ""))
        self.result = result
        self.host = host


class GroupFailed(RshError):
    """A ``Group`` call with ``check=True`` did not succeed on every host.

    ``result`` is the whole ``GroupResult``: every host's result or error,
    the ones that succeeded included.
    """

    def __init__(self, result: GroupResult) -> None:
        failed = result.failed
        hosts = ", ".join(list(failed)[:5]) + (", ..." if len(failed) > 5 else "")
        super().__init__(f"failed on {len(failed)} of {len(result)} host{'s' if len(result) != 1 else ''}: {hosts}")
        self.result = result
