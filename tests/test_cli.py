"""The `rsh` program: bytes, statuses, signals and errors in real subprocesses; parsing and usage errors in-process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Invoked, ServerFactory, ServerProcess, group_alive, rsh_argv, rsh_env, wait_until


def run_rsh(server: ServerProcess, *args: str, input: bytes | None = None, tmp: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(server.env)
    return subprocess.run(
        rsh_argv("exec", "--token-file", str(server.token_file), *args),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=120,
    )


def test_echo(server: ServerProcess) -> None:
    r = run_rsh(server, server.address, "--", "echo", "hello", "world")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"hello world\n", b"")


def test_words_are_joined_for_the_remote_shell_as_ssh_does(server: ServerProcess) -> None:
    # ssh HOST sh -c 'echo a b' runs `sh -c echo a b` remotely: so does rsh (the README says so).
    assert run_rsh(server, server.address, "--", "sh", "-c", "echo a b").stdout == b"\n"
    assert run_rsh(server, server.address, "--", "sh -c 'echo a b'").stdout == b"a b\n"


def test_stdout_and_stderr_go_to_their_own_fds(server: ServerProcess) -> None:
    r = run_rsh(server, server.address, "--", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n")


def test_signal_death_is_128_plus_n(server: ServerProcess) -> None:
    assert run_rsh(server, server.address, "--", "kill -TERM $$").returncode == 128 + 15


def test_binary_copy_is_identical(server: ServerProcess, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    r = run_rsh(server, server.address, "--", "cat", str(src))
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_stdin_is_forwarded_when_not_a_terminal(server: ServerProcess) -> None:
    data = os.urandom(1024 * 1024)
    r = run_rsh(server, server.address, "--", "sha256sum", input=data)
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_dash_n_sends_no_stdin(server: ServerProcess) -> None:
    r = run_rsh(server, "-n", server.address, "--", "cat; echo end", input=b"ignored")
    assert r.stdout == b"end\n"


def test_timeout_exits_124_with_one_line(server: ServerProcess) -> None:
    r = run_rsh(server, "--timeout", "0.5", server.address, "--", "sleep 30")
    assert r.returncode == 124
    assert r.stderr.decode().startswith("rsh: command timed out") and r.stderr.count(b"\n") == 1


def test_connection_refused_is_255_and_one_line(tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = subprocess.run(rsh_argv("exec", f"127.0.0.1:{port}", "--", "true"), env=rsh_env(tmp_path, RSH_TOKEN="x"), capture_output=True, timeout=60)
    assert r.returncode == 255
    assert r.stderr.decode() == f"rsh: cannot connect to 127.0.0.1:{port}: connection refused\n"


def test_wrong_token_is_255_and_one_line(server: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("nope\n")
    r = subprocess.run(rsh_argv("exec", "--token-file", str(bad), server.address, "--", "true"), env=server.env, capture_output=True, timeout=60)
    assert r.returncode == 255
    assert b"authentication failed" in r.stderr and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr


def test_missing_token_file_is_255_and_names_it(server: ServerProcess, tmp_path: Path) -> None:
    r = subprocess.run(rsh_argv("exec", "--token-file", str(tmp_path / "none"), server.address, "--", "true"), env=server.env, capture_output=True, timeout=60)
    assert r.returncode == 255 and str(tmp_path / "none").encode() in r.stderr and r.stderr.count(b"\n") == 1


def test_rsh_token_variable_is_used(server: ServerProcess, tmp_path: Path) -> None:
    r = subprocess.run(rsh_argv("exec", server.address, "--", "echo ok"), env=rsh_env(tmp_path, RSH_TOKEN=server.token), capture_output=True, timeout=60)
    assert r.stdout == b"ok\n"


def test_stdout_closed_early_stops_quietly(server: ServerProcess) -> None:
    # The command runs to its end, as with ssh (tests/test_exec_edges.py has the status).
    env = dict(server.env)
    cmd = f"{shlex.join(rsh_argv('exec', '--token-file', str(server.token_file), server.address, '--', 'yes | head -c 2000000'))} | head -n 3"
    r = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, timeout=60)
    assert r.stdout == b"y\ny\ny\n"
    assert r.stderr == b""


@contextlib.contextmanager
def _exec_running(server: ServerProcess, command: str, *, stdout: int = subprocess.PIPE) -> Iterator[subprocess.Popen[bytes]]:
    """`rsh exec` of *command*, left running for the test; killed, reaped and its pipes closed after."""
    with subprocess.Popen(
        rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", command),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=server.env,
    ) as p:
        try:
            yield p
        finally:
            p.kill()


def test_ctrl_c_interrupts_the_remote_command(server: ServerProcess) -> None:
    with _exec_running(server, "echo $$; exec sleep 100") as p:
        assert p.stdout is not None
        pgid = int(p.stdout.readline())
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
        assert wait_until(lambda: not group_alive(pgid))


def test_ctrl_c_interrupts_a_command_whose_output_never_stops(server: ServerProcess) -> None:
    # While output streams in, rsh reads without polling whenever data is there; Ctrl-C is still seen.
    with _exec_running(server, "echo $$ >&2; exec yes", stdout=subprocess.DEVNULL) as p:
        assert p.stderr is not None
        pgid = int(p.stderr.readline())
        time.sleep(0.3)  # well into the stream
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
        assert wait_until(lambda: not group_alive(pgid))


def test_second_ctrl_c_leaves_at_once_and_the_command_is_stopped(server: ServerProcess) -> None:
    with _exec_running(server, "trap '' INT; echo $$; sleep 100") as p:
        assert p.stdout is not None
        pgid = int(p.stdout.readline())
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert p.poll() is None  # the remote side ignores INT, so rsh waits
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
        # rsh left, the server saw the connection drop and ended the group.
        assert wait_until(lambda: not group_alive(pgid))


def test_serve_creates_a_private_token_and_says_where(own_server: ServerProcess) -> None:
    s = own_server
    mode = stat.S_IMODE(os.stat(s.token_file).st_mode)
    assert mode == 0o600
    said = "".join(s.log)
    assert str(s.token_file) in said and s.token not in said
    assert f"rsh: listening on 127.0.0.1:{s.port}" in said


def test_serve_no_auth_on_loopback_needs_no_token(make_server: ServerFactory, tmp_path: Path) -> None:
    s = make_server("--no-auth")
    r = subprocess.run(rsh_argv("exec", s.address, "--", "echo open"), env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.stdout == b"open\n"


def test_serve_refuses_no_auth_beyond_loopback(invoke: Callable[..., Invoked]) -> None:
    # Refused before binding, so nothing ever listens on 0.0.0.0.
    r = invoke("serve", "--host", "0.0.0.0", "--port", "0", "--no-auth")
    assert r.code == 2
    assert "--no-auth is refused on 0.0.0.0" in r.stderr and r.stderr.count("\n") == 1


def test_port_in_use_is_one_line(server: ServerProcess, tmp_path: Path) -> None:
    r = subprocess.run(
        rsh_argv("serve", "--port", str(server.port), "--token-file", str(tmp_path / "t")), env=rsh_env(tmp_path), capture_output=True, timeout=60
    )
    assert r.returncode == 1
    assert r.stderr.decode().splitlines()[-1].startswith(f"rsh: cannot listen on 127.0.0.1:{server.port}")
    assert b"Traceback" not in r.stderr


def test_exec_does_not_import_prompt_toolkit(tmp_path: Path) -> None:
    code = "import sys, rsh.cli.main, rsh.cli.exec, rsh.client.aio; print('prompt_toolkit' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.stdout == b"False\n"


def test_start_up_loads_only_what_the_command_needs(server: ServerProcess, tmp_path: Path) -> None:
    # Start-up time is most of a short `rsh exec`: it loads neither file
    # transfers nor asyncio, nor (on plain TCP) ssl, nor dataclasses and the
    # inspect they bring, nor the other subcommands' server or prompt, and
    # `import rsh` alone loads no client.
    heavy = "('asyncio', 'ssl', 'dataclasses', 'inspect', 'secrets', 'shlex', 'rsh.results')"
    # main() rather than `python -m rsh`, which ends the process at once after a plain exec (rsh.cli.main.entry).
    code = (
        "import sys; from rsh.cli.main import main\n"
        "code = main(['exec', '--token-file', sys.argv[1], sys.argv[2], '--', 'true'])\n"
        f"print(code, sorted(m for m in sys.modules if m.startswith(('rsh.transfer', 'rsh.server', 'rsh.prompt')) or m in {heavy}))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(server.token_file), server.address], env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.stdout == b"0 []\n", r.stderr
    code = (
        "import sys, rsh; print(sorted(m for m in ('asyncio', 'rsh.client.aio', 'rsh.client.blocking') if m in sys.modules)); "
        "rsh.connect; print('rsh.client.blocking' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.stdout == b"[]\nTrue\n", r.stderr


# -- parsing, usage errors and exit statuses: in-process, no server or subprocess needed --


@pytest.mark.parametrize("words", [["--"], [], ["--", ""]])
def test_exec_without_a_command_is_one_line_and_2(invoke: Callable[..., Invoked], words: list[str]) -> None:
    r = invoke("exec", "127.0.0.1:1", *words)
    assert r.code == 2 and r.stderr.startswith("rsh: no command given") and r.stderr.count("\n") == 1


def test_serve_token_file_in_a_missing_directory_is_refused(invoke: Callable[..., Invoked], tmp_path: Path) -> None:
    r = invoke("serve", "--port", "0", "--token-file", str(tmp_path / "no" / "dir" / "token"))
    assert r.code == 2 and "does not exist" in r.stderr
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "config").exists()  # refused before the audit log or a TLS identity is made


def test_version_and_help(invoke: Callable[..., Invoked]) -> None:
    r = invoke("--version")
    assert r.code == 0 and r.stdout.startswith("rsh ")
    r = invoke("exec", "--help")
    assert r.code == 0 and "HOST[:PORT]" in r.stdout
    r = invoke("--help")
    assert r.code == 0 and all(name in r.stdout for name in ("serve", "exec", "connect", "put", "get", "demo"))


@pytest.mark.parametrize(
    "argv, says",
    [
        (["exec", "--no-such-option", "127.0.0.1:1", "--", "true"], "unrecognized arguments: --no-such-option"),
        (["exec"], "the following arguments are required: HOST[:PORT]"),
        (["exec", "--timeout", "soon", "127.0.0.1:1", "--", "true"], "argument --timeout: invalid float value: 'soon'"),
        (["exec", "127.0.0.1:99999", "--", "true"], "rsh: invalid port '99999'"),
        (["serve", "--port", "many"], "argument --port: invalid int value: 'many'"),
        (["serve", "--tls", "--no-tls"], "argument --no-tls: not allowed with argument --tls"),
        (["serve", "--max-conns", "0"], "rsh: max-conns must be positive"),
        (["serve", "--idle-timeout", "-1"], "rsh: idle-timeout must not be negative"),
        (["serve", "--encoding", "no-such-encoding"], "rsh: unknown encoding 'no-such-encoding'"),
        # (`get 127.0.0.1:1 x` is scp's form: file 1 from 127.0.0.1.)
        (["get", "127.0.0.1", "x"], "rsh: get needs at least two paths: REMOTE... LOCAL"),
        (["get", "-r", "127.0.0.1:1", "x", "-"], "rsh: '-' (stdout) takes files only: drop -r and --resume"),
        (["put", "127.0.0.1:1", "-", "x", "dir"], "rsh: '-' (stdin) must be the only LOCAL"),
        (["demo", "--lang", "fr"], "argument --lang: invalid choice: 'fr'"),
    ],
)
def test_usage_errors_are_2_without_a_traceback(invoke: Callable[..., Invoked], argv: list[str], says: str) -> None:
    r = invoke(*argv)
    assert r.code == 2 and says in r.stderr and "Traceback" not in r.stderr


def test_a_word_that_is_no_subcommand_is_a_host_for_the_prompt(invoke: Callable[..., Invoked]) -> None:
    # `rsh HOST` is `rsh connect HOST`, as `ssh HOST` is; off a terminal it says so and stops.
    r = invoke("example-host:7022")
    assert r.code == 255 and "cannot connect to example-host:7022" in r.stderr
