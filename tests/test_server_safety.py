"""A hostile or broken peer gets an error frame and nothing runs; others keep working."""

from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path

import pytest

import rsh
from rsh.errors import AuthError
from rsh.protocol import auth
from rsh.protocol.frames import FrameDecoder, encode_frame

from .conftest import ServerProcess, pid_alive, wait_until
from .rawpeer import RawPeer


def _raw(header: dict[str, object]) -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("!I", len(body)) + body


def marker_command(tmp_path: Path) -> tuple[Path, bytes]:
    marker = tmp_path / "marker"
    return marker, f"touch '{marker}'".encode()


def assert_server_still_serves(server: ServerProcess) -> None:
    with rsh.connect(server.host, server.port, token=server.token) as c:
        assert c.run("echo alive").stdout == b"alive\n"


def test_hello_announces_what_the_issue_asks(server: ServerProcess) -> None:
    with RawPeer(server.port) as p:
        h = p.hello.fields
    assert h["version"] == 1 and h["auth"] == "hmac-sha256" and h["shell"] == "/bin/sh"
    assert len(h["nonce"]) == 64 and h["encoding"] and h["os"] and h["server"].startswith("rsh/")


def test_nonce_is_fresh_per_connection(server: ServerProcess) -> None:
    with RawPeer(server.port) as a, RawPeer(server.port) as b:
        assert a.hello.get("nonce") != b.hello.get("nonce")


def test_exec_without_auth_runs_nothing(server: ServerProcess, tmp_path: Path) -> None:
    marker, cmd = marker_command(tmp_path)
    with RawPeer(server.port) as p:
        p.send("exec", None, cmd)
        frames = p.recv_until_closed()
    assert [f.type for f in frames] == ["error"]
    assert frames[0].get("code") == "unexpected_frame"
    assert not marker.exists()
    assert_server_still_serves(server)


def test_wrong_token_runs_nothing(server: ServerProcess, tmp_path: Path) -> None:
    marker, cmd = marker_command(tmp_path)
    with RawPeer(server.port) as p:
        reply = p.authenticate("wrong-token")
        assert reply is not None and reply.type == "error" and reply.get("code") == "auth_failed"
        try:
            p.send("exec", None, cmd)
        except OSError:
            pass  # already closed: also fine
        assert p.recv_until_closed() == []
    assert not marker.exists()


def test_no_token_via_cli_runs_nothing(server: ServerProcess, tmp_path: Path) -> None:
    import subprocess

    from .conftest import rsh_argv, rsh_env

    marker, cmd = marker_command(tmp_path)
    r = subprocess.run(rsh_argv("exec", server.address, "--", cmd.decode()), env=rsh_env(tmp_path), capture_output=True, timeout=60)
    assert r.returncode == 255
    assert r.stderr.decode().startswith("rsh: ") and r.stderr.count(b"\n") == 1
    assert not marker.exists()


def test_replayed_auth_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    with RawPeer(server.port) as good:
        nonce = auth.new_nonce()
        captured = {"nonce": nonce, "mac": auth.client_mac(server.token, good.hello.get("nonce"), nonce)}
        good.send("auth", captured)
        assert good.recv().type == "auth_ok"  # type: ignore[union-attr]
    marker, cmd = marker_command(tmp_path)
    with RawPeer(server.port) as replay:
        replay.send("auth", captured)
        reply = replay.recv()
        assert reply is not None and reply.get("code") == "auth_failed"
        assert replay.recv_until_closed() == []
    assert not marker.exists()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xff\xff\xff",
        struct.pack("!I", 2) + b"[]",
        struct.pack("!I", 9) + b"\xc3\x28abcdefg",
        encode_frame("exit", {"exit_code": 0}),
        _raw({"type": "stdin", "size": -5}),
    ],
    ids=["http", "huge-prefix", "array", "bad-utf8", "wrong-direction", "negative-size"],
)
def test_garbage_before_auth_gets_an_error_frame_and_close(server: ServerProcess, garbage: bytes) -> None:
    with RawPeer(server.port) as p:
        p.send_raw(garbage)
        frames = p.recv_until_closed()
    assert [f.type for f in frames] == ["error"]
    assert frames[0].get("code") and frames[0].get("message")
    assert_server_still_serves(server)


def test_oversized_frame_after_auth_closes_only_that_connection(server: ServerProcess, tmp_path: Path) -> None:
    marker, cmd = marker_command(tmp_path)
    with rsh.connect(server.host, server.port, token=server.token) as bystander:
        with RawPeer(server.port) as p:
            assert p.authenticate(server.token).type == "auth_ok"  # type: ignore[union-attr]
            # Announce a 2 MiB command: refused on the header alone.
            p.send_raw(_raw({"type": "exec", "size": 2 * 1024 * 1024}) + b"x" * 10)
            frames = p.recv_until_closed()
        assert [(f.type, f.get("code")) for f in frames] == [("error", "payload_too_large")]
        assert bystander.run("echo fine").stdout == b"fine\n"
    assert not marker.exists()


