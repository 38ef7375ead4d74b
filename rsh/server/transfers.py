"""The server's half of ``put`` and ``get``: drive a Receiver or a Sender over a connection's ``Link``.

``ServerConnection`` hands every frame of a transfer to the handler made
for it (``PutHandler`` while the client sends, ``GetHandler`` while it
receives); the handlers send their own frames, and the connection's
protocol state says when the transfer is over (READY again).  A refused
``put`` needs no handler: the protocol drops its frames.  The file work is
in ``rsh.transfer.receive`` and ``rsh.transfer.send``; what is here is only
the asyncio side of it: back-pressure (stop producing data while the
client is not reading, go on at ``write_resumed``), a fair share of the
loop for other connections, and resume hashing (which may read a whole
file) in a worker thread.

File reads and writes happen on the loop thread: each is one chunk to or
from the page cache, cheaper than handing it to a thread and back.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ..protocol.frames import Frame
from ..transfer.messages import GetRequest, PutRequest
from ..transfer.receive import Receiver
from ..transfer.send import PathSource, PrefixHash, Sender
from .link import Link

__all__ = ["PutHandler", "GetHandler", "TransferHandler", "server_path"]

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

    def __init__(self, link: Link, event: str, target: str) -> None:
        self.link, self.event, self.target = link, event, target
        self.path: object = None
        self.started = time.time()

    def observe(self, type: str, fields: dict[str, Any] | None) -> None:
        """See a frame of the transfer go by, in either direction."""
        if type == "file" and fields:
            self.path, self.started = fields.get("path"), time.time()
        elif type == "file_end" and fields and "sha256" in fields:
            self.link.audit(self.event, started=self.started, target=self.target, path=self.path, size=fields.get("length"), sha256=fields.get("sha256"))


class _Handler:
    """What both handlers share.

    Args:
        link: the connection.
        home: the server user's home directory (see ``server_path``).
        request: the client's ``put`` or ``get``.
    """

    def __init__(self, link: Link, home: str, request: PutRequest | GetRequest, event: str) -> None:
        self.link = link
        #: The request's path on this server, and what it is relative to.
        self.base, self.path = server_path(home, request.cwd, request.path)
        # Set when the connection is gone: a worker thread's hash may still come back.
        self._aborted = False
        self._audit = _TransferAudit(link, event, request.path)


class PutHandler(_Handler):
    """The client is sending: receive into the server's filesystem (arguments as ``_Handler``'s)."""

    def __init__(self, link: Link, home: str, request: PutRequest) -> None:
        super().__init__(link, home, request, "put")
        self.receiver = Receiver(self.base, self.path, into=request.into, resume=request.resume, display=request.path)
        self._paused = False

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
        if self._aborted:
            return  # the connection went away meanwhile
        outcome = None if future.cancelled() or future.exception() else future.result()
        self._send(self.receiver.hash_done(outcome))

    def _send(self, frames: list[Frame]) -> None:
        link = self.link
        for out in frames:
            link.send(out.type, out.fields, out.payload)
        # (Never after `done`: the connection must be READY and reading.)
        if link.output_paused and not self._paused and not self.receiver.finished:
            # A client that sends entries but never reads our replies: stop
            # taking its frames rather than queue replies without end.
            link.pause_input()
            self._paused = True

    def write_resumed(self) -> None:
        """The client reads its replies again: take its frames again."""
        if self._paused:
            self.link.resume_input()
        self._paused = False

    def abort(self) -> None:
        """The connection is gone: remove the temporary file (keep a resumable partial)."""
        self._aborted = True
        self.receiver.abort(interrupted=True)


class GetHandler(_Handler):
    """The client is receiving: send from the server's filesystem (arguments as ``_Handler``'s)."""

    def __init__(self, link: Link, home: str, request: GetRequest) -> None:
        super().__init__(link, home, request, "get")
        # Lent: pump() sends each frame before it asks for the next.
        self.sender = Sender(PathSource(self.base, self.path, recursive=request.recursive, display=request.path), lend=True)
        self._scheduled = False
        self._hashing = False

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
        link, sender = self.link, self.sender
        for _ in range(PUMP_BATCH):
            if self._aborted or link.output_paused or self._hashing:
                return
            if sender.pending_hash:
                self._hashing = True
                future = asyncio.get_running_loop().run_in_executor(None, sender.hash_job())
                future.add_done_callback(self._hashed)
                return
            out = sender.next_frame()
            if out is None:
                return
            link.send(out.type, out.fields, out.payload)
            self._audit.observe(out.type, out.fields)
        if not self._scheduled:
            # More to send: yield to other connections, then go on.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.pump)

    def _hashed(self, future: asyncio.Future[PrefixHash]) -> None:
        self._hashing = False
        if self._aborted:
            return
        self.sender.hash_done(None if future.cancelled() or future.exception() else future.result())
        self.pump()

    def abort(self) -> None:
        """The connection is gone: close the files being read."""
        self._aborted = True
        self.sender.close()


TransferHandler = PutHandler | GetHandler
