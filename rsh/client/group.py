"""``rsh.Group``: one command or copy on many servers at once, in the manner of Fabric's ``Group``.

    with rsh.Group(["10.0.0.1", "10.0.0.2:7100"], token=...) as web:
        for host, r in web.run("uname -a").items():
            print(host, r.stdout_text if isinstance(r, rsh.CommandResult) else r)

Each host gets a blocking ``Client`` of its own, made on first use and kept
for the next call (dropped if its connection broke).  At most *limit* hosts
are worked on at once, each in a thread: a blocking client needs no event
loop, and a thread per host in flight is what pssh-sized groups need.  What
one host raises (refused, wrong token, a timeout) is its entry in the
``GroupResult``, never another host's; ``check=True`` raises one
``GroupFailed`` carrying them all.  ``rsh.AsyncGroup`` is the asyncio twin.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple, Unpack

from ..errors import GroupFailed
from ..protocol.address import DEFAULT_PORT, parse_target
from ..results import CommandResult, GroupResult, TransferResult
from .connect import DialOptions
from .ops import TransferOptions, usable

__all__ = ["Group", "Member", "members", "DEFAULT_LIMIT", "HostOutput", "HostDone", "host_dir", "reusable", "shared_source"]

#: Hosts worked on at once unless told otherwise (pdsh's fanout is 32).
DEFAULT_LIMIT = 32

#: Called with the host's name and a chunk of its output, as it arrives.
HostOutput = Callable[[str, bytes], None]
#: Called as each host finishes: its name, its result or error, its seconds.
HostDone = Callable[[str, object, float], None]


class Member(NamedTuple):
    """One host of a group and how to reach it."""

    #: What results are keyed by (and ``get``'s subdirectory is named).
    name: str
    host: str
    port: int = DEFAULT_PORT
    token: str | None = None
    #: ``DialOptions`` for this host (TLS, pin, timeout).
    options: Mapping[str, Any] = {}
    #: Given the server's ``server_info`` once authenticated; may refuse the host by raising.
    on_connect: Callable[[dict[str, Any]], None] | None = None


def members(hosts: Iterable[str | Member], token: str | None, port: int, options: Mapping[str, Any]) -> list[Member]:
    """*hosts* as ``Member``s: ``HOST[:PORT]`` strings take *token*, *port* and *options*.

    Raises:
        ValueError: a malformed address, or the same name twice.
    """
    out: list[Member] = []
    for h in hosts:
        if isinstance(h, Member):
            out.append(h)
            continue
        target = parse_target(h)
        out.append(Member(h, target.host, target.port or port, token, options))
    names = [m.name for m in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"host named more than once: {', '.join(twice)}")
    return out


def host_dir(local_dir: str | os.PathLike[str], name: str) -> Path:
    """Where ``get`` puts one host's copy: ``LOCAL_DIR/NAME/`` (made if missing)."""
    path = Path(local_dir) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def reusable(client: Any) -> bool:
    """Whether a kept client can take the next call (its connection is open and in step)."""
    return not getattr(client, "closed", False) and usable(client._conn)


def shared_source(local: Any) -> Callable[[], Any]:
    """*local* for each host in turn: a stream is read once and each host gets its own copy."""
    if hasattr(local, "read"):
        data = local.read()
        return lambda: io.BytesIO(data)
    return lambda: local


