"""Where one incoming file's data goes while it arrives: a sink, and its three ways out.

A ``TempFile`` sink writes next to the file's destination, into a file with
no name at all (``O_TMPFILE``: it vanishes by itself if we die, even by
SIGKILL) or, where the filesystem cannot do that, into a hidden temporary
name; a ``resume`` transfer writes instead to the fixed partial name
``.NAME.rsh-partial``, locked, so that an interrupted one can be continued.
A ``StreamSink`` writes straight to a stream (``get ... -``).

Every sink keeps the running SHA-256 of what it took, and ends one of three
ways: ``commit`` (verified: the file gets its mode, mtime and name by one
atomic rename), ``discard`` (every trace removed) or ``keep`` (an
interrupted resume leaves its partial).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
from typing import BinaryIO

from ..results import Failure
from .failures import EntryRefused
from .messages import Entry
from .prefix_hash import PrefixHash

__all__ = ["Sink", "TempFile", "StreamSink", "hidden_name", "partial_name", "fresh_temp_name"]

# O_TMPFILE files get their name through /proc/self/fd; without /proc (or
# on a filesystem that refuses O_TMPFILE) we use a named temporary file.
_CAN_TMPFILE = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def hidden_name(name: str, suffix: str) -> str:
    """``.NAME.SUFFIX``, or a hashed stand-in when that would pass NAME_MAX."""
    candidate = f".{name}.{suffix}"
    if len(candidate.encode("utf-8", "surrogateescape")) <= 255:
        return candidate
    return f".rsh-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:32]}.{suffix}"


def fresh_temp_name(name: str) -> str:
    """A fresh hidden temporary name for *name* (os.urandom as secrets would, without importing it)."""
    return hidden_name(name, f"rsh-{os.urandom(4).hex()}")


def partial_name(name: str) -> str:
    """Where a ``resume`` transfer keeps the data of *name* while it arrives."""
    return hidden_name(name, "rsh-partial")


class Sink:
    """Where one file's data goes while it arrives, with its running hash.

    The three ways out: ``commit`` (verified: give it its name), ``discard``
    (remove every trace) and ``keep`` (interrupted resume: leave the partial).
    """

    #: The file written to (-1 when it is not a file).
    fd = -1

    def __init__(self, entry: Entry, display: str) -> None:
        self.entry = entry
        self.display = display
        # Hashed in this thread, as it is written: handing chunks to a worker
        # thread measured slower here (two cores, both ends busy; see
        # bench/transfer.py), and one thread keeps each chunk in cache.
        self.hash = hashlib.sha256()
        self.pos = 0
        #: Bytes already in a partial file from an interrupted transfer.
        self.have = 0
        #: Bytes of the partial the sender agreed to keep.
        self.resumed = 0

    def write(self, data: bytes) -> None:
        """Append *data* and add it to the running hash.

        Raises:
            OSError: it could not be written (a full disk).
        """
        self._put(data)
        self.hash.update(data)
        self.pos += len(data)

    def _put(self, data: bytes) -> None:
        """Write all of *data* where this sink writes."""
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


class TempFile(Sink):
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
        self.temp_name = fresh_temp_name(self.name)
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
        except BlockingIOError as exc:
            os.close(fd)
            raise EntryRefused(Failure(self.display, "busy", "another transfer to this file is in progress")) from exc
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

    def _put(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

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
            self.temp_name = fresh_temp_name(self.name)
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


class StreamSink(Sink):
    """A file received straight into a stream (``get ... -``): verified only after it is written."""

    def __init__(self, stream: BinaryIO, display: str, entry: Entry) -> None:
        super().__init__(entry, display)
        self.stream = stream

    def _put(self, data: bytes) -> None:
        self.stream.write(data)

    def commit(self) -> None:
        self.stream.flush()

    def discard(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the reader is gone; what it got is what it got

    keep = discard
