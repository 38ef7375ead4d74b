"""The numbers an rsh server enforces (``rsh serve --max-conns`` and the rest).

Apart from ``rsh.server.admission``, which enforces them, so that building the command
line's help (for any subcommand, ``rsh exec`` included) loads no asyncio.
"""

from __future__ import annotations

__all__ = ["Limits"]


class Limits:
    """The server's limits; each is a ``rsh serve`` option of the same name.

    The defaults are meant to be invisible to honest use on a small machine
    and to bound what a flood can hold.  (A plain class rather than a
    dataclass, as ``rsh.protocol.frames.Frame`` is: every ``rsh exec`` builds the
    command line, and with it these defaults.)

    Raises:
        ValueError: a limit is out of range.
    """

    __slots__ = ("auth_timeout", "max_unauthenticated", "max_conns", "max_commands", "idle_timeout", "auth_fail_delay")

    def __init__(
        self,
        *,
        auth_timeout: float = 10.0,
        max_unauthenticated: int = 64,
        max_conns: int = 256,
        max_commands: int = 128,
        idle_timeout: float = 3600.0,
        auth_fail_delay: float = 1.0,
    ) -> None:
        #: Seconds from accept to a successful ``auth`` (TLS handshake included),
        #: as ssh's LoginGraceTime: a peer that stalls (slow-loris) is closed then.
        self.auth_timeout = auth_timeout
        #: Connections that have not authenticated yet, as ssh's MaxStartups:
        #: a flood of them cannot crowd out the rest of ``max_conns``.
        self.max_unauthenticated = max_unauthenticated
        #: All open connections, as ncat's --max-conns.
        self.max_conns = max_conns
        #: Commands running at once across all connections; past it an ``exec``
        #: is refused with ``busy`` (the connection stays usable).
        self.max_commands = max_commands
        #: Seconds an authenticated connection may sit with no frame and no
        #: command running before it is closed; 0 never closes it.
        self.idle_timeout = idle_timeout
        #: Seconds between a wrong ``auth`` and its ``auth_failed`` answer,
        #: always the same.  The connection keeps its not-yet-authenticated
        #: place for that long even if the peer hangs up, so guessing is held to
        #: max_unauthenticated / auth_fail_delay tries a second.
        self.auth_fail_delay = auth_fail_delay
        for name in ("auth_timeout", "max_unauthenticated", "max_conns", "max_commands"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        for name in ("idle_timeout", "auth_fail_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must not be negative")

    def __repr__(self) -> str:
        return "Limits(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"
