"""One command in flight, for the server: pump its pipes, feed its stdin, signal it, reap it.

Why not ``asyncio.create_subprocess_shell``: on Python 3.11 it waits for the
child with a thread per process and reads pipes through stream objects, which
costs more than spawning ``true`` itself.  Here the child is started by
``rsh.server.spawn``, its exit is watched through a pidfd and its pipes with
plain reader callbacks on the server's ``FdWatcher``, so a command costs
about what ``subprocess.run`` does.

Everything a command does to its connection (send output, hold back while
the client is slow, stop reading stdin, report its exit) goes through the
``Link`` it is given (``rsh.server.link``).
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import time
from collections.abc import Mapping

from ..protocol.messages import ExecRequest, ExitStatus
from .fdwatch import FdWatcher
from .link import Link
from .pipes import READ_CHUNK, OutputPipe, StdinFeeder, read_some, send_output, widen
from .shell_state import ShellSession
from .spawn import spawn_command

__all__ = ["RunningCommand", "PIPE_GRACE", "KILL_GRACE", "READ_CHUNK", "reap_exit"]

# After the command's main process exits, how long a background child that
# still holds stdout/stderr open (``sleep 60 &``) may keep the command from
# finishing.  ssh waits for ever here; half a second lets output that is
# already on its way arrive while never leaving a client hanging.
PIPE_GRACE = 0.5

# How long ``RunningCommand.start`` may wait for a command to finish before
# watching it from the event loop, provided nothing else needs the loop.
EXIT_WAIT = 0.002

# After TERM (timeout, lost client), how long before KILL.
KILL_GRACE = 2.0


def reap_exit(pid: int, pidfd: int, watcher: FdWatcher, reaped: asyncio.Future[None]) -> int | None:
    """Reap child *pid* if it has exited: stop watching and close its *pidfd*, resolve *reaped*, and return its status.

    The status is as ``os.waitstatus_to_exitcode`` says it (-N for signal N),
    255 when it was reaped behind our back (no status left to read); None
    while it runs (nothing is changed then).
    """
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        code = 255
    else:
        if done == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
    watcher.remove_reader(pidfd)
    os.close(pidfd)
    if not reaped.done():
        reaped.set_result(None)
    return code


class RunningCommand:
    """One command in flight: stream its output, feed its stdin, deliver its exit.

    Args:
        request: what to run.
        link: the connection: output goes out through it, its exit is
            reported to it (``command_exited``, then ``command_reaped``
            once the main process is reaped, even after ``abort``).
        env: the complete environment for the child.
        default_cwd: where it runs when the request names no cwd.
        encoding: what the exit frame declares when the request asks none.
        session: run in this shell session and update it from what the
            shell reports at the end (see rsh.server.shell_state).
        started: ``time.monotonic()`` of the ``exec`` (it may have waited for a
            slot): its ``elapsed`` and ``timeout`` count from then.

    Raises:
        OSError: the command could not be started (bad cwd, no shell).
        ValueError: a NUL byte in the command or the environment.
    """

    def __init__(
        self,
        request: ExecRequest,
        link: Link,
        *,
        env: Mapping[bytes, bytes],
        default_cwd: str,
        encoding: str,
        session: ShellSession | None = None,
        started: float | None = None,
    ) -> None:
        self._link = link
        self._watch = link.watcher
        self._loop = self._watch.loop
        self.encoding = request.encoding or encoding
        self._started = time.monotonic() if started is None else started
        self._returncode: int | None = None
        self._timed_out = False
        self._terminating = False
        self._finished = False
        self._aborted = False
        self._grace_handle: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []

        child = spawn_command(request, env=env, cwd=default_cwd, session=session)
        self.pid = child.pid
        self._held: tuple[int, ...] = child.held
        stdin_fd, stdout_fd, stderr_fd, state_r = child.stdin, child.stdout, child.stderr, child.state
        self._state: bytearray | None = bytearray() if session is not None else None
        self._session = session
        self._state_fd = state_r
        if state_r >= 0:
            os.set_blocking(state_r, False)
        self._paused = False
        self._pipes = [OutputPipe("stdout", stdout_fd), OutputPipe("stderr", stderr_fd)]
        for pipe in self._pipes:
            os.set_blocking(pipe.fd, False)
        widen(stdout_fd)
        self._stdin = StdinFeeder(stdin_fd, self._watch, link) if stdin_fd >= 0 else None

        #: Resolved once the main process has been reaped.
        self.reaped: asyncio.Future[None] = self._loop.create_future()
        self._pidfd = os.pidfd_open(self.pid)
        if request.timeout is not None:
            self._timers.append(self._loop.call_later(max(0.0, request.timeout - (time.monotonic() - self._started)), self._on_timeout))

    def start(self) -> None:
        """Begin watching the command (call once, when the caller is ready for ``command_exited``).

        Most commands are short: ``true``, ``ls``, a ``grep``.  So before
        handing the command to the event loop, wait for it here, up to
        ``EXIT_WAIT``, but only while the loop has nothing else to do (its
        selector is in the same wait, and any I/O for another connection,
        or this one, ends it).  If it exits meanwhile, its output and exit
        go out now: no descriptor was ever registered with the loop, and
        the loop turn that would have delivered the exit is saved.  Its
        output waits in the pipes meanwhile; one that fills them waits for
        the loop, as it would for a slow client.  A command fed stdin
        goes to the loop at once.
        """
        loop_fd = self._watch.loop_fd if self._stdin is None else -1
        if loop_fd >= 0 and self._pidfd in select.select([self._pidfd, loop_fd], [], [], EXIT_WAIT)[0]:
            self._reap()
            if self._returncode is not None:
                return
        self._watch.add_reader(self._pidfd, self._reap)
        if self._state_fd >= 0:
            self._watch.add_reader(self._state_fd, self._read_state)
        self.resume_output()

    # -- output ---------------------------------------------------------------

    def pause_output(self) -> None:
        """Stop reading the child's output until ``resume_output``."""
        self._paused = True
        for pipe in self._pipes:
            if pipe.reading:
                self._watch.remove_reader(pipe.fd)
                pipe.reading = False

    def resume_output(self) -> None:
        """Read the child's output again (after the client caught up)."""
        self._paused = False
        for pipe in self._pipes:
            if not pipe.reading and pipe.fd >= 0:
                self._watch.add_reader(pipe.fd, self._read, pipe)
                pipe.reading = True
        if self._returncode is not None and self._grace_handle is None:
            self._start_grace()

    def _read(self, pipe: OutputPipe) -> None:
        if not send_output(pipe, self._link):
            self._end_of(pipe)
        elif self._link.output_paused:
            self.pause_output()
            # The grace period is for pipes nobody writes to; it must not cut
            # off output that only waits for a slow client.
            if self._grace_handle is not None:
                self._grace_handle.cancel()
                self._grace_handle = None

    def _end_of(self, pipe: OutputPipe) -> None:
        self._close_pipe(pipe)
        self._maybe_finish()

    def _release_writers(self) -> None:
        """Close our copies of the output pipes' write ends (see ``_reap``)."""
        for fd in self._held:
            os.close(fd)
        self._held = ()

    def _close_pipe(self, pipe: OutputPipe) -> None:
        if pipe.fd < 0:
            return
        if pipe.reading:
            self._watch.remove_reader(pipe.fd)
            pipe.reading = False
        os.close(pipe.fd)
        pipe.fd = -1

    def close_output(self, stream: str) -> None:
        """The client's reader of *stream* has gone: close our end, so the command meets a closed pipe, as locally."""
        for pipe in self._pipes:
            if pipe.name == stream:
                self._close_pipe(pipe)
        self._maybe_finish()

    # -- stdin ----------------------------------------------------------------

    def feed_stdin(self, data: bytes) -> None:
        """Queue *data* for the child's stdin (dropped if it has closed it, or reads /dev/null)."""
        if self._stdin is not None:
            self._stdin.feed(data)

    def close_stdin(self) -> None:
        """Close the child's stdin once everything queued is written."""
        if self._stdin is not None:
            self._stdin.close()

    # -- signals and exit -----------------------------------------------------

    def signal(self, signum: int) -> None:
        """Send *signum* to the command's whole process group."""
        if self._returncode is not None:
            return
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self) -> None:
        """TERM the process group now, KILL it after ``KILL_GRACE`` if still there."""
        self._terminating = True
        self.signal(signal.SIGTERM)
        self._timers.append(self._loop.call_later(KILL_GRACE, self._kill_group))

    def _kill_group(self) -> None:
        try:
            # The leader may have gone after TERM while children linger: the
            # group id stays theirs (POSIX never reuses a live group's id).
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _on_timeout(self) -> None:
        if self._returncode is None:
            self._timed_out = True
            self.terminate()

    def _reap(self) -> None:
        code = reap_exit(self.pid, self._pidfd, self._watch, self.reaped)
        if code is None:
            return
        self._returncode = code
        self._link.command_reaped(self.pid)
        if self._stdin is not None:
            self._stdin.abandon()
        # Until now we held a write end of each output pipe, so the child's
        # exit closing its own ends woke nobody: the pidfd alone wakes us,
        # once the exit is complete, rather than each pipe as it closes
        # (which, on a shared CPU, preempts the exiting child to run a loop
        # turn that can do nothing yet).  Let go, and unless a background
        # child holds them too, both pipes are at their end in this turn.
        self._release_writers()
        for pipe in self._pipes:
            # As _read does, with one _maybe_finish for both pipes (no grace
            # period has started yet to cancel).
            if pipe.fd >= 0 and not self._paused:
                if not send_output(pipe, self._link):
                    self._close_pipe(pipe)
                elif self._link.output_paused:
                    self.pause_output()
        if not self._maybe_finish() and not self._paused:
            # A background child holds a pipe (or output is still coming):
            # watch what is left, for the grace period.
            self.resume_output()

    def _start_grace(self) -> None:
        self._grace_handle = self._loop.call_later(PIPE_GRACE, self._end_grace)

    def _end_grace(self) -> None:
        # Whatever still holds the pipes is a background child; take what it
        # has written so far and stop listening.
        self._grace_handle = None
        for pipe in self._pipes:
            for _ in range(16):
                data = read_some(pipe.fd) if pipe.fd >= 0 else None
                if not data:
                    break
                pipe.count += len(data)
                self._link.send(pipe.name, None, data)
            self._close_pipe(pipe)
        self._maybe_finish()

    def _read_state(self) -> None:
        # The wrapper's report; read as it comes so a large environment
        # never blocks the shell on a full pipe.
        assert self._state is not None
        while (data := read_some(self._state_fd)) is not None:
            if not data:
                self._close_state()
                return
            self._state += data

    def _close_state(self) -> None:
        if self._state_fd >= 0:
            self._watch.remove_reader(self._state_fd)
            os.close(self._state_fd)
            self._state_fd = -1

    def _maybe_finish(self) -> bool:
        out, err = self._pipes
        if self._finished or self._returncode is None or out.fd >= 0 or err.fd >= 0:
            return self._finished
        self._finished = True
        cwd: str | None = None
        exports: dict[str, str | None] | None = None
        if self._session is not None:
            # Written before the shell exited, so it is all in the pipe now;
            # whoever else holds fd 9 (nobody: the command ran with it closed)
            # cannot make us wait.
            if self._state_fd >= 0:
                self._read_state()
                self._close_state()
            assert self._state is not None
            self._session.update(bytes(self._state))
            cwd, exports = self._session.cwd, self._session.exports()
        if self._grace_handle is not None:
            self._grace_handle.cancel()
        for t in self._timers:
            t.cancel()
        if self._terminating:
            # TERM may have ended the leader while others in the group linger.
            self._kill_group()
        if self._aborted:
            return True
        rc = self._returncode
        # Output held by a cork goes first, the exit frame straight after:
        # whatever command_exited does next (the audit log) must not hold it back.
        self._link.uncork()
        self._link.command_exited(
            ExitStatus(
                exit_code=rc if rc >= 0 else None,
                signal=-rc if rc < 0 else None,
                timed_out=self._timed_out,
                elapsed=time.monotonic() - self._started,
                stdout_bytes=self._pipes[0].count,
                stderr_bytes=self._pipes[1].count,
                encoding=self.encoding,
                cwd=cwd,
                exports=exports,
            )
        )
        return True

    def abort(self) -> None:
        """The client is gone: stop the command and release everything now.

        The process group gets TERM then KILL; the leader is reaped by the
        pidfd watcher, or by a last blocking wait if it outlives KILL_GRACE.
        """
        self._aborted = True
        self._session = None
        self._close_state()
        self._terminating = True
        self.pause_output()
        self._release_writers()
        for pipe in self._pipes:
            self._close_pipe(pipe)
        if self._stdin is not None:
            self._stdin.abandon()
        if self._returncode is None:
            self.terminate()
