"""What both ends of a connection share, without I/O: bytes in, events out, bytes to send.

In the manner of h11: a connection object owns the frame codec and the
connection's state, and its driver does the I/O::

    conn.receive_data(data)          # b"" is end of stream
    while (event := conn.next_event()) is not NEED_DATA:
        handle(event)
    sock.sendmsg(conn.data_to_send())

``get_buffer(n)`` / ``buffer_updated(n)`` are the same way in without a copy
(``socket.recv_into``, asyncio's ``BufferedProtocol``).  Every frame sent
goes through ``send``, which checks it is legal in the current state, and
every frame received is checked the same way before it becomes an event: the
legal moves of each role are data, a transition table (``Role.TRANSITIONS``),
not ``if``s spread over the drivers.

A role subclasses ``Connection``: it names its states, its table, and turns
each received frame into a typed event (``_on_frame``).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping

from ..errors import ConnectionLost, ProtocolError
from .frames import DEFAULT_MAX_PAYLOAD, Frame, FrameDecoder, TraceHook, encode_header

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Final, TypeAlias

__all__ = ["NEED_DATA", "NeedData", "Event", "FrameEvent", "Connection", "Transitions", "State", "Direction", "STAY"]


class NeedData(enum.Enum):
    """The type of ``NEED_DATA``, h11's sentinel: no event until more bytes arrive."""

    NEED_DATA = "need data"


NEED_DATA: Final = NeedData.NEED_DATA


class Event:
    """Base of every event a connection hands its driver."""

    __slots__ = ()


class FrameEvent(Event):
    """A frame the role hands over as it came (a transfer's own frames: see ``rsh.transfer``)."""

    __slots__ = ("frame",)

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    def __repr__(self) -> str:
        return f"FrameEvent({self.frame!r})"


class State(enum.Enum):
    """Base of each role's states (and of ``Direction``).

    Members are singletons: they hash by identity, in C.  Enum's own hash is
    a Python call, and the table looks a state and a direction up on every frame.
    """

    __hash__ = object.__hash__


class Direction(State):
    """Which way a frame goes, as the transition tables name moves."""

    SEND = "send"
    RECV = "recv"


class _Stay(enum.Enum):
    STAY = "stay"


#: In a transition table: the move is legal and the state stays as it is.
STAY: Final = _Stay.STAY


#: state -> (direction, frame type) -> next state (or ``STAY``).  A move
#: missing from the table is illegal: sending it raises
#: ``ProtocolError(code="local")`` (a bug on our side, as h11's
#: LocalProtocolError); receiving it, ``ProtocolError(code="unexpected_frame")``.
Transitions: TypeAlias = "Mapping[Any, Mapping[tuple[Direction, str], Any]]"