class Group:
    """Many rsh servers worked on together (blocking).

    Args:
        hosts: ``HOST[:PORT]`` strings, or ``Member``s each with its own token and options.
        token: for the string hosts (None: ``RSH_TOKEN``, then the token file, as ``rsh.connect``).
        port: for the string hosts without ``:PORT``.
        limit: at most this many hosts at once.
        options: ``DialOptions`` for the string hosts (``timeout`` is the connect timeout).

    Raises:
        ValueError: a malformed address, a name given twice, or *limit* below 1.
    """

    def __init__(
        self,
        hosts: Iterable[str | Member],
        token: str | None = None,
        *,
        port: int = DEFAULT_PORT,
        limit: int = DEFAULT_LIMIT,
        **options: Unpack[DialOptions],
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.members = members(hosts, token, port, options)
        self.limit = limit
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def run(
        self,
        command: str | bytes | Sequence[str],
        *,
        input: bytes | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        encoding: str | None = None,
        check: bool = False,
        on_stdout: HostOutput | None = None,
        on_stderr: HostOutput | None = None,
        on_done: HostDone | None = None,
    ) -> GroupResult:
        """Run *command* on every host (as ``Client.run``, *input* to each); host -> ``CommandResult`` or error.

        Raises:
            GroupFailed: *check* is set and some host did not exit 0 (or raised).
        """

        def one(client: Any, m: Member) -> CommandResult:
            out = (lambda data: on_stdout(m.name, data)) if on_stdout else None
            err = (lambda data: on_stderr(m.name, data)) if on_stderr else None
            result: CommandResult = client.run(command, input=input, cwd=cwd, env=env, timeout=timeout, encoding=encoding, on_stdout=out, on_stderr=err)
            return result

        return self.each(one, check=check, on_done=on_done)

    def put(
        self,
        local: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | BinaryIO,
        remote: str,
        *,
        check: bool = False,
        **options: Unpack[TransferOptions],
    ) -> GroupResult:
        """Copy *local* to *remote* on every host (as ``Client.put``; a stream is read once); host -> ``TransferResult`` or error.

        Raises:
            GroupFailed: *check* is set and some host did not get everything.
        """
        source = shared_source(local)

        def one(client: Any, m: Member) -> TransferResult:
            result: TransferResult = client.put(source(), remote, **options)
            return result

        return self.each(one, check=check)

    def get(self, remote: str | Sequence[str], local_dir: str | os.PathLike[str], *, check: bool = False, **options: Unpack[TransferOptions]) -> GroupResult:
        """Copy *remote* from every host into ``local_dir/HOST/``; host -> ``TransferResult`` or error.

        Raises:
            GroupFailed: *check* is set and something did not arrive from some host.
        """

        def one(client: Any, m: Member) -> TransferResult:
            result: TransferResult = client.get(remote, host_dir(local_dir, m.name), **options)
            return result

        return self.each(one, check=check)

    def _client(self, m: Member) -> Any:
        with self._lock:
            client = self._clients.get(m.name)
        if client is not None and reusable(client):
            return client
        from .blocking import Client

        client = Client(m.host, m.port, m.token, **m.options)
        try:
            if m.on_connect is not None:
                m.on_connect(client.server_info)
        except BaseException:
            client.close()
            raise
        with self._lock:
            self._clients[m.name] = client
        return client

    def each(self, work: Callable[[Any, Member], object], *, check: bool = False, on_done: HostDone | None = None) -> GroupResult:
        """Call ``work(client, member)`` for every host, *limit* at a time, each in a thread; host -> what it returned or raised.

        For what differs per host (``run``, ``put`` and ``get`` are made of it).

        Raises:
            GroupFailed: *check* is set and some host raised or returned something not ``ok``.
        """
        todo: queue.SimpleQueue[Member] = queue.SimpleQueue()
        for m in self.members:
            todo.put(m)
        found: dict[str, tuple[object, float]] = {}
        all_done = threading.Event()
        raised: list[BaseException] = []

        def worker() -> None:
            while True:
                try:
                    m = todo.get_nowait()
                except queue.Empty:
                    return
                start = time.monotonic()
                value: object
                try:
                    value = work(self._client(m), m)
                except Exception as exc:  # noqa: BLE001 -- the host's error is its result
                    value = exc
                elapsed = time.monotonic() - start
                try:
                    if on_done is not None:
                        on_done(m.name, value, elapsed)
                except BaseException as exc:  # the caller's own failure (its stdout closed): raised in its thread
                    raised.append(exc)
                finally:
                    with self._lock:
                        found[m.name] = (value, elapsed)
                        if len(found) == len(self.members):
                            all_done.set()

        if not self.members:
            all_done.set()
        # Daemon threads: a Ctrl-C in the caller must not wait for a slow host.
        for _ in range(min(self.limit, len(self.members))):
            threading.Thread(target=worker, daemon=True).start()
        try:
            while not all_done.wait(0.5):
                pass
        except BaseException:
            self.close()  # the servers stop what was running
            raise
        if raised:
            self.close()
            raise raised[0]
        result = GroupResult()
        for m in self.members:
            result[m.name], result.elapsed[m.name] = found[m.name]
        if check and not result.ok:
            raise GroupFailed(result)
        return result

    def close(self) -> None:
        """Close every connection (a running command is stopped by its server)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> Group:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
