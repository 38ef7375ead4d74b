"""Keystroke echo on the remote terminal: a key typed into `cat` on rsh's pseudo-terminal, until its echo is back.

rsh: a live shell (`AsyncClient.open_shell`) runs `cat`; each round sends one
key as an `input` frame and waits for the `tty` frame that echoes it.  The
baseline, in the same run: the same `cat` on a local pseudo-terminal, a key
written to its master and its echo read back; and `ssh -tt` when an sshd
answers on 127.0.0.1:22 without a password.

    python bench/terminal.py [--keys 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def rsh_echo(server: Server, keys: int) -> list[float]:
    from rsh.client.aio import AsyncClient

    client = await AsyncClient.connect("127.0.0.1", server.port, server.token, tls=False)
    got = asyncio.Event()
    seen = bytearray()

    def output(_stream: str, data: bytes) -> None:
        seen.extend(data)
        got.set()

    shell = await client.open_shell(output, term="xterm", rows=24, cols=80)
    line = asyncio.ensure_future(shell.run("stty -echoctl; cat"))
    await asyncio.sleep(0.3)
    times = []
    for i in range(keys):
        key = bytes([ord("a") + i % 26])
        seen.clear()
        got.clear()
        t = time.perf_counter()
        shell.send_input(key)
        while key not in seen:
            await got.wait()
            got.clear()
        times.append(time.perf_counter() - t)
    shell.send_input(b"\r\x04")
    await line
    await shell.close()
    await client.close()
    return times


def _echoes(master: int, keys: int) -> list[float]:
    """Type *keys* keys into the terminal of *master*, one at a time: how long each took to come back."""
    times = []
    for i in range(keys):
        key = bytes([ord("a") + i % 26])
        t = time.perf_counter()
        os.write(master, key)
        seen = b""
        while key not in seen:
            select.select([master], [], [])
            seen += os.read(master, 1024)
        times.append(time.perf_counter() - t)
    os.write(master, b"\r\x04")
    return times


def _on_pty(argv: list[str], keys: int, settle: float) -> list[float]:
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    time.sleep(settle)
    try:
        return _echoes(master, keys)
    finally:
        os.waitpid(pid, 0)
        os.close(master)


def local_echo(keys: int) -> list[float]:
    return _on_pty(["cat"], keys, 0.2)


def ssh_echo(keys: int) -> list[float] | None:
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=0.5).close()
    except OSError:
        return None
    if subprocess.run(["ssh", "-o", "BatchMode=yes", "127.0.0.1", "true"], capture_output=True).returncode != 0:
        return None
    return _on_pty(["ssh", "-tt", "-o", "BatchMode=yes", "127.0.0.1", "cat"], keys, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    server = Server()
    rsh_med, local_med, ssh_med = [], [], []
    try:
        for _ in range(args.rounds):
            rsh_med.append(statistics.median(asyncio.run(rsh_echo(server, args.keys))))
            local_med.append(statistics.median(local_echo(args.keys)))
            s = ssh_echo(args.keys)
            if s is not None:
                ssh_med.append(statistics.median(s))
    finally:
        server.stop()
    r, lo = statistics.median(rsh_med), statistics.median(local_med)
    print(f"keystroke echo in cat, median of {args.rounds} rounds of {args.keys} keys (spread over rounds)")
    print(f"  rsh live shell  {r * 1e6:8.0f} us  ({min(rsh_med) * 1e6:.0f}-{max(rsh_med) * 1e6:.0f})")
    print(f"  local pty       {lo * 1e6:8.0f} us  ({min(local_med) * 1e6:.0f}-{max(local_med) * 1e6:.0f})   rsh/local {r / lo:5.1f}")
    if ssh_med:
        s = statistics.median(ssh_med)
        print(f"  ssh -tt         {s * 1e6:8.0f} us  ({min(ssh_med) * 1e6:.0f}-{max(ssh_med) * 1e6:.0f})   rsh/ssh {r / s:5.2f}")
    else:
        print("  ssh -tt: no sshd answering on 127.0.0.1:22 without a password here, so no ssh figures")


if __name__ == "__main__":
    main()
