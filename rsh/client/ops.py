"""``run``, ``put`` and ``get``, written once for both clients.

Each operation is a generator over a ``ClientProtocol``: it queues frames
with the protocol's methods and, whenever it needs the world, yields what it
needs and is sent the answer::

    Need.EVENT   -> the next event (waiting for it)
    Need.POLL    -> the next event if one has already arrived, else None
    Need.DRAIN   -> None, once the send queue has room again
    HashJob(job) -> job()'s result (blocking work: the asyncio client runs it in a thread)

The blocking ``Client`` answers these from a socket and ``poll()``, the
``AsyncClient`` with ``await``: that is all either knows of an operation.
When an operation raises, the protocol's state says what is left: READY
(a refused command or transfer, a failed ``check``) keeps the connection;
anything else means the stream is out of step and the driver closes it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from ..errors import CommandFailed, CommandTimeout, ConnectionLost, ProtocolError
from ..protocol.client import ClientProtocol, Exited, Output, exec_request
from ..protocol.connection import Event, FrameEvent
from ..protocol.frames import Frame
from ..protocol.messages import ExitStatus

if TYPE_CHECKING:
    from ..results import CommandResult, TransferResult
    from ..transfer.plan import LocalPath, Sources
    from ..transfer.receive import Receiver
    from ..transfer.send import PrefixHash, ProgressCallback, Sender

__all__ = ["Need", "HashJob", "Op", "OutputCallback", "Collector", "run", "put", "get"]

T = TypeVar("T")

OutputCallback = Callable[[bytes], None]


class Need(enum.Enum):
    """What an operation waits for (see the module docstring)."""

    EVENT = "event"
    POLL = "poll"
    DRAIN = "drain"


class HashJob:
    """Blocking work an operation needs done: hash the first bytes of a file (resume)."""

    __slots__ = ("job",)

    def __init__(self, job: Callable[[], PrefixHash]) -> None:
        self.job = job


#: An operation: yields ``Need``s and ``HashJob``s, returns its result.
Op = Generator["Need | HashJob", Any, T]


class Collector:
    """One command's output, kept for its ``CommandResult``."""

    def __init__(self, command: str, on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None) -> None:
        self.command = command
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._on = {"stdout": on_stdout, "stderr": on_stderr}

    def take(self, event: Output) -> None:
        """Keep a chunk of output (and hand it to its callback)."""
        (self._out if event.stream == "stdout" else self._err).append(event.data)
        callback = self._on[event.stream]
        if callback is not None:
            callback(event.data)

    def result(self, status: ExitStatus, *, check: bool) -> CommandResult:
        """The finished command's result.

        Raises:
            CommandTimeout: the server stopped the command at its timeout.
            CommandFailed: *check* is set and the command did not exit 0.
        """
        from ..results import CommandResult  # here: `rsh exec` (forward) never makes one

        result = CommandResult(
            command=self.command,
            stdout=b"".join(self._out),
            stderr=b"".join(self._err),
            exit_code=status.exit_code,
            signal=status.signal,
            encoding=status.encoding,
            elapsed=status.elapsed,
            timed_out=status.timed_out,
        )
        if result.timed_out:
            raise CommandTimeout(result, f"command {self.command!r} timed out after {status.elapsed:.1f}s")
        if check and not result.ok:
            raise CommandFailed(result)
        return result


def _command_event(event: Event | None, collector: Collector) -> ExitStatus | None:
    """Handle one event of a running command; its status once it has exited."""
    if isinstance(event, Output):
        collector.take(event)
    elif isinstance(event, Exited):
        return event.status
    elif event is not None:
        raise ProtocolError(f"unexpected {type(event).__name__} while a command runs", code="unexpected_frame")
    return None


def run(
    conn: ClientProtocol,
    command: str | bytes | Sequence[str],
    *,
    input: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    encoding: str | None = None,
    check: bool = False,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
) -> Op[CommandResult]:
    """Run *command* to completion, feeding it *input*; see ``Client.run``."""
    request = exec_request(command, stdin=input is not None, cwd=cwd, env=env, timeout=timeout, encoding=encoding)
    conn.start_command(request)
    collector = Collector(request.command.decode("utf-8", "replace"), on_stdout, on_stderr)
    status = None
    if input is not None:
        view = memoryview(input)
        for i in range(0, len(view), _STDIN_STEP):
            conn.send_stdin(view[i : i + _STDIN_STEP])
            yield Need.DRAIN
            # Take what output came meanwhile: a command that writes before
            # it has read all its input must not wait for us to finish.
            while status is None and (event := (yield Need.POLL)) is not None:
                status = _command_event(event, collector)
            if status is not None:
                break  # it ended without reading the rest
        else:
            conn.close_stdin()
    while status is None:
        status = _command_event((yield Need.EVENT), collector)
    return collector.result(status, check=check)


