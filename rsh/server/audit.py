"""The audit log: one JSON line per connection, per command and per file moved.

Records are queued and appended in batches (``AuditLog.write``), off the
path between one command's ``exit`` and the client's next request.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..protocol.header_json import encode_json_ascii

__all__ = ["AuditLog", "AUDIT_FLUSH_DELAY", "AUDIT_FLUSH_COUNT"]


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: A record waits at most this many seconds, or until this many others are
#: waiting, before one ``write()`` appends them all (see ``AuditLog.write``).
AUDIT_FLUSH_DELAY = 0.05
AUDIT_FLUSH_COUNT = 64


class AuditLog:
    """JSON lines, one record per connection and per command.

    Every record has ``time`` (ISO 8601 UTC, when its subject began),
    ``event`` and ``conn`` (the connection's number in this server's life),
    and never any part of the token.  ``docs/protocol.md`` lists the fields.

    Other record kinds go through ``Link.audit(event, **fields)`` (``rsh.server.link``)
    (file transfers: ``event="put"``/``"get"`` with ``path``, ``size`` and
    ``sha256``), which fills in time, connection, peer and user.

    Raises:
        OSError: the file cannot be opened for appending.
    """

    def __init__(self, path: str | os.PathLike[str], log: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._log = log
        self._failed = False
        self._pending: list[tuple[str, float, dict[str, Any]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(self, event: str, started: float, **fields: Any) -> None:
        """Queue one record; it is appended within ``AUDIT_FLUSH_DELAY`` seconds.

        A record is written once its command has ended, right after the
        command's ``exit`` frame, when the client is about to send the next
        command.  Formatting and appending it there cost more than a third
        of the server's own time per short command, on the client's path;
        batched, it costs a fraction of that, off the path.  ``flush`` (the
        server calls it on closing) writes what is waiting; a server killed
        with SIGKILL loses at most the last ``AUDIT_FLUSH_DELAY`` seconds.
        """
        self._pending.append((event, started, fields))
        if len(self._pending) >= AUDIT_FLUSH_COUNT:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(AUDIT_FLUSH_DELAY, self.flush)
            except RuntimeError:  # no event loop: nothing would come back to flush
                self.flush()

    def flush(self) -> None:
        """Append every waiting record now; a failed write is reported once and never stops the server."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        if not pending or self._fd < 0:
            return
        # ensure_ascii: a command that is not valid UTF-8 still makes valid
        # JSON (its stray bytes as \\udcXX escapes, as surrogateescape decodes them).
        data = "".join([encode_json_ascii({"time": _iso(started), "event": event, **fields}) + "\n" for event, started, fields in pending]).encode("ascii")
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            self._failed = False
        except OSError as exc:
            if not self._failed and self._log is not None:
                self._log(f"cannot write the audit log {self.path}: {exc.strerror or exc}")
            self._failed = True

    def close(self) -> None:
        """Write what is waiting and close the file."""
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
