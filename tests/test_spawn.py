"""How the server spawns a command: each of its three paths.

The server picks ``_fork_exec`` (plain commands), ``os.posix_spawn``
(descriptors to place, from its own directory) or ``subprocess.Popen``
(descriptors to place, elsewhere).  Whatever the path, the command must
lead a session and process group of its own, see no signal ignored (SIGPIPE
at its default, not ignored as in Python), run in the directory asked and
read the stdin it was given.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rsh.server import fdwatch, spawn
from rsh.server.spawn import SCRIPT_FD, SHELL, _spawn

# pid, process group, session and ignored signals, as the command sees them.
REPORT = b'read pid comm state ppid pgrp sid rest < /proc/$$/stat; echo "$pid $pgrp $sid $(grep SigIgn /proc/$$/status | cut -f2)"; pwd; cat'


def run(argv: list[str | bytes], cwd: str, extra_fds: dict[int, int] | None = None) -> tuple[int, int, int, str, str, str]:
    """Spawn *argv* with "from stdin" on its stdin; its pid, pgid, sid, SigIgn, cwd and echoed stdin."""
    pid, in_w, out_r, err_r, held = _spawn(argv, env={b"PATH": os.environ["PATH"].encode()}, cwd=cwd, stdin=True, extra_fds=extra_fds or {})
    try:
        os.write(in_w, b"from stdin")
        os.close(in_w)
        _, status = os.waitpid(pid, 0)
        for fd in held:
            os.close(fd)
        out = b""
        while chunk := os.read(out_r, 65536):
            out += chunk
        assert os.waitstatus_to_exitcode(status) == 0, (out, os.read(err_r, 65536))
    finally:
        os.close(out_r)
        os.close(err_r)
    ids_line, rest = out.decode().split("\n", 1)
    got_pid, pgrp, sid, ignored = ids_line.split()
    where, echoed = rest.split("\n", 1)
    assert int(got_pid) == pid
    return pid, int(pgrp), int(sid), ignored, where, echoed


def check(result: tuple[int, int, int, str, str, str], cwd: str) -> None:
    pid, pgrp, sid, ignored, where, echoed = result
    assert pgrp == pid  # leads its own process group: a signal reaches all it starts
    assert sid == pid  # and its own session, as sshd's commands do
    # SIGPIPE and SIGXFSZ at their defaults, not ignored as in Python.  (Of
    # the signals 1-31 only: glibc's own 32 and 33 are not ours to reset.)
    assert int(ignored, 16) & 0x7FFFFFFF == 0
    assert os.path.realpath(where) == os.path.realpath(cwd)
    assert echoed == "from stdin"


def script_fd(script: bytes) -> dict[int, int]:
    return {SCRIPT_FD: spawn._script_file(script)}


@pytest.mark.skipif(spawn._fork_exec is None, reason="this Python's fork_exec is not used")
def test_plain_command_through_fork_exec(tmp_path: Path) -> None:
    check(run([SHELL, "-c", REPORT], str(tmp_path)), str(tmp_path))


def test_plain_command_without_fork_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pythons whose fork_exec is not known: posix_spawn from here, Popen elsewhere.
    monkeypatch.setattr(spawn, "_fork_exec", None)
    check(run([SHELL, "-c", REPORT], os.getcwd()), os.getcwd())
    check(run([SHELL, "-c", REPORT], str(tmp_path)), str(tmp_path))


def test_placed_descriptor_through_posix_spawn() -> None:
    fds = script_fd(REPORT)
    try:
        check(run([SHELL, f"/dev/fd/{SCRIPT_FD}"], os.getcwd(), fds), os.getcwd())
    finally:
        os.close(fds[SCRIPT_FD])


def test_placed_descriptor_elsewhere_through_popen(tmp_path: Path) -> None:
    fds = script_fd(REPORT)
    try:
        check(run([SHELL, f"/dev/fd/{SCRIPT_FD}"], str(tmp_path), fds), str(tmp_path))
    finally:
        os.close(fds[SCRIPT_FD])


@pytest.mark.parametrize("no_fork_exec", [False, True])
def test_missing_directory_or_shell_is_an_oserror_naming_it(no_fork_exec: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if no_fork_exec:
        monkeypatch.setattr(spawn, "_fork_exec", None)
    spawn._devnull()  # opened once and kept, by design
    while spawn._SPARE_PIPES:  # _spawn takes them and, failing, closes them
        for fd in spawn._SPARE_PIPES.pop():
            os.close(fd)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError) as info:
        _spawn([SHELL, "-c", "true"], env={}, cwd="/nonexistent/dir", stdin=True, extra_fds={})
    assert info.value.filename == "/nonexistent/dir"
    with pytest.raises(FileNotFoundError) as info:
        _spawn(["/nonexistent/sh", "-c", "true"], env={}, cwd=os.getcwd(), stdin=False, extra_fds={})
    assert info.value.filename == "/nonexistent/sh"
    with pytest.raises(ValueError):  # refused before any process exists
        _spawn([SHELL, "-c", "echo a\0b"], env={}, cwd=os.getcwd(), stdin=True, extra_fds={})
    assert set(os.listdir("/proc/self/fd")) == before  # no descriptor left open


def test_a_command_leaves_fresh_pipes_for_the_next_and_a_failed_one_leaks_none(tmp_path: Path) -> None:
    from rsh.protocol.messages import ExecRequest
    from rsh.server.spawn import spawn_command

    env = {b"PATH": os.environ["PATH"].encode()}

    def finish(child: spawn.Child) -> int:
        _, status = os.waitpid(child.pid, 0)
        for fd in (*child.held, child.stdout, child.stderr):
            os.close(fd)
        return os.waitstatus_to_exitcode(status)

    assert finish(spawn_command(ExecRequest(b"true"), env=env, cwd=str(tmp_path), session=None)) == 0
    spares = {fd for pair in spawn._SPARE_PIPES for fd in pair}
    assert len(spares) == 6 and not any(os.get_inheritable(fd) for fd in spares)  # no command gets them
    child = spawn_command(ExecRequest(b"echo taken"), env=env, cwd=str(tmp_path), session=None)
    assert child.stdout in spares and os.read(child.stdout, 100) == b"taken\n"
    assert finish(child) == 0
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        spawn_command(ExecRequest(b"true"), env=env, cwd="/nonexistent/dir", session=None)
    assert set(os.listdir("/proc/self/fd")) == before  # those it took closed, and as many made again


COMMANDS = [
    ("true", b"", b"", 0),
    ("echo out; echo err >&2; exit 3", b"out\n", b"err\n", 3),
    # More than the pipes hold: it cannot finish while start() waits.
    ("head -c 300000 /dev/zero | tr '\\0' x; head -c 100000 /dev/zero >&2", b"x" * 300000, bytes(100000), 0),
    ("sleep 0.01; echo late", b"late\n", b"", 0),
    # Exits at once, but a background child holds the pipes (within the grace period).
    ("(sleep 0.05; echo later) & echo now", b"now\nlater\n", b"", 0),
]


@pytest.mark.parametrize("loop_fd", ["asyncio", "unknown"])
async def test_commands_finished_by_start_or_by_the_loop_give_the_same_results(loop_fd: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # RunningCommand.start waits briefly for a command to end unless the
    # loop has other I/O; it must not matter which way a command finishes.
    import asyncio

    import rsh
    from rsh.server.listener import Server

    if loop_fd == "unknown":
        monkeypatch.setattr(fdwatch, "_loop_fd", lambda loop: -1)
    server = Server("127.0.0.1", 0, "t" * 32)
    await server.start()
    try:
        async with (
            await rsh.connect_async("127.0.0.1", server.port, token="t" * 32) as busy,
            await rsh.connect_async("127.0.0.1", server.port, token="t" * 32) as c,
        ):
            for _ in range(2):
                for command, out, err, code in COMMANDS:
                    r = await asyncio.wait_for(c.run(command), 30)
                    assert (r.stdout, r.stderr, r.exit_code) == (out, err, code), command
                # Again while another connection keeps the loop busy.
                streaming = asyncio.ensure_future(busy.run("head -c 20000000 /dev/zero"))
                for command, out, err, code in COMMANDS:
                    r = await asyncio.wait_for(c.run(command), 30)
                    assert (r.stdout, r.stderr, r.exit_code) == (out, err, code), command
                assert len((await asyncio.wait_for(streaming, 60)).stdout) == 20000000
    finally:
        await server.close()
