"""The server's half of ``put`` and ``get``: drive a Receiver or a Sender from a connection.

``ServerConnection`` hands every frame of a transfer to the handler made
for it (``PutHandler`` while the client sends, ``GetHandler`` while it
receives) and asks ``finished`` after each; the handlers send their own
frames.  The file work is in ``rsh.transfer.receive`` and ``rsh.transfer.send``;
what is here is only the asyncio side of it: back-pressure (stop producing
data while the transport's buffer is full, go on at ``write_resumed``), a
fair share of the loop for other connections, and resume hashing (which may
read a whole file) in a worker thread.

File reads and writes happen on the loop thread: each is one chunk to or
from the page cache, cheaper than handing it to a thread and back.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, TYPE_CHECKING

from ..protocol.frames import Frame
from ..transfer.rules import GetRequest, PutRequest
from ..transfer.receive import Receiver
from ..transfer.send import PathSource, PrefixHash, Sender

if TYPE_CHECKING:
    from .connection import ServerConnection

__all__ = ["PutHandler", "GetHandler", "RefusedPut", "TransferHandler", "server_path"]

# Frames a sending connection writes per turn of the loop before letting
# other connections run: 8 data frames are 2 MiB.
PUMP_BATCH = 8


def server_path(home: str, cwd: str | None, path: str) -> tuple[str, str]:
    """Return (directory a relative *path* is relative to, *path* with ``~`` expanded).

    Relative paths are relative to *cwd* when given (itself relative to the
    home directory), else to the home directory; a leading ``~`` is the
    home directory, as ssh and scp read it.
    """

    def expand(p: str) -> str:
        return home + p[1:] if p == "~" or p.startswith("~/") else p

    base = home if cwd is None else os.path.join(home, expand(cwd))
    return base, expand(path)


class _TransferAudit:
    """One audit record per file moved: its path, size and checksum (see rsh.server.audit.AuditLog)."""

    def __init__(self, conn: ServerConnection, event: str, target: str) -> None:
        self.conn, self.event, self.target = conn, event, target
        self.path: object = None
        self.started = time.time()

    def observe(self, type: str, fields: dict[str, Any] | None) -> None:
        """See a frame of the transfer go by, in either direction."""
        if type == "file" and fields:
            self.path, self.started = fields.get("path"), time.time()
        elif type == "file_end" and fields and "sha256" in fields:
            self.conn.audit(self.event, started=self.started, target=self.target, path=self.path, size=fields.get("length"), sha256=fields.get("sha256"))


class PutHandler:
    """The client is sending: receive into the server's filesystem."""

    def __init__(self, conn: ServerConnection, request: PutRequest) -> None:
        self.conn = conn
        base, path = server_path(conn.config.home, request.cwd, request.path)
        self.receiver = Receiver(base, path, into=request.into, resume=request.resume, display=request.path)
        self._paused = False
        self._audit = _TransferAudit(conn, "put", request.path)

    @property
    def finished(self) -> bool:
        """True once ``done`` has been sent."""
        return self.receiver.finished

    def on_frame(self, frame: Frame) -> None:
        """Take a frame from the client (raises ``ProtocolError`` if it breaks the rules)."""
        self._audit.observe(frame.type, frame.fields)
        self._send(self.receiver.on_frame(frame))
        if self.receiver.pending_hash:
            # A partial file to check before answering.  The client waits for
            # our answer, so nothing else arrives meanwhile (and anything that
            # does is refused by the receiver as out of turn).
            future = asyncio.get_running_loop().run_in_executor(None, self.receiver.hash_job())
            future.add_done_callback(self._hashed)

    def _hashed(self, future: asyncio.Future[PrefixHash]) -> None:
        if self.conn.transfer is not self:
            return  # the connection went away meanwhile
        outcome = None if future.cancelled() or future.exception() else future.result()
        self._send(self.receiver.hash_done(outcome))

    def _send(self, frames: list[Frame]) -> None:
        conn = self.conn
        for out in frames:
            conn.send(out.type, out.fields, out.payload)
        # (Never after `done`: the connection must be READY and reading.)
        if conn.writing_paused and not self._paused and not self.receiver.finished and conn.transport is not None:
            # A client that sends entries but never reads our replies: stop
            # taking its frames rather than queue replies without end.
            conn.transport.pause_reading()
            self._paused = True

    def write_resumed(self) -> None:
        """The client reads its replies again: take its frames again."""
        if self._paused and self.conn.transport is not None and not self.conn.closed:
            self.conn.transport.resume_reading()
        self._paused = False

    def abort(self) -> None:
        """The connection is gone: remove the temporary file (keep a resumable partial)."""
        self.receiver.abort(interrupted=True)


class GetHandler:
    """The client is receiving: send from the server's filesystem."""

    def __init__(self, conn: ServerConnection, request: GetRequest) -> None:
        self.conn = conn
        base, path = server_path(conn.config.home, request.cwd, request.path)
        self.sender = Sender(PathSource(base, path, recursive=request.recursive, display=request.path))
        self._scheduled = False
        self._hashing = False
        self._audit = _TransferAudit(conn, "get", request.path)

    @property
    def finished(self) -> bool:
        """True once the client has said ``done``."""
        return self.sender.finished

    def start(self) -> None:
        """Send the first frames."""
        self.pump()

    def on_frame(self, frame: Frame) -> None:
        """Take a reply from the client (raises ``ProtocolError`` if it breaks the rules)."""
        self.sender.on_reply(frame)
        if self.sender.finished:
            self.sender.close()
        else:
            self.pump()

    def write_resumed(self) -> None:
        """The client caught up: send more."""
        self.pump()

    def pump(self) -> None:
        """Send what the sender has, until the transport is full or it must wait for a reply."""
        self._scheduled = False
        conn, sender = self.conn, self.sender
        for _ in range(PUMP_BATCH):
            if conn.closed or conn.writing_paused or self._hashing:
                return
            if sender.pending_hash:
                self._hashing = True
                future = asyncio.get_running_loop().run_in_executor(None, sender.hash_job())
                future.add_done_callback(self._hashed)
                return
            out = sender.next_frame()
            if out is None:
                return
            conn.send(out.type, out.fields, out.payload)
            self._audit.observe(out.type, out.fields)
        if not self._scheduled:
            # More to send: yield to other connections, then go on.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.pump)

    def _hashed(self, future: asyncio.Future[PrefixHash]) -> None:
        self._hashing = False
        if self.conn.transfer is not self:
            return
        self.sender.hash_done(None if future.cancelled() or future.exception() else future.result())
        self.pump()

    def abort(self) -> None:
        """The connection is gone: close the files being read."""
        self.sender.close()


class RefusedPut:
    """A ``put`` refused at the request: drop what the client sent behind it, up to its ``end``.

    The client does not wait for an answer to ``put`` before its first
    entries, so they are on their way when it learns of the refusal; it
    then ends the transfer with ``end`` and nothing is answered.
    """

    def __init__(self) -> None:
        self.finished = False

    def on_frame(self, frame: Frame) -> None:
        """Drop one of the client's frames; ``end`` is the last."""
        if frame.type == "end":
            self.finished = True

    def write_resumed(self) -> None:
        """Nothing is sent, so nothing waits for the client to read."""

    def abort(self) -> None:
        """Nothing was opened."""


TransferHandler = PutHandler | GetHandler | RefusedPut
