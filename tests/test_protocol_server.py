"""The server's sans-I/O protocol (rsh.protocol.server): bytes in, events out, bytes to send.

No sockets and no event loop: each test feeds a ``ServerProtocol`` the
client's frames, whole or one byte at a time, and reads back its events
and the frames it queued.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from rsh.errors import ProtocolError
from rsh.protocol import auth
from rsh.protocol import server as sp
from rsh.protocol.connection import NEED_DATA, Event, FrameEvent
from rsh.protocol.frames import MESSAGE_TYPES, Frame, FrameDecoder, encode_frame
from rsh.protocol.messages import ExecRequest, ExitStatus
from rsh.protocol.server import AUTH_FAILED_MESSAGE, SERVER_TRANSITIONS, ServerProtocol, ServerState

TOKEN = "k" * 32
SERVER_NONCE = "5e" * 32
CLIENT_NONCE = "c1" * 32
IDENTITY = {"user": "ann", "host": "box", "home": "/home/ann"}


def make(token: str | None = TOKEN) -> ServerProtocol:
    return ServerProtocol(token, software="rsh/test", encoding="utf-8", system="Linux 6", shell="/bin/sh", identity=IDENTITY, nonce=SERVER_NONCE)


def sent(proto: ServerProtocol) -> list[Frame]:
    """The frames queued since the last call, decoded as the client would."""
    return FrameDecoder().feed(b"".join(proto.data_to_send()))


Feed = Callable[[ServerProtocol, bytes], list[Event]]


def whole(proto: ServerProtocol, data: bytes) -> list[Event]:
    proto.receive_data(data)
    return drain(proto)


def bytewise(proto: ServerProtocol, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        proto.receive_data(data[i : i + 1])
        events += drain(proto)
    return events


def drain(proto: ServerProtocol) -> list[Event]:
    events: list[Event] = []
    while (event := proto.next_event()) is not NEED_DATA:
        assert isinstance(event, Event)
        events.append(event)
    return events


@pytest.fixture(params=[whole, bytewise], ids=["whole", "bytewise"])
def feed(request: pytest.FixtureRequest) -> Feed:
    f: Feed = request.param
    return f


def good_auth() -> bytes:
    return encode_frame("auth", {"nonce": CLIENT_NONCE, "mac": auth.client_mac(TOKEN, SERVER_NONCE, CLIENT_NONCE)})


def ready(feed: Feed = whole) -> ServerProtocol:
    proto = make()
    sent(proto)
    assert feed(proto, good_auth()) == [sp.Authenticated()]
    sent(proto)
    return proto


def exec_frame(command: bytes = b"echo hi", **fields: object) -> bytes:
    return encode_frame("exec", fields, command)


def in_state(state: ServerState) -> ServerProtocol:
    """A protocol brought to *state* by the moves a real connection makes."""
    if state in (ServerState.AUTH, ServerState.REJECTED):
        proto = make()
        if state is ServerState.REJECTED:
            whole(proto, encode_frame("auth", {"nonce": CLIENT_NONCE, "mac": "00" * 32}))
    else:
        proto = ready()
    if state is ServerState.RUNNING:
        whole(proto, exec_frame())
    elif state is ServerState.RECEIVING:
        whole(proto, encode_frame("put", {"path": "x"}))
    elif state is ServerState.DISCARDING:
        whole(proto, encode_frame("put", {"path": "x"}))
        proto.refuse("not_allowed", "no")
    elif state is ServerState.SENDING:
        whole(proto, encode_frame("get", {"path": "x"}))
    elif state in (ServerState.SHELL, ServerState.LINE):
        whole(proto, encode_frame("shell", {"term": "xterm", "rows": 24, "cols": 80}))
        proto.send("shell_ok", {"shell": "/bin/sh", "pid": 1})
        if state is ServerState.LINE:
            whole(proto, encode_frame("line", {}, b"true"))
    elif state is ServerState.CLOSED:
        proto.close()
    sent(proto)
    assert proto.state is state
    return proto


# -- hello and authentication ----------------------------------------------------


def test_hello_is_queued_at_once_and_says_nothing_of_who_before_auth() -> None:
    (hello,) = sent(make())
    assert hello.type == "hello"
    assert hello.fields == {
        "version": 1,
        "server": "rsh/test",
        "nonce": SERVER_NONCE,
        "auth": "hmac-sha256",
        "encoding": "utf-8",
        "os": "Linux 6",
        "shell": "/bin/sh",
        "features": ["shell", "closed"],
    }


def test_hello_fields_keep_their_order_on_the_wire() -> None:
    raw = b"".join(make().data_to_send())
    assert raw.index(b'"version"') < raw.index(b'"server"') < raw.index(b'"nonce"') < raw.index(b'"auth"') < raw.index(b'"shell"')


def test_without_a_token_hello_names_the_user_and_the_first_event_is_authenticated() -> None:
    proto = make(token=None)
    (hello,) = sent(proto)
    assert hello.get("auth") == "none" and hello.get("user") == "ann" and hello.get("home") == "/home/ann"
    assert proto.state is ServerState.READY
    assert drain(proto) == [sp.Authenticated()]
    assert drain(proto) == []


def test_a_good_auth_is_answered_with_the_servers_mac_and_the_identity(feed: Feed) -> None:
    proto = make()
    sent(proto)
    assert feed(proto, good_auth()) == [sp.Authenticated()]
    assert proto.state is ServerState.READY
    (ok,) = sent(proto)
    assert ok.type == "auth_ok"
    assert ok.fields == {"mac": auth.server_mac(TOKEN, SERVER_NONCE, CLIENT_NONCE), **IDENTITY}


def test_a_wrong_mac_is_rejected_with_nothing_sent(feed: Feed) -> None:
    proto = make()
    sent(proto)
    bad = encode_frame("auth", {"nonce": CLIENT_NONCE, "mac": auth.client_mac("wrong" * 8, SERVER_NONCE, CLIENT_NONCE)})
    assert feed(proto, bad) == [sp.AuthRejected()]
    assert proto.state is ServerState.REJECTED
    assert sent(proto) == []


def test_a_mac_for_another_servers_nonce_is_rejected() -> None:
    proto = make()
    replayed = encode_frame("auth", {"nonce": CLIENT_NONCE, "mac": auth.client_mac(TOKEN, "ab" * 32, CLIENT_NONCE)})
    assert whole(proto, replayed) == [sp.AuthRejected()]


def test_after_a_rejection_everything_the_client_sent_is_dropped(feed: Feed) -> None:
    proto = in_state(ServerState.REJECTED)
    assert feed(proto, good_auth() + exec_frame() + encode_frame("put", {"path": "x"})) == []
    assert proto.state is ServerState.REJECTED and sent(proto) == []


def test_fail_auth_says_so_and_closes() -> None:
    proto = in_state(ServerState.REJECTED)
    proto.fail_auth()
    assert [(f.type, f.fields) for f in sent(proto)] == [("error", {"code": "auth_failed", "message": AUTH_FAILED_MESSAGE})]
    assert proto.state is ServerState.CLOSED


@pytest.mark.parametrize("nonce", [None, 7, "short", "x" * 257])
def test_an_auth_nonce_that_is_not_16_to_256_characters_is_a_bad_field(nonce: object) -> None:
    with pytest.raises(ProtocolError) as info:
        whole(make(), encode_frame("auth", {"nonce": nonce, "mac": "00"}))
    assert info.value.code == "bad_field"


# -- the legal sequence ------------------------------------------------------------


def test_a_command_runs_from_exec_to_exit(feed: Feed) -> None:
    proto = ready(feed)
    (event,) = feed(proto, exec_frame(b"cat", stdin=True, timeout=5))
    assert event == sp.ExecRequested(ExecRequest(b"cat", timeout=5.0, stdin=True))
    assert proto.state is ServerState.RUNNING
    assert feed(proto, encode_frame("stdin", None, b"abc")) == [sp.StdinReceived(b"abc", False)]
    assert feed(proto, encode_frame("stdin", {"eof": True})) == [sp.StdinReceived(b"", True)]
    assert feed(proto, encode_frame("signal", {"signal": "INT"})) == [sp.SignalRequested(2)]
    proto.send("stdout", None, b"abc")
    proto.send("stderr", None, memoryview(b"oops"))
    assert proto.state is ServerState.RUNNING
    proto.send("exit", ExitStatus(0, None, False, 0.1, 3, 4, "utf-8").to_fields())
    assert proto.state is ServerState.READY
    assert [f.type for f in sent(proto)] == ["stdout", "stderr", "exit"]


def test_stdin_and_signal_racing_a_commands_exit_are_dropped_in_ready(feed: Feed) -> None:
    proto = ready()
    # Unchecked, too: they belonged to a command that is over.
    assert feed(proto, encode_frame("stdin", {"eof": "yes"}, b"late") + encode_frame("signal", {"signal": "BOGUS"})) == []
    assert proto.state is ServerState.READY


def test_commands_follow_one_another(feed: Feed) -> None:
    proto = ready()
    for command in (b"true", b"false"):
        assert feed(proto, exec_frame(command)) == [sp.ExecRequested(ExecRequest(command))]
        proto.send("exit", ExitStatus(0, None, False, 0.0, 0, 0, "utf-8").to_fields())
    assert proto.state is ServerState.READY


def test_complete_is_answered_in_ready(feed: Feed) -> None:
    proto = ready()
    assert feed(proto, encode_frame("complete", {"kind": "path", "prefix": "/e", "id": 3})) == [sp.CompleteRequested("path", "/e", 3)]
    proto.send("completions", {"id": 3, "items": ["/etc/"]})
    assert proto.state is ServerState.READY


def test_a_put_hands_over_the_clients_frames_until_done_is_sent(feed: Feed) -> None:
    proto = ready()
    put = encode_frame("put", {"path": "dest"})
    (event,) = feed(proto, put)
    assert isinstance(event, sp.PutRequested) and event.frame.get("path") == "dest"
    assert proto.state is ServerState.RECEIVING
    entries = [Frame("file", {"path": "", "length": 3}), Frame("data", {}, b"abc"), Frame("file_end", {"sha256": "0" * 64}), Frame("end")]
    for frame in entries:
        (got,) = feed(proto, encode_frame(frame.type, frame.fields, frame.payload))
        assert isinstance(got, FrameEvent) and got.frame == frame
        if frame.type == "file":
            proto.send("ready", {"offset": 0})
        if frame.type == "file_end":
            proto.send("ok")
    assert proto.state is ServerState.RECEIVING
    proto.send("done")
    assert proto.state is ServerState.READY


def test_a_get_sends_entries_until_the_client_says_done(feed: Feed) -> None:
    proto = ready()
    (event,) = feed(proto, encode_frame("get", {"path": "src", "recursive": True}))
    assert isinstance(event, sp.GetRequested) and event.frame.get("recursive") is True
    assert proto.state is ServerState.SENDING
    proto.send("file", {"path": "", "length": 1})
    events = feed(proto, encode_frame("ready", {"offset": 0}))
    proto.send("data", None, b"x")
    proto.send("file_end", {"sha256": "0" * 64})
    events += feed(proto, encode_frame("ok"))
    proto.send("end")
    events += feed(proto, encode_frame("done"))
    assert [e.frame.type for e in events if isinstance(e, FrameEvent)] == ["ready", "ok", "done"]
    assert proto.state is ServerState.READY


# -- refusals ----------------------------------------------------------------------


def test_a_refused_exec_leaves_the_connection_ready() -> None:
    proto = in_state(ServerState.RUNNING)
    proto.refuse("busy", "server busy")
    assert proto.state is ServerState.READY
    assert [(f.type, f.get("code")) for f in sent(proto)] == [("error", "busy")]


def test_a_refused_get_leaves_the_connection_ready() -> None:
    proto = in_state(ServerState.SENDING)
    proto.refuse("not_allowed", "no transfers")
    assert proto.state is ServerState.READY


def test_a_refused_puts_frames_are_dropped_up_to_its_end(feed: Feed) -> None:
    proto = in_state(ServerState.DISCARDING)
    behind = encode_frame("file", {"path": "", "length": 3}) + encode_frame("data", None, b"abc") + encode_frame("file_end", {"sha256": "0" * 64})
    assert feed(proto, behind) == []
    assert proto.state is ServerState.DISCARDING
    assert feed(proto, encode_frame("end")) == []
    assert proto.state is ServerState.READY and sent(proto) == []
    assert feed(proto, exec_frame()) == [sp.ExecRequested(ExecRequest(b"echo hi"))]


def test_a_refusal_with_no_request_to_answer_is_a_local_error() -> None:
    with pytest.raises(ProtocolError) as info:
        ready().refuse("busy", "no")
    assert info.value.code == "local"


# -- what each state refuses -------------------------------------------------------


def _illegal() -> Iterator[tuple[ServerState, str]]:
    from rsh.protocol.connection import Direction

    for state in (
        ServerState.AUTH, ServerState.READY, ServerState.RUNNING, ServerState.RECEIVING, ServerState.DISCARDING, ServerState.SENDING,
        ServerState.SHELL, ServerState.LINE,
    ):  # fmt: skip
        legal = {t for (d, t) in SERVER_TRANSITIONS[state] if d is Direction.RECV}
        for t in sorted(MESSAGE_TYPES - legal):
            yield state, t


@pytest.mark.parametrize(("state", "type"), list(_illegal()), ids=lambda v: getattr(v, "value", v))
def test_a_frame_out_of_place_is_an_unexpected_frame(state: ServerState, type: str) -> None:
    proto = in_state(state)
    proto.receive_data(encode_frame(type))
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.code == "unexpected_frame"
    # A refused put is RECEIVING on the wire: the message does not name the internal state.
    assert f"while {'receiving' if state is ServerState.DISCARDING else state.value}" in str(info.value)


def test_what_each_state_accepts_is_what_docs_protocol_md_lists() -> None:
    from rsh.protocol.connection import Direction

    def accepts(state: ServerState) -> set[str]:
        return {t for (d, t) in SERVER_TRANSITIONS[state] if d is Direction.RECV}

    assert accepts(ServerState.AUTH) == {"auth"}
    assert accepts(ServerState.READY) == {"exec", "complete", "put", "get", "shell", "stdin", "signal", "closed"}
    assert accepts(ServerState.RUNNING) == {"stdin", "signal", "closed"}
    assert accepts(ServerState.SHELL) == {"line", "input", "resize", "signal", "complete", "check"}
    assert accepts(ServerState.LINE) == {"input", "resize", "signal"}
    assert accepts(ServerState.RECEIVING) == accepts(ServerState.DISCARDING) == {"file", "dir", "symlink", "resume", "data", "file_end", "error", "end"}
    assert accepts(ServerState.SENDING) == {"ready", "ok", "error", "done"}


def test_frames_the_server_may_not_send_now_are_a_local_error() -> None:
    for state, type in [(ServerState.READY, "exit"), (ServerState.RUNNING, "completions"), (ServerState.AUTH, "stdout"), (ServerState.CLOSED, "stdout")]:
        with pytest.raises(ProtocolError) as info:
            in_state(state).send(type)
        assert info.value.code == "local", (state, type)


# -- bad fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "state"),
    [
        (exec_frame(b""), ServerState.READY),
        (exec_frame(timeout=-1), ServerState.READY),
        (encode_frame("stdin", {"eof": 1}), ServerState.RUNNING),
        (encode_frame("signal", {"signal": "USR1"}), ServerState.RUNNING),
        (encode_frame("complete", {"kind": "user", "prefix": ""}), ServerState.READY),
        (encode_frame("complete", {"kind": "path", "prefix": 3}), ServerState.READY),
    ],
    ids=["empty-exec", "negative-timeout", "stdin-eof", "unknown-signal", "complete-kind", "complete-prefix"],
)
def test_a_field_with_the_wrong_type_or_value_is_a_bad_field(frame: bytes, state: ServerState) -> None:
    proto = in_state(state)
    proto.receive_data(frame)
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.code == "bad_field"


# -- closing -----------------------------------------------------------------------


@pytest.mark.parametrize("state", [s for s in ServerState if s is not ServerState.CLOSED], ids=lambda s: s.value)
def test_close_from_any_state_sends_the_reason_last_and_drops_what_follows(state: ServerState) -> None:
    proto = in_state(state)
    proto.close("idle_timeout", "closed after 1 s idle")
    assert [(f.type, f.get("code")) for f in sent(proto)] == [("error", "idle_timeout")]
    assert proto.state is ServerState.CLOSED
    assert whole(proto, exec_frame() + good_auth()) == []
    proto.close("again", "ignored")
    assert sent(proto) == []


def test_the_client_may_hang_up_in_any_state() -> None:
    for state in ServerState:
        proto = in_state(state)
        proto.receive_data(b"")
        assert proto.next_event() is NEED_DATA and proto.at_eof


def test_hanging_up_in_the_middle_of_a_frame_is_truncated() -> None:
    proto = ready()
    proto.receive_data(exec_frame()[:-2])
    proto.receive_data(b"")
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.code == "truncated"


def test_a_broken_stream_is_raised_after_the_frames_that_came_before_it() -> None:
    proto = ready()
    proto.receive_data(encode_frame("complete", {"kind": "path", "prefix": "", "id": 1}))
    proto.receive_data(b"\xff\xff\xff\xff")
    assert proto.next_event() == sp.CompleteRequested("path", "", 1)
    with pytest.raises(ProtocolError) as info:
        proto.next_event()
    assert info.value.code == "header_too_large"


def test_bytes_are_counted_both_ways() -> None:
    proto = make()
    hello = b"".join(proto.data_to_send())
    whole(proto, good_auth())
    assert proto.sent_bytes == len(hello) + len(b"".join(proto.data_to_send()))
    assert proto.decoder.offset == len(good_auth())


# -- the layer ---------------------------------------------------------------------


def test_the_server_protocol_imports_nothing_that_does_io() -> None:
    code = (
        "import sys, rsh.protocol.server; print(' '.join(m for m in ('asyncio', 'socket', 'ssl', 'subprocess', 'select', 'rsh.transfer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
