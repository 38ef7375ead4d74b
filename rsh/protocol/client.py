"""The client's end of a connection, without I/O: ``ClientProtocol``.

Both clients (``rsh.client.blocking`` over a socket, ``rsh.client.aio`` over
asyncio) pump bytes through one of these; what is legal when, the
handshake, and what each frame from the server means live here, once::

    HELLO --hello--> (auth sent) AUTH --auth_ok--> READY     (auth "none": HELLO --hello--> READY)
    READY --exec-->     RUNNING    --exit, error-->          READY
    READY --complete--> COMPLETING --completions, error-->   READY
    READY --put-->      PUTTING    (the client sends files)  READY at end_transfer()
    READY --get-->      GETTING    (the client receives)     READY at end_transfer()
    READY --shell-->    SHELL --line--> LINE --line_end--> SHELL;  SHELL, LINE --exit--> READY

A transfer's own frames are handed over as they come (``FrameEvent``) to
``rsh.transfer``'s ``Sender`` or ``Receiver``, which knows their order; the
table only bounds which types may flow each way.  Every ``error`` frame
outside a transfer is raised from ``next_event`` as ``RemoteError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import AuthError, ConnectionLost, ProtocolError, RemoteError
from . import auth
from .client_events import Authenticated, Checked, Completions, Exited, LineEnded, Output, ShellStarted
from .connection import STAY, Connection, Direction, Event, FrameEvent, State
from .frames import DEFAULT_MAX_PAYLOAD, Frame, TraceHook
from .messages import (
    PROTOCOL_VERSION,
    SIGNALS,
    TRANSFER_RECEIVER_TYPES,
    TRANSFER_SENDER_TYPES,
    ExecRequest,
    ExitStatus,
    LineEnd,
    ShellRequest,
    remote_error,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypedDict, Unpack
else:
    from ..typeshim import TypedDict

__all__ = [
    "STDIN_CHUNK",
    "ClientState",
    "ClientProtocol",
    "Authenticated",
    "Output",
    "Exited",
    "Completions",
    "ShellStarted",
    "LineEnded",
    "Checked",
    "ExecOptions",
    "exec_request",
]

# stdin is sent in chunks no larger than output's.
STDIN_CHUNK = 64 * 1024


class ClientState(State):
    """Where the client's end stands (the table in the module docstring)."""

    HELLO = "waiting for hello"
    AUTH = "authenticating"
    READY = "ready"
    RUNNING = "running a command"
    COMPLETING = "completing"
    PUTTING = "sending files"
    GETTING = "receiving files"
    SHELL = "in a live shell"
    LINE = "running a line in a live shell"


S, R = Direction.SEND, Direction.RECV
# While a live shell is open, idle or running a line.
_SHELL_OPEN: dict[tuple[Direction, str], Any] = {
    (S, "input"): STAY,
    (S, "resize"): STAY,
    (S, "signal"): STAY,
    (R, "tty"): STAY,
    (R, "stdout"): STAY,
    (R, "stderr"): STAY,
    (R, "exit"): ClientState.READY,
}
_TRANSITIONS: dict[ClientState, dict[tuple[Direction, str], Any]] = {
    ClientState.HELLO: {(R, "hello"): STAY, (R, "error"): STAY, (S, "auth"): ClientState.AUTH},
    ClientState.AUTH: {(R, "auth_ok"): ClientState.READY, (R, "error"): STAY},
    ClientState.READY: {
        (S, "exec"): ClientState.RUNNING,
        (S, "complete"): ClientState.COMPLETING,
        (S, "put"): ClientState.PUTTING,
        (S, "get"): ClientState.GETTING,
        (S, "shell"): ClientState.SHELL,
        # stdin, a signal or closed racing the command's exit: the server ignores them.
        (S, "stdin"): STAY,
        (S, "signal"): STAY,
        (S, "closed"): STAY,
        # idle_timeout and the like, just before the server closes.
        (R, "error"): STAY,
    },
    ClientState.RUNNING: {
        (S, "stdin"): STAY,
        (S, "signal"): STAY,
        (S, "closed"): STAY,
        (R, "stdout"): STAY,
        (R, "stderr"): STAY,
        (R, "exit"): ClientState.READY,
        # The command was refused (busy, spawn_failed, not_allowed): the connection stays usable.
        (R, "error"): ClientState.READY,
        # The answer to a completion given up on (a Tab cancelled by the next key).
        (R, "completions"): STAY,
    },
    ClientState.COMPLETING: {
        # A new request supersedes one given up on; answers carry their id.
        (S, "complete"): STAY,
        (S, "exec"): ClientState.RUNNING,
        (R, "completions"): STAY,
        (R, "error"): ClientState.READY,
    },
    ClientState.SHELL: {
        **_SHELL_OPEN,
        (R, "shell_ok"): STAY,
        (S, "line"): ClientState.LINE,
        (S, "complete"): STAY,
        (R, "completions"): STAY,
        (S, "check"): STAY,
        (R, "checked"): STAY,
        # The shell could not start (the request is refused, the connection stays usable).
        (R, "error"): ClientState.READY,
    },
    ClientState.LINE: {**_SHELL_OPEN, (R, "line_end"): ClientState.SHELL, (R, "completions"): STAY, (R, "checked"): STAY},
    ClientState.PUTTING: {**dict.fromkeys([(S, t) for t in TRANSFER_SENDER_TYPES], STAY), **dict.fromkeys([(R, t) for t in TRANSFER_RECEIVER_TYPES], STAY)},
    ClientState.GETTING: {**dict.fromkeys([(R, t) for t in TRANSFER_SENDER_TYPES], STAY), **dict.fromkeys([(S, t) for t in TRANSFER_RECEIVER_TYPES], STAY)},
}
del S, R


