"""The sending side of a transfer: walk a source, read files, emit frames.

``Sender`` knows nothing of sockets.  Its driver (the blocking client, the
asyncio client, or the server) asks ``next_frame()`` for something to send
whenever it has room, and hands every frame the receiver sends back to
``on_reply()``.  ``next_frame()`` returns None while the sender must wait
for a reply; the data of a file is produced one ``CHUNK`` at a time, so
memory stays bounded whatever the file's size and back-pressure is simply
the driver not asking.

Trees are walked through directory file descriptors with ``O_NOFOLLOW``:
a symlink inside the tree is sent as a link and never followed, even if
something swaps a directory for a link while we walk.  Only the path the
user named is followed, as ``cp -H`` and scp do.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import ProtocolError
from ..protocol.frames import Frame
from ..protocol.messages import remote_error
from .rules import (
    CHUNK,
    MAX_IN_FLIGHT,
    Entry,
    Failure,
    FileEnd,
    Ready,
    TransferProgress,
    TransferCounts,
    check_name,
    failure_from_oserror,
    failure_notice,
    is_refusal,
)

__all__ = ["Sender", "PathSource", "StreamSource", "Source", "ProgressCallback", "PrefixHash", "prefix_hash_job"]

ProgressCallback = Callable[[TransferProgress], None]

_OPEN_FILE = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_OPEN_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


@dataclass(eq=False)
class _SourceFile:
    """A file to send, opened: its entry, how to read it, what to call it in messages."""

    entry: Entry
    display: str
    read: Callable[[int], bytes]
    close: Callable[[], None]
    #: For resuming: read at an offset without moving (None for a stream).
    fd: int | None = None
    # Filled in as it is sent, read back when the receiver's verdict comes.
    size: int = 0
    sha256: str = ""
    resumed: int = 0
    #: We ended it with a failed file_end: the receiver's reply only echoes that.
    aborted: bool = False


_Item = Entry | _SourceFile | Failure

#: The outcome of a prefix hash: the hash so far and how many bytes it covers
#: (None when the file could not be read).
PrefixHash = tuple["hashlib._Hash", int] | None


def _closer(fd: int) -> Callable[[], None]:
    """Close *fd* on the first call only: a file may be given up on from several paths."""
    done = False

    def close() -> None:
        nonlocal done
        if not done:
            done = True
            os.close(fd)

    return close


def prefix_hash_job(fd: int, length: int) -> Callable[[], PrefixHash]:
    """Return a job hashing the first *length* bytes of *fd*, safe to run in another thread.

    The job works on its own duplicate of *fd* (made here, on the caller's
    thread), so the connection giving up and closing *fd* meanwhile cannot
    pull the descriptor from under it.
    """
    dup = os.dup(fd)

    def job() -> PrefixHash:
        h = hashlib.sha256()
        got = 0
        try:
            while got < length:
                data = os.pread(dup, min(4 * CHUNK, length - got), got)
                if not data:
                    break
                h.update(data)
                got += len(data)
        except OSError:
            return None
        finally:
            os.close(dup)
        return h, got

    return job


def _join(display: str, rel: str) -> str:
    """How messages name entry *rel* of a source the user called *display*."""
    if not rel:
        return display
    if display in ("", "."):
        return rel
    return f"{display.rstrip('/')}/{rel}"


class PathSource:
    """A file or directory tree on this machine.

    Args:
        base_dir: what a relative *path* is relative to.
        path: the file or directory to send (a symlink here is followed).
        recursive: send directories (otherwise a directory is a failure).
        display: how messages name *path* (what the user typed).
    """

    def __init__(self, base_dir: str, path: str, *, recursive: bool = False, display: str | None = None) -> None:
        self.full = os.path.join(base_dir, path)
        self.recursive = recursive
        self.display = path if display is None else display

    def items(self) -> Iterator[_Item]:
        """Yield the entries (files opened), and a ``Failure`` for what cannot be sent."""
        try:
            st = os.stat(self.full)
        except OSError as exc:
            yield failure_from_oserror(self.display, exc)
            return
        name = os.path.basename(os.path.normpath(os.path.abspath(self.full)))
        root_name = name if check_name(name) else None
        if stat.S_ISDIR(st.st_mode):
            if not self.recursive:
                yield Failure(self.display, "is_a_directory", "is a directory (use -r to copy directories)")
                return
            try:
                fd = os.open(self.full, _OPEN_DIR & ~os.O_NOFOLLOW)
            except OSError as exc:
                yield failure_from_oserror(self.display, exc)
                return
            yield from self._walk(fd, root_name)
        elif stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(self.full, _OPEN_FILE & ~os.O_NOFOLLOW)
            except OSError as exc:
                yield failure_from_oserror(self.display, exc)
                return
            yield self._file(fd, "", root_name)
        else:
            yield Failure(self.display, "not_regular", "not a regular file or directory")

    def _file(self, fd: int, rel: str, name: str | None = None) -> _Item:
        """The opened file *fd* as an item (a failure if it is not a regular file)."""
        display = _join(self.display, rel)
        try:
            st = os.fstat(fd)
            os.set_blocking(fd, True)
        except OSError as exc:
            os.close(fd)
            return failure_from_oserror(display, exc)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return Failure(display, "not_regular", "not a regular file, directory or symlink")
        entry = Entry("file", rel, stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_size, name=name)
        return _SourceFile(entry, display, lambda n: os.read(fd, n), _closer(fd), fd)

    def _walk(self, root_fd: int, root_name: str | None) -> Iterator[_Item]:
        # Depth-first, parents before children, with an explicit stack so a
        # deep tree cannot hit Python's recursion limit.  Each level holds one
        # directory descriptor and its sorted listing (sorted: the same tree
        # always arrives in the same order).
        stack: list[tuple[int, str, Iterator[str]]] = []
        try:
            yield self._enter(root_fd, "", stack, root_name)
            while stack:
                dfd, rel, names = stack[-1]
                name = next(names, None)
                if name is None:
                    os.close(dfd)
                    stack.pop()
                    continue
                child = f"{rel}/{name}" if rel else name
                if not check_name(name):
                    yield Failure(_join(self.display, child), "bad_name", "file name is not valid UTF-8 or too long (not copied)")
                    continue
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        target = os.readlink(name, dir_fd=dfd)
                        target.encode("utf-8")  # the target travels as JSON text
                        yield Entry("symlink", child, 0o777, st.st_mtime_ns, target=target)
                    elif stat.S_ISDIR(st.st_mode):
                        yield self._enter(os.open(name, _OPEN_DIR, dir_fd=dfd), child, stack)
                    elif stat.S_ISREG(st.st_mode):
                        yield self._file(os.open(name, _OPEN_FILE, dir_fd=dfd), child)
                    else:
                        yield Failure(_join(self.display, child), "not_regular", "not a regular file, directory or symlink (not copied)")
                except FileNotFoundError:
                    continue  # vanished since the listing: nothing to send
                except UnicodeEncodeError:
                    yield Failure(_join(self.display, child), "bad_name", "symlink target is not valid UTF-8 (not copied)")
                except OSError as exc:
                    yield failure_from_oserror(_join(self.display, child), exc)
        finally:
            for dfd, _, _ in stack:
                os.close(dfd)

    def _enter(self, fd: int, rel: str, stack: list[tuple[int, str, Iterator[str]]], name: str | None = None) -> _Item:
        """Push directory *fd* on the walk; return its entry (or why it cannot be read)."""
        try:
            st = os.fstat(fd)
            names = sorted(os.listdir(fd))
        except OSError as exc:
            os.close(fd)
            return failure_from_oserror(_join(self.display, rel), exc)
        stack.append((fd, rel, iter(names)))
        return Entry("dir", rel, stat.S_IMODE(st.st_mode), st.st_mtime_ns, name=name)


def _umask() -> int:
    """This process's umask, read without setting it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


