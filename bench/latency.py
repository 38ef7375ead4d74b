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
import os
import statistics
import subprocess
import sys
import time

from _common import Server, spread

import rsh


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
    async_local, a_wall, a_cpu, a_srv = (sum(t[i] for t in async_turns) for i in range(4))
    print(
        f"  rsh, asyncio client (AsyncClient.run)  : {a_wall * us / 1000:6.3f} ms each   "
        f"(client CPU {a_cpu / 1000 / n:5.0f} us, server CPU {a_srv / 1000 / n:5.0f} us)"
    )
    print(f"  ratio asyncio rsh / local              : {a_wall / async_local:6.2f}   (target <= 1.20)")
    print(f"  per turn: {spread([t[1] / t[0] for t in async_turns])}")
    if args.cold:
        print(f"cold, a new process each time (median of {args.cold})")
        print(f"  python -c pass                         : {python_ms:6.1f} ms")
        print(f"  rsh exec HOST -- true                  : {exec_ms:6.1f} ms   ({exec_ms / python_ms:.1f}x python -c pass)")
        print(f"  ratio per pair (run in turn)           : {spread(cold_ratios)}   (target <= 3)")


if __name__ == "__main__":
    main()
