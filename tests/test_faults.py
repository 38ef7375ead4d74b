"""Faults: a server killed mid-transfer, a client killed mid-command, a network that goes silent mid-stream.

Each leaves nothing behind: no partial file under the target name, no
remote process, no connection held open.  Waits are guards (wait_until),
bounded by what the server promises (its idle time, the TERM-then-KILL grace).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import rsh
from rsh.protocol.frames import Frame

from .conftest import ServerFactory, pid_alive, rsh_argv, wait_until
from .proxy import Listener, Proxy, _shut
from .rawpeer import RawPeer


def test_a_server_killed_mid_transfer_leaves_no_partial_file_under_the_target_name(make_server: ServerFactory, tmp_path: Path) -> None:
    s = make_server()
    target = tmp_path / "dest" / "big.bin"
    target.parent.mkdir()
    target.write_bytes(b"the old contents\n")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(1 << 20) * 16)
    with Proxy(s.port, hold="up", after=8 << 20) as proxy:
        c = rsh.connect("127.0.0.1", proxy.port, s.token)
        failed: list[BaseException] = []

        def put() -> None:
            try:
                c.put(str(source), str(target))
            except BaseException as exc:  # noqa: BLE001 - expected: the server dies under it
                failed.append(exc)

        t = threading.Thread(target=put, daemon=True)
        t.start()
        assert proxy.holding.wait(30)  # half the file is on the server's side
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait(10)
    t.join(30)
    c.close()
    assert failed, "the put cannot have succeeded"
    assert target.read_bytes() == b"the old contents\n"
    # At most a hidden temporary (.rsh-...) is left beside it.
    assert {e for e in os.listdir(target.parent) if not e.startswith(".rsh-")} == {target.name}


def test_a_client_killed_mid_command_leaves_no_remote_process(make_server: ServerFactory) -> None:
    s = make_server()
    client = subprocess.Popen(
        rsh_argv("exec", s.address, "--", "echo $$; exec sleep 300"), env={**s.env, "RSH_TOKEN": s.token}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert client.stdout is not None
    pid = int(client.stdout.readline())
    assert pid_alive(pid)
    client.kill()
    client.wait(10)
    client.stdout.close()
    # The server sees the connection close: TERM at once, KILL 2 s later.
    assert wait_until(lambda: not pid_alive(pid), timeout=15)
    assert wait_until(lambda: any(r.get("aborted") for r in s.audit_records("command")))


class Blackhole(Listener):
    """Forward one connection to *upstream* until ``cut()``; then read nothing either way and send nothing, holding both open."""

    def __init__(self, upstream: int) -> None:
        super().__init__()
        self.upstream = upstream
        self._cut = threading.Event()
        self._threads[0].start()

    def cut(self) -> None:
        self._cut.set()

    def _accept(self) -> None:
        client = next(self.accepted(), None)
        if client is None:
            return
        server = socket.create_connection(("127.0.0.1", self.upstream))
        self._socks += [client, server]
        for src, dst in ((client, server), (server, client)):
            t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
            self._threads.append(t)
            t.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.1)
        try:
            while not self._cut.is_set():
                try:
                    data = src.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._cut.wait()
        if self._stopping():
            _shut(src, dst)

    def _stopping(self) -> bool:
        return self.listener.fileno() == -1

    def close(self) -> None:
        self._cut.set()
        super().close()


def test_a_network_that_goes_silent_mid_stream_is_noticed_within_the_idle_time(make_server: ServerFactory) -> None:
    s = make_server("--idle-timeout", "1")
    with Blackhole(s.port) as hole, RawPeer(hole.port) as p:
        assert p.authenticate(s.token).type == "auth_ok"  # type: ignore[union-attr]
        p.send("exec", None, b"echo $$; exec yes")
        first = p.recv()
        assert isinstance(first, Frame) and first.type == "stdout"
        pid = int(first.payload.split(b"\n")[0])
        assert pid_alive(pid)
        hole.cut()  # from now on nothing moves, and neither side is told
        # Its output stops moving: within the idle time the server closes the
        # connection, and with it stops the command.
        assert wait_until(lambda: not pid_alive(pid), timeout=20)
        assert wait_until(lambda: [r["end"] for r in s.audit_records("connection")] == ["idle_timeout"])
