"""What TLS costs: 1 GiB of output and per-command latency with TLS on, as
ratios to TLS off (and to ssh, to a private sshd the bench starts on a free
loopback port when sshd is installed: bench/_sshd.py), all measured in the
same run.

Two servers on 127.0.0.1, one plain and one with ``--tls``; runs alternate
between them so drift on a noisy machine hits both alike.

    python bench/tls.py [--size 1G] [--runs 3] [--count 1000]

Throughput is ``rsh exec HOST -- head -c SIZE /dev/zero`` into /dev/null
(the whole client process, startup included).  Latency is sequential
``true`` commands on one open connection of the blocking client, and the
cost of a new connection (connect, TLS handshake, authentication).

Beside rsh, the same stream goes through a bare copy (BARE_SENDER and
BARE_RECEIVER: blocking sockets, no framing, 256 KiB reads, Python's ssl
with the server's own identity), plain and with TLS, in the same rounds.
Its TLS / plain is what TLS costs any Python program that moves these
bytes; rsh's plain stream splices the pipe into the socket, which the
bare copy cannot, and TLS cannot either, so rsh's own ratio is lower than
the bare one by as much as its plain stream is faster than the bare plain copy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import Server, spread
from _sshd import Multiplexed, Sshd

import rsh
from rsh.config import IDENTITY_FILE

# One connection at a time: run CMD, copy its output to the socket (TLS with
# the identity in argv[2], if given), close.
BARE_SENDER = r"""
import os, socket, subprocess, sys
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
ctx = None
if len(sys.argv) > 2:
    from pathlib import Path
    from rsh.net.tls import server_context
    ctx = server_context(Path(sys.argv[2]))
buf = memoryview(bytearray(262144))
while True:
    c, _ = srv.accept()
    if ctx is not None:
        c = ctx.wrap_socket(c, server_side=True)
    p = subprocess.Popen(["sh", "-c", sys.argv[1]], stdout=subprocess.PIPE)
    while n := os.readv(p.stdout.fileno(), (buf,)):
        c.sendall(buf[:n])
    p.wait()
    c.close()
"""

# Read everything from 127.0.0.1:argv[1] (TLS when argv[2] is "tls") into /dev/null.
BARE_RECEIVER = r"""
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "tls":
    from rsh.net.tls import client_context
    s = client_context().wrap_socket(s)
buf = memoryview(bytearray(262144))
out = os.open(os.devnull, os.O_WRONLY)
while n := s.recv_into(buf):
    os.write(out, buf[:n])
