"""Where one short command's time goes, stage by stage: rsh against the bare floor, timed alike.

    python bench/stages.py [--count 2000]

bench/latency.py says how much slower than a local spawn a command on an
open connection is; this says where.  It runs ``true`` COUNT times on one
connection of the blocking client, and as many through bench/latency.py's
BARE_SERVER (a blocking Python server, one frame in, one out), with both
servers and clients stamping the same moments on the same clock:

    client sends | server has the request | fork_exec | it returns (the
    child has exec'd) | the server sees the exit | the reply is sent |
    the client has it | the client sends the next

and prints the median of each stage for both, and when rsh's event loop
woke within the first stage.  rsh's stamps come from
wrapping a few of its functions in the processes (the server runs under a
small wrapper, see RSH_SERVER); the wrappers cost a microsecond or two a
stamp, on both sides of every stage alike.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Server
from latency import BARE_SERVER

import rsh
import rsh.client.socket_pump as socket_pump

# `rsh serve`, stamping when the request reaches the connection, when
# fork_exec starts and returns, when the command's exit is seen and when a
# writev returns; SIGUSR1 writes the stamps to the file in argv[1] and exits.
RSH_SERVER = r"""
import os, selectors, signal, sys, time
from rsh.server import connection, process, spawn
from rsh.cli.main import main

stamps, now, out = [], time.monotonic_ns, sys.argv.pop(1)

def stamp(owner, name, tag, after=False):
    f = getattr(owner, name)
    def wrapped(*a, **k):
        if not after:
            stamps.append((tag, now()))
        r = f(*a, **k)
        if after:
            stamps.append((tag, now()))
        return r
    setattr(owner, name, wrapped)

stamp(selectors.EpollSelector, "select", "woke", after=True)
stamp(connection.ServerConnection, "events_received", "request")
stamp(spawn, "_fork_exec", "fork")
stamp(spawn, "_fork_exec", "forked", after=True)
stamp(process.RunningCommand, "_reap", "exit")
stamp(os, "writev", "sent", after=True)

def dump(*_):
    Path = __import__("pathlib").Path
    Path(out).write_text("\n".join(f"{t} {ns}" for t, ns in stamps))
    os._exit(0)

