"""The server's side of a connection, without I/O: its states, its legal moves, its events.

``ServerProtocol`` is the server role of ``rsh.protocol.connection.Connection``.
It sends ``hello`` when made, checks the client's ``auth`` itself (HMAC over
both nonces, ``rsh.protocol.auth``), validates every request's fields, and
hands its driver (``rsh.server.connection``) typed events::

    AUTH --auth ok--> READY --exec--> RUNNING --exit sent--> READY
      \\--bad mac--> REJECTED              \\--refused (error sent)--> READY
                     READY --put---> RECEIVING --done sent--> READY
                                       \\--refused--> DISCARDING --end--> READY
                     READY --get---> SENDING --done received--> READY
                                       \\--refused--> READY
                     READY --shell-> SHELL --line--> LINE --line_end--> SHELL
                                       \\--exit sent (the shell ended)--> READY
    any state --close (timeout, failed auth, protocol error)--> CLOSED

Every move, the server's own decisions too (``REJECT``, ``REFUSE``,
``CLOSE``, ``NO_AUTH``: names in angle brackets, never frame types), is a
row of ``SERVER_TRANSITIONS``; a frame with no row in the current state
raises ``ProtocolError("unexpected_frame")`` from ``next_event``.  Left to
the driver is what needs a clock or the system: the delay before
``auth_failed``, the deadlines, whether a command may run and running it, a
transfer's file work (``rsh.transfer.messages``, a layer above, checks a put's
or get's fields: its event carries the frame as it came).

docs/protocol.md ("The conversation") is the authority; its table of states
is this one, with DISCARDING written as "RECEIVING, dropped up to end".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from ..errors import ProtocolError
from . import auth
from .connection import STAY, Connection, Direction, Event, FrameEvent, State, Transitions
from .frames import DEFAULT_MAX_PAYLOAD, MESSAGE_TYPES, Frame, TraceHook
from .messages import FEATURES, PROTOCOL_VERSION, SIGNALS, TRANSFER_RECEIVER_TYPES, TRANSFER_SENDER_TYPES, ExecRequest, ShellRequest, window_size
from .server_events import (
    Authenticated,
    AuthRejected,
    CheckRequested,
    CompleteRequested,
    ExecRequested,
    GetRequested,
    InputReceived,
    LineRequested,
    OutputClosed,
    PutRequested,
    ResizeRequested,
    ShellRequested,
    SignalRequested,
    StdinReceived,
)

__all__ = [
    "ServerState", "ServerProtocol", "SERVER_TRANSITIONS", "NO_AUTH", "REJECT", "REFUSE", "CLOSE", "AUTH_FAILED_MESSAGE",
    "Authenticated", "AuthRejected", "ExecRequested", "StdinReceived", "SignalRequested", "OutputClosed", "CompleteRequested",
    "PutRequested", "GetRequested", "ShellRequested", "LineRequested", "InputReceived", "ResizeRequested", "CheckRequested",
    "FrameEvent",
]  # fmt: skip


class ServerState(State):
    """Where a server connection is (the values are what error messages call them)."""

    AUTH = "auth"
    #: A wrong ``auth``: nothing is answered until the driver's fixed delay has passed.
    REJECTED = "rejected"
    READY = "ready"
    RUNNING = "running"
    #: A put: the client sends files.
    RECEIVING = "receiving"
    #: A refused put: the client's frames are dropped up to its ``end``.
    DISCARDING = "discarding"
    #: A get: the client receives files.
    SENDING = "sending"
    #: The live shell waits for a line.
    SHELL = "shell"
    #: The live shell runs a line.
    LINE = "line"
    CLOSED = "closed"


# The server's own decisions, moves of the table that are not frames.
#: A server without a token lets in every connection it admitted.
NO_AUTH: Final = "<no auth>"
#: The client's MAC was wrong.
REJECT: Final = "<reject>"
#: A request (exec, put, get) is answered with an ``error`` and not carried out.
REFUSE: Final = "<refuse>"
#: The server ends the connection; the one frame after it is the ``error`` saying why.
CLOSE: Final = "<close>"

#: What ``fail_auth`` says (the same whatever was wrong with the MAC).
AUTH_FAILED_MESSAGE: Final = "authentication failed: wrong token"

S, R = Direction.SEND, Direction.RECV
_ALL_RECEIVED = {(R, t): STAY for t in MESSAGE_TYPES}
_CLOSE = {(S, CLOSE): ServerState.CLOSED}
# While the live shell is open, idle or running a line: keystrokes, window
# sizes and signals in; the terminal's output out; the shell's end.
_SHELL_OPEN = {
    (R, "input"): STAY, (R, "resize"): STAY, (R, "signal"): STAY,
    (S, "tty"): STAY, (S, "stdout"): STAY, (S, "stderr"): STAY, (S, "exit"): ServerState.READY,
}  # fmt: skip

#: state -> (direction, frame type or decision) -> next state.
# fmt: off
SERVER_TRANSITIONS: Transitions = {
    ServerState.AUTH: {
        (S, "hello"): STAY, (R, "auth"): STAY,  # checked at once: auth_ok or REJECT follows
        (S, "auth_ok"): ServerState.READY, (S, NO_AUTH): ServerState.READY, (S, REJECT): ServerState.REJECTED, **_CLOSE,
    },
    # Nothing is read meanwhile (the driver pauses reading); whatever had
    # already arrived is dropped unanswered.
    ServerState.REJECTED: {**_ALL_RECEIVED, **_CLOSE},
    ServerState.READY: {
        (R, "exec"): ServerState.RUNNING, (R, "put"): ServerState.RECEIVING, (R, "get"): ServerState.SENDING,
        (R, "shell"): ServerState.SHELL,
        (R, "complete"): STAY, (S, "completions"): STAY,
        # stdin, signal or closed racing the exit of the command they were meant for.
        (R, "stdin"): STAY, (R, "signal"): STAY, (R, "closed"): STAY,
        # A refusal (busy, not_allowed, spawn_failed): the connection stays usable.
        (S, "error"): STAY, **_CLOSE,
    },
    ServerState.RUNNING: {
        (R, "stdin"): STAY, (R, "signal"): STAY, (R, "closed"): STAY, (S, "stdout"): STAY, (S, "stderr"): STAY,
        (S, "exit"): ServerState.READY, (S, REFUSE): ServerState.READY, **_CLOSE,
    },
    # One transfer at a time, never beside a command: the transfer's own
    # frames, and nothing else, until it is over.
    ServerState.RECEIVING: {
        **{(R, t): STAY for t in TRANSFER_SENDER_TYPES}, **{(S, t): STAY for t in TRANSFER_RECEIVER_TYPES},
        (S, "done"): ServerState.READY, (S, REFUSE): ServerState.DISCARDING, **_CLOSE,
    },
    # The client sends entries behind its put without waiting for an answer,
    # so they may be on their way when the refusal arrives.
    ServerState.DISCARDING: {
        **{(R, t): STAY for t in TRANSFER_SENDER_TYPES}, (R, "end"): ServerState.READY,
        (S, "error"): STAY, **_CLOSE,  # the error is the refusal itself
    },
    ServerState.SENDING: {
        **{(R, t): STAY for t in TRANSFER_RECEIVER_TYPES}, **{(S, t): STAY for t in TRANSFER_SENDER_TYPES},
        (R, "done"): ServerState.READY, (S, REFUSE): ServerState.READY, **_CLOSE,
    },
    ServerState.SHELL: {
        **_SHELL_OPEN, (S, "shell_ok"): STAY, (S, REFUSE): ServerState.READY,
        (R, "line"): ServerState.LINE, (R, "complete"): STAY, (S, "completions"): STAY, (R, "check"): STAY, (S, "checked"): STAY,
        **_CLOSE,
    },
    ServerState.LINE: {**_SHELL_OPEN, (S, "line_end"): ServerState.SHELL, **_CLOSE},
    # Whatever the client still sends is dropped; the error saying why the
    # connection ended is the last frame out.
    ServerState.CLOSED: {**_ALL_RECEIVED, (S, "error"): STAY, (S, CLOSE): STAY},
}
# fmt: on
del S, R

# States whose received frames are dropped without an event.
_DEAF = frozenset({ServerState.REJECTED, ServerState.DISCARDING, ServerState.CLOSED})


def _bad(what: str) -> ProtocolError:
    return ProtocolError(what, code="bad_field")


class ServerProtocol(Connection):
    """One server connection, from its ``hello`` to its close (see the module docstring).

    ``hello`` is queued at once: the driver's first ``data_to_send()``
    holds it.  Without a token the first event is ``Authenticated``.

    Args:
        token: the shared secret, or None to let every connection in.
        software: the ``server`` field of ``hello`` (``rsh/VERSION``).
        encoding: the server's default encoding, as ``hello`` declares it.
        system: the ``os`` field of ``hello``.
        shell: the shell commands run through.
        identity: user, host and home for the prompt, sent once the client
            is authenticated (in ``hello`` when there is no token).
        max_payload: the largest payload accepted from the client.
        trace: called with every frame sent and received.
        nonce: this connection's challenge (a fresh random one by default).
    """

    TRANSITIONS: ClassVar[Transitions] = SERVER_TRANSITIONS
    # A client may hang up in any state: the driver learns of it from the
    # transport and stops what the connection was doing.
    EOF_OK: ClassVar[frozenset[Any]] = frozenset(ServerState)

    def __init__(
        self,
        token: str | None,
        *,
        software: str,
        encoding: str,
        system: str,
        shell: str,
        identity: Mapping[str, str],
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        trace: TraceHook | None = None,
        nonce: str | None = None,
    ) -> None:
        super().__init__(ServerState.AUTH, max_payload=max_payload, trace=trace)
        self.state: ServerState
        self.token = token
        self.nonce = nonce if nonce is not None else auth.new_nonce()
        self.identity = dict(identity)
        hello: dict[str, Any] = {
            "version": PROTOCOL_VERSION,
            "server": software,
            "nonce": self.nonce,
            "auth": "hmac-sha256" if token is not None else "none",
            "encoding": encoding,
            "os": system,
            "shell": shell,
            "features": list(FEATURES),
        }
        if token is None:
            # Who and where commands run: said only after authentication,
            # or here when there is none.
            hello.update(self.identity)
        self.send("hello", hello)
        if token is None:
            self._move(Direction.SEND, NO_AUTH)
            self._made.append(Authenticated())

    # -- the server's decisions ---------------------------------------------

    def refuse(self, code: str, message: str) -> None:
        """Answer the request being handled (exec, put, get) with an ``error``, and do not carry it out.

        After an exec or a get the connection is READY again; after a put it
        drops the client's frames up to its ``end``.

        Raises:
            ProtocolError: no request is waiting for an answer (a bug in the caller).
        """
        self._move(Direction.SEND, REFUSE)
        self.send("error", {"code": code, "message": message})

    def fail_auth(self) -> None:
        """Tell a REJECTED client its ``auth`` failed, and end the connection."""
        self.close("auth_failed", AUTH_FAILED_MESSAGE)

    def _state_name(self) -> str:
        # On the wire a refused put is RECEIVING too (docs/protocol.md): error messages say so.
        return "receiving" if self.state is ServerState.DISCARDING else str(self.state.value)

    def close(self, code: str | None = None, message: str = "") -> None:
        """End the connection, after an ``error`` frame saying why when *code* is given.

        Anything received from now on is dropped; closing again does nothing more.
        """
        if self.state is ServerState.CLOSED:
            return
        self._move(Direction.SEND, CLOSE)
        if code is not None:
            self.send("error", {"code": code, "message": message})

    # -- frames in ----------------------------------------------------------

    def _on_frame(self, frame: Frame) -> Event | None:
        # The table has checked the move; what is left is the frame's fields,
        # read in the state the move led to.
        if self.state in _DEAF:
            return None
        return self._RECEIVED.get(frame.type, ServerProtocol._on_transfer_frame)(self, frame)

    def _on_auth(self, frame: Frame) -> Event:
        assert self.token is not None  # AUTH is left at once without one
        client_nonce, mac = frame.get("nonce"), frame.get("mac")
        # ASCII: the MAC is computed over its bytes (found by bench/fuzz.py: a non-ASCII one raised).
        if not isinstance(client_nonce, str) or not 16 <= len(client_nonce) <= 256 or not client_nonce.isascii():
            raise _bad("auth frame: 'nonce' must be a string of 16 to 256 ASCII characters")
        if not auth.macs_equal(mac, auth.client_mac(self.token, self.nonce, client_nonce)):
            self._move(Direction.SEND, REJECT)
            return AuthRejected()
        self.send("auth_ok", {"mac": auth.server_mac(self.token, self.nonce, client_nonce), **self.identity})
        return Authenticated()

    def _on_exec(self, frame: Frame) -> Event:
        return ExecRequested(ExecRequest.from_frame(frame))

    def _on_stdin(self, frame: Frame) -> Event | None:
        if self.state is not ServerState.RUNNING:
            return None  # READY: it raced the exit of its command
        eof = frame.get("eof", False)
        if not isinstance(eof, bool):
            raise _bad("stdin frame: 'eof' must be true or false")
        return StdinReceived(frame.payload, eof)

    def _on_signal(self, frame: Frame) -> Event | None:
        if self.state is ServerState.READY:
            return None
        name = frame.get("signal")
        if name not in SIGNALS:
            raise _bad(f"signal frame: unknown signal {name!r} (one of {', '.join(SIGNALS)})")
        return SignalRequested(SIGNALS[name])

    def _on_closed(self, frame: Frame) -> Event | None:
        if self.state is not ServerState.RUNNING:
            return None  # READY: it raced the exit of its command
        stream = frame.get("stream")
        if stream not in ("stdout", "stderr"):
            raise _bad(f"closed frame: 'stream' must be stdout or stderr, not {stream!r}")
        return OutputClosed(stream)

    def _on_complete(self, frame: Frame) -> Event:
        kind, prefix, req_id = frame.get("kind"), frame.get("prefix", ""), frame.get("id", 0)
        if kind not in ("command", "path", "variable") or not isinstance(prefix, str) or not isinstance(req_id, int):
            raise _bad("complete frame: 'kind' must be command, path or variable, 'prefix' a string, 'id' an integer")
        return CompleteRequested(kind, prefix, req_id)

    def _on_put(self, frame: Frame) -> Event:
        return PutRequested(frame)

    def _on_shell(self, frame: Frame) -> Event:
        return ShellRequested(ShellRequest.from_frame(frame))

    def _on_line(self, frame: Frame) -> Event:
        pipe, eof = frame.get("pipe", False), frame.get("eof", False)
        if not isinstance(pipe, bool) or not isinstance(eof, bool):
            raise _bad("line frame: 'pipe' and 'eof' must be true or false")
        if not eof and (not frame.payload.strip() or b"\0" in frame.payload):
            raise _bad("line frame: the line (the payload) is empty or holds a NUL byte")
        return LineRequested(frame.payload, pipe, eof)

    def _on_input(self, frame: Frame) -> Event:
        return InputReceived(frame.payload)

    def _on_resize(self, frame: Frame) -> Event:
        try:
            rows, cols = window_size(frame)
        except ProtocolError as exc:
            raise _bad(f"resize frame: {exc}") from exc
        return ResizeRequested(rows, cols)

    def _on_check(self, frame: Frame) -> Event:
        req_id = frame.get("id", 0)
        if isinstance(req_id, bool) or not isinstance(req_id, int) or b"\0" in frame.payload:
            raise _bad("check frame: 'id' must be an integer, and the text hold no NUL byte")
        return CheckRequested(frame.payload, req_id)

    def _on_get(self, frame: Frame) -> Event:
        return GetRequested(frame)

    def _on_transfer_frame(self, frame: Frame) -> Event | None:
        if self.state is ServerState.READY and frame.type == "end":
            return None  # the end of a refused put (DISCARDING -> READY)
        # Including the get's last frame, ``done``, which moved us to READY.
        return FrameEvent(frame)

    # By frame type; every other type the table lets through is a transfer's.
    _RECEIVED: ClassVar[dict[str, Callable[[ServerProtocol, Frame], Event | None]]] = {
        "auth": _on_auth,
        "exec": _on_exec,
        "stdin": _on_stdin,
        "signal": _on_signal,
        "closed": _on_closed,
        "complete": _on_complete,
        "put": _on_put,
        "get": _on_get,
        "shell": _on_shell,
        "line": _on_line,
        "input": _on_input,
        "resize": _on_resize,
        "check": _on_check,
    }
