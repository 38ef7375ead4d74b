"""Where a sender and a receiver stand in a transfer: their states, and the moves each state allows.

In the manner of h11's transition tables: each role is in exactly one
state, and an *event* (a frame sent or received, or a local step such as
a hash finishing) moves it to the state its table names, or is refused
as out of turn.  What a caller may ask (``finished``, ``refused``,
``pending_hash``) is read off the state, never kept beside it.

Events are named by the frame that makes them where there is one; the
others are ``offer`` (a ``ready`` offering to resume), ``failure`` (the
file in hand failed), ``hashed`` (the sender's prefix hash is done),
``partial`` (the receiver found a partial file to check), ``refusal``
(the request was refused) and ``abort`` (the receiver gives up).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar

from ..errors import ProtocolError
from ..protocol.frames import Frame
from .counts import ProgressCallback, TransferCounts
from .failures import is_refusal

__all__ = ["SenderState", "ReceiverState", "Table", "Role", "SENDER_TABLE", "RECEIVER_TABLE"]

S = TypeVar("S", bound=enum.Enum)


class SenderState(enum.Enum):
    """Where a ``Sender`` is: what it may send next, and what it waits for."""

    #: Free to send the next entry (while fewer than MAX_IN_FLIGHT are unanswered).
    ENTRIES = enum.auto()
    #: A file's entry is out: nothing more goes until its first answer.
    AWAIT_READY = enum.auto()
    #: The receiver offered to resume: our first bytes must be hashed first.
    HASHING = enum.auto()
    #: The ``resume`` answering the offer goes next, then the data.
    RESUME_DUE = enum.auto()
    #: The receiver failed the file while its offer stood: ``resume`` still
    #: goes (the receiver waits for it), then a failed ``file_end``.
    RESUME_THEN_STOP = enum.auto()
    #: The file's data goes out, then its ``file_end``.
    DATA = enum.auto()
    #: The receiver failed the file: a failed ``file_end`` goes next.
    STOPPING = enum.auto()
    #: ``end`` is out: late failures (directory modes and times), then ``done``.
    ENDED = enum.auto()
    #: ``done`` came.
    DONE = enum.auto()
    #: Refused: our closing ``end`` goes next, and then nothing.
    END_DUE = enum.auto()
    #: Refused, and nothing more goes.
    REFUSED = enum.auto()


class ReceiverState(enum.Enum):
    """Where a ``Receiver`` is: what it takes next."""

    #: The next entry, an entry failure, or ``end``.
    ENTRIES = enum.auto()
    #: A partial file's first bytes must be hashed before the file is answered.
    HASHING = enum.auto()
    #: ``ready`` offered to resume: the sender's ``resume`` must come next.
    OFFERED = enum.auto()
    #: The file's data, then its ``file_end``.
    DATA = enum.auto()
    #: We failed the file and said so: its data is dropped until ``file_end``.
    DISCARDING = enum.auto()
    #: ``done`` is sent.
    DONE = enum.auto()
    #: Given up (the connection lost, an interrupt): nothing more.
    ABORTED = enum.auto()
    #: The sender refused the transfer with its first frame.
    REFUSED = enum.auto()


class Table(Generic[S]):
    """One role's legal moves, and which states mean what to a caller.

    Args:
        moves: for each state, the events it allows and the state each leads to.
        hashing: the state in which a prefix hash must run (``pending_hash``).
        finished: the states in which the transfer is over for this role.
        refused: the states reached by a refused request.
    """

    def __init__(self, moves: Mapping[S, Mapping[str, S]], *, hashing: S, finished: frozenset[S], refused: frozenset[S]) -> None:
        self.moves = moves
        self.hashing = hashing
        self.finished = finished
        self.refused = refused


_S = SenderState
SENDER_TABLE: Table[SenderState] = Table(
    {
        _S.ENTRIES: {"file": _S.AWAIT_READY, "end": _S.ENDED, "refusal": _S.END_DUE},
        _S.AWAIT_READY: {"ready": _S.DATA, "offer": _S.HASHING, "failure": _S.ENTRIES, "refusal": _S.END_DUE},
        _S.HASHING: {"hashed": _S.RESUME_DUE, "failure": _S.RESUME_THEN_STOP},
        _S.RESUME_DUE: {"resume": _S.DATA, "failure": _S.RESUME_THEN_STOP},
        _S.RESUME_THEN_STOP: {"resume": _S.STOPPING},
        _S.DATA: {"file_end": _S.ENTRIES, "failure": _S.STOPPING},
        _S.STOPPING: {"file_end": _S.ENTRIES},
        _S.ENDED: {"done": _S.DONE, "refusal": _S.REFUSED},
        _S.END_DUE: {"end": _S.REFUSED},
        _S.DONE: {},
        _S.REFUSED: {},
    },
    hashing=_S.HASHING,
    finished=frozenset({_S.DONE, _S.END_DUE, _S.REFUSED}),
    refused=frozenset({_S.END_DUE, _S.REFUSED}),
)

_R = ReceiverState
RECEIVER_TABLE: Table[ReceiverState] = Table(
    {
        _R.ENTRIES: {"file": _R.DATA, "partial": _R.HASHING, "end": _R.DONE, "refusal": _R.REFUSED, "abort": _R.ABORTED},
        _R.HASHING: {"ready": _R.DATA, "offer": _R.OFFERED, "failure": _R.ENTRIES, "abort": _R.ABORTED},
        _R.OFFERED: {"resume": _R.DATA, "abort": _R.ABORTED},
        _R.DATA: {"failure": _R.DISCARDING, "file_end": _R.ENTRIES, "abort": _R.ABORTED},
        _R.DISCARDING: {"file_end": _R.ENTRIES, "abort": _R.ABORTED},
        _R.DONE: {},
        _R.ABORTED: {},
        _R.REFUSED: {},
    },
    hashing=_R.HASHING,
    finished=frozenset({_R.DONE, _R.ABORTED, _R.REFUSED}),
    refused=frozenset({_R.REFUSED}),
)


class Role(TransferCounts, Generic[S]):
    """A sender or a receiver: its counts, and one state moved only along its table.

    Args:
        table: the role's legal moves.
        start: its first state.
        progress: called as data moves.
        sent_before: bytes counted by earlier transfers of the same call.
    """

    def __init__(self, table: Table[S], start: S, *, progress: ProgressCallback | None, sent_before: int) -> None:
        super().__init__(progress=progress, sent_before=sent_before)
        self._table = table
        self._state = start
        # A refusal can only be the peer's first frame; after that the same
        # frame is an error that ends the connection.
        self._heard = False

    @property
    def state(self) -> S:
        """Where this role stands."""
        return self._state

    @property
    def finished(self) -> bool:
        """True once the transfer is over for this role (done, refused, or given up)."""
        return self._state in self._table.finished

    @property
    def refused(self) -> bool:
        """True when the peer refused the transfer before answering anything.

        The ``on_*`` call that saw it raised its ``RemoteError``; the
        connection stays usable (a sender's closing ``end``, if
        ``next_frame()`` still has one, must go first).
        """
        return self._state in self._table.refused

    @property
    def pending_hash(self) -> bool:
        """True while a file's first bytes must be hashed (``hash_job()``, then ``hash_done()``) before anything more."""
        return self._state is self._table.hashing

    def _allows(self, event: str) -> bool:
        """True when the current state has a move for *event*."""
        return event in self._table.moves[self._state]

    def _move(self, event: str) -> None:
        """Take the move *event* makes from the current state.

        Raises:
            ProtocolError: the state does not allow *event* (``unexpected_frame``).
        """
        try:
            self._state = self._table.moves[self._state][event]
        except KeyError:
            raise ProtocolError(f"{event!r} is out of turn in a transfer ({self._state.name})", code="unexpected_frame") from None

    def _refusal_first(self, frame: Frame) -> bool:
        """Note that the peer spoke; True when *frame* is a refusal and the first thing it said."""
        first, self._heard = not self._heard, True
        return first and is_refusal(frame)
