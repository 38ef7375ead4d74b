"""1 GiB `rsh put` and `rsh get` on loopback, against a raw-socket copy of the same file.

The floor is the least any file copy over TCP can do: one process reads the
file and writes it to a loopback socket with blocking calls (1 MiB at a
time), another reads the socket and writes a new file.  No framing, no
checksum, no temporary name.  rsh does all of those (SHA-256 on both sides,
verified before the rename), through the real `rsh` command line.  A second
reference, the same raw copy with SHA-256 computed at both ends, shows how
much of the difference is the checksum itself.  All are timed in the same
run, interleaved, so the ratios mean something on a noisy machine.  Peak
RSS is each process's high-water mark (VmHWM, or ru_maxrss for the client).

What bounds the ratio: SHA-256 is sequential, one stream per file, and
each side must hash every byte, so the two hashes cost H CPU-seconds on top
of the C the raw copy itself needs (its processes' user + system time).
Both ends run on this machine: on N cores nothing that copies as the floor
does finishes before (H + C) / N, so the ratio cannot pass N * F / (H + C),
F being the floor's time.  The bench measures H (hashlib here, on one core)
and C in the same run and prints that bound beside the figures; compare rsh
with it, and with the "raw socket + sha256" line (one thread per side, the
hash in the copy loop) to see rsh's own overhead.  On 2 vCPUs with SHA-NI
(1.4 GiB/s a core) it is about 0.5: per GiB, H is 1.4 CPU-s and C 0.9-1.0
against a floor of 0.55-0.6 s.  (A worker thread for the hash was measured
in rsh and lost: each end already keeps a core busy.)

Every timed step writes one new file and removes it at once, and `get`
reads the source file rather than `put`'s copy: each step then writes into
memory the previous one just freed.  (On a VM, writing into pages the guest
has not touched lately can cost several times more, which otherwise lands
on whichever step happens to run first.)

scp on loopback is measured too, to a private sshd the bench starts on a
free loopback port with keys of its own (bench/_sshd.py), when sshd is
installed; otherwise it says why not.

    python bench/transfer.py [--size 1G] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import Server
from _sshd import Sshd

FLOOR_RECEIVER = r"""
import os, socket, sys
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
c, _ = srv.accept()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = bytearray(1 << 20)
view = memoryview(buf)
while True:
    n = c.recv_into(view)
    if not n:
        break
    os.write(fd, view[:n])
