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
from rsh.protocol.frames import Frame, FrameDecoder, encode_frame

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
    s = make_server(*tls, "--auth-timeout", "1", "--max-unauthenticated", "300", "--max-conns", "300")
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


def first_frame(sock: socket.socket) -> Frame:
    dec = FrameDecoder()
    frames: list[Frame] = []
    while not frames:
        data = sock.recv(65536)
        assert data, "closed before a frame"
        frames = dec.feed(data)
    return frames[0]


def test_a_flood_past_the_cap_waits_its_turn_without_harming_sessions(make_server) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--max-unauthenticated", "10", "--max-conns", "40", "--auth-timeout", "3")
    with connect(s) as good:
        worker = Worker(good)
        flood = [socket.create_connection(("127.0.0.1", s.port), timeout=30) for _ in range(100)]
        try:
            # Nobody is refused: each gets its hello in turn, as the ones that
            # say nothing are closed to make room for it.
            assert [first_frame(sock).type for sock in flood] == ["hello"] * 100
            ends = [FrameDecoder().feed(read_to_close(sock)) for sock in flood]
        finally:
            for sock in flood:
                sock.close()
        worker.stop()
        assert good.run("echo still").stdout == b"still\n"
    codes = [e[0].get("code") for e in ends]
    # Those with someone waiting behind them were evicted; the last ten, with nobody, timed out.
    assert codes.count("too_many_connections") == 90 and codes.count("auth_timeout") == 10
    assert all("without authenticating, to make room" in e[0].get("message") for e in ends if e[0].get("code") == "too_many_connections")
    assert wait_until(lambda: sum(r["end"] == "evicted" for r in s.audit_records("connection")) == 90)


def test_at_the_connection_cap_an_idle_session_makes_room_and_a_busy_one_does_not(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    s = make_server("--max-conns", "2")
    marker = tmp_path / "started"
    with connect(s) as busy, connect(s) as idle:
        held = threading.Thread(target=lambda: busy.run(f"touch '{marker}'; sleep 3"), daemon=True)
        held.start()
        assert wait_until(marker.exists)
        r = subprocess.run(rsh_argv("exec", s.address, "--", "echo in"), env={**s.env, "RSH_TOKEN": s.token}, capture_output=True, timeout=60)
        assert (r.returncode, r.stdout) == (0, b"in\n"), r.stderr
        with pytest.raises(rsh.RshError, match="closed while idle, to make room"):
            idle.run("true")
        held.join(30)
        assert busy.run("echo busy").stdout == b"busy\n"


def test_past_max_commands_an_exec_waits_and_its_wait_counts(make_server) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    s = make_server("--max-commands", "1")

    async def go() -> None:
        async with await rsh.connect_async(s.host, s.port, s.token) as a, await rsh.connect_async(s.host, s.port, s.token) as b:
            long = await a.start("echo started; exec sleep 30")
            await anext(aiter(long))
            waiting = asyncio.ensure_future(b.run("cat; echo next", input=b"kept\n"))
            await asyncio.sleep(0.5)
            assert not waiting.done()  # queued, not refused
            long.send_signal("KILL")
            await long.wait()
            result = await waiting
            assert (result.stdout, result.exit_code) == (b"kept\nnext\n", 0)
            assert result.elapsed >= 0.5  # the wait counts
            assert (await b.run("echo after")).stdout == b"after\n"

    asyncio.run(go())


def test_the_exec_queue_has_a_bound_a_wait_limit_and_keeps_the_timeout(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = make_server("--max-commands", "1", "--max-queued", "1", "--queue-timeout", "1")
    marker = tmp_path / "started"
    with connect(s) as a, connect(s) as b, connect(s) as c:
        held = threading.Thread(target=lambda: a.run(f"touch '{marker}'; sleep 4"), daemon=True)
        held.start()
        assert wait_until(marker.exists)
        said: list[str] = []

        def one(client: rsh.Client) -> None:
            with pytest.raises(RemoteError) as info:
                client.run("true")
            assert info.value.code == "busy"
            said.append(str(info.value))

        both = [threading.Thread(target=one, args=(x,), daemon=True) for x in (b, c)]
        for t in both:
            t.start()
        for t in both:
            t.join(30)
        # One waited in the queue for its limit; the other found the queue full.
        assert len(said) == 2 and sum("waited 1 s for one of 1 command slots" in m for m in said) == 1
        assert sum("1 commands running and 1 waiting" in m for m in said) == 1
        # A client's timeout counts from its exec, the wait included.
        with pytest.raises(rsh.CommandTimeout) as timed:
            c.run("echo never", timeout=0.3)
        assert timed.value.result.timed_out and timed.value.result.stdout == b""
        held.join(30)
        assert c.run("echo done").stdout == b"done\n"


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
