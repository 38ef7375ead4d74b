"""``rsh.AsyncGroup``: ``rsh.Group``'s asyncio twin, the same calls awaited.

    async with rsh.AsyncGroup(["10.0.0.1", "10.0.0.2"], token=...) as web:
        results = await web.run("uname -a", check=True)

One ``AsyncClient`` per host, kept between calls; a semaphore holds the
hosts in flight to *limit*.  Results and errors are as ``Group``'s.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, BinaryIO, Unpack

from ..errors import GroupFailed
from ..protocol.address import DEFAULT_PORT
from ..results import CommandResult, GroupResult, TransferResult
from .connect import DialOptions
from .group import DEFAULT_LIMIT, HostDone, HostOutput, Member, host_dir, members, reusable, shared_source
from .ops import TransferOptions

__all__ = ["AsyncGroup"]


class AsyncGroup:
    """Many rsh servers worked on together (asyncio); arguments as ``rsh.Group``'s.

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

    async def run(
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
        """Run *command* on every host; host -> ``CommandResult`` or error (see ``Group.run``).

        Raises:
            GroupFailed: *check* is set and some host did not exit 0 (or raised).
        """

        async def one(client: Any, m: Member) -> CommandResult:
            out = (lambda data: on_stdout(m.name, data)) if on_stdout else None
            err = (lambda data: on_stderr(m.name, data)) if on_stderr else None
            result: CommandResult = await client.run(command, input=input, cwd=cwd, env=env, timeout=timeout, encoding=encoding, on_stdout=out, on_stderr=err)
            return result

        return await self._each(one, check, on_done)

    async def put(
        self,
        local: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | BinaryIO,
        remote: str,
        *,
        check: bool = False,
        **options: Unpack[TransferOptions],
    ) -> GroupResult:
        """Copy *local* to *remote* on every host (see ``Group.put``).

        Raises:
            GroupFailed: *check* is set and some host did not get everything.
        """
        source = shared_source(local)

        async def one(client: Any, m: Member) -> TransferResult:
            result: TransferResult = await client.put(source(), remote, **options)
            return result

        return await self._each(one, check, None)

    async def get(
        self, remote: str | Sequence[str], local_dir: str | os.PathLike[str], *, check: bool = False, **options: Unpack[TransferOptions]
    ) -> GroupResult:
        """Copy *remote* from every host into ``local_dir/HOST/`` (see ``Group.get``).

        Raises:
            GroupFailed: *check* is set and something did not arrive from some host.
        """

        async def one(client: Any, m: Member) -> TransferResult:
            result: TransferResult = await client.get(remote, host_dir(local_dir, m.name), **options)
            return result

        return await self._each(one, check, None)

    async def _client(self, m: Member) -> Any:
        client = self._clients.get(m.name)
        if client is not None and reusable(client):
            return client
        if client is not None:
            await client.close()
        from .aio import AsyncClient

        client = await AsyncClient.connect(m.host, m.port, m.token, **m.options)
        try:
            if m.on_connect is not None:
                m.on_connect(client.server_info)
        except BaseException:
            await client.close()
            raise
        self._clients[m.name] = client
        return client

    async def _each(self, work: Callable[[Any, Member], Awaitable[object]], check: bool, on_done: HostDone | None) -> GroupResult:
        gate = asyncio.Semaphore(self.limit)

        async def host(m: Member) -> tuple[object, float]:
            async with gate:
                start = time.monotonic()
                value: object
                try:
                    value = await work(await self._client(m), m)
                except Exception as exc:  # noqa: BLE001 -- the host's error is its result
                    value = exc
                elapsed = time.monotonic() - start
                if on_done is not None:
                    on_done(m.name, value, elapsed)
                return value, elapsed

        try:
            found = await asyncio.gather(*(host(m) for m in self.members))
        except BaseException:
            await self.close()
            raise
        result = GroupResult()
        for m, (value, elapsed) in zip(self.members, found, strict=True):
            result[m.name], result.elapsed[m.name] = value, elapsed
        if check and not result.ok:
            raise GroupFailed(result)
        return result

    async def close(self) -> None:
        """Close every connection (a running command is stopped by its server)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def __aenter__(self) -> AsyncGroup:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
