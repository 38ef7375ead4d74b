"""Per-command latency: 1,000 sequential `true` on one open rsh connection,
against a local ``subprocess.run(["sh", "-c", "true"])`` loop in the same run.

    python bench/latency.py [--count 1000] [--block 50] [--cold 30]

It also times a cold ``rsh exec HOST -- true``, a new client process each
time as a script runs it, against starting the same Python with ``-c pass``:
what is left between the two is rsh's own start-up, connection and command.

Besides wall time it prints the CPU time each side spends per command (from
/proc/PID/schedstat, Linux only).  The client, the server and the command
depend on each other in turn, so on a small machine they often run one
after another on a single CPU, and every microsecond any of them spends
shows in the latency: the CPU columns say where it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

from _common import Server, spread

import rsh

# About the least a Python client and server can do per command, for scale: a
# blocking server that reads one frame, spawns through the same
# _posixsubprocess.fork_exec rsh uses, waits on a pidfd, reads both pipes and
# writes one JSON frame back.  No asyncio, no layers, no checks.
BARE_SERVER = r"""
import json, os, select, socket
from _posixsubprocess import fork_exec
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
c, _ = srv.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
null = os.open(os.devnull, os.O_RDONLY)
env = [k + b"=" + v for k, v in os.environb.items()]
buf = bytearray(65536)
while n := c.recv_into(buf):
    hlen = int.from_bytes(buf[:4], "big")
    size = json.loads(bytes(buf[4 : 4 + hlen]))["size"]
    argv = [b"/bin/sh", b"-c", bytes(buf[4 + hlen : 4 + hlen + size])]
    (o_r, o_w), (e_r, e_w), (x_r, x_w) = (os.pipe2(os.O_CLOEXEC) for _ in range(3))
    pid = fork_exec(argv, argv[:1], False, (), None, env, null, -1, -1, o_w, -1, e_w, x_r, x_w,
                    True, True, -1, None, None, None, -1, None, True)
    os.close(x_w); os.read(x_r, 4096); os.close(x_r); os.close(o_w); os.close(e_w)
    pidfd = os.pidfd_open(pid)
    select.select([pidfd], [], [])
    _, status = os.waitpid(pid, 0)
    out, err = os.read(o_r, 65536), os.read(e_r, 65536)
    for fd in (pidfd, o_r, e_r):
        os.close(fd)
    h = json.dumps({"type": "exit", "exit_code": os.waitstatus_to_exitcode(status), "stdout_bytes": len(out), "stderr_bytes": len(err)}).encode()
    c.sendall(len(h).to_bytes(4, "big") + h)
"""


def cpu_ns(pid: int) -> int:
    """Time *pid*'s main thread has run, in ns (0 where /proc has no schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return 0


def local_loop(n: int) -> tuple[float, int]:
    c0, t0 = cpu_ns(os.getpid()), time.perf_counter()
    for _ in range(n):
        subprocess.run(["sh", "-c", "true"])
    return time.perf_counter() - t0, cpu_ns(os.getpid()) - c0


def rsh_loop(client: rsh.Client, server_pid: int, n: int) -> tuple[float, int, int]:
    c0, s0, t0 = cpu_ns(os.getpid()), cpu_ns(server_pid), time.perf_counter()
    for _ in range(n):
        client.run("true")
    return time.perf_counter() - t0, cpu_ns(os.getpid()) - c0, cpu_ns(server_pid) - s0


def bare_loop(sock: socket.socket, n: int) -> float:
    """*n* commands through BARE_SERVER; return the seconds they took."""
    head = json.dumps({"type": "exec", "size": 4}).encode()
    frame = len(head).to_bytes(4, "big") + head + b"true"
    t0 = time.perf_counter()
    for _ in range(n):
        sock.sendall(frame)
        json.loads(sock.recv(65536)[4:])
    return time.perf_counter() - t0


def async_loop(port: int, token: str, server_pid: int, n: int, turns: int) -> list[tuple[float, float, int, int]]:
    """*turns* turns of *n* ``await client.run("true")`` on one asyncio connection, each after a local turn.

    Returns (local seconds, rsh seconds, client CPU ns, server CPU ns) per turn.
    """

    async def go() -> list[tuple[float, float, int, int]]:
        out = []
        async with await rsh.connect_async("127.0.0.1", port, token=token) as client:
            await client.run("true")
            for _ in range(turns):
                local = local_loop(n)[0]
                c0, s0, t0 = cpu_ns(os.getpid()), cpu_ns(server_pid), time.perf_counter()
                for _ in range(n):
                    await client.run("true")
                out.append((local, time.perf_counter() - t0, cpu_ns(os.getpid()) - c0, cpu_ns(server_pid) - s0))
        return out

    return asyncio.run(go())


def send_after_pause_us(pause: float, n: int = 40) -> float:
    """Median microseconds one 40-byte loopback TCP send takes in the sender, each after *pause* seconds asleep.

    For reading the other figures across machines.  Every step of a command
    runs right after a wait (each waits for the one before), and on some
    hosts what runs first after a wait runs several times slower: caches
    another guest filled meanwhile, a virtual CPU woken from halt.  (Seen:
    130 us after 20 ms and 25 us after 0.5 ms on a 2-vCPU AMD EPYC, the same
    with both ends on one CPU.)
    """
    srv = socket.create_server(("127.0.0.1", 0))
    reader = subprocess.Popen([sys.executable, "-c", _DISCARD, str(srv.getsockname()[1])])
    times = []
    try:
        sock, _ = srv.accept()
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(n):
                time.sleep(pause)
                t0 = time.perf_counter()
                sock.send(b"x" * 40)
                times.append(time.perf_counter() - t0)
    finally:
        srv.close()
        reader.wait(10)  # it ends at our close
    return statistics.median(times) * 1e6


