"""``run``, ``put`` and ``get``, written once for both clients.

Each operation is a generator over a ``ClientProtocol``: it queues frames
with the protocol's methods and, whenever it needs the world, yields what it
needs and is sent the answer::

    Need.EVENT   -> the next event (waiting for it)
    Need.POLL    -> the next event if one has already arrived, else None
    Need.ROOM    -> None, once the send queue has room again
    HashJob(job) -> job()'s result (blocking work: the asyncio client runs it in a thread)

The blocking ``Client`` answers these from its socket (through ``drive``),
the ``AsyncClient`` with ``await``: that is all either knows of an
operation, and their ``run``, ``put`` and ``get`` methods are these
functions, bound to the client's connection.  When an operation raises,
the protocol's state says what is left (``usable``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Mapping, Sequence

from ..errors import CommandFailed, CommandTimeout, ConnectionLost, ProtocolError
from ..protocol.client import ClientProtocol, ClientState, Exited, Output, exec_request
from ..protocol.connection import Event, FrameEvent
from ..protocol.frames import Frame
from ..protocol.messages import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, TypeAlias, TypedDict, TypeVar, Unpack

    from ..results import CommandResult, TransferResult
    from ..transfer.plan import LocalPath, Sources
    from ..transfer.receive import Receiver
    from ..transfer.send import PrefixHash, ProgressCallback, Sender

    T = TypeVar("T")
else:
    from ..typeshim import TypedDict

__all__ = ["Need", "HashJob", "Op", "drive", "usable", "settle", "TransferOptions", "OutputCallback", "Collector", "run", "put", "get"]

OutputCallback = Callable[[bytes], None]


class Need(enum.Enum):
    """What an operation waits for (see the module docstring)."""

    EVENT = "event"
    POLL = "poll"
    ROOM = "room"


class HashJob:
    """Blocking work an operation needs done: hash the first bytes of a file (resume)."""

    __slots__ = ("job",)

    def __init__(self, job: Callable[[], PrefixHash]) -> None:
        self.job = job


#: An operation: yields ``Need``s and ``HashJob``s, returns its result.
#: (A string: T exists only for the type checker.)
Op: TypeAlias = "Generator[Need | HashJob, Any, T]"


def drive(op: Op[T], answer: Callable[[Need | HashJob], object]) -> T:
    """Run the operation *op* to its end with *answer*, a blocking function from need to answer.

    When getting an answer raises, the error goes into the operation, which
    names what it was doing (the file a transfer was on).  ``AsyncClient``
    steps an operation the same way, with ``await``.
    """
    try:
        need = op.send(None)
        while True:
            try:
                value = answer(need)
            except BaseException as exc:
                need = op.throw(exc)
            else:
                need = op.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


def usable(conn: ClientProtocol) -> bool:
    """After an operation raised: is the connection still in step?

    A refused command or transfer, or a failed ``check``, leaves it READY;
    an interrupt or a broken stream does not.
    """
    return conn.state is ClientState.READY and not conn.at_eof


def settle(conn: ClientProtocol, flush: Callable[[], None], close: Callable[[], None]) -> None:
    """After an operation raised: send what it owed if the connection is ``usable``, else close it.

    Closing is how the server learns to stop whatever it was doing for us.
    """
    if usable(conn):
        flush()
    else:
        close()


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
        result = (_CommandResult or _load_command_result())(
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


def _load_command_result() -> type[CommandResult]:
    """``rsh.results.CommandResult``, imported on first use: `rsh exec` (forward) never makes one."""
    global _CommandResult
    from ..results import CommandResult

    _CommandResult = CommandResult
    return CommandResult


_CommandResult: type[CommandResult] | None = None


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
    session: bool = False,
) -> Op[CommandResult]:
    """Run *command* to completion, like ``subprocess.run``.

    Args:
        command: a string for the server's shell, bytes, or a list of words
            (quoted so that each arrives as one argument).
        input: bytes for the command's stdin (empty when None).
        cwd / env: where it runs and extra environment variables.
        timeout: seconds before the server stops it (TERM, then KILL).
        encoding: declare the output to be in this encoding.
        check: raise ``CommandFailed`` unless it exits 0.
        on_stdout / on_stderr: called with each chunk as it arrives.
        session: run in the connection's shell session, where the last
            session command left off (``cd``, ``export`` persist; no *cwd*).

    Raises:
        CommandTimeout, CommandFailed, RemoteError, ConnectionLost.
        On KeyboardInterrupt the connection is closed (the server then
        stops the command) and the interrupt propagates.
    """
    request = exec_request(command, stdin=input is not None, cwd=cwd, env=env, timeout=timeout, encoding=encoding, session=session)
    conn.start_command(request)
    collector = Collector(request.command.decode("utf-8", "replace"), on_stdout, on_stderr)
    status = None
    if input is not None:
        view = memoryview(input)
        for i in range(0, len(view), _STDIN_STEP):
            conn.send_stdin(view[i : i + _STDIN_STEP])
            yield Need.ROOM
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


# Data frames sent between two looks for a reply (8 in all: 2 MiB).
_DATA_UNPOLLED = 7


def _lost(where: str, exc: ConnectionLost) -> ConnectionLost:
    """The connection-lost error of a transfer, naming the file it was on."""
    return ConnectionLost(f"{where}: connection lost ({exc})")


class TransferOptions(TypedDict, total=False):
    """How ``put`` and ``get`` copy; all optional."""

    #: Copy directories (structure, modes, mtimes, symlinks as links, empty directories).
    recursive: bool
    #: Keep partial data if interrupted, and continue from the partial an
    #: earlier ``resume=True`` call kept, once its first bytes are verified to match.
    resume: bool
    #: What relative remote paths are relative to (else the server's home directory).
    cwd: str | None
    #: Called with a ``TransferProgress`` as data moves.
    progress: ProgressCallback | None


def put(conn: ClientProtocol, local: Sources, remote: str, **options: Unpack[TransferOptions]) -> Op[TransferResult]:
    """Copy local files to the server, like ``scp LOCAL HOST:REMOTE``.

    Args:
        local: a path, a list of paths (then *remote* must be an existing
            directory), or a readable binary stream (sent as one file).
        remote: where it goes: into it if it is a directory, else that name.
            Relative to *cwd*, else to the server's home directory.
        options: recursive, resume, cwd, progress (see ``TransferOptions``).

    Returns:
        What was copied; every file's SHA-256 was verified by the server
        before it appeared under its name.

    Raises:
        TransferFailed: something did not arrive (``result.failures``);
            the connection is still usable.
        ConnectionLost: the connection broke (it is closed).
        RemoteError: the server refused the transfer (``not_allowed``,
            restricted mode); the connection is still usable.
        ValueError: nothing to send.
    """
    from ..results import TransferResult
    from ..transfer.plan import checked, put_plan
    from ..transfer.send import Sender

    progress = options.get("progress")
    plan = put_plan(local, remote, recursive=options.get("recursive", False), resume=options.get("resume", False), cwd=options.get("cwd"))
    total = TransferResult()
    for request, source in plan:
        conn.start_transfer("put", request.to_fields())
        total += yield from _send(conn, Sender(source, progress=progress, sent_before=total.sent))
    return checked(total, conn.host)


def _send(conn: ClientProtocol, sender: Sender) -> Op[TransferResult]:
    """One transfer as its sender: frames out as fast as the connection takes them, replies in."""
    unpolled = 0
    try:
        while not sender.finished:
            event = None
            if unpolled:
                unpolled -= 1
            else:
                event = yield Need.POLL
            if event is None:
                if sender.pending_hash:
                    sender.hash_done((yield HashJob(sender.hash_job())))
                    continue
                out = sender.next_frame()
                if out is not None:
                    conn.send_frame(out)
                    if out.payload:
                        # A reply during a file's data is only ever a failure:
                        # look for one every few frames, not a read per frame.
                        unpolled = _DATA_UNPOLLED
                    # Back-pressure: read no more of the file than the socket takes.
                    yield Need.ROOM
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


def get(conn: ClientProtocol, remote: str | Sequence[str], local: LocalPath | BinaryIO, **options: Unpack[TransferOptions]) -> Op[TransferResult]:
    """Copy files from the server, like ``scp HOST:REMOTE LOCAL``.

    Args:
        remote: a path on the server, or several (then *local* must be an
            existing directory); relative to *cwd*, else to its home.
        local: where it goes: into it if it is a directory, else that
            name; or a writable binary stream (files only, verified
            after they are written to it; its ``write`` may be handed a
            view of a buffer reused after the call returns, as io's
            ``write`` contract allows).
        options: recursive, resume, cwd, progress, as for ``put``.

    Returns:
        What was copied; every file's SHA-256 was verified here before it
        appeared under its name.

    Raises:
        TransferFailed, ConnectionLost, RemoteError, ValueError: as for ``put``.
    """
    from ..results import TransferResult
    from ..transfer.plan import checked, get_requests, make_receiver

    requests = get_requests(remote, recursive=options.get("recursive", False), cwd=options.get("cwd"))
    resume, progress = options.get("resume", False), options.get("progress")
    total = TransferResult()
    for request in requests:
        receiver = make_receiver(local, several=len(requests) > 1, resume=resume, progress=progress, sent_before=total.sent)
        conn.start_transfer("get", request.to_fields())
        total += yield from _receive(conn, receiver)
    return checked(total, conn.host)


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