os.close(fd)
"""

FLOOR_SENDER = r"""
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
fd = os.open(sys.argv[2], os.O_RDONLY)
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    s.sendall(b)
s.close()
"""

# The same two, hashing what they move, in the copy loop: the plain way,
# for the cost of the checksum itself.
HASHED_RECEIVER = FLOOR_RECEIVER.replace("import os, socket, sys", "import hashlib, os, socket, sys\nh = hashlib.sha256()").replace(
    "    os.write(fd, view[:n])", "    os.write(fd, view[:n])\n    h.update(view[:n])"
)
HASHED_SENDER = FLOOR_SENDER.replace("import os, socket, sys", "import hashlib, os, socket, sys\nh = hashlib.sha256()").replace(
    "    s.sendall(b)", "    h.update(b)\n    s.sendall(b)"
)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def make_file(path: str, size: int) -> str:
    """Random (incompressible) bytes; return their SHA-256."""
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            # Vary each MiB so no layer can dedupe or cache a repeated block.
            chunk = (i.to_bytes(8, "little") + block[8:])[:left]
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
            i += 1
    return h.hexdigest()


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def run_floor(src: str, dst: str, *, hashed: bool = False) -> tuple[float, float]:
    """Copy *src* to *dst* over a raw socket; return (seconds, CPU-seconds of both processes)."""
    rx = subprocess.Popen([sys.executable, "-c", HASHED_RECEIVER if hashed else FLOOR_RECEIVER, dst], stdout=subprocess.PIPE, text=True)
    assert rx.stdout is not None
    port = rx.stdout.readline().strip()
    t0 = time.perf_counter()
    tx = subprocess.Popen([sys.executable, "-c", HASHED_SENDER if hashed else FLOOR_SENDER, port, src])
    cpu = 0.0
    for p in (tx, rx):
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise SystemExit(f"the raw copy failed with {p.returncode}")
        cpu += usage.ru_utime + usage.ru_stime
    elapsed = time.perf_counter() - t0
    rx.stdout.close()
    os.unlink(dst)
    return elapsed, cpu


def hash_seconds(size: int) -> float:
    """CPU-seconds hashlib takes for SHA-256 of *size* bytes on one core (best of 3, 64 MiB each)."""
    block = os.urandom(1 << 20)
    best = float("inf")
    for _ in range(3):
        h = hashlib.sha256()
        t0 = time.process_time()
        for _ in range(64):
            h.update(block)
        best = min(best, time.process_time() - t0)
    return best * size / (64 << 20)


def run_rsh(server: Server, *args: str) -> tuple[float, float]:
    """Run `rsh ARGS` against *server*; return (seconds, client peak RSS in MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "rsh", *args[:1], "--token-file", server.token_file, *args[1:]], env=server.env)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rsh {' '.join(args)} failed with {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss / 1024


# The private sshd scp copies to, started by scp_available() and stopped at exit.
_sshd: Sshd | None = None


def scp_available() -> str | None:
    """None when scp on loopback can be measured (to a private sshd on a free port, bench/_sshd.py), else why not."""
    global _sshd
    if shutil.which("scp") is None:
        return "scp is not installed"
    _sshd = Sshd()
    atexit.register(_sshd.close)
    return _sshd.reason or None


def run_scp(src: str, dst: str) -> float:
    """scp *src* to *dst* (``127.0.0.1:PATH``) on the private sshd."""
    assert _sshd is not None
    t0 = time.perf_counter()
    subprocess.run(_sshd.scp(src, dst.partition(":")[2]), stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="file size (default 1G)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="where to put the files (default: a new temporary directory)")
    args = ap.parse_args()
    size = parse_size(args.size)
    mib = size / (1 << 20)

    work = tempfile.mkdtemp(prefix="rsh-bench-transfer-", dir=args.dir)
    server = Server()
    try:
        src = os.path.join(work, "src.bin")
        digest = make_file(src, size)
        floors: list[float] = []
        floor_cpu: list[float] = []
        hashed: list[float] = []
        puts: list[float] = []
        gets: list[float] = []
        client_rss: list[float] = []
        addr = f"127.0.0.1:{server.port}"
        for i in range(args.runs):  # interleaved, so drift hits all alike
            t, cpu = run_floor(src, os.path.join(work, "floor.bin"))
            floors.append(t)
            floor_cpu.append(cpu)
            hashed.append(run_floor(src, os.path.join(work, "floor.bin"), hashed=True)[0])
            for op, times, dst in (("put", puts, "up.bin"), ("get", gets, "down.bin")):
                out = os.path.join(work, dst)
                t, rss = run_rsh(server, op, addr, src, out)
                times.append(t)
                client_rss.append(rss)
                if i == 0 and sha256_of(out) != digest:
                    raise SystemExit(f"{op}: the copy's checksum differs from the source's")
                os.unlink(out)
        server_rss = server.peak_rss_mib()
        both_hashes = 2 * hash_seconds(size)
        scp_note = scp_available()
        scp_times = [run_scp(src, f"127.0.0.1:{os.path.join(work, 'scp.bin')}") for _ in range(args.runs)] if scp_note is None else []
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    floor, put, get = statistics.median(floors), statistics.median(puts), statistics.median(gets)
    hfloor = statistics.median(hashed)
    print(f"transferring {args.size} ({size} bytes) of random data on loopback in {work}, median of {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"  floor (raw socket, no checksum)  : {floor:6.2f} s  {mib / floor:7.0f} MiB/s")
    print(f"  raw socket + sha256 at both ends : {hfloor:6.2f} s  {mib / hfloor:7.0f} MiB/s   ratio {floor / hfloor:4.2f}  (the checksum's own cost)")
    print(f"  rsh put (sha256 verified)        : {put:6.2f} s  {mib / put:7.0f} MiB/s   ratio {floor / put:4.2f}  (target >= 0.50)")
    print(f"  rsh get (sha256 verified)        : {get:6.2f} s  {mib / get:7.0f} MiB/s   ratio {floor / get:4.2f}  (target >= 0.50)")
    cores, copy_cpu = os.cpu_count() or 1, statistics.median(floor_cpu)
    print(
        f"  bound: both hashes take {both_hashes:.2f} CPU-s, the raw copy {copy_cpu:.2f}; on {cores} cores, copying as the floor does "
        f"and hashing at both ends takes >= {(both_hashes + copy_cpu) / cores:.2f} s: ratio <= {cores * floor / (both_hashes + copy_cpu):4.2f}"
    )
    if scp_times:
        s = statistics.median(scp_times)
        print(f"  scp                              : {s:6.2f} s  {mib / s:7.0f} MiB/s   ratio {floor / s:4.2f}")
    else:
        print(f"  scp: not measured ({scp_note})")
    print(f"  peak RSS: server {server_rss:.1f} MiB, client {max(client_rss):.1f} MiB   (target < 64 MiB each)")
    print(
        "  (all runs: floor "
        + " ".join(f"{t:.2f}" for t in floors)
        + ", hashed "
        + " ".join(f"{t:.2f}" for t in hashed)
        + ", put "
        + " ".join(f"{t:.2f}" for t in puts)
        + ", get "
        + " ".join(f"{t:.2f}" for t in gets)
        + ")"
    )


if __name__ == "__main__":
    main()
