"""Descriptors: the server takes all it may at start, says what it can hold, and out of them it waits.

Out of descriptors (EMFILE) it stops accepting, says so once, uses no CPU
meanwhile (it does not spin on a listening socket it cannot accept from),
and accepts again once connections close.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import rsh

from .conftest import ServerFactory, wait_until


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no Max open files")


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one_and_said(make_server: ServerFactory) -> None:
    s = make_server(wrap=["prlimit", "--nofile=256:4096", "--"])
    assert _soft_nofile(s.proc.pid) == 4096
    line = next(line for line in s.log if "capacity:" in line)
    assert "256 connections (128 authenticating), 128 commands at once and 256 waiting" in line and "4096 descriptors" in line


def test_out_of_descriptors_it_pauses_says_so_once_and_recovers(make_server: ServerFactory) -> None:
    s = make_server("--auth-timeout", "30", wrap=["prlimit", "--nofile=40:40", "--"])
    assert any("the limits may need" in line for line in s.log)  # it warns at start
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(60)]
    try:
        assert wait_until(lambda: any("out of file descriptors" in line for line in s.log))
        before = _cpu_seconds(s.proc.pid)
        time.sleep(2)
        # Not spinning: a loop on the readable listening socket would use the whole 2 s.
        assert _cpu_seconds(s.proc.pid) - before < 0.5
        assert sum("out of file descriptors" in line for line in s.log) == 1
    finally:
        for sock in socks:
            sock.close()
    with rsh.connect(s.host, s.port, s.token) as c:
        assert c.run("echo back").stdout == b"back\n"
    assert wait_until(lambda: any("accepting connections again" in line for line in s.log))
    assert sum("out of file descriptors" in line for line in s.log) == 1
