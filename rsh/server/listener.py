"""The rsh server: listen, admit each connection, and account for the commands they run.

``Server`` binds the socket and makes every accepted connection's first
protocol a ``Gate`` (``rsh.server.admission``: address, limits, TLS), which
hands it to a ``ServerConnection`` (``rsh.server.connection``).  What the
connections share lives here: the configuration, the descriptor watcher
for every command's pipes, the count of running commands, and the commands
of lost connections still being stopped, so that ``close`` ends them all.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import os
import signal
import sys
from collections.abc import Callable

from ..protocol.frames import DEFAULT_MAX_PAYLOAD
from .admission import Gate, Guard
from .connection import ServerConnection
from .fdwatch import FdWatcher
from .link import Reaped
from .process import KILL_GRACE
from .settings import ServerConfig
from .spawn import keep_inherited_to_ourselves

__all__ = ["Server"]


class Server:
    """A listening rsh server.

    Args:
        host: address to bind (loopback by default).
        port: TCP port; 0 picks a free one (read it back from ``port``).
        token: the shared secret, or None to run without authentication.
        encoding: the default encoding it declares (its locale's by default).
        max_payload: the largest payload accepted from a client.
        log: where one-line notices go (stderr by default).
        kill_leftovers: on close, also end what commands left running in
            the background (``sleep 100 &``): for the private server of
            ``rsh`` alone.
        guard: admission, limits, TLS, restricted mode and audit (see
            ``rsh.server.admission``); the default has the default limits,
            plain TCP, no restrictions and no audit log.
        shell: what a prompt session's live shell runs (the login shell by default).

    Raises:
        LookupError: *encoding* is not a codec Python knows.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        encoding: str | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        log: Callable[[str], None] | None = None,
        kill_leftovers: bool = False,
        guard: Guard | None = None,
        shell: str | None = None,
    ) -> None:
        self.host = host
        self.kill_leftovers = kill_leftovers
        #: Process groups of commands, kept with ``kill_leftovers`` while something is left in them.
        self.groups: set[int] = set()
        self.port = port
        self.config = ServerConfig(token=token, max_payload=max_payload)
        if encoding is not None:
            self.config.encoding = codecs.lookup(encoding).name
        if shell is not None:
            self.config.shell = shell
        self.connections: set[ServerConnection] = set()
        # Commands of closed connections whose process is not yet reaped.
        self.aborted: set[Reaped] = set()
        self._log = log
        self._server: asyncio.Server | None = None
        self._watcher: FdWatcher | None = None
        self.guard = guard or Guard()
        self.guard.log = self.log

    def log(self, message: str) -> None:
        """Write a one-line notice."""
        if self._log is not None:
            self._log(message)
        else:
            print(f"rsh: {message}", file=sys.stderr, flush=True)

    @property
    def watcher(self) -> FdWatcher:
        """Watches every command's pipes and exit, for all connections."""
        if self._watcher is None:
            self._watcher = FdWatcher()
        return self._watcher

    # -- what connections report (rsh.server.connection.Host) ------------------

    def command_started(self, pid: int) -> None:
        """Count a command that started, in process group *pid*."""
        if self.kill_leftovers:
            self.groups.add(pid)
        self.guard.running += 1

    def command_reaped(self, pid: int) -> None:
        """The main process of the command in group *pid* was reaped."""
        self.guard.running -= 1
        if pid in self.groups:
            # Forget a group with nothing left in it: the set would grow by
            # one per command for as long as the prompt runs, and a group's
            # number, once free, may be taken by someone else's group.
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                self.groups.discard(pid)
            except PermissionError:
                pass

    def command_abandoned(self, command: Reaped) -> None:
        """Keep *command*, whose connection is gone, until it is reaped: ``close`` waits for it."""
        self.aborted.add(command)
        command.reaped.add_done_callback(functools.partial(_forget, self.aborted, command))

    # -- life -----------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; ``port`` then holds the bound port.

        Raises:
            OSError: the address cannot be bound.
        """
        keep_inherited_to_ourselves()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Gate(self.guard, lambda slot: ServerConnection(self, slot)), self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        """``HOST:PORT`` as a client would name it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def serve_forever(self) -> None:
        """Serve until cancelled, then close."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, drop every connection and stop its command."""
        if self._server is not None:
            self._server.close()
        self.guard.close()
        for conn in list(self.connections):
            conn.shut_down()
        # Let TERM, then KILL, take effect so no command outlives the server.
        if self.aborted:
            await asyncio.wait([c.reaped for c in self.aborted], timeout=KILL_GRACE + 1)
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self.kill_leftovers:
            await _end_groups(self.groups)
        if self._server is not None:
            await self._server.wait_closed()
        if self.guard.audit is not None:
            self.guard.audit.flush()


def _forget(aborted: set[Reaped], command: Reaped, _: object) -> None:
    aborted.discard(command)


async def _end_groups(groups: set[int]) -> None:
    """TERM every process group still there, then KILL what is left after a grace period."""

    def send(sig: int) -> set[int]:
        alive = set()
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
                alive.add(pgid)
            except (ProcessLookupError, PermissionError):
                pass
        return alive

    loop = asyncio.get_running_loop()
    groups = send(signal.SIGTERM)
    deadline = loop.time() + KILL_GRACE
    while groups and loop.time() < deadline:
        await asyncio.sleep(0.05)
        groups = send(0)
    send(signal.SIGKILL)
