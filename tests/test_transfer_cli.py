"""`rsh put` and `rsh get` as a user runs them: exit statuses, one-line failures, terminals, kills."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import pexpect
import pytest

import rsh
from rsh.transfer.receive import partial_name

from .conftest import ServerProcess, rsh_argv, rsh_env, wait_until
from .proxy import Proxy
from .test_transfer import NO_DAC, MiB, flock_free, needs_permissions, open_tempfiles, server_tempfiles, write_random


def rsh_cmd(server: ServerProcess, op: str, *args: str, address: str | None = None) -> list[str]:
    return rsh_argv(op, "--token-file", str(server.token_file), address or server.address, *args)


def run(server: ServerProcess, op: str, *args: str, input: bytes | None = None, wrap: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*(wrap or []), *rsh_cmd(server, op, *args)],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=server.env,
        timeout=120,
    )


def test_put_and_get_are_silent_when_not_on_a_terminal(server: ServerProcess, tmp_path: Path) -> None:
    digest = write_random(tmp_path / "src", MiB + 1)
    r = run(server, "put", str(tmp_path / "src"), str(tmp_path / "up"))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = run(server, "get", str(tmp_path / "up"), str(tmp_path / "down"))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert hashlib.sha256((tmp_path / "down").read_bytes()).hexdigest() == digest


def test_dash_streams_stdin_and_stdout(server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(MiB + 1)
    r = run(server, "put", "-", str(tmp_path / "from-stdin"), input=data)
    assert (r.returncode, r.stderr) == (0, b"")
    assert (tmp_path / "from-stdin").read_bytes() == data
    r = run(server, "get", str(tmp_path / "from-stdin"), "-")
    assert (r.returncode, r.stderr) == (0, b"") and r.stdout == data


def test_a_reader_that_leaves_early_is_no_failure(server: ServerProcess, tmp_path: Path) -> None:
    write_random(tmp_path / "big", 8 * MiB)
    cmd = " ".join(f"'{a}'" for a in rsh_cmd(server, "get", str(tmp_path / "big"), "-"))
    r = subprocess.run(
        ["/bin/bash", "-c", f'set -o pipefail; {cmd} | head -c 10 >/dev/null; echo "${{PIPESTATUS[0]}}"'], capture_output=True, env=server.env, timeout=120
    )
    assert (r.stdout, r.stderr) == (b"141\n", b"")


def test_empty_stdin_makes_an_empty_file(server: ServerProcess, tmp_path: Path) -> None:
    r = run(server, "put", "-", str(tmp_path / "empty"), input=b"")
    assert r.returncode == 0 and (tmp_path / "empty").read_bytes() == b""


def test_tree_and_odd_names(server: ServerProcess, tmp_path: Path) -> None:
    src = tmp_path / "my files"
    (src / "sous-dossier ünï").mkdir(parents=True)
    (src / "sous-dossier ünï" / "naïve 文件.txt").write_text("x")
    (src / "empty dir").mkdir()
    (src / "link").symlink_to("sous-dossier ünï/naïve 文件.txt")
    (tmp_path / "remote").mkdir()
    assert run(server, "put", "-r", str(src), str(tmp_path / "remote")).returncode == 0
    r = run(server, "get", "-r", str(tmp_path / "remote" / "my files"), str(tmp_path / "back"))
    assert (r.returncode, r.stderr) == (0, b"")
    assert (tmp_path / "back" / "sous-dossier ünï" / "naïve 文件.txt").read_text() == "x"
    assert (tmp_path / "back" / "empty dir").is_dir() and os.readlink(tmp_path / "back" / "link") == "sous-dossier ünï/naïve 文件.txt"


def test_missing_paths_are_one_line_each_and_exit_1(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "there").write_text("x")
    r = run(server, "put", str(tmp_path / "nope"), str(tmp_path / "there"), str(tmp_path / "dir"))
    assert r.returncode == 1
    assert r.stderr.decode() == f"rsh: {tmp_path}/nope: No such file or directory\nrsh: 127.0.0.1:{tmp_path}/dir: No such file or directory\n"
    r = run(server, "get", str(tmp_path / "nope"), str(tmp_path / "x"))
    assert (r.returncode, r.stderr.decode()) == (1, f"rsh: 127.0.0.1:{tmp_path}/nope: No such file or directory\n")
    r = run(server, "get", str(tmp_path / "there"), str(tmp_path / "no" / "x"))
    assert (r.returncode, r.stderr.decode()) == (1, f"rsh: {tmp_path}/no/x: No such file or directory\n")
    r = run(server, "get", str(tmp_path), "-")
    assert (r.returncode, r.stderr.decode()) == (1, f"rsh: 127.0.0.1:{tmp_path}: is a directory (use -r to copy directories)\n")


@needs_permissions
def test_permission_denied_on_the_client_both_ways(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    os.chmod(tmp_path / "secret", 0o000)
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    (tmp_path / "f").write_text("f")
    r = run(server, "put", str(tmp_path / "secret"), str(tmp_path / "copy"), wrap=NO_DAC)
    assert (r.returncode, r.stderr.decode()) == (1, f"rsh: {tmp_path}/secret: Permission denied\n")
    r = run(server, "get", str(tmp_path / "f"), str(tmp_path / "ro"), wrap=NO_DAC)
    assert (r.returncode, r.stderr.decode()) == (1, f"rsh: {tmp_path}/ro/f: Permission denied\n")
    assert os.listdir(tmp_path / "ro") == [] and not (tmp_path / "copy").exists()


def test_disk_full_on_the_client(server: ServerProcess, tmp_path: Path) -> None:
    write_random(tmp_path / "big", 4 * MiB)
    mount = tmp_path / "tiny"
    mount.mkdir()
    script = 'mount -t tmpfs -o size=1m tmpfs "$0" || exit 99; printf old > "$0/x"; "$@"; echo "rc=$?"; ls -A "$0"; cat "$0/x"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(mount), *rsh_cmd(server, "get", str(tmp_path / "big"), str(mount / "x"))]
    if os.geteuid() != 0:
        pytest.skip("cannot mount a private tmpfs here")
    r = subprocess.run(argv, capture_output=True, env=server.env, timeout=120)
    if r.returncode == 99:
        pytest.skip("cannot mount a private tmpfs here")
    assert r.stderr.decode() == f"rsh: {mount}/x: No space left on device\n"
    assert r.stdout == b"rc=1\nx\nold"


def through(proxy: Proxy, server: ServerProcess, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``rsh ARGS`` to *server* by way of *proxy*."""
    return subprocess.run(rsh_cmd(server, *args, address=f"127.0.0.1:{proxy.port}"), capture_output=True, env=server.env, timeout=120)


