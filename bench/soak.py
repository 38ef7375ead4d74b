"""A bounded soak: commands, transfers, slow-loris and dropped connections at once, for minutes.

    python bench/soak.py [--minutes 10] [--seconds N]

Against one server with the default limits it keeps up, all at once: four
clients running short commands (with output, with stdin), one copying a
file up and back down and comparing, 50 slow-loris connections (reopened
as the server closes them), and one client that starts a command and
drops its connection every half second.  The server's RSS and open
descriptors are sampled: after a warm-up (a tenth of the time, at least
10 s), at the end with the load still on, at their peak, and once the load
has stopped.  Flat means the end is where the warm-up left it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, Server

import rsh
from rsh.protocol import auth
from rsh.protocol.frames import Frame, FrameDecoder, encode_frame

sys.path.insert(0, str(ROOT))
from tests.swarm import Swarm  # noqa: E402 - after the path it needs


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Load:
    """The workers; each counts what it did and what went wrong."""

    def __init__(self, server: Server, tmp: Path) -> None:
        self.server, self.tmp = server, tmp
        self.stop = threading.Event()
        self.done: dict[str, int] = {"commands": 0, "transfers": 0, "drops": 0}
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.commands, args=(i,), daemon=True) for i in range(4)]
        self.threads += [threading.Thread(target=self.transfers, daemon=True), threading.Thread(target=self.drops, daemon=True)]

    def connect(self) -> rsh.Client:
        return rsh.connect("127.0.0.1", self.server.port, self.server.token, timeout=30)

    def guard(self, what: str, exc: BaseException) -> None:
        self.errors.append(f"{what}: {type(exc).__name__}: {exc}")
        time.sleep(0.5)

    def commands(self, i: int) -> None:
        while not self.stop.is_set():
            try:
                with self.connect() as c:
                    for n in range(200):
                        if self.stop.is_set():
                            return
                        kind = n % 4
                        if kind == 0:
                            assert c.run("true").exit_code == 0
                        elif kind == 1:
                            assert c.run(f"echo {i}-{n}").stdout == f"{i}-{n}\n".encode()
                        elif kind == 2:
                            assert len(c.run("head -c 300000 /dev/zero").stdout) == 300000
                        else:
                            assert c.run("cat", input=b"x" * 65536).stdout == b"x" * 65536
                        self.done["commands"] += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.guard("commands", exc)

    def transfers(self) -> None:
        src = self.tmp / "src.bin"
        src.write_bytes(os.urandom(2 << 20))
        want = hashlib.sha256(src.read_bytes()).hexdigest()
        remote = str(self.tmp / "remote.bin")
        back = self.tmp / "back.bin"
        while not self.stop.is_set():
            try:
                with self.connect() as c:
                    c.put(str(src), remote)
                    c.get(remote, str(back))
                assert hashlib.sha256(back.read_bytes()).hexdigest() == want
                back.unlink()
                self.done["transfers"] += 1
            except Exception as exc:  # noqa: BLE001
                self.guard("transfers", exc)

    def drops(self) -> None:
        token = self.server.token
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
                    dec = FrameDecoder()
                    hello = next_frame(sock, dec)
                    nonce = auth.new_nonce()
                    sock.sendall(encode_frame("auth", {"nonce": nonce, "mac": auth.client_mac(token, hello.get("nonce"), nonce)}))
                    assert next_frame(sock, dec).type == "auth_ok"
                    sock.sendall(encode_frame("exec", None, b"sleep 30"))
                    time.sleep(0.2)
                    # A reset, mid-command: the server must stop it and forget the connection.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.done["drops"] += 1
                time.sleep(0.3)
            except Exception as exc:  # noqa: BLE001
                self.guard("drops", exc)


def next_frame(sock: socket.socket, dec: FrameDecoder) -> Frame:
    """The next frame (the soak's frames come one per read: hello, then auth_ok)."""
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        frames = dec.feed(data)
        if frames:
            return frames[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seconds", type=float, help="run this long instead (a short soak)")
    args = p.parse_args()
    duration = args.seconds if args.seconds is not None else args.minutes * 60
    warm = max(10.0, duration / 10)
    server = Server()
    pid = server.proc.pid
    with tempfile.TemporaryDirectory(prefix="rsh-soak-") as tmp:
        load = Load(server, Path(tmp))
        peak = {"rss": 0.0, "fds": 0}
        try:
            with Swarm(server.port, 50, "loris") as swarm:
                for t in load.threads:
                    t.start()
                t0 = time.monotonic()
                start = None
                trail = []  # RSS at every tenth of the run
                while (elapsed := time.monotonic() - t0) < duration:
                    time.sleep(0.5)
                    rss, n = rss_mib(pid), fds(pid)
                    if elapsed >= duration * (len(trail) + 1) / 10:
                        trail.append(f"{rss:.0f}")
                    if elapsed >= warm:
                        if start is None:
                            start = (rss, n)
                        peak["rss"], peak["fds"] = max(peak["rss"], rss), max(peak["fds"], n)
                end = (rss_mib(pid), fds(pid))
                load.stop.set()
                for t in load.threads:
                    t.join(60)
                loris = sum(swarm.ends.values())
            time.sleep(3)  # dropped commands killed and reaped, lorises gone
            after = (rss_mib(pid), fds(pid))
        finally:
            server.stop()
    assert start is not None
    print(f"soak {duration:.0f} s (warm-up {warm:.0f} s): {load.done} done, {loris} slow-loris connections closed by the server, {len(load.errors)} errors")
    for e in load.errors[:5]:
        print("  ", e)
    print(f"RSS MiB: after warm-up {start[0]:.1f}, end {end[0]:.1f} (peak {peak['rss']:.1f}), load stopped {after[0]:.1f}; by tenths {' '.join(trail)}")
    print(f"descriptors: after warm-up {start[1]}, end {end[1]} (peak {peak['fds']}), load stopped {after[1]}")


if __name__ == "__main__":
    main()
