"""Keeping the server up: deadlines, caps, idle timeout, the failed-auth delay.

Every wait here is a guard against hanging (wait_until, socket timeouts),
never a measurement: no test asserts how long anything took.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from pathlib import Path

import pytest

import rsh
from rsh.errors import RemoteError
from rsh.net.tls import client_context
from rsh.protocol import auth
from rsh.protocol.frames import FrameDecoder, encode_frame

from .conftest import ServerProcess, rsh_argv, wait_until
from .rawpeer import RawPeer


def connect(server: ServerProcess) -> rsh.Client:
    tls = any("TLS fingerprint" in line for line in server.log)
    return rsh.connect(server.host, server.port, server.token, fingerprint=server.fingerprint if tls else None)


class Worker:
    """Runs commands on one authenticated connection in a thread until stopped."""

    def __init__(self, client: rsh.Client) -> None:
        self.client = client
        self.done = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.done
                assert self.client.run(f"echo {n}").stdout == f"{n}\n".encode()
                self.done += 1
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.failures.append(exc)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert self.failures == [] and self.done > 0


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    sock.settimeout(30)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            return data
        if not chunk:
            return data
        data += chunk


def loris(port: int, mode: str) -> socket.socket:
    """A connection that sends part of a header and then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if mode == "plain":
        dec = FrameDecoder()
        while not dec.feed(sock.recv(65536)):
            pass  # the hello
        sock.sendall(b"\x00\x00")
    elif mode == "tls-handshake":
        sock.sendall(b"\x16\x03\x01\x00")  # four bytes of a TLS record header
    else:
        sock = client_context().wrap_socket(sock)
        dec = FrameDecoder()
        while not dec.feed(sock.recv(65536)):
            pass
        sock.sendall(b"\x00\x00")
    return sock


@pytest.mark.parametrize("mode", ["plain", "tls-handshake", "tls-frame"])
def test_slow_loris_closed_at_deadline_while_a_client_works(make_server, mode: str) -> None:  # type: ignore[no-untyped-def]
    tls = () if mode == "plain" else ("--tls",)
    s = make_server(*tls, "--auth-timeout", "1", "--max-unauthenticated", "300")
    with connect(s) as good:
        worker = Worker(good)
        socks = [loris(s.port, mode) for _ in range(200)]
        try:
            replies = [read_to_close(sock) for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        worker.stop()
        assert good.run("echo still").stdout == b"still\n"
    if mode == "plain":
        assert all(FrameDecoder().feed(r)[0].get("code") == "auth_timeout" for r in replies)
    assert wait_until(lambda: sum(r["end"] == "auth_timeout" for r in s.audit_records("connection")) == 200)
    assert wait_until(lambda: any("not authenticated within 1 s" in line for line in s.log) or mode == "tls-handshake")


def test_flood_past_the_cap_is_refused_without_harming_sessions(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--max-unauthenticated", "10", "--max-conns", "40")
    with connect(s) as good:
        worker = Worker(good)
        flood = [socket.create_connection(("127.0.0.1", s.port), timeout=30) for _ in range(100)]
        try:
            first = []
            for sock in flood:
                dec = FrameDecoder()
                frames: list = []  # type: ignore[type-arg]
                while not frames:
                    frames = dec.feed(sock.recv(65536))
                first.append(frames[0])
            refused = [f for f in first if f.type == "error"]
            # Exactly the cap got a hello; every other one was told why, and closed.
            assert sum(f.type == "hello" for f in first) == 10
            assert len(refused) == 90 and {f.get("code") for f in refused} == {"too_many_connections"}
            assert all(read_to_close(sock) == b"" for sock, f in zip(flood, first, strict=True) if f.type == "error")
        finally:
            for sock in flood:
                sock.close()
        worker.stop()
        # The places come back once the flood is gone.
        assert wait_until(lambda: _can_connect(s))
    # Records are appended in batches, at most AUDIT_FLUSH_DELAY after they happen.
    assert wait_until(lambda: sum(r["end"] == "too_many_connections" for r in s.audit_records("connection")) >= 90)


def _can_connect(s: ServerProcess) -> bool:
    try:
        with connect(s) as c:
            return c.run("true").ok
    except rsh.RshError:
        return False


def test_max_conns_refusal_is_one_line_for_the_cli(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    s = make_server("--max-conns", "2")
    with connect(s), connect(s):
        r = subprocess.run(rsh_argv("exec", s.address, "--", "true"), env={**s.env, "RSH_TOKEN": s.token}, capture_output=True, timeout=60)
    assert r.returncode == 255
    assert r.stderr.decode().startswith("rsh: server busy: 2 connections open, the limit is 2") and r.stderr.count(b"\n") == 1


def test_max_commands_refuses_with_busy_and_the_connection_stays(make_server) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    s = make_server("--max-commands", "1")

    async def go() -> None:
        async with await rsh.connect_async(s.host, s.port, s.token) as a, await rsh.connect_async(s.host, s.port, s.token) as b:
            long = await a.start("echo started; exec sleep 30")
            await anext(aiter(long))
            with pytest.raises(RemoteError) as info:
                await b.run("true")
            assert info.value.code == "busy" and "limit is 1" in str(info.value)
            long.send_signal("KILL")
            await long.wait()

            async def b_runs() -> bool:
                try:
                    return (await b.run("echo next")).stdout == b"next\n"
                except RemoteError:
                    await asyncio.sleep(0.05)
                    return False

            for _ in range(200):
                if await b_runs():
                    break
            else:
                raise AssertionError("the slot never came back")

    asyncio.run(go())


def test_idle_connection_is_closed_but_a_long_command_is_not(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--idle-timeout", "0.5")
    with connect(s) as c:
        assert c.run("sleep 1.5; echo survived").stdout == b"survived\n"
    with RawPeer(s.port) as p:
        assert p.authenticate(s.token).type == "auth_ok"  # type: ignore[union-attr]
        frames = p.recv_until_closed()
    assert [(f.type, f.get("code")) for f in frames] == [("error", "idle_timeout")]
    assert wait_until(lambda: any(r["end"] == "idle_timeout" for r in s.audit_records("connection")))


def test_pipelined_guesses_get_one_answer(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = make_server()
    marker = tmp_path / "marker"
    with RawPeer(s.port) as p:
        ns = p.hello.get("nonce")
        guesses = b"".join(encode_frame("auth", {"nonce": f"{i:064x}", "mac": auth.client_mac(f"guess-{i}", ns, f"{i:064x}")}) for i in range(50))
        p.send_raw(guesses + encode_frame("exec", None, f"touch '{marker}'".encode()))
        frames = p.recv_until_closed()
    # One wrong auth, one answer after the delay; the rest were never looked at.
    assert [(f.type, f.get("code")) for f in frames] == [("error", "auth_failed")]
    assert wait_until(lambda: any("authentication failed" in line for line in s.log))
    s.stop()
    assert sum("authentication failed" in line for line in s.log) == 1
    assert not marker.exists()


def test_wrong_token_is_answered_after_the_delay_and_audited(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--auth-fail-delay", "0.2")
    with RawPeer(s.port) as p:
        assert [f.get("code") for f in [p.authenticate("nope")] if f is not None] == ["auth_failed"]
    assert wait_until(lambda: [r["end"] for r in s.audit_records("connection")] == ["auth_failed"])


def test_garbage_size_prefix_is_refused_before_the_deadline(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--auth-timeout", "30")
    with RawPeer(s.port) as p:
        p.send_raw(struct.pack("!I", 1 << 30))
        frames = p.recv_until_closed()
    assert [f.get("code") for f in frames] == ["header_too_large"]
