"""Start one shell command for the server, with piped output, in a process group of its own.

Why not ``subprocess.Popen`` every time: spawning is most of what a short
command costs, so the common case goes through CPython's own vfork-and-exec
primitive (``_fork_exec``), with ``os.posix_spawn`` and ``Popen`` for what
it cannot do (see ``_spawn``).  ``spawn_command`` is the way in: it turns an
``exec`` request into a shell's argv, hands a long command over as a script
file, and wraps a session command so that it reports its shell state
(``rsh.server.shell_state``).  Reading the pipes and reaping the child is
``rsh.server.process``'s job.

The command runs in its own process group (and its own session where the
server has a terminal to leave behind): a signal, a timeout or a lost client
reaches everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..protocol.messages import ExecRequest
from .shell_state import STATE_FD, ShellSession

__all__ = ["SHELL", "SCRIPT_FD", "LONG_COMMAND", "Child", "spawn_command", "keep_inherited_to_ourselves"]

#: The shell commands run through, as ``SHELL -c COMMAND``.
SHELL = "/bin/sh"

# Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN), so longer
# commands are handed to the shell as a script file instead of ``-c``.
LONG_COMMAND = 64 * 1024


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


def keep_inherited_to_ourselves() -> None:
    """Mark every descriptor above 2 that we inherited close-on-exec, so that no command or shell gets it.

    Python opens its own close-on-exec; what a parent left open to us (a
    ``nohup`` from a script, a harness's pipe) would otherwise reach every
    command, which should see its stdin, stdout and stderr only.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own descriptor, closed since


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
        argv: list[str | bytes] = [SHELL, "-c", script]
        if len(script) > LONG_COMMAND:
            extra_fds[SCRIPT_FD] = _script_file(script)
            argv = [SHELL, f"/dev/fd/{SCRIPT_FD}"]
        pid, stdin, stdout, stderr, held = _spawn(argv, env=env, cwd=cwd, stdin=request.stdin, extra_fds=extra_fds)
    except BaseException:
        if state_r >= 0:
            os.close(state_r)
        raise
    finally:
        # The child has its copies (or never will).
        for fd in extra_fds.values():
            os.close(fd)
    return Child(pid, stdin, stdout, stderr, held, state_r)
