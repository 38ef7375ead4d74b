"""Run one shell command and pump its pipes, for the server.

Why not ``asyncio.create_subprocess_shell``: on Python 3.11 it waits for the
child with a thread per process and reads pipes through stream objects, which
costs more than spawning ``true`` itself.  Here the child is spawned with a
vfork and exec (see ``_spawn``), its exit is watched through a pidfd
and its pipes with plain reader callbacks on the server's ``FdWatcher``, so
a command costs about what ``subprocess.run`` does.

The command runs in its own process group (and its own session where the
server has a terminal to leave behind): a signal, a timeout or a lost client
reaches everything it started.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .fdwatch import FdWatcher
from ..protocol.messages import ExecRequest, ExitStatus
from .shell_state import STATE_FD, ShellSession

__all__ = ["RunningCommand", "PIPE_GRACE", "KILL_GRACE", "READ_CHUNK", "SHELL"]

#: The shell commands run through, as ``SHELL -c COMMAND``.
SHELL = "/bin/sh"

#: Output is read and sent in chunks of at most this many bytes.
READ_CHUNK = 64 * 1024

# Chunks read from one pipe per wake-up (in one read) before other work gets a turn.
READ_BATCH = 4

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

# Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN), so longer
# commands are handed to the shell as a script file instead of ``-c``.
LONG_COMMAND = 64 * 1024


# Unsent stdin held for the child before we stop reading the socket.
STDIN_HIGH_WATER = 1024 * 1024

_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, missing from older Pythons


@dataclass
class _Pipe:
    name: str
    fd: int
    reading: bool = False
    count: int = 0


@dataclass
class _Stdin:
    fd: int
    pending: list[bytes] = field(default_factory=list)
    size: int = 0
    eof: bool = False
    broken: bool = False


def _read_some(fd: int) -> bytes | None:
    """One non-blocking read: data; b"" at end of stream (or a read error); None if nothing yet."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


# Where output is read: chunk-sized slots of one buffer, shared by every
# command.  A read fills them in turn and the chunks go out as views of it,
# sent or copied before the read's turn ends (FramedProtocol.uncork), so it
# is free again for the next.  No bytes object per chunk: the allocation and
# the fresh pages it touches cost more than the copy.
_SLOTS: list[memoryview] = []


def _read_slots() -> list[memoryview]:
    if not _SLOTS:
        buffer = memoryview(bytearray(READ_BATCH * READ_CHUNK))
        _SLOTS.extend(buffer[i : i + READ_CHUNK] for i in range(0, len(buffer), READ_CHUNK))
    return _SLOTS


_DEVNULL = -1


def _devnull() -> int:
    """One /dev/null descriptor for every command's empty stdin (Popen would open one per spawn)."""
    global _DEVNULL
    if _DEVNULL < 0:
        _DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _DEVNULL


#: Where a long command's script is handed to the shell (dash takes single digits only).
SCRIPT_FD = 8


# CPython's own spawn primitive, the one subprocess uses: a vfork on our own
# stack, then dup2, setsid or setpgid, chdir and exec.  It costs less than
# os.posix_spawn, whose glibc clone maps and unmaps a fresh stack each time
# (measured: about 20 us of 1 ms per `true`), and it can chdir.  Its
# positional signature is private and changes between versions, so only the
# versions it was checked on use it; others take os.posix_spawn.
_fork_exec: Callable[..., int] | None = None
if sys.version_info[:2] in ((3, 11), (3, 12), (3, 13)):
    try:
        from _posixsubprocess import fork_exec as _fork_exec
    except ImportError:
        pass


_TERMINAL: bool | None = None


def _own_session() -> bool:
    """Whether commands need a session of their own, not just a process group.

    A new session is what detaches a command from our controlling terminal
    (the prompt's private server has the user's), so that it cannot read
    it, stop on it or take its signals.  With no terminal to leave, a
    process group does the same for less: the kernel makes each new session
    a scheduling group too, which costs every command about 15 us.
    """
    global _TERMINAL
    if _TERMINAL is None:
        try:
            os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC))
            _TERMINAL = True
        except OSError:
            _TERMINAL = False
    return _TERMINAL


