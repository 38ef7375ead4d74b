"""Start one shell command for the server, with piped output, in a session of its own.

Why not ``subprocess.Popen`` every time: spawning is most of what a short
command costs, so the common case goes through CPython's own vfork-and-exec
primitive (``_fork_exec``), with ``os.posix_spawn`` and ``Popen`` for what
it cannot do (see ``_spawn``).  ``spawn_command`` is the way in: it turns an
``exec`` request into a shell's argv, hands a long command over as a script
file, and wraps a session command so that it reports its shell state
(``rsh.server.shell_state``).  Reading the pipes and reaping the child is
``rsh.server.process``'s job.

The command runs in a session (and so a process group) of its own, as sshd
starts one: a signal, a timeout or a lost client reaches everything it
started, and it is never part of the server's terminal or session.  It
starts as a login would, whatever state the server was started in
(``keep_inherited_to_ourselves``): signals at their defaults, none blocked,
and no descriptor but 0, 1 and 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from ..protocol.messages import ExecRequest
from .shell_state import STATE_FD, ShellSession

__all__ = ["SHELL", "SCRIPT_FD", "LONG_COMMAND", "Child", "ChildEnv", "spawn_command", "keep_inherited_to_ourselves", "shell_argv"]

#: The shell commands run through, as ``SHELL -c COMMAND``.
SHELL = "/bin/sh"
_SHELL_BYTES = os.fsencode(SHELL)  # what exec takes: no encoding per command

# Linux refuses a single argument of MAX_ARG_STRLEN (128 KiB) bytes or more,
# counting its NUL, so only a command past that is handed to the shell as a
# script file instead of ``-c`` (see ``shell_argv``).
LONG_COMMAND = 128 * 1024 - 1


_DEVNULL = -1


def _devnull() -> int:
    """One /dev/null descriptor for every command's empty stdin (Popen would open one per spawn)."""
    global _DEVNULL
    if _DEVNULL < 0:
        _DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _DEVNULL


# Pipes made while a command runs, for the next command to take.  Made on
# demand, a command's three would cost a few microseconds each between the
# request's arrival and the spawn, where the client waits.
_SPARE_PIPES: list[tuple[int, int]] = []
_SPARES = 3  # a command's stdout, stderr and exec-error pipes


def _pipe() -> tuple[int, int]:
    """A new close-on-exec pipe, a spare one if there is one."""
    return _SPARE_PIPES.pop() if _SPARE_PIPES else os.pipe2(os.O_CLOEXEC)


def _make_spare_pipes() -> None:
    """Make the pipes the next command will take (see ``_pipe``); none where the system refuses."""
    try:
        while len(_SPARE_PIPES) < _SPARES:
            _SPARE_PIPES.append(os.pipe2(os.O_CLOEXEC))
    except OSError:
        pass  # out of descriptors: the next command makes its own, and meets the error itself


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


class ChildEnv(Mapping[bytes, bytes]):
    """A command's whole environment, fixed once made, with the ``NAME=value`` list exec takes made once too.

    A connection runs every command in the same environment unless asked
    otherwise: the list then costs nothing per command (a few microseconds
    of 1 ms with a login's 30-odd variables).
    """

    __slots__ = ("_vars", "entries")

    def __init__(self, vars: Mapping[bytes, bytes]) -> None:
        self._vars = dict(vars)
        self.entries = [k + b"=" + v for k, v in self._vars.items()]

    def __getitem__(self, key: bytes) -> bytes:
        return self._vars[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)


