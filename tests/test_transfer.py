"""put and get through the Python API against real servers on 127.0.0.1: exact bytes, safe failures."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import rsh
from rsh.results import TransferProgress
from rsh.transfer.flow import CHUNK
from rsh.transfer.receive import partial_name

from .conftest import ServerFactory, ServerProcess, wait_until
from .proxy import Proxy
from .rawpeer import RawPeer
from .test_transfer_unit import make_tree, snapshot

MiB = 1024 * 1024

#: Run as root, a process is only refused a file if it lacks these capabilities.
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
needs_permissions = pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="running as root without setpriv: permissions cannot be denied"
)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[rsh.Client]:
    with rsh.connect(server.host, server.port, token=server.token) as c:
        yield c


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def write_random(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MiB))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def assert_usable(c: rsh.Client) -> None:
    assert c.run("echo still here").stdout == b"still here\n"


# -- round trips ----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB + 1])
def test_round_trip_is_exact(client: rsh.Client, tmp_path: Path, size: int) -> None:
    digest = write_random(tmp_path / "src", size)
    up = client.put(str(tmp_path / "src"), str(tmp_path / "up"))
    down = client.get(str(tmp_path / "up"), str(tmp_path / "down"))
    assert sha(tmp_path / "up") == sha(tmp_path / "down") == digest == up.sha256 == down.sha256
    assert (up.files, up.bytes, down.files, down.bytes) == (1, size, 1, size)


def test_round_trip_200_mib(client: rsh.Client, tmp_path: Path) -> None:
    digest = write_random(tmp_path / "src", 200 * MiB)
    assert client.put(str(tmp_path / "src"), str(tmp_path / "up")).sha256 == digest
    (tmp_path / "src").unlink()
    assert client.get(str(tmp_path / "up"), str(tmp_path / "down")).sha256 == digest
    assert sha(tmp_path / "down") == digest


def test_mode_and_mtime_are_kept(client: rsh.Client, tmp_path: Path) -> None:
    src = tmp_path / "script.sh"
    src.write_text("#!/bin/sh\n")
    os.chmod(src, 0o751)
    os.utime(src, ns=(0, 1_234_567_890_123_456_789))
    client.put(str(src), str(tmp_path / "up.sh"))
    client.get(str(tmp_path / "up.sh"), str(tmp_path / "down.sh"))
    for p in (tmp_path / "up.sh", tmp_path / "down.sh"):
        st = p.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o751, 1_234_567_890_123_456_789)


def test_tree_round_trip(client: rsh.Client, tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    (tmp_path / "remote").mkdir()
    up = client.put(str(tmp_path / "tree"), str(tmp_path / "remote"), recursive=True)
    assert (up.files, up.dirs, up.symlinks) == (3, 4, 2)
    down = client.get(str(tmp_path / "remote" / "tree"), str(tmp_path / "back"), recursive=True)
    assert (down.files, down.dirs, down.symlinks) == (3, 4, 2)
    assert snapshot(tmp_path / "remote" / "tree") == snapshot(tmp_path / "tree") == snapshot(tmp_path / "back")
    assert os.readlink(tmp_path / "back" / "outside") == "/etc"  # copied as a link, not followed


def test_names_with_spaces_and_non_ascii(client: rsh.Client, tmp_path: Path) -> None:
    d = tmp_path / "dir with spaces" / "ünïcødé 文件"
    d.mkdir(parents=True)
    (d / "a file — naïve.txt").write_text("contents ✓\n")
    (tmp_path / "déjà vu").mkdir()
    client.put(str(tmp_path / "dir with spaces"), str(tmp_path / "déjà vu"), recursive=True)
    assert (tmp_path / "déjà vu" / "dir with spaces" / "ünïcødé 文件" / "a file — naïve.txt").read_text() == "contents ✓\n"
    client.get(str(tmp_path / "déjà vu" / "dir with spaces" / "ünïcødé 文件" / "a file — naïve.txt"), str(tmp_path / "back ☃.txt"))
    assert (tmp_path / "back ☃.txt").read_text() == "contents ✓\n"


def test_several_sources_into_a_directory(client: rsh.Client, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    (tmp_path / "up").mkdir()
    r = client.put([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "up"))
    assert r.files == 2 and sorted(os.listdir(tmp_path / "up")) == ["a", "b"]
    (tmp_path / "down").mkdir()
    client.get([str(tmp_path / "up" / "a"), str(tmp_path / "up" / "b")], str(tmp_path / "down"))
    assert sorted(os.listdir(tmp_path / "down")) == ["a", "b"]
    with pytest.raises(rsh.TransferFailed) as exc:
        client.put([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "nodir"))
    assert str(exc.value).startswith(f"2 failures: 127.0.0.1:{tmp_path}/nodir: No such file or directory")


def test_streams_both_ways(client: rsh.Client, tmp_path: Path) -> None:
    import io

    data = os.urandom(3 * CHUNK + 17)
    r = client.put(io.BytesIO(data), str(tmp_path / "from-stream"))
    assert (tmp_path / "from-stream").read_bytes() == data and r.sha256 == hashlib.sha256(data).hexdigest()
    out = io.BytesIO()
    client.get(str(tmp_path / "from-stream"), out)
    assert out.getvalue() == data


def test_progress_callback_sees_every_byte(client: rsh.Client, tmp_path: Path) -> None:
    write_random(tmp_path / "src", 3 * MiB + 5)
    seen: list[TransferProgress] = []
    client.put(str(tmp_path / "src"), str(tmp_path / "up"), progress=seen.append)
    assert seen[-1].done == seen[-1].size == seen[-1].sent == 3 * MiB + 5
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    seen.clear()
    client.get(str(tmp_path / "up"), str(tmp_path / "down"), progress=seen.append)
    assert seen[-1].done == 3 * MiB + 5 and seen[-1].path == str(tmp_path / "down")


def test_relative_paths_are_relative_to_home_or_cwd(make_server: ServerFactory, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    (tmp_path / "f").write_text("f")
    s = make_server(where=tmp_path, env_extra={"HOME": str(home)})
    with rsh.connect(s.host, s.port, token=s.token) as c:
        c.put(str(tmp_path / "f"), "in-home")
        c.put(str(tmp_path / "f"), "~/tilde")
        c.put(str(tmp_path / "f"), "in-sub", cwd="sub")
        c.put(str(tmp_path / "f"), "abs-cwd", cwd=str(home / "sub"))
        c.get("in-sub", str(tmp_path / "back"), cwd="~/sub")
    assert sorted(os.listdir(home)) == ["in-home", "sub", "tilde"]
    assert sorted(os.listdir(home / "sub")) == ["abs-cwd", "in-sub"]
    assert (tmp_path / "back").read_text() == "f"


def test_async_client_put_and_get(server: ServerProcess, tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")

    async def main() -> None:
        async with await rsh.connect_async(server.host, server.port, token=server.token) as c:
            await c.put(str(tmp_path / "tree"), str(tmp_path / "up"), recursive=True)
            await c.get(str(tmp_path / "up"), str(tmp_path / "down"), recursive=True)
            with pytest.raises(rsh.TransferFailed):
                await c.get(str(tmp_path / "missing"), str(tmp_path / "x"))
            assert (await c.run("echo ok")).stdout == b"ok\n"

    asyncio.run(main())
    assert snapshot(tmp_path / "tree") == snapshot(tmp_path / "up") == snapshot(tmp_path / "down")


# -- failures: one line each, the connection still usable ------------------------


@pytest.mark.parametrize(("way", "where"), [("put", ""), ("get", "127.0.0.1:")], ids=["local", "remote"])
def test_missing_source_file(client: rsh.Client, tmp_path: Path, way: str, where: str) -> None:
    # A missing local file is named as it is; a missing remote one with its host.
    with pytest.raises(rsh.TransferFailed) as exc:
        getattr(client, way)(str(tmp_path / "nope"), str(tmp_path / "x"))
    assert str(exc.value) == f"{where}{tmp_path}/nope: No such file or directory"
    assert not (tmp_path / "x").exists()
    assert_usable(client)


def test_missing_remote_directory(client: rsh.Client, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(rsh.TransferFailed) as exc:
        client.put(str(tmp_path / "f"), str(tmp_path / "no" / "dir" / "f"))
    assert str(exc.value) == f"127.0.0.1:{tmp_path}/no/dir/f: No such file or directory"
    assert_usable(client)


def test_missing_local_directory(client: rsh.Client, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(rsh.TransferFailed) as exc:
        client.get(str(tmp_path / "f"), str(tmp_path / "no" / "f"))
    assert str(exc.value) == f"{tmp_path}/no/f: No such file or directory"
    assert_usable(client)


def test_directory_without_recursive(client: rsh.Client, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(rsh.TransferFailed) as exc:
        client.get(str(tmp_path / "d"), str(tmp_path / "x"))
    assert str(exc.value) == f"127.0.0.1:{tmp_path}/d: is a directory (use -r to copy directories)"
    assert_usable(client)


@pytest.fixture
def unprivileged_server(make_server: ServerFactory, tmp_path: Path) -> ServerProcess:
    """A server that, even run as root, is refused what file modes refuse."""
    return make_server(where=tmp_path, wrap=NO_DAC)


@needs_permissions
def test_permission_denied_on_the_server_both_ways(unprivileged_server: ServerProcess, tmp_path: Path) -> None:
    ro = tmp_path / "readonly"
    ro.mkdir()
    (tmp_path / "f").write_text("x")
    (tmp_path / "secret").write_text("s")
    os.chmod(ro, 0o555)
    os.chmod(tmp_path / "secret", 0o000)
    s = unprivileged_server
    with rsh.connect(s.host, s.port, token=s.token) as c:
        with pytest.raises(rsh.TransferFailed) as exc:
            c.put(str(tmp_path / "f"), str(ro))
        assert str(exc.value) == f"127.0.0.1:{ro}/f: Permission denied"
        with pytest.raises(rsh.TransferFailed) as exc:
            c.get(str(tmp_path / "secret"), str(tmp_path / "copy"))
        assert str(exc.value) == f"127.0.0.1:{tmp_path}/secret: Permission denied"
        assert_usable(c)
    assert os.listdir(ro) == [] and not (tmp_path / "copy").exists()


@needs_permissions
def test_unreadable_directory_inside_a_tree_is_reported_and_the_rest_copied(unprivileged_server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "tree" / "closed").mkdir(parents=True)
    (tmp_path / "tree" / "open.txt").write_text("o")
    (tmp_path / "tree" / "closed" / "inside.txt").write_text("i")
    os.chmod(tmp_path / "tree" / "closed", 0o000)
    s = unprivileged_server
    with rsh.connect(s.host, s.port, token=s.token) as c:
        with pytest.raises(rsh.TransferFailed) as exc:
            c.get(str(tmp_path / "tree"), str(tmp_path / "copy"), recursive=True)
        assert_usable(c)
    os.chmod(tmp_path / "tree" / "closed", 0o755)
    assert [f.line("h") for f in exc.value.result.failures] == [f"h:{tmp_path}/tree/closed: Permission denied"]
    assert (tmp_path / "copy" / "open.txt").read_text() == "o" and not (tmp_path / "copy" / "closed").exists()


@pytest.mark.parametrize("way", ["put", "get"])
def test_checksum_mismatch_in_transit_is_caught(server: ServerProcess, tmp_path: Path, way: str) -> None:
    write_random(tmp_path / "src", 2 * MiB)
    (tmp_path / "target").write_text("old")
    # A put is corrupted on its way up and reported by the server (HOST:path), a get on its way down.
    corrupt, where = ("up", "127.0.0.1:") if way == "put" else ("down", "")
    with Proxy(server.port, corrupt=corrupt) as proxy, rsh.connect("127.0.0.1", proxy.port, token=server.token) as c:
        with pytest.raises(rsh.TransferFailed) as exc:
            getattr(c, way)(str(tmp_path / "src"), str(tmp_path / "target"))
        assert proxy.flipped.is_set()
        assert str(exc.value).startswith(f"{where}{tmp_path}/target: checksum mismatch")
        assert_usable(c)
    assert (tmp_path / "target").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["src", "target"]


def open_tempfiles(pid: int, directory: Path) -> list[int]:
    """Sizes of the unnamed (O_TMPFILE) files process *pid* has open in *directory*."""
    sizes = []
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
            if target.startswith(f"{directory}/") and target.endswith("(deleted)"):
                sizes.append(os.stat(fd_dir / fd).st_size)
        except OSError:
            continue
    return sizes


def server_tempfiles(server: ServerProcess, directory: Path) -> list[int]:
    return open_tempfiles(server.proc.pid, directory)


def test_connection_lost_midway_leaves_nothing_on_the_server(own_server: ServerProcess, tmp_path: Path) -> None:
    write_random(tmp_path / "src", 8 * MiB)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "target").write_text("old")
    with Proxy(own_server.port, hold="up", after=3 * MiB) as proxy, rsh.connect("127.0.0.1", proxy.port, token=own_server.token) as c:
        # The upload stalls mid-file; once the server holds part of it, the
        # connection goes.
        def cut() -> None:
            wait_until(lambda: any(n > MiB for n in server_tempfiles(own_server, dest)))
            proxy.close()

        t = threading.Thread(target=cut)
        t.start()
        try:
            with pytest.raises(rsh.ConnectionLost) as exc:
                c.put(str(tmp_path / "src"), str(dest / "target"))
        finally:
            t.join()
    assert str(exc.value).startswith(f"{tmp_path}/src: connection lost (")
    assert wait_until(lambda: not server_tempfiles(own_server, dest))
    assert os.listdir(dest) == ["target"] and (dest / "target").read_text() == "old"


def flock_free(path: Path) -> bool:
    import fcntl

    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_resumed_put_sends_only_the_rest(server: ServerProcess, tmp_path: Path) -> None:
    digest = write_random(tmp_path / "src", 4 * MiB + 3)
    partial = tmp_path / partial_name("target")
    with open(tmp_path / "src", "rb") as f:
        partial.write_bytes(f.read(MiB + 1))
    with rsh.connect(server.host, server.port, token=server.token) as c:
        r = c.put(str(tmp_path / "src"), str(tmp_path / "target"), resume=True)
    assert (r.resumed, r.sent, r.sha256) == (MiB + 1, 3 * MiB + 2, digest)
    assert sorted(os.listdir(tmp_path)) == ["src", "target"]


def test_resumed_get_sends_only_the_rest(server: ServerProcess, tmp_path: Path) -> None:
    digest = write_random(tmp_path / "src", 4 * MiB + 3)
    with open(tmp_path / "src", "rb") as f:
        (tmp_path / partial_name("target")).write_bytes(f.read(2 * MiB))
    with rsh.connect(server.host, server.port, token=server.token) as c:
        r = c.get(str(tmp_path / "src"), str(tmp_path / "target"), resume=True)
    assert (r.resumed, r.sent, r.sha256) == (2 * MiB, 2 * MiB + 3, digest)
    assert sorted(os.listdir(tmp_path)) == ["src", "target"]


def test_disk_full_on_the_server(make_server: ServerFactory, tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    # A 1 MiB tmpfs that only the server sees (its own mount namespace).
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"', str(mount)]
    if os.geteuid() != 0 or subprocess.run([*wrap, "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a private tmpfs here")
    write_random(tmp_path / "big", 4 * MiB)
    s = make_server(where=tmp_path, wrap=wrap)
    with rsh.connect(s.host, s.port, token=s.token) as c:
        c.run(f"printf old > '{mount}/target'", check=True)
        with pytest.raises(rsh.TransferFailed) as exc:
            c.put(str(tmp_path / "big"), str(mount / "target"))
        assert str(exc.value) == f"127.0.0.1:{mount}/target: No space left on device"
        assert exc.value.result.failures[0].code == "no_space"
        assert c.run(f"ls -A '{mount}'; cat '{mount}/target'").stdout == b"target\nold"


# -- the server under hostile frames -------------------------------------------


def test_an_escaping_entry_path_closes_the_connection_and_writes_nothing(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with RawPeer(server.port) as p:
        assert p.authenticate(server.token).type == "auth_ok"
        p.send("put", {"path": str(tmp_path / "in")})
        p.send("dir", {"path": "", "mode": 0o755, "mtime_ns": 0, "name": "d"})
        p.send("file", {"path": "../../escaped", "mode": 0o644, "mtime_ns": 0, "length": 1})
        frames = p.recv_until_closed()
    assert [f.type for f in frames] == ["ok", "error"] and frames[1].get("code") == "bad_field"
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "in" / "escaped").exists()
    with rsh.connect(server.host, server.port, token=server.token) as c:
        assert_usable(c)


def test_exec_in_the_middle_of_a_transfer_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    with RawPeer(server.port) as p:
        assert p.authenticate(server.token).type == "auth_ok"
        p.send("put", {"path": str(tmp_path / "x")})
        p.send("exec", None, f"touch '{tmp_path}/ran'".encode())
        frames = p.recv_until_closed()
    assert [(f.type, f.get("code")) for f in frames] == [("error", "unexpected_frame")]
    assert not (tmp_path / "ran").exists()


def test_transfer_frames_outside_a_transfer_are_refused(server: ServerProcess) -> None:
    with RawPeer(server.port) as p:
        assert p.authenticate(server.token).type == "auth_ok"
        p.send("data", None, b"x")
        assert [(f.type, f.get("code")) for f in p.recv_until_closed()] == [("error", "unexpected_frame")]


def test_a_client_that_vanishes_mid_get_costs_the_server_nothing(server: ServerProcess, tmp_path: Path) -> None:
    write_random(tmp_path / "src", 32 * MiB)
    with RawPeer(server.port) as p:
        assert p.authenticate(server.token).type == "auth_ok"
        p.send("get", {"path": str(tmp_path / "src")})
        assert p.recv().type == "file"
        p.send("ready", {"offset": 0})
        assert p.recv().type == "data"
    with rsh.connect(server.host, server.port, token=server.token) as c:
        assert_usable(c)
