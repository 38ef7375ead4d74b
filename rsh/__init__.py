"""rsh: a remote shell over a small, exact, length-prefixed wire protocol.

Only the client API is exported here, and loaded when first used, so that
``import rsh`` (and so every ``rsh`` command's start-up) stays light:
``rsh exec`` needs neither the blocking client nor file transfers.
"""

from __future__ import annotations

from .errors import (
    AuthError,
    CommandFailed,
    CommandTimeout,
    ConnectError,
    ConnectionLost,
    GroupFailed,
    ProtocolError,
    RemoteError,
    RshConnectionError,
    RshError,
    TransferFailed,
)
from .version import __version__

# name -> the module that defines it, imported on first use (PEP 562).
_LAZY = {
    "DEFAULT_PORT": ".protocol.address",
    "CommandResult": ".results",
    "AsyncClient": ".client.aio",
    "RemoteCommand": ".client.aio",
    "connect_async": ".client.aio",
    "Client": ".client.blocking",
    "Group": ".client.group",
    "Member": ".client.group",
    "AsyncGroup": ".client.aio_group",
    "GroupResult": ".results",
    "connect": ".client.blocking",
    "Failure": ".results",
    "TransferProgress": ".results",
    "TransferResult": ".results",
}

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .client.aio import AsyncClient, RemoteCommand, connect_async
    from .client.aio_group import AsyncGroup
    from .client.blocking import Client, connect
    from .client.group import Group, Member
    from .protocol.address import DEFAULT_PORT
    from .results import CommandResult, Failure, GroupResult, TransferProgress, TransferResult


def __getattr__(name: str) -> Any:
    import importlib  # here: it loads warnings, which `rsh exec` does without

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rsh' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "DEFAULT_PORT",
    "AsyncClient",
    "Client",
    "Group",
    "AsyncGroup",
    "Member",
    "GroupResult",
    "GroupFailed",
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
