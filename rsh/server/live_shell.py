"""A prompt session's live shell: one shell process on a pseudo-terminal, fed line by line.

The shell (the user's login shell, driven as ``rsh.server.shell_driver``
says) is started once per ``shell`` request, in a session of its own with
the pseudo-terminal as its controlling terminal, so that the terminal does
what a terminal does: Ctrl-C is SIGINT to the foreground job, Ctrl-Z stops
it, programs see a tty of the client's size and type.  The terminal's output
goes to the client as ``tty`` frames, the client's keystrokes come back as
``input``; lines, their ends and their statuses travel on pipes of their
own (``LINE_FD``, ``REPORT_FD``), never through the terminal.

When the shell ends, or the client goes, what the session started is hung
up (SIGHUP to every process in it, as a terminal that goes away does) and,
two seconds later, killed, except what chose to outlive a hang-up
(``nohup``, which ignores SIGHUP, as under ssh).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import termios
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ..protocol.messages import ExitStatus, ShellRequest
from .fdwatch import FdWatcher
from .hangup import hang_up
from .process import reap_exit
from .shell_driver import ERR_FD, LINE_FD, LIST, OUT_FD, RC_FD, REPORT_FD, TTY_FD, Driver, frame_line, frame_list, parse_reports

__all__ = ["ShellLink", "LiveShell"]

_READ = 64 * 1024
#: After the shell exits, how long background jobs that hold the terminal may keep the exit waiting.
EXIT_GRACE = 0.5
# Signals a command expects at their default, whatever the server ignores.
_DEFAULT_SIGNALS = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP} - set(range(32, 34))


class ShellLink(Protocol):
    """What a live shell needs of its connection."""

    @property
    def watcher(self) -> FdWatcher:
        """The server's descriptor watcher."""
        ...

    @property
    def output_paused(self) -> bool:
        """The client is not keeping up, or is gone."""
        ...

    def send(self, type: str, fields: dict[str, object] | None = None, payload: bytes | memoryview = b"") -> None:
        """Queue a frame to the client and write it out."""
        ...

    def pause_input(self) -> None:
        """Stop reading the client."""
        ...

    def resume_input(self) -> None:
        """Read the client again."""
        ...

    def shell_line_ended(self, status: int, cwd: str) -> None:
        """The line running is over: send ``line_end``."""
        ...

    def shell_exited(self, status: ExitStatus) -> None:
        """The shell is gone: send ``exit``."""
        ...