signal.signal(signal.SIGUSR1, dump)
sys.argv = ["rsh", *sys.argv[1:]]
main()
"""

STAGES = [
    "client sends -> server has it",
    "server, before fork_exec",
    "fork_exec (until the exec)",
    "the child, until its exit is seen",
    "server, exit seen -> reply sent",
    "reply sent -> client has it",
    "client, until it sends the next",
]


def _instrumented_bare() -> str:
    """BARE_SERVER with the same stamps, written to the file in argv[1] on SIGUSR1."""
    src = BARE_SERVER
    edits = [
        ("while n := c.recv_into(buf):\n", "while n := c.recv_into(buf):\n    t_req = time.monotonic_ns()\n"),
        ("    pid = fork_exec(", "    t_fork = time.monotonic_ns()\n    pid = fork_exec("),
        ("    os.close(x_w); os.read(x_r, 4096)", "    t_forked = time.monotonic_ns()\n    os.close(x_w); os.read(x_r, 4096)"),
        ("    _, status = os.waitpid(pid, 0)", "    t_exit = time.monotonic_ns()\n    _, status = os.waitpid(pid, 0)"),
        (
            '    c.sendall(len(h).to_bytes(4, "big") + h)',
            '    c.sendall(len(h).to_bytes(4, "big") + h)\n    _stamps.append((t_req, t_fork, t_forked, t_exit, time.monotonic_ns()))',
        ),  # noqa: E501
    ]
    for old, new in edits:
        if old not in src:
            raise SystemExit(f"bench/latency.py's BARE_SERVER changed: cannot find {old!r}")
        src = src.replace(old, new)
    head = (
        "import signal, sys, time\n_stamps, _stamps_file = [], sys.argv[1]\n"
        "def dump(*_):\n    open(_stamps_file, 'w').write('\\n'.join(' '.join(map(str, x)) for x in _stamps))\n    os._exit(0)\n"
        "signal.signal(signal.SIGUSR1, dump)\n"
    )
    return src.replace("import json, os, select, socket\n", "import json, os, select, socket\n" + head, 1)


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    time.sleep(0.2)  # the last reply's stamp comes after its send
    proc.send_signal(signal.SIGUSR1)
    proc.wait()


def _kill(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Leave nothing behind when a run fails half-way."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def bare_stages(n: int, tmp: str) -> list[list[float]]:
    """Per command, the seconds of each of STAGES through BARE_SERVER."""
    out = os.path.join(tmp, "bare")
    server = subprocess.Popen([sys.executable, "-c", _instrumented_bare(), out], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    try:
        sock = socket.create_connection(("127.0.0.1", int(server.stdout.readline())))
        head = json.dumps({"type": "exec", "size": 4}).encode()
        frame = len(head).to_bytes(4, "big") + head + b"true"
        client = []
        for _ in range(n + 1):
            t0 = time.monotonic_ns()
            sock.sendall(frame)
            json.loads(sock.recv(65536)[4:])
            client.append((t0, time.monotonic_ns()))
        _stop(server)
        sock.close()
    finally:
        _kill(server)
    served = [tuple(map(int, line.split())) for line in Path(out).read_text().splitlines()]
    rows = []
    for (req, fork, forked, exit_, sent), (c_send, c_got), (c_next, _) in zip(served, client, client[1:], strict=False):
        rows.append([req - c_send, fork - req, forked - fork, exit_ - forked, sent - exit_, c_got - sent, c_next - c_got])
    return [[ns / 1e9 for ns in row] for row in rows[:n]]


def rsh_stages(n: int, tmp: str) -> list[list[float]]:
    """Per command, the seconds of each of STAGES through `rsh serve` and the blocking client."""
    out = os.path.join(tmp, "rsh")
    server = Server(launcher=[sys.executable, "-c", RSH_SERVER, out])
    try:
        client = _rsh_client(server, n)
        _stop(server.proc)
    finally:
        server.stop()
    # Each command's stamps, from the request on; the first of each kind
    # counts, and the loop's last wake before the request.
    commands: list[dict[str, int]] = []
    woke = 0
    for tag, ns in (line.split() for line in Path(out).read_text().splitlines()):
        if tag == "woke":
            woke = int(ns)
            continue
        if tag == "request":
            commands.append({"woke": woke})
        if commands and tag not in commands[-1]:
            commands[-1][tag] = int(ns)
    served = [s for s in commands if "fork" in s][-(n + 1) :]
    # Each send, and the first read after it (the one that brought the exit).
    sends: list[int] = []
    gots: list[int] = []
    for kind, at in client:
        if kind == "send":
            sends.append(at)
        elif len(gots) < len(sends):
            gots.append(at)
    rows = []
    for s, c_send, c_got, c_next in zip(served, sends, gots, sends[1:], strict=False):
        server_side = [s["fork"] - s["request"], s["forked"] - s["fork"], s["exit"] - s["forked"], s["sent"] - s["exit"]]
        rows.append([s["request"] - c_send, *server_side, c_got - s["sent"], c_next - c_got, s["woke"] - c_send])
    return [[ns / 1e9 for ns in row] for row in rows[:n]]


def _rsh_client(server: Server, n: int) -> list[tuple[str, int]]:
    """Run the commands on one connection to *server*, stamping each send and each read."""
    client: list[tuple[str, int]] = []
    write, read = socket_pump.SocketPump.write, socket_pump.SocketPump.read

    def stamped_write(self: socket_pump.SocketPump) -> None:
        client.append(("send", time.monotonic_ns()))
        write(self)

    def stamped_read(self: socket_pump.SocketPump, wait: bool = False) -> bool:
        got = read(self, wait)
        client.append(("got", time.monotonic_ns()))
        return got

    with rsh.connect("127.0.0.1", server.port, token=server.token) as c:
        for _ in range(50):
            c.run("true")
        socket_pump.SocketPump.write, socket_pump.SocketPump.read = stamped_write, stamped_read  # type: ignore[method-assign]
        try:
            for _ in range(n + 1):
                c.run("true")
        finally:
            socket_pump.SocketPump.write, socket_pump.SocketPump.read = write, read  # type: ignore[method-assign]
    return client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsh-bench-") as tmp:
        bare, ours = bare_stages(args.count, tmp), rsh_stages(args.count, tmp)
    print(f"one `true` on an open connection, stage by stage (median of {args.count}, microseconds)")
    print(f"  {'stage':36} {'floor':>8} {'rsh':>8} {'rsh - floor':>12}")
    totals = [0.0, 0.0]
    for i, name in enumerate(STAGES):
        f, r = statistics.median(row[i] for row in bare) * 1e6, statistics.median(row[i] for row in ours) * 1e6
        totals[0] += f
        totals[1] += r
        print(f"  {name:36} {f:8.0f} {r:8.0f} {r - f:12.0f}")
    print(f"  {'sum of the medians':36} {totals[0]:8.0f} {totals[1]:8.0f} {totals[1] - totals[0]:12.0f}")
    woke = statistics.median(row[len(STAGES)] for row in ours) * 1e6
    handler = statistics.median(row[0] for row in ours) * 1e6 - woke
    print(f"  rsh's first stage: its event loop woke {woke:.0f} us after the client began to send, the handler ran {handler:.0f} us later")
    print("  (measured on a KVM guest: a process asleep more than 100-200 us woke 20-30 us slower, as past the host's")
    print("   halt polling; the floor's client sends again at once, rsh's only after its own turn)")


if __name__ == "__main__":
    main()
