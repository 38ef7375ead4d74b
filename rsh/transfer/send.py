"""The sending side of a transfer: turn a source into frames, and follow the receiver's replies.

``Sender`` knows nothing of sockets.  Its driver (the blocking client, the
asyncio client, or the server) asks ``next_frame()`` for something to send
whenever it has room, and hands every frame the receiver sends back to
``on_reply()``.  ``next_frame()`` returns None while the sender must wait
for a reply; the data of a file is produced one ``CHUNK`` at a time, so
memory stays bounded whatever the file's size and back-pressure is simply
the driver not asking.

Where it stands is one ``SenderState`` (``rsh.transfer.states``); what it
sends from is a source (``rsh.transfer.sources``).
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable
from typing import cast

from ..errors import ProtocolError
from ..protocol.frames import Frame
from ..protocol.messages import remote_error
from ..results import Failure
from .counts import ProgressCallback
from .failures import failure_from_oserror, failure_notice
from .flow import CHUNK, MAX_IN_FLIGHT
from .messages import Entry, FileEnd, Ready
from .prefix_hash import PrefixHash, prefix_hash_job
from .sources import PathSource, Source, SourceFile, StreamSource
from .states import SENDER_TABLE, Role, SenderState

__all__ = ["Sender", "PathSource", "StreamSource", "Source", "ProgressCallback", "PrefixHash", "prefix_hash_job"]

_S = SenderState


class _Sending:
    """The file whose entry is out and whose data is (or will be) flowing."""

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.hash = hashlib.sha256()
        self.pos = 0
        #: Bytes the receiver offered to resume from, and their SHA-256.
        self.offered = 0
        self.offered_sha: str | None = None


class Sender(Role[SenderState]):
    """Produce a source's frames and follow the receiver's replies.

    Args:
        source: what to send.
        progress: called as data goes out (see ``TransferProgress``).
        sent_before: bytes already counted by earlier transfers of the same
            call, so ``TransferProgress.sent`` keeps growing across sources.
        lend: read a file's data into one buffer, reused for every chunk:
            a ``data`` frame's payload is then a view of it, valid until the
            next ``next_frame()``.  For a driver that sends or copies each
            frame before asking for the next (the server): no fresh 256 KiB
            object, and the pages it would fault in, per chunk.
    """

    def __init__(self, source: Source, *, progress: ProgressCallback | None = None, sent_before: int = 0, lend: bool = False) -> None:
        super().__init__(SENDER_TABLE, _S.ENTRIES, progress=progress, sent_before=sent_before)
        self._buffer = memoryview(bytearray(CHUNK)) if lend else None
        self._items = source.items()
        self._display = source.display
        # One expectation per reply owed to us, oldest first: an entry, or
        # None for the final `done`.
        self._expect: deque[SourceFile | Entry | None] = deque()
        # The file in hand, from its entry to its file_end (or its refusal).
        self._current: _Sending | None = None

    @property
    def where(self) -> str:
        """The file being sent (else the source), as messages name it."""
        return self._current.src.display if self._current is not None else self._display

    # -- frames out --------------------------------------------------------

    def next_frame(self) -> Frame | None:
        """The next frame to send.

        Returns:
            The frame, or None while waiting for a reply (or when finished).
        """
        state, cur = self._state, self._current
        if state is _S.END_DUE:
            self._move("end")
            return Frame("end")
        if state in (_S.RESUME_DUE, _S.RESUME_THEN_STOP):
            assert cur is not None
            self._move("resume")
            return Frame("resume", {"offset": cur.pos})
        if state is _S.DATA:
            assert cur is not None
            return self._next_data(cur)
        if state is _S.STOPPING:
            assert cur is not None
            return self._end_file(FileEnd(failure=Failure(cur.src.display, "aborted", "stopped: the receiver failed")))
        # Otherwise waiting (for `ready`, the resume hash, or `done`), or over.
        if state is not _S.ENTRIES or len(self._expect) >= MAX_IN_FLIGHT:
            return None
        item = next(self._items, None)
        if item is None:
            self._move("end")
            self._expect.append(None)
            return Frame("end")
        if isinstance(item, Failure):
            # Tell the receiver too: for `get` it is the one that reports.
            self.failures.append(item)
            return Frame("error", item.to_fields())
        self._expect.append(item)
        if isinstance(item, Entry):
            return Frame(item.kind, item.to_fields())
        self._move("file")
        self._current = _Sending(item)
        self._report(item.display, 0, item.entry.size)
        return Frame("file", item.entry.to_fields())

    def _next_data(self, cur: _Sending) -> Frame:
        src, buffer = cur.src, self._buffer
        data: bytes | memoryview
        try:
            data = buffer[: os.readv(src.fd, (buffer,))] if buffer is not None and src.fd is not None else src.read(CHUNK)
        except OSError as exc:
            failure = failure_from_oserror(src.display, exc)
            self.failures.append(failure)
            src.aborted = True
            return self._end_file(FileEnd(failure=failure))
        if data:
            cur.hash.update(data)
            cur.pos += len(data)
            self._moved += len(data)
            self._report(src.display, cur.pos, src.entry.size)
            return Frame("data", None, cast(bytes, data))
        src.size, src.sha256 = cur.pos, cur.hash.hexdigest()
        return self._end_file(FileEnd(src.size, src.sha256))

    def _end_file(self, end: FileEnd) -> Frame:
        assert self._current is not None
        self._move("file_end")
        self._current.src.close()
        self._current = None
        return Frame("file_end", end.to_fields())

    # -- replies in --------------------------------------------------------

    def on_reply(self, frame: Frame) -> None:
        """Take one frame from the receiver.

        Args:
            frame: the receiver's frame, as decoded.

        Raises:
            RemoteError: the peer sent a connection-ending error.
            ProtocolError: a reply that does not fit what we sent.
        """
        refusal = self._refusal_first(frame)
        failure = failure_notice(frame) if frame.type == "error" else None
        if frame.type == "error" and failure is None:
            if refusal:
                self._refuse()
            raise remote_error(frame)
        if not self._expect:
            raise ProtocolError(f"unexpected {frame.type!r}: no reply is owed", code="unexpected_frame")
        head = self._expect[0]
        if head is None:
            # After `end`: late failures (directory modes and times), then `done`.
            if failure is not None:
                self.failures.append(failure)
            elif frame.type == "done":
                self._expect.popleft()
                self._move("done")
            else:
                raise ProtocolError(f"unexpected {frame.type!r} after end", code="unexpected_frame")
            return
        cur = self._current
        if cur is not None and cur.src is head:
            self._reply_for_current(cur, frame, failure)
            return
        if frame.type not in ("ok", "error"):
            raise ProtocolError(f"unexpected {frame.type!r} reply", code="unexpected_frame")
        self._expect.popleft()
        if isinstance(head, SourceFile):
            if head.aborted:
                return  # the echo of a failure we reported ourselves
            if failure is not None:
                self.failures.append(failure)
                return
            self._file_in_place(head.size, head.resumed, head.sha256)
        elif failure is not None:
            self.failures.append(failure)
        elif head.kind == "dir":
            self._dirs += 1
        else:
            self._symlinks += 1

    def _reply_for_current(self, cur: _Sending, frame: Frame, failure: Failure | None) -> None:
        """A reply about the file whose data has not all gone yet."""
        if frame.type == "ready":
            if not self._allows("ready"):
                raise ProtocolError("a second 'ready' for one file", code="unexpected_frame")
            ready = Ready.from_frame(frame)
            cur.offered, cur.offered_sha = ready.offset, ready.sha256
            self._move("offer" if ready.offset else "ready")
            return
        if failure is None:
            raise ProtocolError(f"unexpected {frame.type!r} for a file before its data", code="unexpected_frame")
        self._expect.popleft()
        self.failures.append(failure)
        refused_outright = self._state is _S.AWAIT_READY
        # Refused outright: no data, no file_end.  Failed after `ready`: end
        # the file at once (after the `resume` an offer is owed).
        self._move("failure")
        if refused_outright:
            self._current = None
            cur.src.close()

    def _refuse(self) -> None:
        # The receiver drops whatever we sent behind the request up to our
        # `end`; owe it that `end` (unless it went already), then stop.
        self.close()
        self._expect.clear()
        self._move("refusal")

    # -- resume ------------------------------------------------------------

    def hash_job(self) -> Callable[[], PrefixHash]:
        """The blocking work a resume offer needs: hash our first bytes.

        Returns:
            A job to run anywhere (a worker thread); hand its outcome to ``hash_done``.
        """
        cur = self._current
        assert cur is not None and self.pending_hash
        if cur.src.fd is None:
            return lambda: None  # a stream cannot be re-read: start over
        return prefix_hash_job(cur.src.fd, cur.offered)

    def hash_done(self, outcome: PrefixHash) -> None:
        """Decide where the data starts: at the offer when our first bytes hash the same, else at 0.

        ``next_frame()`` then returns the ``resume`` frame saying which.

        Args:
            outcome: what the ``hash_job()`` job returned (None if it failed).
        """
        cur = self._current
        if cur is None or not self.pending_hash:
            return  # given up meanwhile
        if outcome is not None and outcome[1] == cur.offered and outcome[0].hexdigest() == cur.offered_sha:
            assert cur.src.fd is not None
            try:
                os.lseek(cur.src.fd, cur.offered, os.SEEK_SET)
                cur.hash, cur.pos, cur.src.resumed = outcome[0], cur.offered, cur.offered
            except OSError:
                pass
        self._move("hashed")

    # -- the end -----------------------------------------------------------

    def close(self) -> None:
        """Release open files (after the transfer, or when the connection is gone)."""
        if self._current is not None:
            self._current.src.close()
            self._current = None
        close = getattr(self._items, "close", None)
        if close is not None:
            close()