def _high(fd: int) -> int:
    """*fd* moved to 10 or above, so that placing descriptors 0-9 in the child cannot overwrite it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def set_window(fd: int, rows: int, cols: int) -> None:
    """Give the terminal of master *fd* a size (the kernel tells its foreground job: SIGWINCH)."""
    if rows and cols:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class LiveShell:
    """One live shell and its terminal (see the module docstring).

    Args:
        link: the connection it reports to.
        driver: how to run the shell (``rsh.server.shell_driver.driver_for``).
        env: the shell's complete environment.
        request: the client's terminal type and size.
    """

    def __init__(self, link: ShellLink, driver: Driver, env: Mapping[bytes, bytes], request: ShellRequest) -> None:
        self._link = link
        self._watch = link.watcher
        self._loop = asyncio.get_running_loop()
        self.driver = driver
        self.started = time.monotonic()
        self.reaped: asyncio.Future[None] = self._loop.create_future()
        self.line_running = False
        #: Where the shell is, as its last line's end said.
        self.cwd = os.fsdecode(env.get(b"HOME", b"/"))
        self._reports = bytearray()
        self._listings: list[Callable[[list[str]], None]] = []
        self._pending_input = bytearray()
        self._returncode: int | None = None
        self._exit_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.pid, self.master, self._line, self._report, self._out, self._err, self._feed = self._spawn(env, request)
        self._pidfd = os.pidfd_open(self.pid)
        self._watch.add_reader(self._pidfd, self._reap)
        self._watch.add_reader(self._report, self._read_reports)
        self._readers = [self.master, self._out, self._err]
        self.resume_output()

    def _spawn(self, env: Mapping[bytes, bytes], request: ShellRequest) -> tuple[int, int, int, int, int, int, int]:
        master, slave = os.openpty()
        theirs: dict[int, int] = {}
        ours: list[int] = []
        try:
            os.set_blocking(master, False)
            set_window(master, request.rows, request.cols)
            tty_path = os.ttyname(slave)
            for child_fd, (mine_at, theirs_at) in {
                LINE_FD: (1, 0), REPORT_FD: (0, 1), OUT_FD: (0, 1), ERR_FD: (0, 1)
            }.items():  # fmt: skip
                pair = os.pipe2(os.O_CLOEXEC)
                ours.append(pair[mine_at])
                theirs[child_fd] = _high(pair[theirs_at])
            feed = -1
            if self.driver.feeds_stdin:
                feed_r, feed = os.pipe2(os.O_CLOEXEC)
                theirs[0] = _high(feed_r)
            if self.driver.rc is not None:
                rc = os.memfd_create("rsh-shell-rc")
                os.write(rc, self.driver.rc.encode())
                theirs[RC_FD] = _high(rc)
            # After setsid, opening the terminal makes it the session's controlling terminal.
            tty_at = TTY_FD if self.driver.feeds_stdin else 0
            actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [(os.POSIX_SPAWN_OPEN, tty_at, tty_path, os.O_RDWR, 0)]
            actions += [(os.POSIX_SPAWN_DUP2, tty_at, n) for n in (0, 1, 2, TTY_FD) if n != tty_at and not (n == 0 and feed >= 0)]
            actions += [(os.POSIX_SPAWN_DUP2, fd, n) for n, fd in theirs.items()]
            pid = os.posix_spawn(
                self.driver.argv[0], self.driver.argv, env,
                file_actions=actions, setsid=True, setsigmask=(), setsigdef=_DEFAULT_SIGNALS,
            )  # fmt: skip
        except BaseException:
            for fd in [master, *ours]:
                os.close(fd)
            raise
        finally:
            os.close(slave)
            for fd in theirs.values():
                os.close(fd)
        line, report, out, err = ours
        for fd in (line, out, err, report):
            os.set_blocking(fd, False)
        return pid, master, line, report, out, err, feed

    # -- lines ------------------------------------------------------------------

    def submit(self, text: bytes, *, pipe: bool) -> None:
        """Run *text* in the shell: its end comes as ``shell_line_ended``."""
        self.line_running = True
        self._write_all(self._line, frame_line(text, pipe=pipe, terminator=self.driver.terminator))
        if self._feed >= 0:
            # bash comes back to its prompt (and so to the driver) once per line it reads.
            self._write_all(self._feed, b"\n")

    def list_variables(self, answer: Callable[[list[str]], None]) -> None:
        """Call *answer* with the names of the shell's variables (none while a line runs: the shell is busy)."""
        if self.line_running or self._line < 0:
            answer([])
            return
        self._listings.append(answer)
        self._write_all(self._line, frame_list(self.driver.terminator))
        if self._feed >= 0:
            self._write_all(self._feed, b"\n")

    def finish(self) -> None:
        """No more lines: the shell exits with the last line's status."""
        for fd in (self._line, self._feed):
            if fd >= 0:
                os.close(fd)
        self._line = self._feed = -1

    def _write_all(self, fd: int, data: bytes) -> None:
        # A line is small beside a pipe's 64 KiB, and the shell reads each as
        # soon as it is idle; a longer one waits for the shell to take it.
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                os.set_blocking(fd, True)
                try:
                    view = view[os.write(fd, view) :]
                finally:
                    os.set_blocking(fd, False)
            except (BrokenPipeError, OSError):
                return  # the shell is gone: its exit says so

    def _read_reports(self) -> None:
        try:
            data = os.read(self._report, 4096)
        except BlockingIOError:
            return
        if not data:
            self._watch.remove_reader(self._report)
            return
        self._reports += data
        for status, cwd in parse_reports(self._reports):
            if status == LIST:
                if self._listings:
                    self._listings.pop(0)(cwd.split("\n"))
                continue
            self.cwd = cwd or self.cwd
            self._drain()
            self.line_running = False
            self._link.shell_line_ended(status, cwd)

    # -- the terminal -------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Keystrokes for the terminal."""
        if self._closed:
            return
        if self._pending_input:
            self._pending_input += data
        else:
            try:
                n = os.write(self.master, data)
            except BlockingIOError:
                n = 0
            except OSError:
                return
            if n < len(data):
                self._pending_input += data[n:]
                self._watch.add_writer(self.master, self._write_input)
        if len(self._pending_input) > 1 << 20:
            self._link.pause_input()  # nothing reads the terminal: hold the client back

    def _write_input(self) -> None:
        try:
            n = os.write(self.master, self._pending_input)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._pending_input)
        del self._pending_input[:n]
        if not self._pending_input:
            self._watch.remove_writer(self.master)
            self._link.resume_input()

    def resize(self, rows: int, cols: int) -> None:
        """The client's window changed size."""
        if not self._closed:
            try:
                set_window(self.master, rows, cols)
            except OSError:
                pass

    def signal(self, signum: int) -> None:
        """Send *signum* to the terminal's foreground job (the shell itself when it is idle)."""
        try:
            os.killpg(os.tcgetpgrp(self.master), signum)
        except OSError:
            pass

    def pause_output(self) -> None:
        """The client is slow: stop reading what the shell writes, so that it blocks."""
        for fd in self._readers:
            self._watch.remove_reader(fd)

    def resume_output(self) -> None:
        """Read what the shell writes again."""
        for fd in self._readers:
            self._watch.add_reader(fd, self._read, fd)

    def _read(self, fd: int) -> bool:
        """Send one read's worth from *fd*; False when there was nothing (or it has closed)."""
        if self._link.output_paused:
            self.pause_output()
            return False
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return False
        except OSError as exc:
            # EIO: no process has the terminal open any more.
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._watch.remove_reader(fd)
            self._readers.remove(fd)
            if not self._readers and self._returncode is not None:
                self._exited()
            return False
        self._link.send("tty" if fd == self.master else "stdout" if fd == self._out else "stderr", None, data)
        return True

    def _drain(self) -> None:
        """Send what is waiting in the terminal and the pipes (a line's output comes before its end)."""
        for fd in list(self._readers):
            while fd in self._readers and not self._link.output_paused and self._read(fd):
                pass

    # -- the end ----------------------------------------------------------------

    def _reap(self) -> None:
        code = reap_exit(self.pid, self._pidfd, self._watch, self.reaped)
        if code is None:
            return
        self._returncode = code
        if self._closed:
            return
        # Background jobs may still hold the terminal: what they write within
        # the grace is sent, then the shell's exit.
        self._drain()
        if self._readers:
            self._exit_timer = self._loop.call_later(EXIT_GRACE, self._exited)
        else:
            self._exited()

    def _exited(self) -> None:
        if self._closed:
            return
        self._drain()
        code = self._returncode
        assert code is not None
        self._link.shell_exited(
            ExitStatus(
                exit_code=code if code >= 0 else None,
                signal=-code if code < 0 else None,
                timed_out=False,
                elapsed=time.monotonic() - self.started,
                stdout_bytes=0,
                stderr_bytes=0,
                encoding="",
            )
        )
        self.close()

    def close(self) -> None:
        """Let go of the terminal and the pipes, and hang up what the session left running."""
        if self._closed:
            return
        self._closed = True
        if self._exit_timer is not None:
            self._exit_timer.cancel()
        self.pause_output()
        self._readers = []
        self._watch.remove_reader(self._report)
        if self._pending_input:
            self._watch.remove_writer(self.master)
        self.finish()
        for fd in (self.master, self._report, self._out, self._err):
            os.close(fd)
        hang_up(self.pid, alive=self._returncode is None)

    def abort(self) -> None:
        """The client is gone: hang the session up; the shell is reaped when it dies."""
        self.close()
