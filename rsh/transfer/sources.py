"""What a transfer sends from: a file or directory tree on this machine, or a stream.

A source yields its entries in order, each file already opened, and a
``Failure`` for anything in it that cannot be sent; ``Sender`` turns them
into frames.

Trees are walked through directory file descriptors with ``O_NOFOLLOW``:
a symlink inside the tree is sent as a link and never followed, even if
something swaps a directory for a link while we walk.  Only the path the
user named is followed, as ``cp -H`` and scp do.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..results import Failure
from .failures import failure_from_oserror
from .messages import Entry
from .paths import check_name

__all__ = ["SourceFile", "Item", "PathSource", "StreamSource", "Source"]

_OPEN_FILE = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_OPEN_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


@dataclass(eq=False)
class SourceFile:
    """A file to send, opened: its entry, how to read it, what to call it in messages."""

    entry: Entry
    display: str
    read: Callable[[int], bytes]
    close: Callable[[], None]
    #: The open file (None for a stream): read at an offset to resume, or into a buffer.
    fd: int | None = None
    # Filled in as it is sent, read back when the receiver's verdict comes.
    size: int = 0
    sha256: str = ""
    resumed: int = 0
    #: We ended it with a failed file_end: the receiver's reply only echoes that.
    aborted: bool = False


#: What a source yields: an entry, an opened file, or what could not be sent.
Item = Entry | SourceFile | Failure


def _closer(fd: int) -> Callable[[], None]:
    """Close *fd* on the first call only: a file may be given up on from several paths."""
    done = False

    def close() -> None:
        nonlocal done
        if not done:
            done = True
            os.close(fd)

    return close


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

    def items(self) -> Iterator[Item]:
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

    def _file(self, fd: int, rel: str, name: str | None = None) -> Item:
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
        return SourceFile(entry, display, lambda n: os.read(fd, n), _closer(fd), fd)

    def _walk(self, root_fd: int, root_name: str | None) -> Iterator[Item]:
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

    def _enter(self, fd: int, rel: str, stack: list[tuple[int, str, Iterator[str]]], name: str | None = None) -> Item:
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

    def items(self) -> Iterator[Item]:
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
        yield SourceFile(entry, self.display, read, lambda: None)


#: Anything a ``Sender`` sends from.
Source = PathSource | StreamSource