class Connection:
    """Frames in and out for one end of a connection, moving through the role's states.

    Args:
        max_payload: the largest payload accepted from the peer.
        trace: called with every frame sent and received (``--trace``).
    """

    #: The role's table of legal moves; set by each subclass.
    TRANSITIONS: ClassVar[Transitions]
    #: States where the peer's end of stream is not an error.
    EOF_OK: ClassVar[frozenset[Any]] = frozenset()

    def __init__(self, initial: Any, *, max_payload: int = DEFAULT_MAX_PAYLOAD, trace: TraceHook | None = None) -> None:
        self.state = initial
        self.decoder = FrameDecoder(max_payload)
        self.trace = trace
        #: Bytes handed out by ``data_to_send`` or waiting there: the stream
        #: offset of the next frame we send (for ``--trace``).
        self.sent_bytes = 0
        self._out: list[bytes | memoryview] = []
        self._frames: deque[Frame] = deque()
        # Events a role makes of nothing received (the server's Authenticated
        # without a token): handed out first.
        self._made: list[Event] = []
        self._eof = False
        # A framing error, raised by next_event once the frames before it are out.
        self._failure: Exception | None = None

    # -- bytes in -----------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes from the peer; ``b""`` says the stream has ended."""
        if data:
            n = len(data)
            with self.decoder.get_buffer(n) as buf:
                buf[:n] = data
            self.buffer_updated(n)
        else:
            self.buffer_updated(0)

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Space to read the peer's bytes into (then call ``buffer_updated``).

        Raises:
            ProtocolError: the stream broke earlier; nothing more is read.
        """
        return self.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        """*nbytes* were written at the start of the last ``get_buffer()``; 0 is end of stream.

        A framing error is not raised here but by ``next_event``, after the
        frames of earlier reads: what the peer said before it broke the
        stream (an ``exit``, say) still counts.  (Frames in the same read as
        the bad bytes are not kept: the decoder stops at the first error.)
        """
        if nbytes == 0:
            self._eof = True
        if self._failure is not None:
            return
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except ProtocolError as exc:
            self._failure = self._framing_error(exc)
            return
        if frames:
            self._frames.extend(frames)

    def detach_payload(self) -> bool:
        """Give out what has come of the frame being received, if it is of a lent type (see ``FrameDecoder.detach``).

        The piece comes out of ``next_event`` as any frame, checked as any
        frame.  False, and nothing given out, while earlier frames wait,
        after a framing error, or while tracing (a trace shows whole frames).
        """
        if self._frames or self._failure is not None or self.trace is not None:
            return False
        piece = self.decoder.detach()
        if piece is None:
            return False
        self._frames.append(piece)
        return True

    # -- events out ---------------------------------------------------------

    def next_event(self) -> Event | NeedData:
        """The next event, or ``NEED_DATA`` until more bytes arrive.

        Raises:
            ProtocolError: a frame that has no place in the current state.
            ConnectionLost: the peer ended the stream where that is not allowed.
            RemoteError, AuthError: as the role decides.
        """
        if self._made:
            return self._made.pop(0)
        while True:
            if self._frames:
                frame = self._frames.popleft()
                if self.trace is not None:
                    self.trace("recv", frame, frame.raw_header, frame.offset)
                self._move(Direction.RECV, frame.type)
                event = self._on_frame(frame)
                if event is not None:
                    return event
                continue
            if self._failure is not None:
                raise self._failure
            if self._eof and self.state not in self.EOF_OK:
                raise ConnectionLost(self._eof_message())
            return NEED_DATA

    @property
    def frames_waiting(self) -> int:
        """Frames decoded but not yet turned into events (a driver's back-pressure gauge)."""
        return len(self._frames)

    @property
    def at_eof(self) -> bool:
        """The peer has ended its stream, or broke it."""
        return self._eof or self._failure is not None

    def _on_frame(self, frame: Frame) -> Event | None:
        """Turn a frame the table allowed into an event (None: nothing for the driver)."""
        raise NotImplementedError

    def _eof_message(self) -> str:
        return "connection closed by peer"

    def _framing_error(self, exc: ProtocolError) -> Exception:
        """What a broken stream is to this role (the server answers it; a client reports it)."""
        return exc

    # -- bytes out ----------------------------------------------------------

    def send(self, type: str, fields: dict[str, Any] | None = None, payload: bytes | memoryview = b"") -> None:
        """Queue one frame for ``data_to_send``, after checking it is legal now.

        The payload is queued as it is, not copied: a memoryview must stay
        valid until the driver has written what ``data_to_send`` returned.

        Raises:
            ProtocolError: the frame may not be sent in this state (a bug in the caller).
        """
        self._move(Direction.SEND, type)
        head = encode_header(type, fields, len(payload))
        if self.trace is not None:
            self.trace("send", Frame(type, dict(fields or {}), bytes(payload)), head[4:], self.sent_bytes)
        self.sent_bytes += len(head) + len(payload)
        self._out.append(head)
        if payload:
            self._out.append(payload)

    def send_header(self, type: str, size: int) -> bytes:
        """Check and count a frame whose *size* payload bytes the driver sends itself; return its header.

        For a payload that never enters our memory (``splice`` from a pipe):
        the driver writes the returned prefix and header, then exactly *size*
        bytes, before anything ``data_to_send`` returns later.  Not for a
        traced connection: the trace shows every payload.

        Raises:
            ProtocolError: the frame may not be sent in this state (a bug in the caller).
        """
        self._move(Direction.SEND, type)
        head = encode_header(type, None, size)
        self.sent_bytes += len(head) + size
        return head

    def send_frame(self, frame: Frame) -> None:
        """``send`` a whole ``Frame`` (what ``rsh.transfer``'s sender and receiver hand out)."""
        self.send(frame.type, frame.fields, frame.payload)

    def data_to_send(self) -> list[bytes | memoryview]:
        """Take the buffers queued by ``send``, in order (headers and payloads apart)."""
        out, self._out = self._out, []
        return out

    # -- states -------------------------------------------------------------

    def _move(self, direction: Direction, type: str) -> None:
        moves = self.TRANSITIONS.get(self.state)
        target = moves.get((direction, type)) if moves is not None else None
        if target is None:
            raise self._illegal(direction, type)
        if target is not STAY:
            self.state = target

    def _illegal(self, direction: Direction, type: str) -> ProtocolError:
        """The error for a move the table does not have (a role may say it its own way)."""
        if direction is Direction.SEND:
            return ProtocolError(f"cannot send {type!r} while {self._state_name()}", code="local")
        return ProtocolError(f"{type!r} frame not allowed while {self._state_name()}", code="unexpected_frame")

    def _state_name(self) -> str:
        return str(getattr(self.state, "value", self.state))