class StreamSource:
    """Bytes from a stream (``-``: stdin) sent as one file of unknown size."""

    def __init__(self, stream: BinaryIO, *, display: str = "-") -> None:
        self.stream = stream
        self.display = display

    def items(self) -> Iterator[_Item]:
        """Yield the single file entry."""
        size: int | None = None
        try:
            st = os.fstat(self.stream.fileno())
            if stat.S_ISREG(st.st_mode):
                size = st.st_size - self.stream.tell()
        except (OSError, ValueError, AttributeError):
            pass
        # What a new file gets from `cat > file`: 0666 less the umask.
        read = getattr(self.stream, "read1", self.stream.read)
        entry = Entry("file", "", 0o666 & ~_umask(), time.time_ns(), size)
        yield _SourceFile(entry, self.display, read, lambda: None)


Source = PathSource | StreamSource


class _Sending:
    """The file whose entry is out and whose data is (or will be) flowing."""

    def __init__(self, src: _SourceFile) -> None:
        self.src = src
        self.hash = hashlib.sha256()
        self.pos = 0
        #: Bytes the receiver offered to resume from, and their SHA-256.
        self.offered = 0
        self.offered_sha: str | None = None
        #: `ready` has come (and any resume is decided): data may flow.
        self.streaming = False
        #: A `resume` frame must go out before the data.
        self.resume_due = False
        #: The receiver failed: end the data now.
        self.stop = False


