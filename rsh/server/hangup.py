"""Hanging up a terminal session: what a terminal that goes away does to what runs on it, and then some.

When a live shell ends or its client goes, every process still in the
shell's session gets SIGHUP (and SIGCONT, so that a stopped job wakes to
die of it), as when a terminal hangs up; two seconds later those still
there are killed, except what chose to outlive a hang-up by ignoring
SIGHUP (``nohup``), which stays, as under ssh.  Linux: the session's
members are read from /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal

__all__ = ["HANGUP_GRACE", "hang_up", "session_members"]

#: After the hang-up, how long the session's processes have before KILL.
HANGUP_GRACE = 2.0


def session_members(sid: int) -> list[int]:
    """The processes of session *sid* (Linux: read from /proc)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            members.append(int(name))
    return members


def _ignores_hangup(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    except (OSError, ValueError):
        pass
    return False


def hang_up(sid: int, *, alive: bool) -> None:
    """SIGHUP to every process of session *sid* now (its leader too if *alive*), SIGKILL in ``HANGUP_GRACE`` to those left but ``nohup``'s."""
    members = session_members(sid)
    if alive and sid not in members:
        members.append(sid)
    for pid in members:
        try:
            os.kill(pid, signal.SIGHUP)
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    if members:
        asyncio.get_running_loop().call_later(HANGUP_GRACE, _kill_stragglers, sid)


def _kill_stragglers(sid: int) -> None:
    for pid in session_members(sid):
        if not _ignores_hangup(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
