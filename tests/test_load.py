"""Under load and attack nobody good is turned away: bursts wait their turn, slow and idle peers make room.

The only times asserted are the functional bounds the server promises
(a good client in within 2 s of trying, whatever holds the places).
"""

from __future__ import annotations

import threading
import time

import rsh

from .conftest import ServerFactory, ServerProcess, wait_until
from .swarm import Swarm, raise_nofile


def echo_ok_within(s: ServerProcess, bound: float) -> float:
    """Connect, run ``echo ok``, and say how long it took; fail past *bound*."""
    t0 = time.monotonic()
    with rsh.connect(s.host, s.port, s.token) as c:
        assert c.run("echo ok").stdout == b"ok\n"
    took = time.monotonic() - t0
    assert took < bound, f"a good client took {took:.2f} s"
    return took


def test_a_burst_of_200_clients_running_50_commands_each_is_answered_exactly(make_server: ServerFactory) -> None:
    raise_nofile()
    s = make_server()  # the default limits: 128 places to authenticate in, 128 commands at once
    clients, commands = 200, 50
    start = threading.Barrier(clients)
    failures: list[str] = []

    def client(i: int) -> None:
        try:
            start.wait(60)
            with rsh.connect(s.host, s.port, s.token, timeout=60) as c:
                for j in range(commands):
                    r = c.run(f"echo {i}-{j}; exit {j % 3}")
                    if (r.stdout, r.stderr, r.exit_code) != (f"{i}-{j}\n".encode(), b"", j % 3):
                        failures.append(f"{i}-{j}: {r!r}")
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not [t for t in threads if t.is_alive()], "clients still running"
    assert failures == [], f"{len(failures)} failed, e.g. {failures[:3]}"
    s.stop()
    records = s.audit_records("command")
    assert len(records) == clients * commands and not [r for r in records if r.get("refused")]


def test_300_slow_loris_connections_do_not_keep_a_good_client_out(make_server: ServerFactory) -> None:
    s = make_server()
    with Swarm(s.port, 300, "loris") as swarm:
        # Every place is held by a loris and more wait behind them, reconnecting as they are closed.
        assert wait_until(lambda: swarm.ends["too_many_connections"] >= 300, timeout=30)
        for _ in range(5):
            echo_ok_within(s, 2.0)
            time.sleep(0.2)
        assert swarm.ends["too_many_connections"] > 300


def test_300_idle_sessions_at_the_connection_cap_do_not_keep_a_good_client_out(make_server: ServerFactory) -> None:
    s = make_server()
    with Swarm(s.port, 300, "idle", token=s.token) as swarm:
        assert wait_until(lambda: swarm.authenticated >= 256 and swarm.ends["too_many_connections"] >= 20, timeout=30)
        for _ in range(5):
            echo_ok_within(s, 2.0)
            time.sleep(0.2)
    assert wait_until(lambda: any(r["end"] == "evicted" and r["authenticated"] for r in s.audit_records("connection")))
