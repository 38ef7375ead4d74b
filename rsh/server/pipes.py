"""A running command's pipes, from our end: its output read in batches, its stdin fed as it takes it.

Output that fills a good part of its pipe is moved to the socket with
``splice``, as one frame, without passing through our memory; smaller reads
go into a buffer every command shares, and out as a view of it (no bytes
object per chunk).  Stdin is queued and written as the child's non-blocking
pipe takes it, watched for room on the server's ``FdWatcher``; past
``STDIN_HIGH_WATER`` bytes queued, the client is no longer read
(``Link.pause_input``) until the child catches up.  A child that closes its
stdin early has the rest dropped, as a shell pipeline would.
"""

from __future__ import annotations

import fcntl
import os
import sys
import termios
from dataclasses import dataclass

from .fdwatch import FdWatcher
from .link import Link

__all__ = [
    "OutputPipe",
    "StdinFeeder",
    "PIPE_SIZE",
    "READ_CHUNK",
    "SPLICE_MIN",
    "STDIN_HIGH_WATER",
    "STREAM_PIPE_SIZE",
    "available",
    "read_some",
    "send_output",
    "widen",
]

#: A command's stdout pipe starts this big: a fast writer runs ahead while we send.
PIPE_SIZE = 256 * 1024

#: A pipe that stays full grows to this (the most an unprivileged process may
#: ask for): a stream then goes in frames of up to 1 MiB, the protocol's
#: default limit.  On 2 cores, 1 GiB through `rsh exec` went from 0.86 to
#: 0.91 of the floor (64 KiB frames: 0.68).  Only such pipes grow: a user's
#: pipes share a quota (pipe-user-pages-soft, 64 MiB) past which new pipes
#: get a single page.
STREAM_PIPE_SIZE = 1024 * 1024

#: The most one read takes: a read is what follows a pause (a prompt, a log
#: line, often with a flood right behind it), and what it takes goes out in
#: one frame.
READ_CHUNK = 256 * 1024

#: Output waiting in a pipe is spliced to the socket, not read, from this much
#: (below it the copy costs less than the extra system call).
SPLICE_MIN = 16 * 1024

_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, missing from older Pythons


@dataclass
class OutputPipe:
    """Our end of a child's stdout or stderr; *name* is the frame type its chunks go out as."""

    name: str
    fd: int
    #: Watched for reading now.
    reading: bool = False
    #: Bytes read so far.
    count: int = 0
    #: The last read or splice moved ``SPLICE_MIN`` or more: output is streaming.
    streaming: bool = False
    #: Grown to ``STREAM_PIPE_SIZE`` (or tried to).
    grown: bool = False


def widen(fd: int, size: int = PIPE_SIZE) -> None:
    """Make the pipe *fd* hold *size* bytes (it stays as it was where the system refuses).

    (Leaving a new pipe at 64 KiB until a read comes back full was measured:
    the stream benchmark lost a tenth of its throughput.)
    """
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        pass


def available(fd: int) -> int:
    """How many bytes pipe *fd* holds now (0 when empty, at its end, or on an error)."""
    try:
        return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)
    except OSError:
        return 0


def read_some(fd: int) -> bytes | None:
    """One non-blocking read: data; b"" at end of stream (or a read error); None if nothing yet."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


# Where output is read, shared by every command: a read's chunk goes out as
# a view of it, sent or copied before ``send`` returns, so it is free again
# for the next.  No bytes object per chunk: the allocation and the fresh
# pages it touches cost more than the copy.
_BUFFER: list[memoryview] = []


def send_output(pipe: OutputPipe, link: Link) -> bool:
    """Send what *pipe* holds now to the client as one frame of its stream; False at its end (or a read error).

    A pipe that holds a lot goes to the socket by splice (all of it, up to
    ``STREAM_PIPE_SIZE``); otherwise up to ``READ_CHUNK`` is read into a
    buffer every command shares.  How much it holds is asked only while
    output streams: a short command's output, or a line after a pause, goes
    out without that extra system call.
    """
    size = min(available(pipe.fd), STREAM_PIPE_SIZE) if pipe.streaming else 0
    if size >= SPLICE_MIN and link.send_from_pipe(pipe.name, pipe.fd, size):
        pipe.count += size
        if size >= PIPE_SIZE // 2 and not pipe.grown:
            pipe.grown = True  # its writer keeps ahead of us: fewer, bigger frames
            widen(pipe.fd, STREAM_PIPE_SIZE)
        return True
    if not _BUFFER:
        _BUFFER.append(memoryview(bytearray(READ_CHUNK)))
    try:
        n = os.readv(pipe.fd, _BUFFER)
    except BlockingIOError:
        return True
    except OSError:
        n = 0
    if not n:
        return False
    pipe.count += n
    pipe.streaming = n >= SPLICE_MIN
    link.send(pipe.name, None, _BUFFER[0][:n])
    return True


#: Unsent stdin held for the child before we stop reading the socket.
STDIN_HIGH_WATER = 1024 * 1024


class StdinFeeder:
    """Writes to the child's stdin pipe *fd* (ours, non-blocking from now on), closing it when done.

    Args:
        fd: our end of the child's stdin pipe.
        watcher: where to wait for room in the pipe.
        link: the connection, to stop and restart reading the client.
    """

    def __init__(self, fd: int, watcher: FdWatcher, link: Link) -> None:
        os.set_blocking(fd, False)
        widen(fd)  # fewer full-pipe stalls while the client streams input
        self.fd = fd
        self._watch = watcher
        self._link = link
        self._pending: list[bytes] = []
        self._size = 0
        self._eof = False
        # The child closed its end (EPIPE), or exited: drop what comes.
        self._broken = False

    def feed(self, data: bytes) -> None:
        """Write *data* to the child, queueing a copy of what its pipe does not take now (dropped if it has closed its stdin).

        *data* may be a view of the connection's read buffer: it is not kept.
        """
        if self._eof or self._broken:
            return
        self._pending.append(data)
        self._size += len(data)
        self._flush()
        if self._pending:
            # What the pipe did not take of *data* is last (or nothing of it is left).
            self._pending[-1] = bytes(self._pending[-1])
        if self._size > STDIN_HIGH_WATER:
            self._link.pause_input()

    def close(self) -> None:
        """Close the child's stdin once everything queued is written."""
        if self._eof:
            return
        self._eof = True
        self._flush()

    def abandon(self) -> None:
        """The child is gone (or is being stopped): drop what is queued and close the pipe now."""
        self._broken = True
        self._close_fd()

    def _flush(self) -> None:
        if self.fd < 0:
            return
        pending = self._pending
        while pending and not self._broken:
            try:
                n = os.write(self.fd, pending[0])
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the child closed its stdin; drop the rest
                self._broken = True
                break
            self._size -= n
            if n == len(pending[0]):
                pending.pop(0)
            else:
                pending[0] = pending[0][n:]
        waiting = bool(pending) and not self._broken
        self._watch.remove_writer(self.fd)
        if waiting:
            self._watch.add_writer(self.fd, self._flush)
        if self._size <= STDIN_HIGH_WATER:
            self._link.resume_input()
        if not waiting and (self._eof or self._broken):
            self._close_fd()

    def _close_fd(self) -> None:
        if self.fd >= 0:
            self._watch.remove_writer(self.fd)
            os.close(self.fd)
            self.fd = -1
        self._link.resume_input()
