"""The numbers an rsh server enforces (``rsh serve --max-conns`` and the rest).

Apart from ``rsh.server.admission``, which enforces them, so that building the command
line's help (for any subcommand, ``rsh exec`` included) loads no asyncio.
"""

from __future__ import annotations

__all__ = ["Limits", "PREAUTH_GRACE", "IDLE_GRACE"]

#: Seconds (plus four round trips) a connection may take to authenticate
#: before, with every place taken and someone waiting, it may be closed to
#: make room.  An honest handshake is two round trips and a millisecond of
#: work; when the last ones took longer, four times their 90th percentile.
PREAUTH_GRACE = 0.5
#: Seconds an authenticated connection must have been idle before, at the
#: connection cap, it may be closed to make room.
IDLE_GRACE = 1.0


class Limits:
    """The server's limits; each is a ``rsh serve`` option of the same name.

    The defaults are meant to be invisible to honest use on a small machine
    and to bound what a flood can hold; none makes another unreachable
    (every open connection can have a command running or queued).  (A plain
    class rather than a dataclass, as ``rsh.protocol.frames.Frame`` is: every
    ``rsh exec`` builds the command line, and with it these defaults.)

    Raises:
        ValueError: a limit is out of range.
    """

    __slots__ = (
        "auth_timeout",
        "max_unauthenticated",
        "max_conns",
        "max_commands",
        "max_queued",
        "queue_timeout",
        "backlog",
        "idle_timeout",
        "auth_fail_delay",
    )

    def __init__(
        self,
        *,
        auth_timeout: float = 10.0,
        max_unauthenticated: int = 128,
        max_conns: int = 256,
        max_commands: int = 128,
        max_queued: int = 256,
        queue_timeout: float = 30.0,
        backlog: int = 1024,
        idle_timeout: float = 3600.0,
        auth_fail_delay: float = 1.0,
    ) -> None:
        #: Seconds from accept to a successful ``auth`` (TLS handshake included),
        #: as ssh's LoginGraceTime: a peer that stalls (slow-loris) is closed then.
        self.auth_timeout = auth_timeout
        #: Connections that have not authenticated yet, as ssh's MaxStartups:
        #: past it no more are accepted (they wait in the listen backlog), and
        #: the one that has waited longest for its ``auth`` may be closed.
        self.max_unauthenticated = max_unauthenticated
        #: All open connections, as ncat's --max-conns; past it new ones wait
        #: in the backlog, and an idle authenticated one may be closed.
        self.max_conns = max_conns
        #: Commands running at once across all connections; past it an ``exec``
        #: waits in a queue for a slot (the connection stays usable).
        self.max_commands = max_commands
        #: Commands waiting for a slot at most; past it an ``exec`` gets ``busy``.
        self.max_queued = max_queued
        #: Seconds an ``exec`` may wait for a slot before it gets ``busy``.
        self.queue_timeout = queue_timeout
        #: The listen backlog: connections the kernel holds while none are accepted
        #: (capped by the system's net.core.somaxconn).
        self.backlog = backlog
        #: Seconds an authenticated connection may sit with no frame and no
        #: command running (or with output the client does not take) before it
        #: is closed; 0 never closes it.
        self.idle_timeout = idle_timeout
        #: Seconds between a wrong ``auth`` and its ``auth_failed`` answer,
        #: always the same.  The connection keeps its not-yet-authenticated
        #: place for that long even if the peer hangs up, so guessing is held to
        #: max_unauthenticated / auth_fail_delay tries a second.
        self.auth_fail_delay = auth_fail_delay
        for name in ("auth_timeout", "max_unauthenticated", "max_conns", "max_commands", "queue_timeout", "backlog"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        for name in ("max_queued", "idle_timeout", "auth_fail_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must not be negative")
        # More could never be open at once: the connection cap bounds them too.
        self.max_unauthenticated = min(max_unauthenticated, max_conns)

    def __repr__(self) -> str:
        return "Limits(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"