def test_bad_exec_fields_are_refused(server: ServerProcess, tmp_path: Path) -> None:
    marker, cmd = marker_command(tmp_path)
    with RawPeer(server.port) as p:
        p.authenticate(server.token)
        p.send("exec", {"timeout": "soon"}, cmd)
        frames = p.recv_until_closed()
    assert [(f.type, f.get("code")) for f in frames] == [("error", "bad_field")]
    assert not marker.exists()


def test_second_exec_while_running_is_a_protocol_error(server: ServerProcess) -> None:
    with RawPeer(server.port) as p:
        p.authenticate(server.token)
        p.send("exec", None, b"sleep 30")
        p.send("exec", None, b"true")
        frames = p.recv_until_closed()
    assert frames[-1].type == "error" and frames[-1].get("code") == "unexpected_frame"


def _fake_server(answer_mac: str) -> tuple[socket.socket, threading.Thread]:
    """Accepts any auth and answers with *answer_mac*: an impostor."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(encode_frame("hello", {"version": 1, "nonce": "ab" * 32, "auth": "hmac-sha256", "encoding": "utf-8"}))
            dec = FrameDecoder()
            while not dec.feed(conn.recv(65536)):
                pass
            conn.sendall(encode_frame("auth_ok", {"mac": answer_mac}))
            conn.recv(65536)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return listener, t


def test_client_refuses_a_server_that_cannot_prove_the_token() -> None:
    listener, t = _fake_server("00" * 32)
    try:
        with pytest.raises(AuthError, match="could not prove"):
            rsh.connect("127.0.0.1", listener.getsockname()[1], token="secret")
    finally:
        listener.close()
        t.join(10)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_does_not_read_does_not_grow_server_memory(own_server: ServerProcess) -> None:
    import time

    pid = own_server.proc.pid
    with RawPeer(own_server.port) as p:
        p.authenticate(own_server.token)
        before = _rss_kib(pid)
        p.send("exec", None, b"head -c 500000000 /dev/zero")
        time.sleep(2)  # the command could write 500 MB in this time; we read none of it
        grown = _rss_kib(pid) - before
    # Bounded by the send buffer and pipe sizes (a few MiB), not by the output.
    assert grown < 32 * 1024, f"server grew by {grown} KiB"


def test_no_descriptors_leak_across_many_commands(own_server: ServerProcess) -> None:
    import os

    fd_dir = f"/proc/{own_server.proc.pid}/fd"
    with rsh.connect(own_server.host, own_server.port, token=own_server.token) as c:
        c.run("true")
        before = len(os.listdir(fd_dir))
        background = []
        for i in range(30):
            c.run("echo x; echo y >&2", input=b"data" if i % 2 else None)
            c.run("cd /tmp && pwd")
            if i % 10 == 0:  # a background child holding the pipes
                background.append(int(c.run("sleep 30 & echo $!").stdout))
        with pytest.raises(rsh.RemoteError):
            c.run("true", cwd="/nonexistent")
        after = len(os.listdir(fd_dir))
    for pid in background:
        os.kill(pid, 9)
    assert after == before


def test_commands_inherit_no_descriptor_of_the_servers(server: ServerProcess) -> None:
    # The server spawns with close_fds off (rsh.server.spawn): every descriptor
    # it holds must be close-on-exec, or a command would get its sockets.
    # In a pipeline, ask a member about itself: the parent shell holds the
    # pipe's ends for a moment while it forks, and `ls /proc/$$/fd` there
    # saw them about one time in thirty.
    with rsh.connect(server.host, server.port, token=server.token) as c:
        for command, cwd in (("ls /proc/$$/fd", None), ("ls /proc/$$/fd", "/tmp"), ("echo x | sh -c 'ls /proc/$$/fd'", None)):
            assert c.run(command, cwd=cwd).stdout.split() == [b"0", b"1", b"2"]
        assert c.run("ls /proc/$$/fd", input=b"x").stdout.split() == [b"0", b"1", b"2"]


def test_nul_in_a_command_is_refused_and_the_connection_survives(server: ServerProcess) -> None:
    with RawPeer(server.port) as p:
        p.authenticate(server.token)
        p.send("exec", None, b"echo a\0b")
        reply = p.recv()
        assert reply is not None and (reply.type, reply.get("code")) == ("error", "spawn_failed")
        p.send("exec", None, b"echo fine")
        frames = [p.recv() for _ in range(2)]
        assert [f.type for f in frames if f] == ["stdout", "exit"]
    with rsh.connect(server.host, server.port, token=server.token) as c, pytest.raises(ValueError):
        c.run("echo a\0b")


async def test_private_server_remembers_only_groups_with_something_left() -> None:
    # The prompt's own server ends what its commands left running when it
    # closes, so it keeps their process groups, but not one per command for ever.
    from rsh.server.listener import Server

    server = Server("127.0.0.1", 0, "t" * 32, kill_leftovers=True)
    await server.start()
    try:
        async with await rsh.connect_async("127.0.0.1", server.port, token="t" * 32) as c:
            for _ in range(20):
                assert (await c.run("true")).exit_code == 0
            assert server.groups == set()
            pid = int((await c.run("sleep 100 & echo $!")).stdout)
            assert len(server.groups) == 1  # the sleep is still in it
    finally:
        await server.close()
    assert wait_until(lambda: not pid_alive(pid))
