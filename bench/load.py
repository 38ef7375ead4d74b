"""Many clients at once: N clients x M `true` each, against the same commands run one after another.

    python bench/load.py [--clients 500] [--commands 20] [--runs 3] [--procs 4]

For each run, against a fresh server with the default limits: the
commands per second and the p50/p99 latency of the burst (all clients
connect at once, each runs its M commands on one connection), then, in the
same run, of ``--sequential`` commands on one connection alone; the ratios
of the two; and the server's RSS and open descriptors at their peak and
once every client has gone.  The clients are threads spread over
``--procs`` processes, so that the client side is not one GIL.  Across runs
it prints the median and the spread (min-max).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from _common import Server

import rsh


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def client_proc(port: int, token: str, clients: int, commands: int, start_at: float, out: Any) -> None:
    """One process's share of the clients: threads that each connect and run *commands* `true`."""
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        mine = []
        try:
            time.sleep(max(0.0, start_at - time.time()))
            with rsh.connect("127.0.0.1", port, token, timeout=120) as c:
                for _ in range(commands):
                    t0 = time.perf_counter()
                    r = c.run("true")
                    mine.append(time.perf_counter() - t0)
                    if r.exit_code != 0:
                        errors.append(f"exit {r.exit_code}")
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send((lat, errors))
    out.close()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def one_run(args: argparse.Namespace) -> dict[str, float]:
    server = Server()
    pid = server.proc.pid
    try:
        # The same commands one after another on one connection.
        seq = []
        with rsh.connect("127.0.0.1", server.port, server.token) as c:
            for _ in range(20):
                c.run("true")  # warm
            t0 = time.perf_counter()
            for _ in range(args.sequential):
                t1 = time.perf_counter()
                c.run("true")
                seq.append(time.perf_counter() - t1)
            seq_rate = args.sequential / (time.perf_counter() - t0)
        time.sleep(0.5)
        base_rss, base_fds = rss_mib(pid), fds(pid)  # warm and idle

        peak = {"rss": base_rss, "fds": base_fds}
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                try:
                    peak["rss"] = max(peak["rss"], rss_mib(pid))
                    peak["fds"] = max(peak["fds"], fds(pid))
                except OSError:
                    pass
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        ctx = multiprocessing.get_context("fork")
        start_at = time.time() + 1.0
        share = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
        pipes, procs = [], []
        for n in share:
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=client_proc, args=(server.port, server.token, n, args.commands, start_at, w))
            p.start()
            w.close()
            pipes.append(r)
            procs.append(p)
        lat: list[float] = []
        errors: list[str] = []
        for r in pipes:
            got_lat, got_err = r.recv()
            lat += got_lat
            errors += got_err
        for p in procs:
            p.join()
        wall = time.time() - start_at
        sampling.set()
        sampler.join()
        time.sleep(1.0)  # connections closed, commands reaped
        after_rss, after_fds = rss_mib(pid), fds(pid)
        if errors:
            print(f"  {len(errors)} errors, e.g. {errors[:3]}")
        rate = len(lat) / wall
        return {
            "rate": rate,
            "p50_ms": pct(lat, 50) * 1e3,
            "p99_ms": pct(lat, 99) * 1e3,
            "seq_rate": seq_rate,
            "seq_p50_ms": pct(seq, 50) * 1e3,
            "seq_p99_ms": pct(seq, 99) * 1e3,
            "rate_ratio": rate / seq_rate,
            "p50_ratio": pct(lat, 50) / pct(seq, 50),
            "errors": len(errors),
            "rss_start": base_rss,
            "rss_peak": peak["rss"],
            "rss_after": after_rss,
            "fds_start": base_fds,
            "fds_peak": peak["fds"],
            "fds_after": after_fds,
        }
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--commands", type=int, default=20)
    p.add_argument("--sequential", type=int, default=1000, help="commands for the one-connection baseline (default 1000)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    args = p.parse_args()
    print(f"{args.clients} clients x {args.commands} `true`, default limits, {os.cpu_count()} CPUs; {args.runs} runs")
    runs = []
    for i in range(args.runs):
        r = one_run(args)
        runs.append(r)
        print(
            f"run {i + 1}: {r['rate']:.0f} cmd/s (sequential {r['seq_rate']:.0f}, x{r['rate_ratio']:.2f}); "
            f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms (sequential {r['seq_p50_ms']:.2f} / {r['seq_p99_ms']:.2f} ms); "
            f"RSS {r['rss_start']:.0f} -> peak {r['rss_peak']:.0f} -> {r['rss_after']:.0f} MiB; "
            f"fds {r['fds_start']} -> peak {r['fds_peak']} -> {r['fds_after']}; errors {r['errors']}"
        )
    print("median [min-max] over runs:")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:11} {statistics.median(values):9.2f}  [{min(values):.2f}-{max(values):.2f}]")


if __name__ == "__main__":
    main()