class ExecOptions(TypedDict, total=False):
    """How to run a command (every ``exec`` field but the command); all optional."""

    #: The command reads what is sent with ``stdin`` frames (else its stdin is empty).
    stdin: bool
    #: Where it runs (relative to the server's home); not with *session*.
    cwd: str | None
    #: Variables added to its environment.
    env: Mapping[str, str] | None
    #: Seconds before the server stops it (TERM, then KILL).
    timeout: float | None
    #: Declare its output to be in this encoding.
    encoding: str | None
    #: Run in the connection's shell session (cwd and exports persist).
    session: bool


def exec_request(command: str | bytes | Sequence[str], **options: Unpack[ExecOptions]) -> ExecRequest:
    """Build the ``exec`` for *command*, checking it before anything is sent.

    A string is sent as UTF-8 (lone surrogates as the bytes they stand for),
    bytes as they are, and a list of words, as ``subprocess.run`` takes
    them, quoted for the shell so each word arrives as one argument.

    Raises:
        TypeError: *command* is none of those.
        ValueError: it is empty.
    """
    if isinstance(command, (list, tuple)) and all(isinstance(w, str) for w in command):
        import shlex  # here: `rsh exec` sends a string, and need not load it

        command = shlex.join(command)
    if isinstance(command, str):
        raw = command.encode("utf-8", "surrogateescape")
    elif isinstance(command, (bytes, bytearray, memoryview)):
        raw = bytes(command)
    else:
        raise TypeError(f"command must be a str, bytes or a list of str, not {type(command).__name__}")
    if not raw:
        raise ValueError("the command is empty")
    if b"\0" in raw:
        raise ValueError("the command contains a NUL byte, which no shell can be given")
    env = options.get("env")
    return ExecRequest(
        raw,
        options.get("cwd"),
        dict(env) if env else None,
        options.get("timeout"),
        options.get("stdin", False),
        options.get("encoding"),
        options.get("session", False),
    )


