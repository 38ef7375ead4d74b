"""Helpers shared by the benchmarks: a server subprocess and peak-memory readings."""

from __future__ import annotations

import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env(tmp: str) -> dict[str, str]:
    e = dict(os.environ)
    e["RSH_CONFIG_DIR"] = tmp
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    # An installed rsh runs from cached bytecode; with this set (some shells
    # and tools set it), every `rsh exec` here would compile all its modules
    # again, some 20 ms that no deployed client pays.
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    return e


class Server:
    """``rsh serve`` on a free loopback port, for one benchmark.

    It runs in a session of its own, as a service does: with no controlling
    terminal, commands need only a process group, not a session (see
    ``rsh.server.process._own_session``), and the figures are a deployed server's
    whether or not the benchmark was started from a terminal.
    """

    def __init__(self, *extra: str, launcher: Sequence[str] = ()) -> None:
        """*extra*: more ``rsh serve`` options; *launcher*: what runs ``serve ...`` instead of ``python -m rsh``."""
        self.tmp = tempfile.mkdtemp(prefix="rsh-bench-")
        self.token_file = os.path.join(self.tmp, "token")
        self.env = env(self.tmp)
        self.proc = subprocess.Popen(
            [*(launcher or (sys.executable, "-m", "rsh")), "serve", "--port", "0", "--token-file", self.token_file, *extra],
            stderr=subprocess.PIPE,
            env=self.env,
            start_new_session=True,
        )
        assert self.proc.stderr is not None
        #: The TLS fingerprint the server printed (None without --tls).
        self.fingerprint: str | None = None
        for line in self.proc.stderr:
            m = re.search(rb"TLS fingerprint (SHA256:\S+)", line)
            if m:
                self.fingerprint = m.group(1).decode()
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("server did not start")
        # Keep reading what it says: a pipe nobody reads fills (64 KiB) and
        # then blocks the whole server in its next write to stderr.
        self.log: collections.deque[bytes] = collections.deque(maxlen=1000)
        self._drain = threading.Thread(target=self.log.extend, args=(self.proc.stderr,), daemon=True)
        self._drain.start()

    @property
    def token(self) -> str:
        return Path(self.token_file).read_text().strip()

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self._drain.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        # The token directory too: every run used to leave one in /tmp.
        shutil.rmtree(self.tmp, ignore_errors=True)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spread(values: list[float], fmt: str = ".2f") -> str:
    """``median (min-max)`` of *values*: a figure that holds across runs, with how far the runs strayed."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"
