"""Per-command latency: 1,000 sequential `true` on one open rsh connection,
against a local ``subprocess.run(["sh", "-c", "true"])`` loop in the same run.

    python bench/latency.py [--count 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from _common import Server

import rsh


def local_loop(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(["sh", "-c", "true"])
    return (time.perf_counter() - t0) / n


def rsh_loop(client: rsh.Client, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        client.run("true")
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="alternate local and rsh this many times")
    args = ap.parse_args()
    server = Server()
    try:
        with rsh.connect("127.0.0.1", server.port, token=server.token) as client:
            client.run("true")  # warm up
            per = args.count // args.rounds
            local = rshs = 0.0
            for _ in range(args.rounds):
                local += local_loop(per)
                rshs += rsh_loop(client, per)
    finally:
        server.stop()
    local /= args.rounds
    rshs /= args.rounds
    print(f"{args.count} sequential `true` commands")
    print(f"  local subprocess.run(['sh','-c','true']): {local * 1000:6.3f} ms each")
    print(f"  rsh, one open connection               : {rshs * 1000:6.3f} ms each")
    print(f"  ratio rsh / local                      : {rshs / local:6.2f}   (target <= 1.30)")


if __name__ == "__main__":
    main()