def test_corruption_in_transit_is_one_line_and_exit_1(server: ServerProcess, tmp_path: Path) -> None:
    write_random(tmp_path / "src", 2 * MiB)
    with Proxy(server.port, corrupt="up") as proxy:
        p = through(proxy, server, "put", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert p.returncode == 1
    assert p.stderr.decode() == f"rsh: 127.0.0.1:{tmp_path}/dst: checksum mismatch: the data received does not match the sender's SHA-256; not written\n"
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_connection_refused_and_lost_are_255(server: ServerProcess, tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    (tmp_path / "f").write_text("x")
    r = subprocess.run(rsh_argv("put", f"127.0.0.1:{port}", str(tmp_path / "f"), "x"), env=rsh_env(tmp_path, RSH_TOKEN="x"), capture_output=True, timeout=60)
    assert (r.returncode, r.stderr.decode()) == (255, f"rsh: cannot connect to 127.0.0.1:{port}: connection refused\n")
    write_random(tmp_path / "big", 8 * MiB)
    with Proxy(server.port, hold="down", after=2 * MiB, then="cut") as proxy:
        r = through(proxy, server, "get", str(tmp_path / "big"), str(tmp_path / "copy"))
    assert r.returncode == 255
    assert r.stderr.decode().startswith(f"rsh: {tmp_path}/copy: connection lost (") and r.stderr.count(b"\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["big", "f"]


def test_usage_errors_exit_2(server: ServerProcess, tmp_path: Path) -> None:
    r = run(server, "put", str(tmp_path))
    assert (r.returncode, r.stderr.decode()) == (2, "rsh: put needs at least two paths: LOCAL... REMOTE\n")
    r = run(server, "get", "-r", "x", "-")
    assert r.returncode == 2


def test_put_killed_midway_leaves_the_old_file_then_resumes(server: ServerProcess, tmp_path: Path) -> None:
    digest = write_random(tmp_path / "src", 16 * MiB)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "target").write_text("old")
    partial = dest / partial_name("target")
    # The proxy lets 5 MiB through, then stalls: the upload is caught mid-file.
    with Proxy(server.port, hold="up", after=5 * MiB) as proxy:
        p = subprocess.Popen(rsh_cmd(server, "put", "--resume", str(tmp_path / "src"), str(dest / "target"), address=f"127.0.0.1:{proxy.port}"), env=server.env)
        try:
            assert wait_until(lambda: partial.exists() and partial.stat().st_size >= 4 * MiB)
            assert (dest / "target").read_text() == "old"
        finally:
            p.kill()
            p.wait()
        assert wait_until(lambda: flock_free(partial))  # the server has noticed
    kept = partial.stat().st_size
    assert sorted(os.listdir(dest)) == sorted(["target", partial.name]) and (dest / "target").read_text() == "old"
    with rsh.connect(server.host, server.port, token=server.token) as c:
        r = c.put(str(tmp_path / "src"), str(dest / "target"), resume=True)
    assert (r.resumed, r.sent, r.sha256) == (kept, 16 * MiB - kept, digest)
    assert os.listdir(dest) == ["target"]


def test_put_killed_without_resume_leaves_nothing(own_server: ServerProcess, tmp_path: Path) -> None:
    write_random(tmp_path / "src", 16 * MiB)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "target").write_text("old")
    with Proxy(own_server.port, hold="up", after=5 * MiB) as proxy:
        p = subprocess.Popen(rsh_cmd(own_server, "put", str(tmp_path / "src"), str(dest / "target"), address=f"127.0.0.1:{proxy.port}"), env=own_server.env)
        try:
            assert wait_until(lambda: any(n >= 4 * MiB for n in server_tempfiles(own_server, dest)))
        finally:
            p.kill()
            p.wait()
        assert wait_until(lambda: not server_tempfiles(own_server, dest))
    assert os.listdir(dest) == ["target"] and (dest / "target").read_text() == "old"


@pytest.mark.parametrize("resume", [False, True], ids=["plain", "resume"])
def test_get_killed_midway_then_again(server: ServerProcess, tmp_path: Path, resume: bool) -> None:
    digest = write_random(tmp_path / "src", 16 * MiB)
    local = tmp_path / "local"
    local.mkdir()
    (local / "target").write_text("old")
    partial = local / partial_name("target")
    opts = ["--resume"] if resume else []
    with Proxy(server.port, hold="down", after=5 * MiB) as proxy:
        p = subprocess.Popen(rsh_cmd(server, "get", *opts, str(tmp_path / "src"), str(local / "target"), address=f"127.0.0.1:{proxy.port}"), env=server.env)
        try:
            if resume:
                assert wait_until(lambda: partial.exists() and partial.stat().st_size >= 4 * MiB)
            else:
                assert wait_until(lambda: any(n >= 4 * MiB for n in open_tempfiles(p.pid, local)))
        finally:
            # SIGKILL: no chance to clean up.  Without --resume the data was
            # in an unnamed file, so there is nothing to clean up.
            p.send_signal(signal.SIGKILL)
            p.wait()
    assert (local / "target").read_text() == "old"
    assert sorted(os.listdir(local)) == sorted(["target", partial.name] if resume else ["target"])
    r = run(server, "get", *opts, str(tmp_path / "src"), str(local / "target"))
    assert (r.returncode, r.stderr) == (0, b"")
    assert os.listdir(local) == ["target"]
    assert hashlib.sha256((local / "target").read_bytes()).hexdigest() == digest


def test_a_terminal_gets_a_progress_bar_and_a_summary(server: ServerProcess, tmp_path: Path) -> None:
    # Six chunks 0.2 s apart: long enough for the bar to show.
    feed = "for i in 1 2 3 4 5 6; do head -c 100000 /dev/zero; sleep 0.2; done"
    cmd = " ".join(f"'{a}'" for a in rsh_cmd(server, "put", "-", str(tmp_path / "slow")))
    child = pexpect.spawn("/bin/sh", ["-c", f"{feed} | {cmd}"], env=server.env, timeout=60)
    try:
        child.expect(pexpect.EOF)
        out = child.before.decode()
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "\r-" in out and "/s" in out  # the bar: name, bytes so far, rate
    # The pty turns the summary's newline into \r\n; the bar's \r stay bare.
    last = out.replace("\x1b[K", "").replace("\r\n", "\n").rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert last.startswith(f"- -> 127.0.0.1:{tmp_path}/slow: 585.9 KiB in ") and last.endswith(", sha256 verified")
    assert (tmp_path / "slow").stat().st_size == 600000