def _fork_exec_shell(argv: list[str | bytes], env: Mapping[bytes, bytes], cwd: str, fds: tuple[int, int, int]) -> int:
    """Spawn through ``_fork_exec`` with *fds* as its stdin, stdout and stderr."""
    assert _fork_exec is not None
    args = [os.fsencode(a) for a in argv]
    env_list = [k + b"=" + v for k, v in env.items()]
    session = _own_session()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _fork_exec(
            args, [args[0]], False, (), cwd, env_list,
            fds[0], -1, -1, fds[1], -1, fds[2],
            err_r, err_w,
            True,  # restore_signals: SIGPIPE and SIGXFSZ at default, as a shell command expects
            session, -1 if session else 0,  # new session, or new process group
            None, None, None, -1, None,  # gid, groups, uid, umask, preexec_fn
            True,  # allow vfork
        )  # fmt: skip
    except BaseException:
        os.close(err_r)
        raise
    finally:
        os.close(err_w)
    try:
        # EOF once the child has exec'd (the pipe is close-on-exec); else
        # "OSError:<hex errno>:noexec" when it failed before exec (chdir, as
        # subprocess reads it), or without "noexec" when exec itself failed.
        failure = os.read(err_r, 4096)
    finally:
        os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        _, hex_errno, where = failure.split(b":", 2)
        errno = int(hex_errno, 16)
        raise OSError(errno, os.strerror(errno), cwd if where.startswith(b"noexec") else os.fsdecode(args[0]))
    return pid


