"""rsh against its peers: the same three jobs through rsh, asyncssh and OpenSSH, in one table.

    python bench/peers.py [--size 1G] [--count 300] [--runs 5] [--cold 5]

1. stream: ``head -c SIZE /dev/zero`` run remotely, its output read and
   discarded by a new client process: ``rsh exec HOST -- CMD >/dev/null``; a
   Python process with asyncssh reading the channel (an ``SSHClientSession``
   that drops what it receives, the cheapest reader asyncssh offers); and
   ``ssh HOST CMD >/dev/null``.  In MiB/s.
2. commands: COUNT sequential ``true`` on one open connection, driven from
   this process: the blocking ``rsh.Client.run``; asyncssh's
   ``await conn.run("true")``; and for OpenSSH a ``ssh HOST true`` process
   per command over one ControlMaster connection (ssh has no in-process
   client: this is how a script reuses a connection).  In ms per command.
3. cold: a new client process connects, runs ``true`` and exits:
   ``python -m rsh exec HOST -- true``; a new Python that imports asyncssh,
   connects, runs it and exits; ``ssh HOST true`` with no multiplexing.  In
   ms, the median of COLD starts in each run.

Every run does every job with every client, interleaved, so drift on a noisy
machine hits them alike; the table gives the median of RUNS runs and their
range, and the median (and range) of each run's ratio of the peer's figure
to rsh's in that run (above 1 the peer streams faster, or takes longer per
command or start).

OpenSSH and asyncssh log in to a private sshd this script starts on a free
loopback port with keys of its own (bench/_sshd.py), with OpenSSH's default
algorithms; when it cannot start, the OpenSSH and asyncssh columns say why
and stay empty.  asyncssh comes with the ``bench`` extra
(``pip install -e '.[bench]'``), never with rsh itself.  The remote side of
rsh runs commands with /bin/sh; sshd runs them with the user's login shell
(told not to read ~/.bashrc, see bench/_sshd.py), so bash's start-up is in
OpenSSH's and asyncssh's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import Server, spread
from _sshd import Multiplexed, Sshd

import rsh

PEERS = ("rsh", "asyncssh", "OpenSSH")

# A new Python process reading the channel and dropping the bytes; it checks
# that all of them came and exits with the command's status.
ASYNCSSH_STREAM = r"""
import asyncio, json, sys
import asyncssh

options, command, expect = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])

class Discard(asyncssh.SSHClientSession):
    received = 0

    def data_received(self, data, datatype):
        self.received += len(data)

async def main():
    async with asyncssh.connect(**options) as conn:
        chan, session = await conn.create_session(Discard, command, encoding=None)
        await chan.wait_closed()
    if session.received != expect:
        sys.exit(f"asyncssh received {session.received} bytes, not {expect}")
    sys.exit(chan.get_exit_status())

asyncio.run(main())
"""

ASYNCSSH_COLD = r"""
import asyncio, json, sys
import asyncssh

async def main():
    async with asyncssh.connect(**json.loads(sys.argv[1])) as conn:
        result = await conn.run("true")
    sys.exit(result.exit_status)