_DISCARD = "import socket, sys\nc = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\nwhile c.recv(4096):\n    pass"


def median_run_ms(argv: list[str], env: dict[str, str], n: int) -> float:
    """Median wall time of running *argv* to completion, in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--block", type=int, default=50, help="commands per turn; local and rsh take turns")
    ap.add_argument("--cold", type=int, default=30, help="runs of the cold `rsh exec` (0: skip it)")
    args = ap.parse_args()
    server = Server()
    blocks = max(1, args.count // args.block)
    local = rshs = 0.0
    local_cpu = client_cpu = server_cpu = 0
    cold_ratios: list[float] = []
    bare = 0.0
    bare_ratios: list[float] = []
    bare_server = subprocess.Popen([sys.executable, "-c", BARE_SERVER], stdout=subprocess.PIPE, text=True)
    assert bare_server.stdout is not None
    bare_sock = socket.create_connection(("127.0.0.1", int(bare_server.stdout.readline())))
    bare_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ratios = []
    try:
        with rsh.connect("127.0.0.1", server.port, token=server.token) as client:
            client.run("true")  # warm up
            # Short alternating turns: this host's speed drifts over seconds,
            # and a drift must hit both loops alike, not one of them.
            for _ in range(blocks):
                t, c = local_loop(args.block)
                local += t
                local_cpu += c
                t2, c, s = rsh_loop(client, server.proc.pid, args.block)
                rshs += t2
                client_cpu += c
                server_cpu += s
                ratios.append(t2 / t)
                t3 = bare_loop(bare_sock, args.block)
                bare += t3
                bare_ratios.append(t3 / t)
        # The asyncio client, against local turns of its own.
        async_turns = async_loop(server.port, server.token, server.proc.pid, args.block, blocks)
        if args.cold:
            exec_argv = [sys.executable, "-m", "rsh", "exec", "--token-file", server.token_file, f"127.0.0.1:{server.port}", "--", "true"]
            median_run_ms(exec_argv, server.env, 1)  # caches the bytecode
            # One of each in turn, so that a drift of this host's speed hits both alike.
            pairs = [(median_run_ms([sys.executable, "-c", "pass"], server.env, 1), median_run_ms(exec_argv, server.env, 1)) for _ in range(args.cold)]
            python_ms = statistics.median(p for p, _ in pairs)
            exec_ms = statistics.median(e for _, e in pairs)
            cold_ratios = [e / p for p, e in pairs]
    finally:
        server.stop()
        bare_sock.close()
        bare_server.wait()
    n = args.block * blocks
    us = 1e6 / n
    ratios.sort()
    print(f"{n} sequential `true` commands, in {blocks} alternating turns of {args.block}")
    print(f"  local subprocess.run(['sh','-c','true']): {local * us / 1000:6.3f} ms each   (parent CPU {local_cpu / 1000 / n:5.0f} us)")
    print(
        f"  rsh, one open connection               : {rshs * us / 1000:6.3f} ms each   "
        f"(client CPU {client_cpu / 1000 / n:5.0f} us, server CPU {server_cpu / 1000 / n:5.0f} us)"
    )
    print(f"  ratio rsh / local                      : {rshs / local:6.2f}   (target <= 1.20)")
    print(
        f"  per turn: median {statistics.median(ratios):.2f}, middle half {ratios[len(ratios) // 4]:.2f} to {ratios[(3 * len(ratios)) // 4]:.2f},"
        f" all {ratios[0]:.2f} to {ratios[-1]:.2f}"
    )
    print(
        f"  floor: a bare Python client and server : {bare * us / 1000:6.3f} ms each   ratio to local {bare / local:.2f}, "
        f"rsh / floor {rshs / bare:.2f}   (for scale: see BARE_SERVER)"
    )
    print(f"  per turn, floor / local: {spread(bare_ratios)}")
    async_local, a_wall, a_cpu, a_srv = (sum(t[i] for t in async_turns) for i in range(4))
    print(
        f"  rsh, asyncio client (AsyncClient.run)  : {a_wall * us / 1000:6.3f} ms each   "
        f"(client CPU {a_cpu / 1000 / n:5.0f} us, server CPU {a_srv / 1000 / n:5.0f} us)"
    )
    print(f"  ratio asyncio rsh / local              : {a_wall / async_local:6.2f}   (target <= 1.20)")
    print(f"  per turn: {spread([t[1] / t[0] for t in async_turns])}")
    print(
        f"this host, for scale: a 40-byte loopback send takes {send_after_pause_us(0.02):.0f} us after 20 ms asleep, "
        f"{send_after_pause_us(0.0005):.0f} us after 0.5 ms (see send_after_pause_us)"
    )
    if args.cold:
        print(f"cold, a new process each time (median of {args.cold})")
        print(f"  python -c pass                         : {python_ms:6.1f} ms")
        print(f"  rsh exec HOST -- true                  : {exec_ms:6.1f} ms   ({exec_ms / python_ms:.1f}x python -c pass)")
        print(f"  ratio per pair (run in turn)           : {spread(cold_ratios)}   (target <= 3)")


if __name__ == "__main__":
    main()