def _spawn(
    argv: list[str | bytes],
    *,
    env: Mapping[bytes, bytes],
    cwd: str,
    stdin: bool,
    extra_fds: Mapping[int, int],
) -> tuple[int, int, int, int, tuple[int, int]]:
    """Start *argv* in a session or process group of its own, with piped output.

    Args:
        extra_fds: child descriptor number -> our descriptor, for the
            long-command script and the session-state pipe.

    Returns:
        The pid; our ends of its stdin (-1 when it reads /dev/null), stdout
        and stderr pipes; and the write ends of its stdout and stderr pipes,
        which the caller holds until the process has exited (see
        RunningCommand._reap).

    ``_fork_exec`` is the fast path.  A command with descriptors to place
    (which it cannot do) goes through ``os.posix_spawn``, which cannot
    change directory: session commands, which ``cd`` in their script, run
    from ours.  A long command to run elsewhere goes through
    ``subprocess.Popen``.
    """
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if stdin else (_devnull(), -1)
    try:
        if _fork_exec is not None and not extra_fds:
            pid = _fork_exec_shell(argv, env, cwd, (in_r, out_w, err_w))
        elif cwd == os.getcwd():
            actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
            actions += [(os.POSIX_SPAWN_DUP2, ours, theirs) for theirs, ours in extra_fds.items()]
            group: dict[str, Any] = {"setsid": True} if _own_session() else {"setpgroup": 0}
            pid = os.posix_spawn(
                argv[0],
                argv,
                env,
                file_actions=actions,
                **group,
                setsigmask=(),
                # Python ignores these; a shell command expects them at default.
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        else:
            if set(extra_fds) - {SCRIPT_FD}:
                raise ValueError("session commands run from the server's own directory")
            if extra_fds:
                # Popen keeps a passed descriptor's number: point the script there.
                argv = [SHELL, f"/dev/fd/{extra_fds[SCRIPT_FD]}"]
            session = _own_session()
            proc = subprocess.Popen(
                argv,
                stdin=in_r,
                stdout=out_w,
                stderr=err_w,
                cwd=cwd,
                env=env,
                start_new_session=session,
                process_group=None if session else 0,
                pass_fds=tuple(extra_fds.values()),
            )
            # We reap it through its pidfd; a returncode keeps Popen's own
            # clean-up from ever calling waitpid on it behind our back.
            proc.returncode = 0
            pid = proc.pid
    except BaseException:
        for fd in (out_r, err_r, in_w, out_w, err_w):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        if stdin:
            os.close(in_r)
    return pid, in_w, out_r, err_r, (out_w, err_w)


def _loop_fd(loop: asyncio.AbstractEventLoop) -> int:
    """The descriptor that reads as ready whenever *loop* has I/O to handle; -1 if unknown.

    asyncio's selector loops keep it in ``_selector`` (private, so looked up
    with care); with any other loop, commands never wait in ``start``.
    """
    selector = getattr(loop, "_selector", None)
    fileno = getattr(selector, "fileno", None)
    try:
        return int(fileno()) if fileno is not None else -1
    except (OSError, ValueError, TypeError):
        return -1


def _script_file(script: bytes) -> int:
    """Put *script* in an anonymous in-memory file, for a shell to run as ``/dev/fd/N``.

    Linux refuses one argument over 128 KiB, so a long command cannot be
    ``sh -c``'s argument.  The shell opens the file afresh; the command
    itself does not need the descriptor, but it is harmless if it sees it.
    """
    fd = os.memfd_create("rsh-command")
    view = memoryview(script)
    while view:
        view = view[os.write(fd, view) :]
    return fd


class RunningCommand:
    """One command in flight: spawn, stream output, deliver exit.

    Args:
        request: what to run.
        env: the complete environment for the child.
        default_cwd: where it runs when the request names no cwd.
        encoding: what the exit frame declares when the request asks none.
        send_output: ``send_output(stream, data)`` for each chunk read;
            *data* may be a view of a buffer reused once ``uncork`` returns.
        output_paused: returns True while the client is not keeping up.
        cork / uncork: bracket a batch of ``send_output`` calls to write at once.
        pause_input / resume_input: stop / restart reading the socket while
            the child is not taking its stdin.
        on_exit: called once with the final status, after the last output.
        watcher: watches the command's descriptors (one per server).
        on_reaped: called with the pid (the process group's id) once the
            main process is reaped, even after ``abort`` (``reaped``
            resolves then too).
        session: run in this shell session and update it from what the
            shell reports at the end (see rsh.server.shell_state).

    Raises:
        OSError: the command could not be started (bad cwd, no shell).
    """

    def __init__(
        self,
        request: ExecRequest,
        *,
        env: Mapping[bytes, bytes],
        default_cwd: str,
        encoding: str,
        send_output: Callable[[str, bytes | memoryview], None],
        output_paused: Callable[[], bool],
        cork: Callable[[], None],
        uncork: Callable[[], None],
        pause_input: Callable[[], None],
        resume_input: Callable[[], None],
        on_exit: Callable[[ExitStatus], None],
        watcher: FdWatcher,
        on_reaped: Callable[[int], None] | None = None,
        session: ShellSession | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._watch = watcher
        self._send_output = send_output
        self._output_paused = output_paused
        self._cork = cork
        self._uncork = uncork
        self._pause_input = pause_input
        self._resume_input = resume_input
        self._on_exit = on_exit
        self._on_reaped = on_reaped
        self.encoding = request.encoding or encoding
        self._started = time.monotonic()
        self._returncode: int | None = None
        self._timed_out = False
        self._terminating = False
        self._finished = False
        self._grace_handle: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []

        script = request.command
        cwd = request.cwd or default_cwd
        extra_fds: dict[int, int] = {}
        self._state: bytearray | None = None
        state_r = -1
        if session is not None:
            script = session.script(script)
            cwd = os.getcwd()  # the script does its own cd
            state_r, extra_fds[STATE_FD] = os.pipe2(os.O_CLOEXEC)
            self._state = bytearray()
        argv: list[str | bytes] = [SHELL, "-c", script]
        if len(script) > LONG_COMMAND:
            extra_fds[SCRIPT_FD] = _script_file(script)
            argv = [SHELL, f"/dev/fd/{SCRIPT_FD}"]
        self._held: tuple[int, ...] = ()
        try:
            self.pid, stdin_fd, stdout_fd, stderr_fd, self._held = _spawn(
                argv, env=env, cwd=cwd, stdin=request.stdin, extra_fds=extra_fds
            )
        except BaseException:
            if state_r >= 0:
                os.close(state_r)
            raise
        finally:
            for fd in extra_fds.values():
                os.close(fd)
        self._session = session
        self._state_fd = state_r
        if state_r >= 0:
            os.set_blocking(state_r, False)
        self._paused = False
        self._pipes = [_Pipe("stdout", stdout_fd), _Pipe("stderr", stderr_fd)]
        for pipe in self._pipes:
            os.set_blocking(pipe.fd, False)
        try:
            # A bigger pipe lets a fast writer run ahead while we send.
            # (Growing it only once a read comes back full was measured:
            # the stream benchmark lost a tenth of its throughput.)
            fcntl.fcntl(stdout_fd, _F_SETPIPE_SZ, 256 * 1024)
        except OSError:
            pass
        self._stdin: _Stdin | None = None
        if stdin_fd >= 0:
            self._stdin = _Stdin(stdin_fd)
            os.set_blocking(stdin_fd, False)

        #: Resolved once the main process has been reaped.
        self.reaped: asyncio.Future[None] = self._loop.create_future()
        self._pidfd = os.pidfd_open(self.pid)
        if request.timeout is not None:
            self._timers.append(self._loop.call_later(request.timeout, self._on_timeout))

    def start(self) -> None:
        """Begin watching the command (call once, when the caller is ready for ``on_exit``).

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
        loop_fd = _loop_fd(self._loop) if self._stdin is None else -1
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

    def _read(self, pipe: _Pipe) -> None:
        # Take what the pipe holds, up to READ_BATCH chunks, in one read, and
        # send it as one write of as many frames: a fast writer then costs a
        # loop turn and two system calls per batch.
        slots = _read_slots()
        try:
            n = os.readv(pipe.fd, slots)
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if not n:
            self._end_of(pipe)
            return
        pipe.count += n
        self._cork()
        try:
            for slot in slots:
                if n <= 0:
                    break
                self._send_output(pipe.name, slot[: min(n, READ_CHUNK)])
                n -= READ_CHUNK
        finally:
            self._uncork()
        if self._output_paused():
            self.pause_output()
            # The grace period is for pipes nobody writes to; it must not cut
            # off output that only waits for a slow client.
            if self._grace_handle is not None:
                self._grace_handle.cancel()
                self._grace_handle = None

    def _end_of(self, pipe: _Pipe) -> None:
        self._close_pipe(pipe)
        self._maybe_finish()

    def _release_writers(self) -> None:
        """Close our copies of the output pipes' write ends (see ``_reap``)."""
        for fd in self._held:
            os.close(fd)
        self._held = ()

    def _close_pipe(self, pipe: _Pipe) -> None:
        if pipe.fd < 0:
            return
        if pipe.reading:
            self._watch.remove_reader(pipe.fd)
            pipe.reading = False
        os.close(pipe.fd)
        pipe.fd = -1

    # -- stdin ----------------------------------------------------------------

    def feed_stdin(self, data: bytes) -> None:
        """Queue *data* for the child's stdin (dropped if it has closed it)."""
        st = self._stdin
        if st is None or st.eof or st.broken:
            return
        st.pending.append(data)
        st.size += len(data)
        self._flush_stdin()
        if st.size > STDIN_HIGH_WATER:
            self._pause_input()

    def close_stdin(self) -> None:
        """Close the child's stdin once everything queued is written."""
        st = self._stdin
        if st is None or st.eof:
            return
        st.eof = True
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        st = self._stdin
        assert st is not None
        if st.fd < 0:
            return
        while st.pending and not st.broken:
            try:
                n = os.write(st.fd, st.pending[0])
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the child closed its stdin; drop the rest
                st.broken = True
                break
            st.size -= n
            if n == len(st.pending[0]):
                st.pending.pop(0)
            else:
                st.pending[0] = st.pending[0][n:]
        waiting = bool(st.pending) and not st.broken
        self._watch.remove_writer(st.fd)
        if waiting:
            self._watch.add_writer(st.fd, self._flush_stdin)
        if st.size <= STDIN_HIGH_WATER:
            self._resume_input()
        if not waiting and (st.eof or st.broken):
            self._close_stdin_fd()

    def _close_stdin_fd(self) -> None:
        st = self._stdin
        if st is not None and st.fd >= 0:
            self._watch.remove_writer(st.fd)
            os.close(st.fd)
            st.fd = -1
        self._resume_input()

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
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._watch.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._returncode = os.waitstatus_to_exitcode(status)
        if not self.reaped.done():
            self.reaped.set_result(None)
        if self._on_reaped is not None:
            self._on_reaped(self.pid)
        if self._stdin is not None:
            self._stdin.broken = True
            self._close_stdin_fd()
        # Until now we held a write end of each output pipe, so the child's
        # exit closing its own ends woke nobody: the pidfd alone wakes us,
        # once the exit is complete, rather than each pipe as it closes
        # (which, on a shared CPU, preempts the exiting child to run a loop
        # turn that can do nothing yet).  Let go, and unless a background
        # child holds them too, both pipes are at their end in this turn.
        self._release_writers()
        for pipe in self._pipes:
            if pipe.fd >= 0 and not self._paused:
                self._read(pipe)
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
                data = _read_some(pipe.fd) if pipe.fd >= 0 else None
                if not data:
                    break
                pipe.count += len(data)
                self._send_output(pipe.name, data)
            self._close_pipe(pipe)
        self._maybe_finish()

    def _read_state(self) -> None:
        # The wrapper's report; read as it comes so a large environment
        # never blocks the shell on a full pipe.
        assert self._state is not None
        while (data := _read_some(self._state_fd)) is not None:
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
        rc = self._returncode
        # Output held by a cork goes first, the exit frame straight after:
        # whatever on_exit does next (the audit log) must not hold it back.
        self._uncork()
        self._on_exit(
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
        self._on_exit = lambda status: None
        self._session = None
        self._close_state()
        self._terminating = True
        self.pause_output()
        self._release_writers()
        for pipe in self._pipes:
            self._close_pipe(pipe)
        if self._stdin is not None:
            self._stdin.broken = True
            self._close_stdin_fd()
        if self._returncode is None:
            self.terminate()