"""


class BareCopy:
    """BARE_SENDER on a free loopback port; ``stream()`` times one BARE_RECEIVER process against it."""

    def __init__(self, env: dict[str, str], cmd: str, identity: str | None) -> None:
        self.env = env
        self.tls = identity is not None
        self.proc = subprocess.Popen([sys.executable, "-c", BARE_SENDER, cmd, *([identity] if identity else [])], stdout=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stream(self) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", BARE_RECEIVER, str(self.port), "tls" if self.tls else "plain"], env=self.env, check=True)
        return time.perf_counter() - t0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def stream(server: Server, cmd: str) -> float:
    extra = ["--fingerprint", server.fingerprint] if server.fingerprint else []
    argv = [sys.executable, "-m", "rsh", "exec", "--token-file", server.token_file, *extra, f"127.0.0.1:{server.port}", "--", cmd]
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, env=server.env, check=True)
    return time.perf_counter() - t0


def connect(server: Server) -> rsh.Client:
    return rsh.connect("127.0.0.1", server.port, server.token, fingerprint=server.fingerprint)


def per_command(client: rsh.Client, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        client.run("true")
    return (time.perf_counter() - t0) / n


def per_connect(server: Server, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        connect(server).close()
    return (time.perf_counter() - t0) / n


class Ssh:
    """``ssh`` with its default cipher to a private sshd on loopback (bench/_sshd.py), over one ControlMaster connection."""

    def __init__(self) -> None:
        self.sshd = Sshd()
        self.reason = self.sshd.reason
        self.mux: Multiplexed | None = None
        if self.sshd.available:
            try:
                self.mux = self.sshd.multiplexed()
            except RuntimeError as e:
                self.reason = str(e)

    @property
    def available(self) -> bool:
        return not self.reason

    def stream(self, cmd: str) -> float:
        assert self.mux is not None
        t0 = time.perf_counter()
        subprocess.run(self.mux.ssh(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t0

    def per_command(self, n: int) -> float:
        # Over the one multiplexed (ControlMaster) connection, the closest ssh has to an open session.
        assert self.mux is not None
        argv = self.mux.ssh("true")
        t0 = time.perf_counter()
        for _ in range(n):
            subprocess.run(argv, stdin=subprocess.DEVNULL, check=True)
        return (time.perf_counter() - t0) / n

    def close(self) -> None:
        if self.mux is not None:
            self.mux.close()
        self.sshd.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="head -c SIZE (default 1G)")
    ap.add_argument("--runs", type=int, default=5, help="streaming runs per side (median)")
    ap.add_argument("--count", type=int, default=1000, help="sequential commands per side")
    ap.add_argument("--connects", type=int, default=200, help="new connections per side")
    ap.add_argument("--rounds", type=int, default=4, help="alternate plain and TLS this many times")
    args = ap.parse_args()
    cmd = f"head -c {args.size} /dev/zero"
    mib = {"K": 1 / 1024, "M": 1, "G": 1024}.get(args.size[-1].upper(), 1 / 2**20) * float(args.size.rstrip("KMGkmg"))

    plain, tls = Server(), Server("--tls")
    bare_plain = BareCopy(plain.env, cmd, None)
    bare_tls = BareCopy(tls.env, cmd, os.path.join(tls.tmp, IDENTITY_FILE))
    ssh = Ssh()
    try:
        streams: dict[str, list[float]] = {"plain": [], "tls": [], "ssh": [], "bare_plain": [], "bare_tls": []}
        for _ in range(args.runs):
            streams["plain"].append(stream(plain, cmd))
            streams["tls"].append(stream(tls, cmd))
            streams["bare_plain"].append(bare_plain.stream())
            streams["bare_tls"].append(bare_tls.stream())
            if ssh.available:
                streams["ssh"].append(ssh.stream(cmd))
        lat: dict[str, float] = {"plain": 0.0, "tls": 0.0, "ssh": 0.0}
        lat_ratios: list[float] = []
        conn: dict[str, float] = {"plain": 0.0, "tls": 0.0}
        per = max(1, args.count // args.rounds)
        with connect(plain) as pc, connect(tls) as tc:
            pc.run("true")
            tc.run("true")
            for _ in range(args.rounds):
                p_lat, t_lat = per_command(pc, per), per_command(tc, per)
                lat["plain"] += p_lat / args.rounds
                lat["tls"] += t_lat / args.rounds
                lat_ratios.append(t_lat / p_lat)
                conn["plain"] += per_connect(plain, max(1, args.connects // args.rounds)) / args.rounds
                conn["tls"] += per_connect(tls, max(1, args.connects // args.rounds)) / args.rounds
        if ssh.available:
            lat["ssh"] = ssh.per_command(min(per, 200))
        rss = {"plain": plain.peak_rss_mib(), "tls": tls.peak_rss_mib()}
    finally:
        plain.stop()
        tls.stop()
        bare_plain.stop()
        bare_tls.stop()
        ssh.close()

    med = {k: statistics.median(v) for k, v in streams.items() if v}
    print(f"streaming {args.size} of output through `rsh exec` to /dev/null, median of {args.runs} runs")
    print(f"  TLS off : {med['plain']:6.2f} s  {mib / med['plain']:7.0f} MiB/s")
    print(f"  TLS on  : {med['tls']:6.2f} s  {mib / med['tls']:7.0f} MiB/s")
    stream_ratios = [p / t for p, t in zip(streams["plain"], streams["tls"], strict=True)]
    print(f"  throughput TLS on / off, per run : {spread(stream_ratios)}   (target >= 0.70)")
    print(f"  bare copy, plain : {med['bare_plain']:6.2f} s  {mib / med['bare_plain']:7.0f} MiB/s   (blocking sockets, no framing)")
    print(f"  bare copy, TLS   : {med['bare_tls']:6.2f} s  {mib / med['bare_tls']:7.0f} MiB/s")
    bare_ratios = [p / t for p, t in zip(streams["bare_plain"], streams["bare_tls"], strict=True)]
    print(f"  bare copy TLS / plain, per run   : {spread(bare_ratios)}   (what TLS costs the bare copy)")
    vs_bare = [b / t for b, t in zip(streams["bare_tls"], streams["tls"], strict=True)]
    print(f"  throughput rsh TLS / bare TLS copy, per run : {spread(vs_bare)}")
    print(f"  throughput rsh plain / bare plain copy      : {med['bare_plain'] / med['plain']:5.2f}   (rsh splices; under TLS it cannot)")
    if "ssh" in med:
        print(f"  ssh     : {med['ssh']:6.2f} s  {mib / med['ssh']:7.0f} MiB/s")
        print(f"  throughput TLS on / ssh  : {med['ssh'] / med['tls']:5.2f}")
    print(f"{per * args.rounds} sequential `true` on one open connection (blocking client)")
    print(f"  TLS off : {lat['plain'] * 1000:6.3f} ms each")
    print(f"  TLS on  : {lat['tls'] * 1000:6.3f} ms each")
    print(f"  latency TLS on / off, per round  : {spread(lat_ratios)}   (target <= 1.10)")
    if ssh.available:
        print(f"  ssh (ControlMaster) : {lat['ssh'] * 1000:6.3f} ms each")
        print(f"  latency TLS on / ssh     : {lat['tls'] / lat['ssh']:5.2f}")
    print(f"new connection (connect, handshake, auth), {max(1, args.connects // args.rounds) * args.rounds} each")
    print(f"  TLS off : {conn['plain'] * 1000:6.3f} ms   TLS on : {conn['tls'] * 1000:6.3f} ms   ratio {conn['tls'] / conn['plain']:5.2f}")
    print(f"peak server RSS: TLS off {rss['plain']:.1f} MiB, TLS on {rss['tls']:.1f} MiB")
    if not ssh.available:
        print(f"ssh: not measured ({ssh.reason})")


if __name__ == "__main__":
    main()
