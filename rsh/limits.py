"""The numbers an rsh server enforces (``rsh serve --max-conns`` and the rest).

Apart from ``rsh.guard``, which enforces them, so that building the command
line's help (for any subcommand, ``rsh exec`` included) loads no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """The server's limits; each is a ``rsh serve`` option of the same name.

    The defaults are meant to be invisible to honest use on a small machine
    and to bound what a flood can hold.
    """

    #: Seconds from accept to a successful ``auth`` (TLS handshake included),
    #: as ssh's LoginGraceTime: a peer that stalls (slow-loris) is closed then.
    auth_timeout: float = 10.0
    #: Connections that have not authenticated yet, as ssh's MaxStartups:
    #: a flood of them cannot crowd out the rest of ``max_conns``.
    max_unauthenticated: int = 64
    #: All open connections, as ncat's --max-conns.
    max_conns: int = 256
    #: Commands running at once across all connections; past it an ``exec``
    #: is refused with ``busy`` (the connection stays usable).
    max_commands: int = 128
    #: Seconds an authenticated connection may sit with no frame and no
    #: command running before it is closed; 0 never closes it.
    idle_timeout: float = 3600.0
    #: Seconds between a wrong ``auth`` and its ``auth_failed`` answer,
    #: always the same.  The connection keeps its not-yet-authenticated
    #: place for that long even if the peer hangs up, so guessing is held to
    #: max_unauthenticated / auth_fail_delay tries a second.
    auth_fail_delay: float = 1.0

    def __post_init__(self) -> None:
        for name in ("auth_timeout", "max_unauthenticated", "max_conns", "max_commands"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        for name in ("idle_timeout", "auth_fail_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must not be negative")