def _fork_exec_shell(argv: list[str | bytes], env: Mapping[bytes, bytes], cwd: str, fds: tuple[int, int, int]) -> int:
    """Spawn through ``_fork_exec`` with *fds* as its stdin, stdout and stderr."""
    assert _fork_exec is not None
    args = [a if isinstance(a, bytes) else os.fsencode(a) for a in argv]
    env_list = env.entries if isinstance(env, ChildEnv) else [k + b"=" + v for k, v in env.items()]
    err_r, err_w = _pipe()
    try:
        pid = _fork_exec(
            args, [args[0]], False, (), cwd, env_list,
            fds[0], -1, -1, fds[1], -1, fds[2],
            err_r, err_w,
            True,  # restore_signals: SIGPIPE and SIGXFSZ at default, as a shell command expects
            True, -1,  # a new session (and so process group)
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
    """Start *argv* in a session of its own, with piped output.

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
    out_r, out_w = _pipe()
    err_r, err_w = _pipe()
    in_r, in_w = _pipe() if stdin else (_devnull(), -1)
    try:
        if _fork_exec is not None and not extra_fds:
            pid = _fork_exec_shell(argv, env, cwd, (in_r, out_w, err_w))
        elif cwd == os.getcwd():
            actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
            actions += [(os.POSIX_SPAWN_DUP2, ours, theirs) for theirs, ours in extra_fds.items()]
            pid = os.posix_spawn(
                argv[0],
                argv,
                env,
                file_actions=actions,
                setsid=True,
                setsigmask=(),
                # Python ignores these; a shell command expects them at default.
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        else:
            if set(extra_fds) - {SCRIPT_FD}:
                raise ValueError("session commands run from the server's own directory")
            place: dict[str, Any] = {}
            if extra_fds:
                # Popen keeps a passed descriptor's number, and dash reads
                # single-digit ones only: put the script at SCRIPT_FD in the
                # child.  Only here (a long command run elsewhere) does a
                # spawn take the slow preexec_fn path.
                fd = extra_fds[SCRIPT_FD]
                place = {"close_fds": False, "preexec_fn": lambda: os.dup2(fd, SCRIPT_FD)}
            proc = subprocess.Popen(
                argv,
                stdin=in_r,
                stdout=out_w,
                stderr=err_w,
                cwd=cwd,
                env=env,
                start_new_session=True,
                **place,
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


def keep_inherited_to_ourselves() -> None:
    """Keep what the server was started with to itself, so that every command starts clean, as sshd's do.

    - Descriptors above 2 that a parent left open (a ``nohup`` from a
      script, a harness's pipe) are made close-on-exec: a command sees its
      stdin, stdout and stderr only.  (Python opens its own close-on-exec.)
    - Signals the server was started with ignored (``nohup``'s HUP, the
      INT and QUIT of a script's ``&``) or blocked stay so for the server,
      through a handler that does nothing instead of SIG_IGN and the mask:
      an exec resets handled signals to their defaults but keeps ignored
      ones ignored, and keeps the mask.  SIGPIPE and SIGXFSZ, which Python
      ignores itself, are put back at spawn time.

    Call it once, from the main thread, before starting commands (a
    signal handler can only be set there; elsewhere the signals are left).
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = []
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own descriptor, closed since
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    for signum in signal.valid_signals():
        if signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(signum) is signal.SIG_IGN or (signum in blocked and signal.getsignal(signum) is signal.SIG_DFL):
                signal.signal(signum, _ignore)
        except (OSError, ValueError):
            return  # not the main thread, or a signal that takes no handler
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)


def _ignore(signum: int, frame: object) -> None:
    """A signal the server was started not to act on (see ``keep_inherited_to_ourselves``)."""


def shell_argv(script: str | bytes) -> tuple[list[str | bytes], bytes | None]:
    """The shell's argv for *script*, and the script file's contents when it is too long for ``-c``.

    Up to ``LONG_COMMAND`` bytes it is ``SHELL -c SCRIPT``.  Past that, the
    ``-c`` command sources the script from ``SCRIPT_FD`` instead, so that
    ``$0`` stays ``SHELL`` and errors still begin ``/bin/sh: LINE:`` (dash
    then names the file after that); the script's first line closes
    ``SCRIPT_FD`` before anything else runs, on the same line, so line
    numbers do not move and the command sees only 0, 1 and 2.
    """
    if len(script) <= LONG_COMMAND:
        return [_SHELL_BYTES, b"-c", script], None
    body = script if isinstance(script, bytes) else script.encode()
    return [_SHELL_BYTES, b"-c", f". /dev/fd/{SCRIPT_FD}".encode()], f"exec {SCRIPT_FD}<&-; ".encode() + body


def _script_file(script: bytes) -> int:
    """Put *script* in an anonymous in-memory file, for a shell to source as ``/dev/fd/N``.

    Linux refuses one argument of 128 KiB, so a longer command cannot be
    ``sh -c``'s argument.  The shell opens the file afresh, so the script
    can close the descriptor it was reached by (see ``shell_argv``).
    """
    fd = os.memfd_create("rsh-command")
    view = memoryview(script)
    while view:
        view = view[os.write(fd, view) :]
    return fd


class Child(NamedTuple):
    """A started command: its pid and our ends of its descriptors."""

    pid: int
    #: Our end of its stdin pipe; -1 when it reads /dev/null.
    stdin: int
    stdout: int
    stderr: int
    #: The write ends of its stdout and stderr pipes, which the caller holds
    #: until the process has exited (see RunningCommand._reap).
    held: tuple[int, int]
    #: The read end of the session-state pipe; -1 without a session.
    state: int


def spawn_command(request: ExecRequest, *, env: Mapping[bytes, bytes], cwd: str, session: ShellSession | None) -> Child:
    """Start *request*'s command through ``SHELL``.

    Args:
        env: the complete environment for the child.
        cwd: where it runs when the request names no cwd.
        session: run in this shell session: the command is wrapped to report
            the shell's state on ``STATE_FD`` (``Child.state`` reads it).

    Raises:
        OSError: the command could not be started (bad cwd, no shell).
        ValueError: a NUL byte in the command or the environment.
    """
    script = request.command
    cwd = request.cwd or cwd
    extra_fds: dict[int, int] = {}
    state_r = -1
    try:
        if session is not None:
            script = session.script(script)
            cwd = os.getcwd()  # the script does its own cd
            state_r, extra_fds[STATE_FD] = os.pipe2(os.O_CLOEXEC)
        argv, long_script = shell_argv(script)
        if long_script is not None:
            extra_fds[SCRIPT_FD] = _script_file(long_script)
        pid, stdin, stdout, stderr, held = _spawn(argv, env=env, cwd=cwd, stdin=request.stdin, extra_fds=extra_fds)
    except BaseException:
        if state_r >= 0:
            os.close(state_r)
        raise
    finally:
        # The child has its copies (or never will).
        for fd in extra_fds.values():
            os.close(fd)
        _make_spare_pipes()  # while the command runs
    return Child(pid, stdin, stdout, stderr, held, state_r)