asyncio.run(main())
"""


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds *argv* takes to run to completion, output discarded; it must succeed."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... exited with {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def loop_s(run_one: Callable[[], Any], n: int) -> float:
    """Seconds per call of *run_one*, over *n* calls in a row."""
    t0 = time.perf_counter()
    for _ in range(n):
        run_one()
    return (time.perf_counter() - t0) / n


class AsyncsshClient:
    """One asyncssh connection kept open across runs, on an event loop of its own."""

    def __init__(self, options: dict[str, Any]) -> None:
        import asyncssh

        async def connect() -> asyncssh.SSHClientConnection:
            return await asyncssh.connect(**options)

        self.runner = asyncio.Runner()
        self.conn = self.runner.run(connect())

    def loop_s(self, n: int) -> float:
        async def go() -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                r = await self.conn.run("true")
                if r.exit_status != 0:
                    raise SystemExit(f"asyncssh: true exited with {r.exit_status}")
            return (time.perf_counter() - t0) / n

        return self.runner.run(go())

    def algorithms(self, server_kex: list[str]) -> str:
        # asyncssh says which cipher it chose, not which key exchange: that is
        # the first of its own list (GSS ones need Kerberos) that the server offers.
        from asyncssh.kex import get_default_kex_algs

        ours = [a.decode() for a in get_default_kex_algs() if not a.startswith(b"gss-")]
        kex = next((a for a in ours if a in server_kex), "?")
        return f"kex {kex}, cipher {self.conn.get_extra_info('recv_cipher')}"

    def close(self) -> None:
        self.conn.close()
        self.runner.run(self.conn.wait_closed())
        self.runner.close()


def openssh_algorithms(sshd: Sshd) -> str:
    r = subprocess.run(sshd.ssh("true", options=("-v", "-o", "LogLevel=DEBUG1")), capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
    text = r.stderr.decode(errors="replace")
    kex = re.search(r"kex: algorithm: (\S+)", text)
    cipher = re.search(r"kex: server->client cipher: (\S+)", text)
    return f"kex {kex.group(1) if kex else '?'}, cipher {cipher.group(1) if cipher else '?'}"


def fmt(v: float) -> str:
    """Three significant figures, in fixed notation."""
    if not math.isfinite(v) or v <= 0:
        return f"{v:.3g}"
    return f"{v:.{max(0, 2 - math.floor(math.log10(v)))}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="head -c SIZE (default 1G)")
    ap.add_argument("--count", type=int, default=300, help="sequential commands per run (default 300)")
    ap.add_argument("--runs", type=int, default=5, help="runs of every job (default 5)")
    ap.add_argument("--cold", type=int, default=5, help="cold starts per run, their median taken (default 5)")
    ap.add_argument("--cipher", help="make ssh and asyncssh use this cipher (default: their own choice, which the table says)")
    ap.add_argument("--jobs", default="stream,commands,cold", help="which jobs, comma-separated (default all three)")
    args = ap.parse_args()
    jobs = [j for j in args.jobs.split(",") if j]
    if unknown := set(jobs) - {"stream", "commands", "cold"}:
        ap.error(f"unknown jobs: {', '.join(sorted(unknown))}")
    size = parse_size(args.size)
    cmd = f"head -c {args.size} /dev/zero"

    why_not: dict[str, str] = {}
    try:
        import asyncssh

        asyncssh_version = asyncssh.__version__
    except ImportError:
        why_not["asyncssh"] = "asyncssh is not installed: pip install -e '.[bench]'"
        asyncssh_version = "?"

    # results[job][peer] = one figure per run
    results: dict[str, dict[str, list[float]]] = {j: {p: [] for p in PEERS} for j in jobs}
    notes: list[str] = []
    server = Server()
    sshd: Sshd | None = None
    mux: Multiplexed | None = None
    client: rsh.Client | None = None
    aclient: AsyncsshClient | None = None
    try:
        sshd = Sshd()
        if not sshd.available:
            why_not["OpenSSH"] = sshd.reason
            why_not.setdefault("asyncssh", f"no sshd to log in to ({sshd.reason})")
        else:
            if args.cipher:
                sshd.client_options = ["-o", f"Ciphers={args.cipher}"]
            openssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.split(",")[0].strip()
            notes.append(f"OpenSSH: {openssh_version}, a private sshd on 127.0.0.1:{sshd.port}, {openssh_algorithms(sshd)}")
        env = server.env  # PYTHONDONTWRITEBYTECODE unset: Python clients start from cached bytecode
        addr = f"127.0.0.1:{server.port}"
        rsh_exec = [sys.executable, "-m", "rsh", "exec", "--token-file", server.token_file, addr, "--"]
        asyncssh_options = {**sshd.asyncssh_options(), **({"encryption_algs": [args.cipher]} if args.cipher else {})}
        aopts = json.dumps(asyncssh_options)
        measured = [p for p in PEERS if p not in why_not]

        if "commands" in jobs:
            client = rsh.connect("127.0.0.1", server.port, token=server.token)
            client.run("true")
            if "asyncssh" in measured:
                aclient = AsyncsshClient(asyncssh_options)
                aclient.loop_s(1)
            if "OpenSSH" in measured:
                mux = sshd.multiplexed()
                timed(mux.ssh("true"))
        if "asyncssh" in measured:
            notes.append(f"asyncssh: {asyncssh_version}" + (f", {aclient.algorithms(sshd.kex_algorithms)}" if aclient else ""))
        if "cold" in jobs:  # once each first: bytecode and page cache
            timed([*rsh_exec, "true"], env)
            if "asyncssh" in measured:
                timed([sys.executable, "-c", ASYNCSSH_COLD, aopts], env)

        for _ in range(args.runs):
            if "stream" in jobs:
                results["stream"]["rsh"].append(timed([*rsh_exec, cmd], env))
                if "asyncssh" in measured:
                    results["stream"]["asyncssh"].append(timed([sys.executable, "-c", ASYNCSSH_STREAM, aopts, cmd, str(size)], env))
                if "OpenSSH" in measured:
                    results["stream"]["OpenSSH"].append(timed(sshd.ssh(cmd)))
            if "commands" in jobs:
                assert client is not None
                results["commands"]["rsh"].append(loop_s(lambda: client.run("true"), args.count))
                if aclient is not None:
                    results["commands"]["asyncssh"].append(aclient.loop_s(args.count))
                if mux is not None:
                    argv = mux.ssh("true")
                    results["commands"]["OpenSSH"].append(loop_s(lambda: timed(argv), args.count))  # noqa: B023 (called at once)
            if "cold" in jobs:
                colds: dict[str, list[float]] = {p: [] for p in measured}
                for _ in range(args.cold):  # interleaved too
                    colds["rsh"].append(timed([*rsh_exec, "true"], env))
                    if "asyncssh" in colds:
                        colds["asyncssh"].append(timed([sys.executable, "-c", ASYNCSSH_COLD, aopts], env))
                    if "OpenSSH" in colds:
                        colds["OpenSSH"].append(timed(sshd.ssh("true")))
                for p, ts in colds.items():
                    results["cold"][p].append(statistics.median(ts))
    finally:
        if client is not None:
            client.close()
        if aclient is not None:
            aclient.close()
        if mux is not None:
            mux.close()
        if sshd is not None:
            sshd.close()
        server.stop()

    # Each job's figure in its own unit, and whether more is better.
    mib = size / (1 << 20)
    rows = {
        "stream": (f"{args.size} stream, MiB/s", lambda s: mib / s),
        "commands": (f"{args.count} x true, ms each", lambda s: s * 1000),
        "cold": ("cold one-shot true, ms", lambda s: s * 1000),
    }
    print(f"rsh against its peers on loopback, median of {args.runs} runs (range), {os.cpu_count()} CPUs")
    for note in notes:
        print(f"  {note}")
    cells: list[list[str]] = [["", "rsh", "asyncssh", "x rsh", "OpenSSH", "x rsh"]]
    figures = {job: {p: [rows[job][1](s) for s in results[job][p]] for p in PEERS} for job in jobs}
    for job in jobs:
        row = [rows[job][0]]
        ours = figures[job]["rsh"]
        for p in PEERS:
            theirs = figures[job][p]
            if not theirs:
                row += ["-"] if p == "rsh" else ["-", ""]
                continue
            row.append(f"{fmt(statistics.median(theirs))} ({fmt(min(theirs))}-{fmt(max(theirs))})")
            if p != "rsh":
                ratios = [t / o for t, o in zip(theirs, ours, strict=True)]
                row.append(spread(ratios))
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for r in cells:
        print("  " + "   ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    print("  x rsh: the peer's figure over rsh's in the same run, median (range) of the runs;")
    print("         above 1 the peer streams faster (first row), or takes longer (the others)")
    if "commands" in jobs and "OpenSSH" in measured:
        print("  OpenSSH per command: a new `ssh HOST true` process each time over one ControlMaster connection")
    for p, why in why_not.items():
        print(f"{p}: not measured ({why})")
    print("all runs, in the table's units:")
    for job in jobs:
        for p in PEERS:
            if figures[job][p]:
                print(f"  {job:8} {p:8} " + " ".join(fmt(v) for v in figures[job][p]))


if __name__ == "__main__":
    main()
