"""The receiving side of a transfer: place entries safely, verify every file.

``Receiver`` knows nothing of sockets: its driver feeds it every frame the
sender sends (``on_frame``) and sends the replies it returns.  What it
promises, whatever the sender does:

- **Nothing outside the destination.**  Entry paths are plain relative
  names (checked in ``rsh.transfer.rules``), and every directory on the way to an
  entry is opened with ``O_NOFOLLOW`` relative to its parent's descriptor:
  a symlink in the tree (sent earlier, or planted meanwhile) is never
  walked through.
- **Never a partial or unverified file under the target name.**  Data goes
  to a file with no name at all (``O_TMPFILE``: it vanishes by itself if we
  die, even by SIGKILL) or, where the filesystem cannot do that, to a hidden
  temporary name.  Only when the SHA-256 of what arrived equals the
  sender's does it get the file's mode and mtime and its final name, by an
  atomic rename: an existing file of that name is either left whole or
  replaced whole.
- **Temporary files removed on every failure path** (checksum mismatch,
  disk full, the sender failing, the connection lost) -- except that a
  ``resume`` transfer keeps what it had when *interrupted*, under the fixed
  name ``.NAME.rsh-partial``, for the next ``resume`` to continue.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from typing import BinaryIO

from ..errors import ProtocolError
from ..protocol.frames import Frame
from ..protocol.messages import remote_error
from .rules import (
    ENTRY_TYPES,
    Entry,
    Failure,
    FileEnd,
    Ready,
    TransferProgress,
    TransferCounts,
    check_resume,
    failure_from_oserror,
    failure_notice,
    is_refusal,
    printable,
)
from .send import PrefixHash, ProgressCallback, prefix_hash_job

__all__ = ["Receiver", "partial_name"]

_OPEN_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY

# O_TMPFILE files get their name through /proc/self/fd; without /proc (or
# on a filesystem that refuses O_TMPFILE) we use a named temporary file.
_CAN_TMPFILE = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def _hidden_name(name: str, suffix: str) -> str:
    """``.NAME.SUFFIX``, or a hashed stand-in when that would pass NAME_MAX."""
    candidate = f".{name}.{suffix}"
    if len(candidate.encode("utf-8", "surrogateescape")) <= 255:
        return candidate
    return f".rsh-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:32]}.{suffix}"


def partial_name(name: str) -> str:
    """Where a ``resume`` transfer keeps the data of *name* while it arrives."""
    return _hidden_name(name, "rsh-partial")


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class _Refused(Exception):
    """An entry cannot be received; carries the failure to report."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _Sink:
    """Where one file's data goes while it arrives, with its running hash.

    The three ways out: ``commit`` (verified: give it its name), ``discard``
    (remove every trace) and ``keep`` (interrupted resume: leave the partial).
    """

    #: The file written to (-1 when it is not a file).
    fd = -1

    def __init__(self, entry: Entry, display: str) -> None:
        self.entry = entry
        self.display = display
        self.hash = hashlib.sha256()
        self.pos = 0
        #: Bytes already in a partial file from an interrupted transfer.
        self.have = 0
        #: Bytes of the partial the sender agreed to keep.
        self.resumed = 0
        #: A resume offer went out; the sender's `resume` has not come yet.
        self.offer_pending = False
        #: We reported a failure early; the rest of the data is discarded.
        self.failed = False

    def write(self, data: bytes) -> None:
        """Append *data* and add it to the running hash."""
        raise NotImplementedError

    def restart(self) -> None:
        """Throw away partial data: the sender's file has changed since."""
        raise NotImplementedError

    def continue_from(self, outcome: PrefixHash) -> None:
        """Adopt the hash of the partial's first bytes (from a prefix-hash job)."""
        raise NotImplementedError

    def commit(self) -> None:
        """The data is verified: put it in place."""
        raise NotImplementedError

    def discard(self) -> None:
        """Remove every trace of the file."""
        raise NotImplementedError

    def keep(self) -> None:
        """Leave the partial file for a later resume."""
        raise NotImplementedError


