"""Who is closed to make room (``Guard.victim``), and the exec queue's order, without a network.

The slots are real ``Slot`` objects on a real event loop; their
connections are stand-ins that only record how they were closed.
"""

from __future__ import annotations

import asyncio
import time

from rsh.server.admission import Guard, Slot
from rsh.server.exec_queue import ExecQueue
from rsh.server.limits import IDLE_GRACE, PREAUTH_GRACE, Limits


class Conn:
    """What eviction sees of a connection."""

    def __init__(self, slot: Slot, *, busy: bool = False) -> None:
        self.slot = slot
        self.last_active = time.monotonic()
        self.command: object | None = object() if busy else None
        self.transfer: object | None = None
        self.live = self  # the live shell's holder
        self.shell: object | None = None
        self.said: list[tuple[str | None, str]] = []
        self.closed = False
        self.conn = self
        slot.occupant = self

    def close(self, code: str | None = None, message: str = "") -> None:
        if code is not None:
            self.said.append((code, message))
        else:
            self.closed = True

    def flush(self) -> None:
        pass


def slot(guard: Guard, *, age: float = 0.0, user: str | None = None, busy: bool = False, idle: float = 0.0) -> Conn:
    s = Slot(guard, ("127.0.0.1", 1), lambda: None)
    s.since -= age
    if user is not None:
        s.authenticated(user)
    c = Conn(s, busy=busy)
    c.last_active -= idle
    return c


async def test_the_oldest_unauthenticated_goes_first_once_past_its_grace() -> None:
    guard = Guard(limits=Limits(max_unauthenticated=3, max_conns=10))
    # In the order they arrived: oldest first.
    oldest, old, young = slot(guard, age=PREAUTH_GRACE + 2), slot(guard, age=PREAUTH_GRACE + 1), slot(guard, age=0.1)
    assert not guard.has_room()
    victim, _ = guard.victim(time.monotonic())
    assert victim is oldest.slot
    victim.evict()
    assert oldest.said and oldest.said[0][0] == "too_many_connections" and "without authenticating" in oldest.said[0][1]
    assert guard.has_room() and guard.unauthenticated == 2 and guard.open == 2
    assert guard.victim(time.monotonic())[0] is old.slot and young.slot in guard.pending
    guard.close()


async def test_within_its_grace_nobody_is_closed_and_the_victim_comes_due() -> None:
    guard = Guard(limits=Limits(max_unauthenticated=1, max_conns=10))
    c = slot(guard, age=0.1)
    now = time.monotonic()
    victim, due = guard.victim(now)
    assert victim is None and due is not None and abs(due - (c.slot.since + c.slot.grace)) < 1e-6
    guard.close()


async def test_a_place_held_after_a_wrong_token_is_never_taken() -> None:
    guard = Guard(limits=Limits(max_unauthenticated=1, max_conns=10, auth_fail_delay=30))
    c = slot(guard, age=PREAUTH_GRACE + 5)
    c.slot.auth_failed()
    assert guard.victim(time.monotonic()) == (None, None)
    guard.close()


async def test_at_the_cap_an_idle_session_goes_only_when_nobody_is_authenticating() -> None:
    guard = Guard(limits=Limits(max_unauthenticated=2, max_conns=3))
    used = slot(guard, user="u", idle=IDLE_GRACE + 5)
    used.slot.commands = 3
    fresh = slot(guard, user="u", idle=IDLE_GRACE + 1)
    pending = slot(guard, age=0.1)
    assert not guard.has_room()
    # Someone is authenticating: wait for them rather than push out a session.
    victim, due = guard.victim(time.monotonic())
    assert victim is None and due is not None
    pending.slot.release()
    slot(guard, user="u", busy=True, idle=60)  # running a command: never
    victim, _ = guard.victim(time.monotonic())
    assert victim is fresh.slot  # never used goes before idle longest
    victim.evict()
    assert "closed while idle" in fresh.said[0][1]
    assert used.slot in guard.authed
    guard.close()


async def test_the_exec_queue_is_first_come_first_served_and_bounded() -> None:
    class Counts:
        limits = Limits(max_commands=1, max_queued=2)
        running = 0

    class Link:
        def __init__(self, name: str) -> None:
            self.name = name
            self.refused: list[str] = []

        def command_exited(self, status: object) -> None: ...

        def refuse_command(self, code: str, message: str) -> None:
            self.refused.append(code)

        def pause_input(self) -> None: ...

        def resume_input(self) -> None: ...

    counts = Counts()
    queue = ExecQueue(counts)
    started: list[str] = []

    def spawn(name: str):  # type: ignore[no-untyped-def]
        def go() -> None:
            started.append(name)
            counts.running += 1

        return go

    links = [Link(n) for n in "abcd"]
    t0 = time.monotonic()
    waiters = [queue.submit(link, spawn(link.name), timeout=None, encoding="utf-8", t0=t0) for link in links]
    assert started == ["a"] and waiters[0] is None
    assert waiters[1] is not None and waiters[2] is not None and waiters[3] is None and links[3].refused == ["busy"]
    counts.running = 0
    queue.kick()
    await asyncio.sleep(0)
    assert started == ["a", "b"]
    counts.running = 0
    queue.kick()
    await asyncio.sleep(0)
    assert started == ["a", "b", "c"] and not queue.waiting
