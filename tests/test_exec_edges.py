"""``rsh exec`` at the edges where it must behave as ``ssh HOST CMD`` does (issue 15).

A client started with a descriptor closed, a local reader that leaves
early, a server started the way a script starts a daemon, the login
environment, and a command too long for ``sh -c``.  Every case runs our
rsh against a real server on 127.0.0.1; tests/test_exec_corpus.py compares
the same kinds of case with /bin/sh and, when it can, with OpenSSH.
"""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import rsh
from rsh.server.shell_service import ROOT_PATH, USER_PATH
from rsh.server.spawn import LONG_COMMAND

from .conftest import ServerFactory, ServerProcess, rsh_argv


def exec_argv(server: ServerProcess, command: str) -> list[str]:
    return rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", command)


def run_local(server: ServerProcess, command: str, redirect: str) -> subprocess.CompletedProcess[bytes]:
    """`rsh exec` of *command* started by a local shell with *redirect* (``<&-``, ``>&-``...) applied to it."""
    line = f"{shlex.join(exec_argv(server, command))} {redirect}"
    return subprocess.run(["/bin/sh", "-c", line], env=server.env, capture_output=True, timeout=60)


# -- 1-3: a client started with a descriptor closed -------------------------


def test_closed_stdin_reads_as_empty(server: ServerProcess) -> None:
    # The socket used to take descriptor 0 and be sent on as stdin: a hang.
    r = run_local(server, "wc -c", "<&-")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"0\n", b"")


def test_closed_stdout_drops_output_and_keeps_stderr_and_status(server: ServerProcess) -> None:
    # The socket used to take descriptor 1: the remote output went into the connection.
    r = run_local(server, "echo hi; echo err >&2; exit 3", ">&-")
    assert (r.returncode, r.stderr) == (3, b"err\n")


def test_closed_stderr_drops_errors_and_keeps_stdout_and_status(server: ServerProcess) -> None:
    r = run_local(server, "echo hi; echo err >&2; exit 3", "2>&-")
    assert (r.returncode, r.stdout) == (3, b"hi\n")


