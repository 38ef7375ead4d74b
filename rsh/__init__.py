"""rsh: a remote shell over a small, exact, length-prefixed wire protocol.

Only the client API is imported here, so ``import rsh`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .client import DEFAULT_PORT, AsyncClient, RemoteCommand, connect_async
from .errors import (
    AuthError,
    CommandFailed,
    CommandTimeout,
    ConnectError,
    ConnectionLost,
    ProtocolError,
    RemoteError,
    RshConnectionError,
    RshError,
    TransferFailed,
)
from .result import CommandResult
from .sync_client import Client, connect
from .transfer import Failure, TransferProgress, TransferResult

__all__ = [
    "__version__",
    "DEFAULT_PORT",
    "AsyncClient",
    "Client",
    "RemoteCommand",
    "connect",
    "connect_async",
    "CommandResult",
    "RshError",
    "RshConnectionError",
    "ConnectError",
    "ConnectionLost",
    "AuthError",
    "ProtocolError",
    "RemoteError",
    "CommandFailed",
    "CommandTimeout",
    "TransferFailed",
    "TransferResult",
    "TransferProgress",
    "Failure",
]
