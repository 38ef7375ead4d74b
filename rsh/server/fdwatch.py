"""Many short-lived descriptors watched through one asyncio reader.

Every command the server runs brings three descriptors to watch (its exit
through a pidfd, its stdout and its stderr) and takes them away again a
millisecond later.  ``loop.add_reader`` and ``remove_reader`` cost about
18 and 8 microseconds each on the selector event loop (a ``Handle``, a
``SelectorKey``, an ``epoll_ctl``), some 75 microseconds per command, much of
it between the child's exit and the ``exit`` frame.  An ``epoll`` object of
our own does the same job with one ``epoll_ctl`` per change, and is itself
watched by the loop through a single ``add_reader`` registered once: epoll
descriptors nest, and ours reads as ready while any descriptor in it is.

Callbacks run in the loop's thread, from the loop's reader callback, so
they obey the same rules as ``add_reader`` callbacks.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Any

__all__ = ["FdWatcher"]

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
# Hang-ups and errors wake both directions: the callback finds out what by reading or writing.
_IN_WAKE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
_OUT_WAKE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR


def _loop_fd(loop: asyncio.AbstractEventLoop) -> int:
    """The descriptor that reads as ready whenever *loop* has I/O to handle; -1 if unknown.

    asyncio's selector loops keep it in ``_selector`` (private, so looked up
    with care); with any other loop, commands never wait in
    ``RunningCommand.start``.
    """
    selector = getattr(loop, "_selector", None)
    fileno = getattr(selector, "fileno", None)
    try:
        return int(fileno()) if fileno is not None else -1
    except (OSError, ValueError, TypeError):
        return -1


class FdWatcher:
    """``add_reader``/``add_writer`` for one event loop, over a private epoll.

    As with the loop's own, stop watching a descriptor before closing it.

    Raises:
        OSError: from ``epoll_ctl`` when a descriptor cannot be watched
            (EPERM for a regular file, EBADF for a closed one).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        #: The loop it watches for (and its callbacks run in).
        self.loop = loop or asyncio.get_running_loop()
        self._epoll = select.epoll()
        # fd -> [events mask, reader callback, writer callback]
        self._fds: dict[int, list[Any]] = {}
        self.loop.add_reader(self._epoll.fileno(), self._ready)
        #: What reads as ready whenever the loop has I/O to handle (-1 if unknown): see ``RunningCommand.start``.
        self.loop_fd = _loop_fd(self.loop)

    def add_reader(self, fd: int, callback: Callable[..., object], *args: object) -> None:
        """Call ``callback(*args)`` whenever *fd* is readable (replacing any earlier reader)."""
        self._set(fd, 1, (callback, args))

    def remove_reader(self, fd: int) -> None:
        """Stop watching *fd* for reading (nothing happens if it was not)."""
        self._set(fd, 1, None)

    def add_writer(self, fd: int, callback: Callable[..., object], *args: object) -> None:
        """Call ``callback(*args)`` whenever *fd* is writable (replacing any earlier writer)."""
        self._set(fd, 2, (callback, args))

    def remove_writer(self, fd: int) -> None:
        """Stop watching *fd* for writing (nothing happens if it was not)."""
        self._set(fd, 2, None)

    def close(self) -> None:
        """Stop watching everything and release the epoll descriptor."""
        if not self._epoll.closed:
            self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
        self._fds.clear()

    def _set(self, fd: int, slot: int, handler: tuple[Callable[..., object], tuple[object, ...]] | None) -> None:
        entry = self._fds.get(fd)
        if entry is None:
            if handler is None:
                return
            entry = self._fds[fd] = [0, None, None]
        entry[slot] = handler
        mask = (_IN if entry[1] else 0) | (_OUT if entry[2] else 0)
        if mask == entry[0]:
            return
        if not mask:
            del self._fds[fd]
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass  # closed already: the kernel dropped it with its last reference
            return
        try:
            try:
                if entry[0]:
                    self._epoll.modify(fd, mask)
                else:
                    self._epoll.register(fd, mask)
            except FileNotFoundError:  # a new descriptor under a number closed while watched
                self._epoll.register(fd, mask)
            except FileExistsError:
                self._epoll.modify(fd, mask)
        except OSError:
            self._fds.pop(fd, None)
            raise
        entry[0] = mask

    def _ready(self) -> None:
        events = self._epoll.poll(0)
        # Snapshot first: a callback may stop watching (and close) another
        # descriptor of this batch, whose number a new one may then take.
        fds = self._fds
        batch = [(fds.get(fd), ev) for fd, ev in events]
        for entry, ev in batch:
            if entry is None:
                continue
            reader, writer = entry[1], entry[2]
            if reader is not None and ev & _IN_WAKE and entry[1] is reader:
                reader[0](*reader[1])
            if writer is not None and ev & _OUT_WAKE and entry[2] is writer:
                writer[0](*writer[1])
