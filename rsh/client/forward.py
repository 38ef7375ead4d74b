"""A command wired to local file descriptors, as ``ssh HOST CMD`` is: ``rsh exec``'s loop.

Output goes to the descriptors as it arrives, byte for byte; stdin is read
only as fast as the server takes it; Ctrl-C is sent on to the command.  A
reader that leaves early (``rsh exec h -- CMD | head -1``) is ssh's case
too: what was for it is dropped from then on, the server closes that pipe
so the command meets EPIPE there as it would locally (``yes`` ends), the
command runs to its end, and its status is the result.  This
is the one loop that is not an ``rsh.client.ops`` operation: it waits on
stdin and Ctrl-C beside the socket, and streams without keeping anything.
"""

from __future__ import annotations

import os
import select

from ..protocol.client import STDIN_CHUNK, Exited, Output
from ..protocol.connection import NEED_DATA
from ..protocol.messages import ExecRequest, ExitStatus
from .socket_pump import OUT_HIGH, SocketPump

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal  # signal.py's functions and numbers, without the enums it makes (3% of a cold `rsh exec`)

__all__ = ["forward", "Stopped"]


def forward(pump: SocketPump, request: ExecRequest, stdin: int | None, stdout: int, stderr: int) -> ExitStatus:
    """Run *request* with its output to *stdout* / *stderr* and its input from *stdin* (None: empty).

    In the main thread, the first Ctrl-C (SIGINT) sends INT to the remote
    command and keeps waiting; a second raises KeyboardInterrupt.  TERM and
    HUP sent to us are sent on the same way (the command may clean up, and
    its status is the result); a second of either raises ``Stopped``.  Output
    for a *stdout* or *stderr* whose reader has gone (EPIPE) is dropped
    and the server told to close that pipe, as ssh does; the command is
    left to finish.

    Raises:
        RemoteError, ConnectionLost, KeyboardInterrupt, Stopped.
    """
    conn = pump.conn
    conn.start_command(request)
    fds = {"stdout": stdout, "stderr": stderr}
    interrupts = _Interrupts()
    # Each chunk is written out before the next read: no copy of it is needed.
    conn.decoder.lend(("stdout", "stderr"))
    try:
        while True:
            while (event := conn.next_event()) is not NEED_DATA:
                if isinstance(event, Output):
                    fd = fds[event.stream]
                    if fd >= 0 and not _write_all(fd, event.data):
                        # Its reader left: drop the rest, and have the server
                        # close the pipe, as ssh does (the command meets EPIPE).
                        fds[event.stream] = -1
                        conn.close_output(event.stream)
                elif isinstance(event, Exited):
                    return event.status
            # What has come of a frame goes out before the rest: a line
            # followed at once by a flood arrives as soon as the line has.
            if conn.detach_payload():
                continue
            pump.check()
            pump.flush()
            if pump.pending():
                pump.read()  # decrypted already: poll() would not wake for it
                continue
            # Output streaming in: read before waiting, and wait only when
            # nothing has come (a poll() per read was 3% of a 1 GiB stream).
            # Anything else to watch (stdin, Ctrl-C, unsent frames) takes the poll.
            if stdin is None and not pump.out and not interrupts.new() and pump.read():
                continue
            stdin = _wait(pump, stdin, interrupts)
    finally:
        conn.decoder.lend(())
        interrupts.close()


def _wait(pump: SocketPump, stdin: int | None, interrupts: _Interrupts) -> int | None:
    """One poll() over the socket, *stdin* and Ctrl-C; return stdin, or None once it has ended."""
    conn = pump.conn
    sock_fd = pump.sock.fileno()
    poller = select.poll()
    poller.register(sock_fd, select.POLLIN | (select.POLLOUT if pump.out else 0))
    if stdin is not None and pump.out_len < OUT_HIGH:
        poller.register(stdin, select.POLLIN)
    if interrupts.fd >= 0:
        poller.register(interrupts.fd, select.POLLIN)
    for fd, ev in poller.poll():
        if fd == sock_fd:
            if ev & select.POLLOUT and pump.out:
                pump.write()
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                pump.read()
        elif fd == stdin:
            try:
                data = os.read(stdin, STDIN_CHUNK)
            except OSError:
                data = b""
            if data:
                conn.send_stdin(data)
            else:
                conn.close_stdin()
                stdin = None
        else:
            for name, times in interrupts.take():
                if times > 1:
                    if name == "INT":
                        raise KeyboardInterrupt
                    raise Stopped(name)
                conn.send_signal(name)
    return stdin


def _write_all(fd: int, data: bytes) -> bool:
    """Write all of *data* to *fd*, waiting while a non-blocking one is full; False if its reader has gone."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])
        except BrokenPipeError:
            return False
    return True


class Stopped(Exception):
    """rsh got TERM or HUP a second time while the command ran: leave now."""

    def __init__(self, name: str) -> None:
        super().__init__(f"SIG{name} twice")
        self.name = name


# The signals sent on to the command, by name, as rsh gets them.
_FORWARDED: dict[int, str] = {signal.SIGINT: "INT", signal.SIGTERM: "TERM", signal.SIGHUP: "HUP"}


class _Interrupts:
    """Ctrl-C, TERM and HUP while ``forward`` waits: counted, and made to wake its poll().

    Outside the main thread (where Python allows no signal handler) it
    catches nothing, and ``fd`` is -1.
    """

    def __init__(self) -> None:
        self.counts = dict.fromkeys(_FORWARDED.values(), 0)
        self._seen = dict(self.counts)
        self.fd = -1
        self._old: dict[int, object] = {}
        try:
            for signum in _FORWARDED:
                self._old[signum] = signal.signal(signum, self._on_signal)
        except ValueError:
            return
        self.fd, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.counts[_FORWARDED[signum]] += 1

    def new(self) -> bool:
        """True when a signal came since the last ``take``."""
        return self.counts != self._seen

    def take(self) -> list[tuple[str, int]]:
        """Drain the wake-up pipe; return each signal that came since, with how many times it has come in all."""
        try:
            os.read(self.fd, 512)
        except BlockingIOError:
            pass
        came = [(name, n) for name, n in self.counts.items() if n != self._seen[name]]
        self._seen = dict(self.counts)
        return came

    def close(self) -> None:
        """Put back the previous signal handling."""
        if self.fd >= 0:
            signal.set_wakeup_fd(self._old_wakeup)
            for signum, handler in self._old.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            os.close(self.fd)
            os.close(self._w)
            self.fd = -1
