"""The receiving side of a transfer: take the sender's frames, place entries safely, verify every file.

``Receiver`` knows nothing of sockets: its driver feeds it every frame the
sender sends (``on_frame``) and sends the replies it returns.  What it
promises, whatever the sender does:

- **Nothing outside the destination.**  Entry paths are plain relative
  names (``rsh.transfer.paths``), and no directory on the way to an entry
  is a symlink followed (``rsh.transfer.destination``).
- **Never a partial or unverified file under the target name.**  Data goes
  to a file with no name, or a hidden temporary one (``rsh.transfer.sinks``).
  Only when the SHA-256 of what arrived equals the sender's does it get the
  file's mode and mtime and its final name, by an atomic rename: an
  existing file of that name is either left whole or replaced whole.
- **Temporary files removed on every failure path** (checksum mismatch,
  disk full, the sender failing, the connection lost) -- except that a
  ``resume`` transfer keeps what it had when *interrupted*, under the fixed
  name ``.NAME.rsh-partial``, for the next ``resume`` to continue.

Where it stands is one ``ReceiverState`` (``rsh.transfer.states``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from ..errors import ProtocolError
from ..protocol.frames import Frame
from ..protocol.messages import remote_error
from ..results import Failure
from .counts import ProgressCallback
from .destination import Destination
from .failures import EntryRefused, failure_from_oserror, failure_notice
from .messages import ENTRY_TYPES, Entry, FileEnd, Ready, check_resume
from .prefix_hash import PrefixHash, prefix_hash_job
from .sinks import Sink, partial_name
from .states import RECEIVER_TABLE, ReceiverState, Role

__all__ = ["Receiver", "partial_name"]

_R = ReceiverState


class Receiver(Role[ReceiverState]):
    """Receive one source into a destination, replying to each frame.

    Args:
        base_dir: what a relative *path* is relative to.
        path: where the source goes.  An existing directory (or, with
            *into*, one that must exist) receives it under its own name;
            anything else is the name it gets.
        into: *path* must be an existing directory (several sources).
        resume: keep partial data when interrupted; continue from it.
        display: how messages name *path* (what the user typed).
        stream: write file data here instead (``-``); directories are refused.
        progress: called as data arrives.
        sent_before: bytes counted by earlier transfers of the same call.
    """

    def __init__(
        self,
        base_dir: str,
        path: str,
        *,
        into: bool = False,
        resume: bool = False,
        display: str | None = None,
        stream: BinaryIO | None = None,
        progress: ProgressCallback | None = None,
        sent_before: int = 0,
    ) -> None:
        super().__init__(RECEIVER_TABLE, _R.ENTRIES, progress=progress, sent_before=sent_before)
        self.display = path if display is None else display
        self.resume = resume and stream is None
        self.stream = stream
        self._dest = Destination(os.path.join(base_dir, path), self.display, into=into or path.endswith("/"), stream=stream)
        # The file in hand, from its entry to its file_end.
        self._incoming: Sink | None = None

    @property
    def where(self) -> str:
        """The file being received (else the destination), as messages name it."""
        return self._incoming.display if self._incoming is not None else self.display

    # -- frames in -----------------------------------------------------------

    def on_frame(self, frame: Frame) -> list[Frame]:
        """Take one frame from the sender.

        Args:
            frame: the sender's frame, as decoded.

        Returns:
            The replies to send, in order (possibly none).

        Raises:
            RemoteError: the sender sent a connection-ending error.
            ProtocolError: a frame that breaks the transfer's rules.
        """
        if self.finished or self.pending_hash:
            raise ProtocolError(f"unexpected {frame.type!r} frame in a transfer", code="unexpected_frame")
        if self._refusal_first(frame):
            self._release(interrupted=False)
            self._move("refusal")
            raise remote_error(frame)
        inc = self._incoming
        if inc is not None:
            return self._on_file_frame(inc, frame)
        if frame.type in ENTRY_TYPES:
            return self._on_entry(Entry.from_frame(frame))
        if frame.type == "error":
            failure = failure_notice(frame)
            if failure is None:
                raise remote_error(frame)
            self.failures.append(failure)
            return []
        if frame.type == "end":
            return self._finish()
        raise ProtocolError(f"unexpected {frame.type!r} frame in a transfer", code="unexpected_frame")

    def _on_file_frame(self, inc: Sink, frame: Frame) -> list[Frame]:
        """The frames of a file after its ``ready``: resume, data, file_end."""
        state = self._state
        if state is _R.OFFERED:
            if frame.type != "resume":
                raise ProtocolError(f"{frame.type!r} before the 'resume' answering our offer", code="unexpected_frame")
            self._move("resume")
            if check_resume(frame, inc.pos) == 0 and inc.pos:
                return self._guard(inc, inc.restart)
            inc.resumed = inc.pos
            return []
        if frame.type == "data":
            if state is _R.DISCARDING:
                return []  # already reported; the rest is dropped
            replies = self._guard(inc, lambda: inc.write(frame.payload))
            self._moved += len(frame.payload)
            self._report(inc.display, inc.pos, inc.entry.size)
            return replies
        if frame.type == "file_end":
            return self._file_end(inc, FileEnd.from_frame(frame))
        raise ProtocolError(f"unexpected {frame.type!r} frame while a file's data arrives", code="unexpected_frame")

    def _guard(self, inc: Sink, action: Callable[[], None]) -> list[Frame]:
        """Run *action* on the incoming file; a failure ends it now and is reported at once."""
        try:
            action()
        except OSError as exc:
            self._move("failure")
            inc.discard()  # free the space now, not when the sender finishes
            return [self._fail(failure_from_oserror(inc.display, exc))]
        return []

    def _file_end(self, inc: Sink, end: FileEnd) -> list[Frame]:
        self._incoming = None
        failed = self._state is _R.DISCARDING
        self._move("file_end")
        if end.failure is not None:
            inc.discard()
            if failed:
                return []  # the sender only stopped because we had failed
            self.failures.append(end.failure)
            return [Frame("error", Failure(inc.display, "aborted", "not written: the sender failed").to_fields())]
        if failed:
            return []
        digest = inc.hash.hexdigest()
        if end.size != inc.pos or end.sha256 != digest:
            inc.discard()
            where = " (already written: discard it)" if self.stream is not None else "; not written"
            return [self._fail(Failure(inc.display, "checksum_mismatch", f"checksum mismatch: the data received does not match the sender's SHA-256{where}"))]
        try:
            inc.commit()
        except OSError as exc:
            inc.discard()
            return [self._fail(failure_from_oserror(inc.display, exc))]
        self._file_in_place(inc.pos, inc.resumed, digest)
        return [Frame("ok")]

    def _fail(self, failure: Failure) -> Frame:
        self.failures.append(failure)
        return Frame("error", failure.to_fields())

    # -- entries -------------------------------------------------------------

    def _on_entry(self, entry: Entry) -> list[Frame]:
        dest = self._dest
        if dest.below_failed(entry.parts):
            return [self._fail(Failure(dest.name_of(entry.parts), "skipped", "not copied: a directory above it failed"))]
        try:
            if entry.kind == "file":
                return self._begin_file(entry)
            if entry.kind == "dir":
                dest.make_dir(entry)
                self._dirs += 1
            else:
                dest.make_symlink(entry)
                self._symlinks += 1
            return [Frame("ok")]
        except EntryRefused as exc:
            failure = exc.failure
        except OSError as exc:
            failure = failure_from_oserror(dest.name_of(entry.parts), exc)
        dest.failed(entry)
        return [self._fail(failure)]

    def _begin_file(self, entry: Entry) -> list[Frame]:
        inc = self._dest.open_file(entry, resume=self.resume)
        self._incoming = inc
        if inc.have:
            self._move("partial")
            return []
        self._move("file")
        if self.stream is None:
            self._report(inc.display, inc.pos, inc.entry.size)
        return [Frame("ready", Ready(0).to_fields())]

    # -- resume --------------------------------------------------------------

    def hash_job(self) -> Callable[[], PrefixHash]:
        """The blocking work a partial file needs before it is answered: hash what it holds.

        Returns:
            A job to run anywhere (a worker thread); hand its outcome to ``hash_done``.
        """
        inc = self._incoming
        assert inc is not None and self.pending_hash
        return prefix_hash_job(inc.fd, inc.have)

    def hash_done(self, outcome: PrefixHash) -> list[Frame]:
        """Offer to resume from the partial's verified bytes.

        Args:
            outcome: what the ``hash_job()`` job returned (None if it failed).

        Returns:
            The ``ready`` to send (or the file's failure).
        """
        inc = self._incoming
        if inc is None or not self.pending_hash:
            return []  # given up meanwhile
        replies = self._guard(inc, lambda: inc.continue_from(outcome))
        if replies:
            self._incoming = None
            return replies
        self._report(inc.display, inc.pos, inc.entry.size)
        if not inc.pos:
            self._move("ready")
            return [Frame("ready", Ready(0).to_fields())]
        self._move("offer")
        return [Frame("ready", Ready(inc.pos, inc.hash.hexdigest()).to_fields())]

    # -- the end -------------------------------------------------------------

    def _finish(self) -> list[Frame]:
        replies = [self._fail(failure) for failure in self._dest.finish()]
        self._move("end")
        replies.append(Frame("done"))
        return replies

    def abort(self, *, interrupted: bool = True) -> None:
        """The transfer ends early (connection lost, interrupt): clean up.

        A ``resume`` transfer that was *interrupted* keeps its partial file;
        anything else removes it.

        Args:
            interrupted: the transfer was cut short, not failed.
        """
        self._release(interrupted=interrupted)
        if not self.finished:
            self._move("abort")

    def _release(self, *, interrupted: bool) -> None:
        """Let go of the file in hand (kept or removed) and the directories held open."""
        inc, self._incoming = self._incoming, None
        if inc is not None:
            # (`have`: an earlier partial we had not finished checking.)
            if self.resume and interrupted and self._state is not _R.DISCARDING and (inc.pos or inc.have):
                inc.keep()
            else:
                inc.discard()
        self._dest.close()