class Sender(TransferCounts):
    """Produce a source's frames and follow the receiver's replies.

    Args:
        source: what to send.
        progress: called as data goes out (see ``TransferProgress``).
        sent_before: bytes already counted by earlier transfers of the same
            call, so ``TransferProgress.sent`` keeps growing across sources.
    """

    def __init__(self, source: Source, *, progress: ProgressCallback | None = None, sent_before: int = 0) -> None:
        super().__init__()
        self._items = source.items()
        self._display = source.display
        self._progress = progress
        self._sent_before = sent_before
        # One expectation per reply owed to us, oldest first: an entry, or
        # None for the final `done`.
        self._expect: deque[_SourceFile | Entry | None] = deque()
        self._current: _Sending | None = None
        self._ended = False
        self._answered = False
        self.finished = False
        #: The receiver refused the transfer before answering anything
        #: (``on_reply`` raised its ``RemoteError``); the connection stays
        #: usable once ``next_frame()``'s closing ``end``, if any, is sent.
        self.refused = False
        self._end_due = False
        #: A resume offer needs the first bytes of the file hashed
        #: (``hash_job()``, then ``hash_done()``) before anything more can be sent.
        self.pending_hash = False

    @property
    def where(self) -> str:
        """The file being sent (else the source), as messages name it."""
        return self._current.src.display if self._current is not None else self._display

    # -- frames out --------------------------------------------------------

    def next_frame(self) -> Frame | None:
        """The next frame to send, or None while waiting for a reply (or when finished)."""
        if self._end_due:
            self._end_due = False
            return Frame("end")
        cur = self._current
        if cur is not None:
            if not cur.streaming:
                return None  # waiting for `ready`, or for the resume hash
            if cur.resume_due:
                cur.resume_due = False
                return Frame("resume", {"offset": cur.pos})
            return self._next_data(cur)
        if self._ended or len(self._expect) >= MAX_IN_FLIGHT:
            return None
        item = next(self._items, None)
        if item is None:
            self._ended = True
            self._expect.append(None)
            return Frame("end")
        if isinstance(item, Failure):
            # Tell the receiver too: for `get` it is the one that reports.
            self.failures.append(item)
            return Frame("error", item.to_fields())
        self._expect.append(item)
        if isinstance(item, Entry):
            return Frame(item.kind, item.to_fields())
        self._current = _Sending(item)
        self._report(item, 0)
        return Frame("file", item.entry.to_fields())

    def _next_data(self, cur: _Sending) -> Frame:
        src = cur.src
        if not cur.stop:
            try:
                data = src.read(CHUNK)
            except OSError as exc:
                failure = failure_from_oserror(src.display, exc)
                self.failures.append(failure)
                src.aborted = True
                return self._end_file(FileEnd(failure=failure))
            if data:
                cur.hash.update(data)
                cur.pos += len(data)
                self._moved += len(data)
                self._report(src, cur.pos)
                return Frame("data", None, data)
        if cur.stop:
            return self._end_file(FileEnd(failure=Failure(src.display, "aborted", "stopped: the receiver failed")))
        src.size, src.sha256 = cur.pos, cur.hash.hexdigest()
        return self._end_file(FileEnd(src.size, src.sha256))

    def _end_file(self, end: FileEnd) -> Frame:
        assert self._current is not None
        self._current.src.close()
        self._current = None
        return Frame("file_end", end.to_fields())

    def _report(self, src: _SourceFile, done: int) -> None:
        if self._progress is not None:
            self._progress(TransferProgress(src.display, done, src.entry.size, self._sent_before + self._moved))

    # -- replies in --------------------------------------------------------

    def on_reply(self, frame: Frame) -> None:
        """Take one frame from the receiver.

        Raises:
            RemoteError: the peer sent a connection-ending error.
            ProtocolError: a reply that does not fit what we sent.
        """
        failure = failure_notice(frame) if frame.type == "error" else None
        if frame.type == "error" and failure is None:
            if not self._answered and is_refusal(frame):
                self._refuse()
            raise remote_error(frame)
        self._answered = True
        if not self._expect:
            raise ProtocolError(f"unexpected {frame.type!r}: no reply is owed", code="unexpected_frame")
        head = self._expect[0]
        if head is None:
            # After `end`: late failures (directory modes and times), then `done`.
            if failure is not None:
                self.failures.append(failure)
            elif frame.type == "done":
                self._expect.popleft()
                self.finished = True
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
        if isinstance(head, _SourceFile):
            if head.aborted:
                return  # the echo of a failure we reported ourselves
            if failure is not None:
                self.failures.append(failure)
                return
            self._files += 1
            self._bytes += head.size
            self._resumed += head.resumed
            self._last_sha = head.sha256
        elif failure is not None:
            self.failures.append(failure)
        elif head.kind == "dir":
            self._dirs += 1
        else:
            self._symlinks += 1

    def _reply_for_current(self, cur: _Sending, frame: Frame, failure: Failure | None) -> None:
        """A reply about the file whose data has not all gone yet."""
        if frame.type == "ready":
            if cur.streaming or self.pending_hash:
                raise ProtocolError("a second 'ready' for one file", code="unexpected_frame")
            ready = Ready.from_frame(frame)
            cur.offered, cur.offered_sha = ready.offset, ready.sha256
            if ready.offset:
                self.pending_hash = True
            else:
                cur.streaming = True
            return
        if failure is None:
            raise ProtocolError(f"unexpected {frame.type!r} for a file before its data", code="unexpected_frame")
        self._expect.popleft()
        self.failures.append(failure)
        if not cur.streaming and not self.pending_hash and not cur.offered:
            # Refused outright: no data, no file_end.
            self._current = None
            cur.src.close()
            return
        # Failed after `ready`: end the file at once (after the owed `resume`).
        cur.stop = True
        if self.pending_hash:
            self.pending_hash = False
            cur.streaming = cur.resume_due = True

    def _refuse(self) -> None:
        # The receiver drops whatever we sent behind the request up to our
        # `end`; owe it that `end` (unless it went already), then stop.
        self.close()
        self._expect.clear()
        self._end_due = not self._ended
        self._ended = self.finished = self.refused = True
        self.pending_hash = False

    # -- resume ------------------------------------------------------------

    def hash_job(self) -> Callable[[], PrefixHash]:
        """The blocking work a resume offer needs: hash our first bytes (run it anywhere, then ``hash_done``)."""
        cur = self._current
        assert cur is not None and self.pending_hash
        if cur.src.fd is None:
            return lambda: None  # a stream cannot be re-read: start over
        return prefix_hash_job(cur.src.fd, cur.offered)

    def hash_done(self, outcome: PrefixHash) -> None:
        """Decide where the data starts: at the offer when our first bytes hash the same, else at 0.

        ``next_frame()`` then returns the ``resume`` frame saying which.
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
        self.pending_hash = False
        cur.streaming = cur.resume_due = True

    # -- the end -----------------------------------------------------------

    def close(self) -> None:
        """Release open files (after the transfer, or when the connection is gone)."""
        if self._current is not None:
            self._current.src.close()
            self._current = None
        close = getattr(self._items, "close", None)
        if close is not None:
            close()
