"""ClientProtocol, bytes in and events out: the client's states and moves, with no socket."""

from __future__ import annotations

import pytest

from rsh.errors import AuthError, ConnectionLost, ProtocolError, RemoteError
from rsh.protocol import auth
from rsh.protocol.client import Authenticated, ClientProtocol, ClientState, Completions, Exited, Output, exec_request
from rsh.protocol.connection import Event, FrameEvent, NeedData
from rsh.protocol.frames import Frame, FrameDecoder, encode_frame
from rsh.protocol.messages import PROTOCOL_VERSION

TOKEN = "t" * 64
NONCE = "n" * 64


def sent(conn: ClientProtocol) -> list[Frame]:
    """The frames *conn* queued, as the server would decode them."""
    return FrameDecoder().feed(b"".join(conn.data_to_send()))


def events(conn: ClientProtocol, data: bytes, *, bytewise: bool = False) -> list[Event]:
    """Feed *data* (whole, or one byte at a time) and take every event it completes."""
    out: list[Event] = []
    for piece in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        conn.receive_data(piece)
        while not isinstance(ev := conn.next_event(), NeedData):
            out.append(ev)
    return out


def hello(**extra: object) -> bytes:
    return encode_frame("hello", {"version": PROTOCOL_VERSION, "nonce": NONCE, "auth": "hmac-sha256", **extra})


def authenticated(*, bytewise: bool = False) -> ClientProtocol:
    conn = ClientProtocol(TOKEN, "h:1")
    assert events(conn, hello(), bytewise=bytewise) == []
    (auth_frame,) = sent(conn)
    nonce = auth_frame.get("nonce")
    assert auth_frame.type == "auth" and auth_frame.get("mac") == auth.client_mac(TOKEN, NONCE, nonce)
    assert conn.state is ClientState.AUTH
    (ev,) = events(conn, encode_frame("auth_ok", {"mac": auth.server_mac(TOKEN, NONCE, nonce), "user": "u"}), bytewise=bytewise)
    assert isinstance(ev, Authenticated) and ev.info["user"] == "u" and "nonce" not in ev.info
    assert conn.state is ClientState.READY
    return conn


@pytest.mark.parametrize("bytewise", [False, True])
def test_handshake_then_a_command_whole_or_byte_by_byte(bytewise: bool) -> None:
    conn = authenticated(bytewise=bytewise)
    conn.start_command(exec_request("echo hi"))
    assert [(f.type, f.payload) for f in sent(conn)] == [("exec", b"echo hi")]
    assert conn.state is ClientState.RUNNING
    exit_fields = {"exit_code": 0, "signal": None, "timed_out": False, "elapsed": 0.1, "stdout_bytes": 3, "stderr_bytes": 0, "encoding": "utf-8"}
    evs = events(conn, encode_frame("stdout", None, b"hi\n") + encode_frame("exit", exit_fields) + b"", bytewise=bytewise)
    assert isinstance(evs[0], Output) and (evs[0].stream, evs[0].data) == ("stdout", b"hi\n")
    assert isinstance(evs[1], Exited) and evs[1].status.exit_code == 0
    assert conn.state is ClientState.READY


def test_no_auth_server_is_ready_at_hello() -> None:
    conn = ClientProtocol(None, "h:1")
    (ev,) = events(conn, encode_frame("hello", {"version": PROTOCOL_VERSION, "auth": "none"}))
    assert isinstance(ev, Authenticated) and sent(conn) == [] and conn.state is ClientState.READY


def test_a_second_command_while_one_runs_is_our_bug() -> None:
    conn = authenticated()
    conn.start_command(exec_request("sleep 1"))
    with pytest.raises(ProtocolError) as exc:
        conn.start_command(exec_request("true"))
    assert exc.value.code == "local"


def test_output_while_idle_is_the_servers_error() -> None:
    conn = authenticated()
    with pytest.raises(ProtocolError) as exc:
        events(conn, encode_frame("stdout", None, b"x"))
    assert exc.value.code == "unexpected_frame"


def test_not_hello_first_is_not_an_rsh_server() -> None:
    conn = ClientProtocol(TOKEN, "h:1")
    with pytest.raises(ProtocolError, match="instead of hello"):
        events(conn, encode_frame("stdout", None, b"x"))


def test_wrong_version_and_missing_token_are_refused() -> None:
    with pytest.raises(ProtocolError, match="version"):
        events(ClientProtocol(TOKEN, "h:1"), hello(version=99))
    with pytest.raises(AuthError, match="requires a token"):
        events(ClientProtocol(None, "h:1"), hello())


def test_a_server_that_cannot_prove_the_token_is_refused() -> None:
    conn = ClientProtocol(TOKEN, "h:1")
    events(conn, hello())
    sent(conn)
    with pytest.raises(AuthError, match="could not prove"):
        events(conn, encode_frame("auth_ok", {"mac": "0" * 64}))


def test_wrong_token_and_refusals_are_named() -> None:
    conn = ClientProtocol(TOKEN, "h:1")
    events(conn, hello())
    with pytest.raises(AuthError, match="wrong token"):
        events(conn, encode_frame("error", {"code": "auth_failed", "message": "no"}))
    with pytest.raises(RemoteError, match="refused the connection"):
        events(ClientProtocol(TOKEN, "h:1"), encode_frame("error", {"code": "access_denied", "message": "denied"}))


def test_a_refused_command_leaves_the_connection_ready() -> None:
    conn = authenticated()
    conn.start_command(exec_request("x"))
    with pytest.raises(RemoteError) as exc:
        events(conn, encode_frame("error", {"code": "busy", "message": "server busy"}))
    assert exc.value.code == "busy" and conn.state is ClientState.READY


def test_stale_completions_are_dropped_and_the_latest_answers() -> None:
    conn = authenticated()
    conn.request_completions("path", "a")
    conn.request_completions("path", "ab")
    ids = [f.get("id") for f in sent(conn)]
    evs = events(conn, encode_frame("completions", {"id": ids[0], "items": ["a1"]}) + encode_frame("completions", {"id": ids[1], "items": ["ab1", 3]}))
    assert len(evs) == 1 and isinstance(evs[0], Completions) and evs[0].items == ["ab1"]
    assert conn.state is ClientState.READY


def test_transfer_frames_come_as_they_are_until_the_transfer_ends() -> None:
    conn = authenticated()
    conn.start_transfer("get", {"path": "x"})
    (ev,) = events(conn, encode_frame("file", {"path": "", "mode": 0o644, "mtime_ns": 0, "length": 0}))
    assert isinstance(ev, FrameEvent) and ev.frame.type == "file"
    conn.send("ready", {"offset": 0})
    conn.end_transfer()
    assert conn.state is ClientState.READY


def test_end_of_stream_mid_frame_is_a_lost_connection_after_what_came_before() -> None:
    conn = authenticated()
    conn.start_command(exec_request("x"))
    conn.receive_data(encode_frame("stdout", None, b"early") + encode_frame("stdout", None, b"cut")[:-1])
    conn.receive_data(b"")
    ev = conn.next_event()
    assert isinstance(ev, Output) and ev.data == b"early"
    with pytest.raises(ConnectionLost, match="middle of a frame"):
        conn.next_event()


def test_a_malformed_frame_is_the_servers_fault() -> None:
    conn = authenticated()
    conn.receive_data(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolError, match="malformed") as exc:
        conn.next_event()
    assert exc.value.code == "header_too_large"


def test_a_clean_close_is_a_lost_connection() -> None:
    conn = authenticated()
    conn.receive_data(b"")
    with pytest.raises(ConnectionLost, match="closed by server"):
        conn.next_event()
