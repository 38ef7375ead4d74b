"""Where a receiver puts a source's entries, without ever stepping outside it.

The root entry goes inside the destination when that is an existing
directory, else under the destination's own name.  Every directory on the
way to an entry is opened with ``O_NOFOLLOW`` relative to its parent's
descriptor: a symlink in the tree (sent earlier, or planted meanwhile) is
never walked through.  Directories are made owner-only and get their own
mode and mtime only at the end, deepest first, once nothing more is
written inside them.  With a stream for a destination (``get ... -``)
there is only one place: the stream, for files only.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from ..results import Failure, printable
from .failures import EntryRefused, failure_from_oserror
from .messages import Entry
from .sinks import Sink, StreamSink, TempFile, fresh_temp_name

__all__ = ["Destination"]

_OPEN_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class Destination:
    """The place one source is received into.

    Args:
        full: the destination path (joined to what a relative one is relative to).
        display: how messages name it (what the user typed).
        into: it must be an existing directory (several sources).
        stream: write file data here instead; directories and links are refused.
    """

    def __init__(self, full: str, display: str, *, into: bool, stream: BinaryIO | None) -> None:
        self.full = full
        self.display = display
        self.into = into
        self.stream = stream
        #: Where the root entry goes is decided (for a stream: it took a file).
        self.resolved = False
        self._root_fd = -1
        self._root_name = ""
        self._root_display = display
        # Open directories on the path to the last entry: (name, fd), from
        # the root down.  Senders walk depth-first, so this is mostly reused.
        self._chain: list[tuple[str, int]] = []
        self._failed_dirs: set[tuple[str, ...]] = set()
        # Directories whose mode and mtime are set at the end.
        self._dir_meta: list[tuple[tuple[str, ...], int, int]] = []

    def name_of(self, parts: tuple[str, ...]) -> str:
        """How messages name the entry whose path is *parts*."""
        root = self._root_display
        return "/".join((root.rstrip("/"), *parts)) if parts else root

    # -- what failed ---------------------------------------------------------

    def below_failed(self, parts: tuple[str, ...]) -> bool:
        """True when entry *parts* is inside a directory that failed (so it is skipped)."""
        return any(parts[:i] in self._failed_dirs for i in range(len(parts)))

    def failed(self, entry: Entry) -> None:
        """Note that *entry* failed: if it is a directory, or the root had no place, skip what is inside."""
        if entry.kind == "dir" or not self.resolved:
            self._failed_dirs.add(entry.parts)

    # -- entries -------------------------------------------------------------

    def open_file(self, entry: Entry, *, resume: bool) -> Sink:
        """Return the sink a file's data goes to until it is verified.

        Args:
            entry: the ``file`` entry.
            resume: write to the file's partial (continuing what it holds).

        Raises:
            EntryRefused: the file has no place here (a directory of that name, a busy partial).
            OSError: the place could not be opened.
        """
        if self.stream is not None:
            self.resolved = True
            return StreamSink(self.stream, self.display, entry)
        self._resolve(entry)
        parent_fd, name = self._locate(entry.parts)
        display = self.name_of(entry.parts)
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                raise EntryRefused(Failure(display, "is_a_directory", "Is a directory"))
        except FileNotFoundError:
            pass
        return TempFile(parent_fd, name, display, entry, resume=resume)

    def make_dir(self, entry: Entry) -> None:
        """Make the directory *entry* (or take the one there); its mode and mtime come at ``finish``.

        Raises:
            EntryRefused: something that is not a directory is in the way, or the destination is a stream.
            OSError: it could not be made.
        """
        self._resolve(entry)
        parent_fd, name = self._locate(entry.parts)
        try:
            # Owner-only while we fill it; its own mode comes at the end.
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError as exc:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP)) from exc
            if not stat.S_ISDIR(st.st_mode):
                raise EntryRefused(Failure(self.name_of(entry.parts), "not_a_directory", "exists and is not a directory")) from exc
        self._dir_meta.append((entry.parts, entry.mode, entry.mtime_ns))

    def make_symlink(self, entry: Entry) -> None:
        """Make the symlink *entry*, replacing any entry of that name whole.

        Raises:
            EntryRefused: the destination is a stream.
            OSError: it could not be made.
        """
        self._resolve(entry)
        assert entry.target is not None
        parent_fd, name = self._locate(entry.parts)
        # Made under a temporary name and renamed over, like a file: an
        # existing entry of that name is replaced whole or not at all.
        temp = fresh_temp_name(name)
        os.symlink(entry.target, temp, dir_fd=parent_fd)
        try:
            os.utime(temp, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)
            os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError:
            os.unlink(temp, dir_fd=parent_fd)
            raise

    def _resolve(self, entry: Entry) -> None:
        """Decide, at the first entry, where the root goes: inside an existing directory, or as the name given."""
        if self.stream is not None:
            raise EntryRefused(Failure(self.name_of(entry.parts), "is_a_directory", "cannot write a directory or link to a stream"))
        if self.resolved:
            return
        try:
            is_dir = stat.S_ISDIR(os.stat(self.full).st_mode)
            exists = True
        except FileNotFoundError:
            is_dir = exists = False
        except OSError as exc:
            raise EntryRefused(failure_from_oserror(self.display, exc)) from exc
        if is_dir:
            if entry.name is None:
                raise EntryRefused(Failure(self.display, "is_a_directory", "Is a directory (give the file a name)"))
            parent, name = self.full, entry.name
            self._root_display = "/".join((self.display.rstrip("/") or "/", name)) if self.display != "." else name
        elif self.into:
            code, message = ("not_a_directory", "Not a directory") if exists else ("not_found", "No such file or directory")
            raise EntryRefused(Failure(self.display, code, message))
        else:
            parent, name = os.path.split(self.full)
            if name in ("", ".", ".."):
                raise EntryRefused(Failure(self.display, "is_a_directory", "Is a directory"))
        try:
            self._root_fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise EntryRefused(failure_from_oserror(self.display, exc)) from exc
        self._root_name = name
        self.resolved = True

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
                    link = self.name_of(names[1 : i + 1])
                    raise OSError(errno.ELOOP, f"{printable(link)} is a symbolic link (not followed)") from exc
                raise
            chain.append((names[i], fd))
        return fd

    # -- the end -------------------------------------------------------------

    def finish(self) -> list[Failure]:
        """Give every directory made its mode and mtime, then let go of the tree.

        Returns:
            The directories that could not be given them.
        """
        failures: list[Failure] = []
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
                failures.append(failure_from_oserror(self.name_of(parts), exc))
        self.close()
        return failures

    def close(self) -> None:
        """Close the directories held open."""
        for _, fd in self._chain:
            os.close(fd)
        self._chain.clear()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1