class ClientProtocol(Connection):
    """The client's end: the handshake, then one command, completion or transfer at a time.

    Args:
        token: the shared secret (None: the server must need none).
        where: ``HOST:PORT``, as messages name the server.
        max_payload, trace: as for ``Connection``.
    """

    TRANSITIONS = _TRANSITIONS

    def __init__(self, token: str | None, where: str, *, max_payload: int = DEFAULT_MAX_PAYLOAD, trace: TraceHook | None = None) -> None:
        super().__init__(ClientState.HELLO, max_payload=max_payload, trace=trace)
        self.token = token
        self.where = where
        #: The server as failures name it (``HOST:path``).
        self.host = where.rpartition(":")[0] or where
        #: The server's ``hello``, once it came.
        self.hello: Frame | None = None
        #: What the server said of itself: hello's fields, and once
        #: authenticated who and where commands run (user, host, home).
        self.info: dict[str, Any] = {}
        self._client_nonce = ""
        self._complete_id = 0
        # A completion asked for in the live shell leaves the state as it is.
        self._shell_complete = False

    # -- requests -----------------------------------------------------------

    def start_command(self, request: ExecRequest) -> None:
        """Send the ``exec`` for *request* (see ``exec_request``)."""
        self.send("exec", request.to_fields(), request.command)

    def send_stdin(self, data: bytes | memoryview) -> None:
        """Send *data* to the command's stdin, in chunks of at most ``STDIN_CHUNK``."""
        if isinstance(data, bytes) and len(data) <= STDIN_CHUNK:
            self.send("stdin", None, data)  # immutable: queued as it is
            return
        view = memoryview(data)
        for i in range(0, len(view), STDIN_CHUNK):
            self.send("stdin", None, bytes(view[i : i + STDIN_CHUNK]))

    def close_stdin(self) -> None:
        """Send end of input to the command."""
        self.send("stdin", {"eof": True})

    def send_signal(self, name: str) -> None:
        """Ask the server to send signal *name* (INT, TERM, KILL, HUP, QUIT) to the command's group.

        Raises:
            ValueError: no such signal.
        """
        if name not in SIGNALS:
            raise ValueError(f"unknown signal {name!r}; one of {', '.join(SIGNALS)}")
        self.send("signal", {"signal": name})

    def close_output(self, stream: str) -> bool:
        """Tell the server the reader of the command's *stream* (``stdout``, ``stderr``) has gone.

        It stops reading that pipe and closes its end, so that the command
        meets a closed pipe there, as it would locally.  Returns False, and
        sends nothing, when the server is too old to know the frame.
        """
        if "closed" not in (self.info.get("features") or ()):
            return False
        self.send("closed", {"stream": stream})
        return True

    def request_completions(self, kind: str, prefix: str) -> None:
        """Ask for completions of *prefix* (``kind``: ``"command"`` or ``"path"``)."""
        if self.state is ClientState.SHELL:
            self._shell_complete = True
        self._complete_id += 1
        self.send("complete", {"id": self._complete_id, "kind": kind, "prefix": prefix})

    # -- the live shell ---------------------------------------------------------

    def start_shell(self, request: ShellRequest) -> None:
        """Ask for a live shell on a terminal of *request*'s type and size."""
        self.send("shell", request.to_fields())

    def send_line(self, text: bytes, *, pipe: bool = False) -> None:
        """Run *text* in the live shell (*pipe*: its stdout and stderr apart, not on the terminal)."""
        self.send("line", {"pipe": True} if pipe else None, text)

    def end_shell(self) -> None:
        """No more lines: the shell exits with the status of the last."""
        self.send("line", {"eof": True})

    def send_input(self, data: bytes) -> None:
        """Keystrokes for the live shell's terminal."""
        view = memoryview(data)
        for i in range(0, len(view), STDIN_CHUNK):
            self.send("input", None, bytes(view[i : i + STDIN_CHUNK]))

    def send_resize(self, rows: int, cols: int) -> None:
        """The local window is now *rows* by *cols*."""
        self.send("resize", {"rows": rows, "cols": cols})

    def request_check(self, text: bytes) -> int:
        """Ask whether *text* is complete shell input; returns the id its ``Checked`` will carry."""
        self._complete_id += 1
        self.send("check", {"id": self._complete_id}, text)
        return self._complete_id

    def start_transfer(self, type: str, fields: dict[str, Any]) -> None:
        """Send a ``put`` or ``get`` request; its frames then come as ``FrameEvent``."""
        self.send(type, fields)

    def end_transfer(self) -> None:
        """The transfer's ``Sender`` or ``Receiver`` says it is over: back to READY."""
        if self.state in (ClientState.PUTTING, ClientState.GETTING):
            self.state = ClientState.READY

    @property
    def busy(self) -> bool:
        """A command, transfer or live shell is under way (a completion given up on does not count)."""
        return self.state in (ClientState.RUNNING, ClientState.PUTTING, ClientState.GETTING, ClientState.SHELL, ClientState.LINE)

    # -- frames in ----------------------------------------------------------

    def _on_frame(self, frame: Frame) -> Event | None:
        type_ = frame.type
        state = self.state
        if type_ == "stdout" or type_ == "stderr" or type_ == "tty":
            return Output(type_, frame.payload)
        if state is ClientState.PUTTING or state is ClientState.GETTING:
            return FrameEvent(frame)
        if type_ == "exit":
            return Exited(ExitStatus.from_frame(frame))
        if type_ == "error":
            raise self._error(frame)
        if type_ == "completions":
            items = frame.get("items")
            if frame.get("id") != self._complete_id:
                return None  # stale: a request given up on
            if state is ClientState.COMPLETING:
                self.state = ClientState.READY
            elif not self._shell_complete:
                return None
            self._shell_complete = False
            return Completions([i for i in items if isinstance(i, str)] if isinstance(items, list) else [])
        if type_ == "line_end":
            return LineEnded(LineEnd.from_frame(frame))
        if type_ == "checked":
            req_id = frame.get("id")
            return Checked(req_id if isinstance(req_id, int) else -1, frame.get("complete") is not False)
        if type_ == "shell_ok":
            shell, pid = frame.get("shell", ""), frame.get("pid", 0)
            return ShellStarted(shell if isinstance(shell, str) else "", pid if isinstance(pid, int) else 0)
        if type_ == "hello":
            return self._on_hello(frame)
        assert type_ == "auth_ok"
        return self._on_auth_ok(frame)

    def _error(self, frame: Frame) -> Exception:
        error = remote_error(frame)
        if self.state is ClientState.HELLO and error.code == "access_denied":
            return RemoteError(f"{self.where} refused the connection: {error.message}", code=error.code)
        if self.state is ClientState.AUTH and error.code == "auth_failed":
            return AuthError(f"{self.where}: authentication failed (wrong token)")
        return error

    def _on_hello(self, frame: Frame) -> Event | None:
        where = self.where
        if self.hello is not None:
            raise ProtocolError(f"{where} sent a second hello", code="unexpected_frame")
        if frame.get("version") != PROTOCOL_VERSION:
            raise ProtocolError(f"{where} speaks protocol version {frame.get('version')!r}, not {PROTOCOL_VERSION}", code="version")
        self.hello = frame
        self.info = {k: v for k, v in frame.fields.items() if k != "nonce"}
        if frame.get("auth") == "none":
            self.state = ClientState.READY
            return Authenticated(self.info)
        nonce = frame.get("nonce")
        if not isinstance(nonce, str):
            raise ProtocolError(f"{where} sent a hello without a nonce", code="bad_field")
        if self.token is None:
            raise AuthError(f"{where} requires a token and none was found (give one with --token-file or token=, or set RSH_TOKEN)")
        self._client_nonce = auth.new_nonce()
        self.send("auth", {"nonce": self._client_nonce, "mac": auth.client_mac(self.token, nonce, self._client_nonce)})
        return None

    def _on_auth_ok(self, frame: Frame) -> Event:
        assert self.hello is not None and self.token is not None
        expected = auth.server_mac(self.token, self.hello.get("nonce"), self._client_nonce)
        if not auth.macs_equal(frame.get("mac"), expected):
            raise AuthError(f"{self.where} could not prove it knows the token: not the server you think it is")
        self.info.update((k, v) for k, v in frame.fields.items() if k != "mac")
        return Authenticated(self.info)

    def _illegal(self, direction: Direction, type: str) -> ProtocolError:
        # During the handshake, a wrong first frame most likely means the
        # peer is not an rsh server at all: say so.
        if direction is Direction.RECV and self.state is ClientState.HELLO:
            return ProtocolError(f"{self.where} sent {type!r} instead of hello: not an rsh server?", code="unexpected_frame")
        if direction is Direction.RECV and self.state is ClientState.AUTH:
            return ProtocolError(f"{self.where} sent {type!r} instead of auth_ok", code="unexpected_frame")
        return super()._illegal(direction, type)

    def _eof_message(self) -> str:
        return "connection closed by server"

    def _framing_error(self, exc: ProtocolError) -> Exception:
        if exc.code == "truncated":
            # The server went away mid-frame (a crash, a cut cable): a lost
            # connection, not a server speaking nonsense.
            return ConnectionLost("connection closed by server in the middle of a frame")
        return ProtocolError(f"server sent a malformed frame: {exc}", code=exc.code)
