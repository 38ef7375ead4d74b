"""The code under study in ``rsh demo classic``: the remote shell and file transfer of the tutorials.

Most socket tutorials build the same two programs: a remote shell whose
server runs each command line and ``send()``s back what it printed, and
whose client ``recv(1024)``s once per command; and a file transfer whose
receiver counts down the 4096 it asked ``recv()`` for.  Here they are, as
plainly as the tutorials write them, with the receive loop that counts
right.  The naive client's half (``naive_send``, ``naive_reply``) is the one
of ``rsh.teach.specimens``; docs/sticky-packets.md quotes these.
"""

from __future__ import annotations

import subprocess

from .harness import Conn

__all__ = ["counted_recv", "countdown_recv", "tutorial_run"]


def tutorial_run(command: bytes, cwd: str, env: dict[str, str]) -> bytes:
    """The tutorials' server: run the line in a shell, take all it printed."""
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True)
    return done.stdout + done.stderr


def countdown_recv(sock: Conn, size: int) -> bytes:
    """The tutorials' receive loop: count down what it asked recv() for."""
    data = b""
    left = size
    while left > 0:
        data += sock.recv(4096)
        left -= 4096  # the mistake: recv() may have returned fewer
    return data


def counted_recv(sock: Conn, size: int) -> bytes:
    """The fix: count what recv() returned, and ask only for what is left."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(min(4096, size - len(data)))
        if not chunk:
            raise ConnectionError("the sender closed the connection mid-file")
        data += chunk
    return data