# Input goes out a few chunks at a time between looks at the output.
_STDIN_STEP = 4 * 64 * 1024


def _lost(where: str, exc: ConnectionLost) -> ConnectionLost:
    """The connection-lost error of a transfer, naming the file it was on."""
    return ConnectionLost(f"{where}: connection lost ({exc})")


def put(
    conn: ClientProtocol,
    local: Sources,
    remote: str,
    *,
    host: str,
    recursive: bool = False,
    resume: bool = False,
    cwd: str | None = None,
    progress: ProgressCallback | None = None,
) -> Op[TransferResult]:
    """Copy local files to the server, one transfer per source; see ``Client.put``."""
    from ..results import TransferResult
    from ..transfer.plan import checked, put_plan
    from ..transfer.send import Sender

    total = TransferResult()
    for request, source in put_plan(local, remote, recursive=recursive, resume=resume, cwd=cwd):
        conn.start_transfer("put", request.to_fields())
        total += yield from _send(conn, Sender(source, progress=progress, sent_before=total.sent))
    return checked(total, host)


def _send(conn: ClientProtocol, sender: Sender) -> Op[TransferResult]:
    """One transfer as its sender: frames out as fast as the connection takes them, replies in."""
    try:
        while not sender.finished:
            event = yield Need.POLL
            if event is None:
                if sender.pending_hash:
                    sender.hash_done((yield HashJob(sender.hash_job())))
                    continue
                out = sender.next_frame()
                if out is not None:
                    conn.send_frame(out)
                    # Back-pressure: read no more of the file than the socket takes.
                    yield Need.DRAIN
                    continue
                event = yield Need.EVENT
            sender.on_reply(_transfer_frame(event))
    except ConnectionLost as exc:
        raise _lost(sender.where, exc) from exc
    except ProtocolError:
        if sender.refused:
            # Refused (restricted mode): the server drops what we sent up to
            # our `end`, and is then ready for the next request.
            out = sender.next_frame()
            if out is not None:
                conn.send_frame(out)
            conn.end_transfer()
        raise
    finally:
        sender.close()
    conn.end_transfer()
    return sender.result()


def get(
    conn: ClientProtocol,
    remote: str | Sequence[str],
    local: LocalPath | BinaryIO,
    *,
    host: str,
    recursive: bool = False,
    resume: bool = False,
    cwd: str | None = None,
    progress: ProgressCallback | None = None,
) -> Op[TransferResult]:
    """Copy files from the server, one transfer per remote path; see ``Client.get``."""
    from ..results import TransferResult
    from ..transfer.plan import checked, get_requests, make_receiver

    requests = get_requests(remote, recursive=recursive, cwd=cwd)
    total = TransferResult()
    for request in requests:
        receiver = make_receiver(local, several=len(requests) > 1, resume=resume, progress=progress, sent_before=total.sent)
        conn.start_transfer("get", request.to_fields())
        total += yield from _receive(conn, receiver)
    return checked(total, host)


def _receive(conn: ClientProtocol, receiver: Receiver) -> Op[TransferResult]:
    """One transfer as its receiver: frames in, replies out."""
    try:
        while not receiver.finished:
            for out in receiver.on_frame(_transfer_frame((yield Need.EVENT))):
                conn.send_frame(out)
            if receiver.pending_hash:
                for out in receiver.hash_done((yield HashJob(receiver.hash_job()))):
                    conn.send_frame(out)
    except ConnectionLost as exc:
        where = receiver.where
        receiver.abort(interrupted=True)
        raise _lost(where, exc) from exc
    except BaseException:
        receiver.abort(interrupted=True)
        if receiver.refused:
            conn.end_transfer()  # refused (restricted mode): the server stays ready
        raise
    conn.end_transfer()
    return receiver.result()


def _transfer_frame(event: Event) -> Frame:
    if not isinstance(event, FrameEvent):
        raise ProtocolError(f"unexpected {type(event).__name__} during a transfer", code="unexpected_frame")
    return event.frame
