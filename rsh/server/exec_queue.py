"""Commands waiting for a slot: past ``--max-commands`` an ``exec`` waits in a queue instead of being refused.

``ExecQueue`` starts an ``exec`` at once while fewer than ``max_commands``
run and nobody waits; otherwise it queues it, first come first served, up
to ``max_queued``.  Only an ``exec`` past that bound, or one that waited
``queue_timeout`` seconds, gets ``busy``.  While it waits, a
``QueuedCommand`` stands in for the command on its connection: it keeps the
client's stdin (up to ``STDIN_HOLD``, then the connection stops being read),
a ``signal`` ends it as the signal would have ended the command, and the
client's ``timeout`` counts from the ``exec``, so a command that waited
past it ends ``timed_out`` without having run.  The wait counts in ``elapsed``
(``RunningCommand``'s ``started``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ..protocol.messages import ExitStatus
from .limits import Limits

__all__ = ["ExecQueue", "QueuedCommand", "STDIN_HOLD"]

#: Bytes of stdin a waiting command keeps before its connection is no longer read.
STDIN_HOLD = 1 << 20


class QueueLink(Protocol):
    """The connection of a waiting command, as the queue sees it."""

    def command_exited(self, status: ExitStatus) -> None:
        """The command is over (here: it ended without having run)."""
        ...

    def refuse_command(self, code: str, message: str) -> None:
        """Answer the ``exec`` with an ``error``; the connection stays usable."""
        ...

    def pause_input(self) -> None:
        """Stop reading the client."""
        ...

    def resume_input(self) -> None:
        """Read the client again."""
        ...


class Started(Protocol):
    """What a waiting command's stdin goes to once it runs (a ``RunningCommand``)."""

    def feed_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def close_output(self, stream: str) -> None: ...


class _Counts(Protocol):
    limits: Limits
    running: int


class ExecQueue:
    """The server's queue of commands waiting for one of ``max_commands`` slots.

    Args:
        counts: where the limits and the number of running commands are (the ``Guard``).
    """

    def __init__(self, counts: _Counts) -> None:
        self._counts = counts
        self.waiting: deque[QueuedCommand] = deque()
        self._scheduled = False
        #: Commands that waited, all told (for the benchmarks and the tests).
        self.queued_total = 0

    def submit(self, link: QueueLink, spawn: Callable[[], Started | None], *, timeout: float | None, encoding: str, t0: float) -> QueuedCommand | None:
        """Run *spawn* now if a slot is free, else queue it (or refuse with ``busy``).

        Returns the stand-in while it waits, None when it ran or was refused.
        """
        limits = self._counts.limits
        if self._counts.running < limits.max_commands and not self.waiting:
            spawn()
            return None
        if len(self.waiting) >= limits.max_queued:
            link.refuse_command(
                "busy",
                f"server busy: {self._counts.running} commands running and {len(self.waiting)} waiting, the limits are "
                f"{limits.max_commands} and {limits.max_queued}; try again later",
            )
            return None
        waiter = QueuedCommand(self, link, spawn, timeout=timeout, encoding=encoding, t0=t0)
        self.waiting.append(waiter)
        self.queued_total += 1
        return waiter

    def kick(self) -> None:
        """A slot may have freed: start who waits, in a turn of its own (never inside another command's callbacks)."""
        if self.waiting and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        while self.waiting and self._counts.running < self._counts.limits.max_commands:
            self.waiting.popleft().run()

    def discard(self, waiter: QueuedCommand) -> None:
        try:
            self.waiting.remove(waiter)
        except ValueError:
            pass


class QueuedCommand:
    """An ``exec`` waiting for a slot, standing in for its command on the connection (see the module docstring)."""

    def __init__(self, queue: ExecQueue, link: QueueLink, spawn: Callable[[], Started | None], *, timeout: float | None, encoding: str, t0: float) -> None:
        loop = asyncio.get_running_loop()
        self._queue = queue
        self._link = link
        self._spawn = spawn
        self._encoding = encoding
        self._t0 = t0
        self._stdin = bytearray()
        self._eof = False
        self._closed: list[str] = []  # streams whose reader left meanwhile (``closed``)
        self._paused = False
        #: Resolved once it no longer waits (the listener waits for it like for a command's reaping).
        self.reaped: asyncio.Future[None] = loop.create_future()
        limits = queue._counts.limits
        self._timers = [loop.call_later(limits.queue_timeout, self._waited_too_long)]
        if timeout is not None:
            self._timers.append(loop.call_later(max(0.0, timeout - (time.monotonic() - t0)), self._timed_out))

    # -- what the connection does to a command ---------------------------------

    def feed_stdin(self, data: bytes) -> None:
        """Keep *data* for the command; past ``STDIN_HOLD``, stop reading the client."""
        self._stdin += data
        if len(self._stdin) > STDIN_HOLD and not self._paused:
            self._paused = True
            self._link.pause_input()

    def close_stdin(self) -> None:
        """The client's stdin ends here."""
        self._eof = True

    def close_output(self, stream: str) -> None:
        """The client's reader of *stream* has gone: the command will start with that pipe closed."""
        self._closed.append(stream)

    def signal(self, signum: int) -> None:
        """End it, reported as the signal would have ended the command (all the protocol's signals end a shell)."""
        if self._leave():
            self._link.command_exited(self._status(signum, timed_out=False))

    def abort(self) -> None:
        """The client is gone: forget it."""
        self._leave()

    def pause_output(self) -> None:
        """Nothing to pause: it has no output yet."""

    def resume_output(self) -> None:
        """Nothing to resume: it has no output yet."""

    # -- the queue's side ---------------------------------------------------------

    def run(self) -> None:
        """A slot is free: start the command and hand it what stdin came meanwhile."""
        if not self._leave(resume=False):
            return
        command = self._spawn()
        if command is not None:
            if self._stdin:
                command.feed_stdin(bytes(self._stdin))
            if self._eof:
                command.close_stdin()
            for stream in self._closed:
                command.close_output(stream)
        self._stdin = bytearray()
        if self._paused:
            self._link.resume_input()

    def _leave(self, resume: bool = True) -> bool:
        """Stop waiting (once); False if it already had."""
        if self.reaped.done():
            return False
        self._queue.discard(self)
        for timer in self._timers:
            timer.cancel()
        self.reaped.set_result(None)
        if resume and self._paused:
            self._paused = False
            self._link.resume_input()
        return True

    def _waited_too_long(self) -> None:
        if self._leave():
            limits = self._queue._counts.limits
            self._link.refuse_command("busy", f"server busy: waited {limits.queue_timeout:g} s for one of {limits.max_commands} command slots; try again later")

    def _timed_out(self) -> None:
        if self._leave():
            # As a command stopped at its timeout reports it: ended by TERM.
            self._link.command_exited(self._status(signal.SIGTERM, timed_out=True))

    def _status(self, signum: int, *, timed_out: bool) -> ExitStatus:
        return ExitStatus(
            exit_code=None,
            signal=signum,
            timed_out=timed_out,
            elapsed=time.monotonic() - self._t0,
            stdout_bytes=0,
            stderr_bytes=0,
            encoding=self._encoding,
        )