def test_closed_stderr_keeps_rsh_own_error_off_stdout(tmp_path: Path, server: ServerProcess) -> None:
    # Nothing listens on port 1: rsh's one-line error has nowhere to go, as ssh's would not.
    line = f"{shlex.join(rsh_argv('exec', '--token-file', str(server.token_file), '127.0.0.1:1', '--', 'true'))} 2>&-"
    r = subprocess.run(["/bin/sh", "-c", line], env=server.env, capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (255, b"")


def test_all_three_closed(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_local(server, f"wc -c > {shlex.quote(str(out))}; exit 4", "<&- >&- 2>&-")
    assert r.returncode == 4
    assert out.read_bytes() == b"0\n"


# -- 4: a local reader that leaves early -------------------------------------


def test_reader_leaving_early_lets_the_command_finish_with_its_status(server: ServerProcess, tmp_path: Path) -> None:
    # As `ssh HOST CMD | head -1`: output is dropped from then on, the
    # command meets a closed pipe (so `yes` ends, of SIGPIPE), runs to its
    # end, and its status is rsh's.  Unlike ssh, what it writes to stderr
    # after that is still delivered.
    done = tmp_path / "done"
    command = f"yes; echo yes=$? >&2; touch {shlex.quote(str(done))}; exit 7"
    with subprocess.Popen(exec_argv(server, command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server.env) as p:
        assert p.stdout is not None and p.stderr is not None
        assert p.stdout.readline() == b"y\n"
        p.stdout.close()
        err = p.stderr.read()
        assert p.wait(timeout=60) == 7
    assert err == b"yes=141\n"  # stderr still delivered, no traceback
    assert done.exists()


# -- 5: a server started like a daemon ----------------------------------------

# `nohup rsh serve &` from a script, and then some: HUP, QUIT and INT
# ignored, USR1 blocked, a stray descriptor 7.
DAEMONISH = """
import os, signal, sys
for s in (signal.SIGHUP, signal.SIGQUIT, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.dup2(os.open(os.devnull, os.O_RDONLY), 7)
os.execv(sys.argv[1], sys.argv[1:])
"""

# Signals 1-31: glibc's own 32 and 33 are not ours to reset.
ORDINARY = 0x7FFFFFFF


@pytest.fixture
def daemonish(make_server: ServerFactory) -> ServerProcess:
    return make_server(wrap=[sys.executable, "-c", DAEMONISH])


def status_field(server: ServerProcess, name: str) -> int:
    with rsh.connect(server.host, server.port, token=server.token) as c:
        r = c.run(f"exec grep ^{name}: /proc/self/status")  # the shell's own, as it was exec'd
    assert r.exit_code == 0, r.stderr
    return int(r.stdout.split()[1], 16)


def test_daemonish_server_is_as_it_was_started(daemonish: ServerProcess) -> None:
    ignored = status_field_of(daemonish.proc.pid, "SigIgn")
    assert not ignored & (1 << (signal.SIGHUP - 1))  # handled now, by a handler that does nothing
    assert status_field_of(daemonish.proc.pid, "SigBlk") == 0
    os.kill(daemonish.proc.pid, signal.SIGHUP)  # still survives a hangup, as nohup meant
    with rsh.connect(daemonish.host, daemonish.port, token=daemonish.token) as c:
        assert c.run("echo still here").stdout == b"still here\n"


def status_field_of(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(name)


def test_daemonish_server_gives_commands_default_signals_and_an_empty_mask(daemonish: ServerProcess) -> None:
    assert status_field(daemonish, "SigIgn") & ORDINARY == 0
    assert status_field(daemonish, "SigBlk") & ORDINARY == 0
    r = subprocess.run(exec_argv(daemonish, "kill -HUP $$; echo survived"), env=daemonish.env, capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (128 + signal.SIGHUP, b"")


def test_daemonish_server_gives_commands_only_0_1_2_and_a_session(daemonish: ServerProcess) -> None:
    with rsh.connect(daemonish.host, daemonish.port, token=daemonish.token) as c:
        # ls's own directory is 3.
        assert c.run("exec ls /proc/self/fd").stdout.split() == [b"0", b"1", b"2", b"3"]
        assert c.run("exec ls /proc/self/fd", cwd="/").stdout.split() == [b"0", b"1", b"2", b"3"]
        r = c.run("read pid comm state ppid pgrp sid rest < /proc/$$/stat; echo $pid $pgrp $sid")
    pid, pgrp, sid = r.stdout.split()
    assert pid == pgrp == sid


# -- 6: the environment ---------------------------------------------------------


def test_login_environment_from_the_passwd_entry(make_server: ServerFactory) -> None:
    # A server started without them still gives USER, LOGNAME, HOME, MAIL, and a PATH.
    wrap = ["env", "-u", "USER", "-u", "LOGNAME", "-u", "HOME", "-u", "MAIL", "-u", "PATH"]
    s = make_server(wrap=wrap, env_extra={"RSH_TEST_SERVER_VAR": "kept"})
    entry = pwd.getpwuid(os.getuid())
    with rsh.connect(s.host, s.port, token=s.token) as c:
        env = dict(line.split("=", 1) for line in c.run("env").stdout_text.splitlines() if "=" in line)
    assert env["USER"] == env["LOGNAME"] == entry.pw_name
    assert env["HOME"] == entry.pw_dir
    assert env["MAIL"] == f"/var/mail/{entry.pw_name}"
    assert env["PATH"] == (ROOT_PATH if os.getuid() == 0 else USER_PATH).decode()
    assert env["SHELL"]
    assert env["RSH_CLIENT"].startswith("127.0.0.1 ") and env["RSH_CLIENT"].endswith(f" {s.port}")
    assert env["RSH_TEST_SERVER_VAR"] == "kept"  # the rest of the server's environment, as documented


def test_a_server_path_is_kept(server: ServerProcess) -> None:
    with rsh.connect(server.host, server.port, token=server.token) as c:
        assert c.run("echo $PATH").stdout_text.strip() == server.env["PATH"]


# -- 7: long commands ---------------------------------------------------------------


def padded(command: str, size: int) -> str:
    """*command*, then a comment that brings it to *size* bytes."""
    return command + "\n#" + "x" * (size - len(command) - 2)


@pytest.mark.parametrize("size", [1000, 100 * 1024, LONG_COMMAND])
def test_command_up_to_max_arg_strlen_runs_as_sh_c(server: ServerProcess, size: int) -> None:
    # Byte for byte what /bin/sh -c gives, `$0` and the error prefix included.
    command = padded("echo $0 $#; nosuch-command-15; exit 5", size)
    assert len(command) == size
    local = subprocess.run(["/bin/sh", "-c", command], capture_output=True)
    r = subprocess.run(exec_argv(server, command), env=server.env, capture_output=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (local.returncode, local.stdout, local.stderr) == (5, b"/bin/sh 0\n", local.stderr)
    assert r.stderr.startswith(b"/bin/sh: 1: ")


@pytest.mark.parametrize("cwd", [None, "/"])
def test_command_past_max_arg_strlen_keeps_dollar_zero_and_prefix(server: ServerProcess, cwd: str | None) -> None:
    command = padded("echo $0 $#; ls /proc/self/fd | tr '\\n' ' '\nnosuch-command-15\nexit 5", LONG_COMMAND + 1000)
    with rsh.connect(server.host, server.port, token=server.token) as c:
        r = c.run(command, cwd=cwd)
    assert (r.exit_code, r.stdout) == (5, b"/bin/sh 0\n0 1 2 3 ")  # no script descriptor left to the command
    assert r.stderr.startswith(b"/bin/sh: 2: ") and r.stderr.endswith(b"nosuch-command-15: not found\n")