class _TempFile(_Sink):
    """A file received into a temporary (or, resuming, a partial) file next to its destination."""

    def __init__(self, parent_fd: int, name: str, display: str, entry: Entry, *, resume: bool) -> None:
        super().__init__(entry, display)
        self.name = name
        self.temp_name: str | None = None
        # Our own handle on the directory: it must outlive the receiver
        # moving on to open other directories.
        self.dir_fd = os.dup(parent_fd)
        try:
            if resume:
                self._open_partial()
            else:
                self._open_temp()
        except BaseException:
            os.close(self.dir_fd)
            raise

    def _open_temp(self) -> None:
        if _CAN_TMPFILE:
            try:
                self.fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=self.dir_fd)
                return
            except OSError as exc:
                # Filesystems without O_TMPFILE say so in one of these ways;
                # anything else (EACCES, ENOSPC) is a real answer.
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
        self.temp_name = _hidden_name(self.name, f"rsh-{secrets.token_hex(4)}")
        self.fd = os.open(self.temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.dir_fd)

    def _open_partial(self) -> None:
        self.temp_name = partial_name(self.name)
        fd = os.open(self.temp_name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EEXIST, f"{self.temp_name} is in the way and is not a regular file")
            # Two transfers appending to one partial would interleave garbage;
            # the lock goes away with its holder, however that ends.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _Refused(Failure(self.display, "busy", "another transfer to this file is in progress")) from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.have = st.st_size

    def restart(self) -> None:
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.hash = hashlib.sha256()
        self.pos = 0

    def continue_from(self, outcome: PrefixHash) -> None:
        if outcome is None:
            self.have = 0
            self.restart()
            return
        self.hash, self.have = outcome
        os.ftruncate(self.fd, self.have)  # drop any torn tail past what was hashed
        os.lseek(self.fd, self.have, os.SEEK_SET)
        self.pos = self.have

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.hash.update(data)
        self.pos += len(data)

    def commit(self) -> None:
        """Give the verified file its mode, mtime and name (replacing any file of that name)."""
        entry = self.entry
        # Permission bits only: set-id bits would be a gift to whoever sent
        # the file, and cp drops them too when it cannot keep the owner.
        os.fchmod(self.fd, entry.mode & 0o777)
        os.utime(self.fd, ns=(entry.mtime_ns, entry.mtime_ns))
        if self.temp_name is None:
            # An O_TMPFILE file gets a name only now, and only for the
            # instant before the rename.
            self.temp_name = _hidden_name(self.name, f"rsh-{secrets.token_hex(4)}")
            os.link(f"/proc/self/fd/{self.fd}", self.temp_name, dst_dir_fd=self.dir_fd, follow_symlinks=True)
        resumable = self.temp_name == partial_name(self.name)
        os.rename(self.temp_name, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.temp_name = None
        if not resumable:
            self._remove_stale_partial()
        self._close()

    def _remove_stale_partial(self) -> None:
        """An earlier ``resume`` transfer's partial of this file is obsolete now: remove it (unless in use)."""
        try:
            fd = os.open(partial_name(self.name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.dir_fd)
        except OSError:
            return  # none (the usual case)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(partial_name(self.name), dir_fd=self.dir_fd)
        except OSError:
            pass  # a resume transfer is writing it: its business
        finally:
            os.close(fd)

    def discard(self) -> None:
        if self.temp_name is not None:
            try:
                os.unlink(self.temp_name, dir_fd=self.dir_fd)
            except OSError:
                pass
            self.temp_name = None
        self._close()

    def keep(self) -> None:
        self.temp_name = None
        self._close()  # which releases the lock

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            os.close(self.dir_fd)
            self.fd = -1


class _StreamSink(_Sink):
    """A file received straight into a stream (``get ... -``): verified only after it is written."""

    def __init__(self, stream: BinaryIO, display: str, entry: Entry) -> None:
        super().__init__(entry, display)
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.hash.update(data)
        self.pos += len(data)

    def commit(self) -> None:
        self.stream.flush()

    def discard(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the reader is gone; what it got is what it got

    keep = discard


class Receiver(TransferCounts):
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
        super().__init__()
        self.full = os.path.join(base_dir, path)
        self.display = path if display is None else display
        self.into = into or path.endswith("/")
        self.resume = resume and stream is None
        self.stream = stream
        self._progress = progress
        self._sent_before = sent_before
        self._root_fd = -1
        self._root_name = ""
        self._root_display = self.display
        self._resolved = False
        # Open directories on the path to the last entry: (name, fd), from
        # the root down.  Senders walk depth-first, so this is mostly reused.
        self._chain: list[tuple[str, int]] = []
        self._failed_dirs: set[tuple[str, ...]] = set()
        # Directories whose mode and mtime are set at `end`, once nothing
        # more will be written inside them.
        self._dir_meta: list[tuple[tuple[str, ...], int, int]] = []
        self._incoming: _Sink | None = None
        #: A partial file's first bytes must be hashed (``hash_job()``)
        #: before the file can be answered.
        self.pending_hash = False
        self.finished = False
        #: The sender refused the transfer with its first frame (``on_frame``
        #: raised its ``RemoteError``): nothing more comes, and the connection
        #: stays usable.
        self.refused = False
        self._heard = False

    @property
    def where(self) -> str:
        """The file being received (else the destination), as messages name it."""
        return self._incoming.display if self._incoming is not None else self.display

    # -- frames in -----------------------------------------------------------

    def on_frame(self, frame: Frame) -> list[Frame]:
        """Take one frame from the sender; return the replies to send.

        Raises:
            RemoteError: the sender sent a connection-ending error.
            ProtocolError: a frame that breaks the transfer's rules.
        """
        if self.finished or self.pending_hash:
            raise ProtocolError(f"unexpected {frame.type!r} frame in a transfer", code="unexpected_frame")
        if not self._heard and is_refusal(frame):
            self.refused = True
            self.abort(interrupted=False)
            raise remote_error(frame)
        self._heard = True
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

    def _on_file_frame(self, inc: _Sink, frame: Frame) -> list[Frame]:
        """The frames of a file after its ``ready``: resume, data, file_end."""
        if frame.type == "resume" and inc.offer_pending:
            inc.offer_pending = False
            if check_resume(frame, inc.pos) == 0 and inc.pos:
                return self._guard(inc, inc.restart)
            inc.resumed = inc.pos
            return []
        if inc.offer_pending:
            raise ProtocolError(f"{frame.type!r} before the 'resume' answering our offer", code="unexpected_frame")
        if frame.type == "data":
            if inc.failed:
                return []  # already reported; the rest is dropped
            replies = self._guard(inc, lambda: inc.write(frame.payload))
            self._moved += len(frame.payload)
            self._report(inc)
            return replies
        if frame.type == "file_end":
            return self._file_end(inc, FileEnd.from_frame(frame))
        raise ProtocolError(f"unexpected {frame.type!r} frame while a file's data arrives", code="unexpected_frame")

    def _guard(self, inc: _Sink, action: Callable[[], None]) -> list[Frame]:
        """Run *action* on the incoming file; a failure ends it now and is reported at once."""
        try:
            action()
        except OSError as exc:
            inc.failed = True
            inc.discard()  # free the space now, not when the sender finishes
            return [self._fail(failure_from_oserror(inc.display, exc))]
        return []

    def _file_end(self, inc: _Sink, end: FileEnd) -> list[Frame]:
        self._incoming = None
        if end.failure is not None:
            inc.discard()
            if inc.failed:
                return []  # the sender only stopped because we had failed
            self.failures.append(end.failure)
            return [Frame("error", Failure(inc.display, "aborted", "not written: the sender failed").to_fields())]
        if inc.failed:
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
        self._files += 1
        self._bytes += inc.pos
        self._resumed += inc.resumed
        self._last_sha = digest
        return [Frame("ok")]

    def _fail(self, failure: Failure) -> Frame:
        self.failures.append(failure)
        return Frame("error", failure.to_fields())

    def _report(self, inc: _Sink) -> None:
        if self._progress is not None:
            self._progress(TransferProgress(inc.display, inc.pos, inc.entry.size, self._sent_before + self._moved))

    # -- entries -------------------------------------------------------------

    def _on_entry(self, entry: Entry) -> list[Frame]:
        parts = entry.parts
        if any(parts[:i] in self._failed_dirs for i in range(len(parts))):
            return [self._fail(Failure(self._display(parts), "skipped", "not copied: a directory above it failed"))]
        try:
            if self.stream is not None:
                return self._stream_entry(entry)
            if not self._resolved:
                self._resolve_root(entry)
            if entry.kind == "file":
                return self._begin_file(entry)
            if entry.kind == "dir":
                self._make_dir(entry)
                self._dirs += 1
            else:
                self._make_symlink(entry)
                self._symlinks += 1
            return [Frame("ok")]
        except _Refused as exc:
            failure = exc.failure
        except OSError as exc:
            failure = failure_from_oserror(self._display(parts), exc)
        if entry.kind == "dir" or not self._resolved:
            self._failed_dirs.add(parts)
        return [self._fail(failure)]

    def _display(self, parts: tuple[str, ...]) -> str:
        root = self._root_display
        return "/".join((root.rstrip("/"), *parts)) if parts else root

    def _resolve_root(self, entry: Entry) -> None:
        """Decide where the root entry goes: inside an existing directory, or as the name given."""
        try:
            is_dir = stat.S_ISDIR(os.stat(self.full).st_mode)
            exists = True
        except FileNotFoundError:
            is_dir = exists = False
        except OSError as exc:
            raise _Refused(failure_from_oserror(self.display, exc)) from None
        if is_dir:
            if entry.name is None:
                raise _Refused(Failure(self.display, "is_a_directory", "Is a directory (give the file a name)"))
            parent, name = self.full, entry.name
            self._root_display = "/".join((self.display.rstrip("/") or "/", name)) if self.display != "." else name
        elif self.into:
            code, message = ("not_a_directory", "Not a directory") if exists else ("not_found", "No such file or directory")
            raise _Refused(Failure(self.display, code, message))
        else:
            parent, name = os.path.split(self.full)
            if name in ("", ".", ".."):
                raise _Refused(Failure(self.display, "is_a_directory", "Is a directory"))
        try:
            self._root_fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _Refused(failure_from_oserror(self.display, exc)) from None
        self._root_name = name
        self._resolved = True

    def _locate(self, parts: tuple[str, ...]) -> tuple[int, str]:
        """The descriptor of the directory holding entry *parts*, and the entry's name in it."""
        names = (self._root_name, *parts)
        return self._open_dirs(names[:-1]), names[-1]

    def _open_dirs(self, names: tuple[str, ...]) -> int:
        chain = self._chain
        keep = 0
        while keep < len(chain) and keep < len(names) and chain[keep][0] == names[keep]:
            keep += 1
        for _, fd in chain[keep:]:
            os.close(fd)
        del chain[keep:]
        fd = chain[-1][1] if chain else self._root_fd
        for i in range(keep, len(names)):
            # O_NOFOLLOW: a symlink on the way fails (ELOOP, or ENOTDIR with
            # O_DIRECTORY) instead of taking us out of the tree.
            try:
                fd = os.open(names[i], _OPEN_DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(names[i], fd):
                    link = self._display(names[1 : i + 1])
                    raise OSError(errno.ELOOP, f"{printable(link)} is a symbolic link (not followed)") from None
                raise
            chain.append((names[i], fd))
        return fd

    def _begin_file(self, entry: Entry) -> list[Frame]:
        parent_fd, name = self._locate(entry.parts)
        display = self._display(entry.parts)
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                raise _Refused(Failure(display, "is_a_directory", "Is a directory"))
        except FileNotFoundError:
            pass
        inc = _TempFile(parent_fd, name, display, entry, resume=self.resume)
        self._incoming = inc
        if inc.have:
            self.pending_hash = True
            return []
        self._report(inc)
        return [Frame("ready", Ready(0).to_fields())]

    def _stream_entry(self, entry: Entry) -> list[Frame]:
        assert self.stream is not None
        if entry.kind != "file":
            raise _Refused(Failure(self._display(entry.parts), "is_a_directory", "cannot write a directory or link to a stream"))
        self._resolved = True
        self._incoming = _StreamSink(self.stream, self.display, entry)
        return [Frame("ready", Ready(0).to_fields())]

    def _make_dir(self, entry: Entry) -> None:
        parent_fd, name = self._locate(entry.parts)
        try:
            # Owner-only while we fill it; its own mode comes at `end`.
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP)) from None
            if not stat.S_ISDIR(st.st_mode):
                raise _Refused(Failure(self._display(entry.parts), "not_a_directory", "exists and is not a directory")) from None
        self._dir_meta.append((entry.parts, entry.mode, entry.mtime_ns))

    def _make_symlink(self, entry: Entry) -> None:
        assert entry.target is not None
        parent_fd, name = self._locate(entry.parts)
        # Made under a temporary name and renamed over, like a file: an
        # existing entry of that name is replaced whole or not at all.
        temp = _hidden_name(name, f"rsh-{secrets.token_hex(4)}")
        os.symlink(entry.target, temp, dir_fd=parent_fd)
        try:
            os.utime(temp, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)
            os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError:
            os.unlink(temp, dir_fd=parent_fd)
            raise

    # -- resume --------------------------------------------------------------

    def hash_job(self) -> Callable[[], PrefixHash]:
        """The blocking work a partial file needs before it is answered: run it anywhere, then ``hash_done``."""
        inc = self._incoming
        assert inc is not None and self.pending_hash
        return prefix_hash_job(inc.fd, inc.have)

    def hash_done(self, outcome: PrefixHash) -> list[Frame]:
        """Offer to resume from the partial's verified bytes; return the ``ready`` to send."""
        inc = self._incoming
        if inc is None or not self.pending_hash:
            return []  # given up meanwhile
        self.pending_hash = False
        replies = self._guard(inc, lambda: inc.continue_from(outcome))
        if replies:
            self._incoming = None
            return replies
        self._report(inc)
        if not inc.pos:
            return [Frame("ready", Ready(0).to_fields())]
        inc.offer_pending = True
        return [Frame("ready", Ready(inc.pos, inc.hash.hexdigest()).to_fields())]

    # -- the end -------------------------------------------------------------

    def _finish(self) -> list[Frame]:
        replies: list[Frame] = []
        # Children before parents, so setting a directory's mtime is the last
        # thing that happens inside its parent.
        for parts, mode, mtime_ns in reversed(self._dir_meta):
            try:
                parent_fd, name = self._locate(parts)
                fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
                try:
                    os.fchmod(fd, mode & 0o777)
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
                finally:
                    os.close(fd)
            except OSError as exc:
                replies.append(self._fail(failure_from_oserror(self._display(parts), exc)))
        self._close_dirs()
        self.finished = True
        replies.append(Frame("done"))
        return replies

    def abort(self, *, interrupted: bool = True) -> None:
        """The transfer ends early (connection lost, interrupt): clean up.

        A ``resume`` transfer that was *interrupted* keeps its partial file;
        anything else removes it.
        """
        inc, self._incoming = self._incoming, None
        if inc is not None:
            # (`have`: an earlier partial we had not finished checking.)
            if self.resume and interrupted and not inc.failed and (inc.pos or inc.have):
                inc.keep()
            else:
                inc.discard()
        self._close_dirs()
        self.pending_hash = False
        self.finished = True

    def _close_dirs(self) -> None:
        for _, fd in self._chain:
            os.close(fd)
        self._chain.clear()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1
