"""The ``closed`` frame: the client's reader of a command's stdout or stderr has gone (docs/protocol.md).

Both sans-I/O sides (what is sent, what is accepted where), then a real
server: the command meets a closed pipe on that stream and runs to its end,
while the other stream and the connection carry on.
"""

from __future__ import annotations

import pytest

import rsh
from rsh.errors import ProtocolError
from rsh.protocol import auth
from rsh.protocol import server as sp
from rsh.protocol.client import ClientProtocol, ClientState, Exited, Output, exec_request
from rsh.protocol.frames import encode_frame
from rsh.protocol.messages import FEATURES, PROTOCOL_VERSION
from rsh.protocol.server import ServerState

from .conftest import ServerProcess
from .test_protocol_client import NONCE, TOKEN, events, sent
from .test_protocol_server import exec_frame, ready, whole


def running_client(features: list[str]) -> ClientProtocol:
    conn = ClientProtocol(TOKEN, "h:1")
    events(conn, encode_frame("hello", {"version": PROTOCOL_VERSION, "nonce": NONCE, "auth": "hmac-sha256", "features": features}))
    (auth_frame,) = sent(conn)
    events(conn, encode_frame("auth_ok", {"mac": auth.server_mac(TOKEN, NONCE, auth_frame.get("nonce")), "user": "u"}))
    conn.start_command(exec_request("yes"))
    sent(conn)
    assert conn.state is ClientState.RUNNING
    return conn


def test_client_sends_closed_to_a_server_that_knows_it() -> None:
    assert "closed" in FEATURES
    conn = running_client(list(FEATURES))
    assert conn.close_output("stdout") is True
    assert [(f.type, f.get("stream")) for f in sent(conn)] == [("closed", "stdout")]
    assert conn.state is ClientState.RUNNING


def test_client_sends_nothing_to_an_older_server() -> None:
    # An older server would end the connection on a frame type it does not know.
    conn = running_client(["shell"])
    assert conn.close_output("stdout") is False
    assert sent(conn) == []


def test_server_takes_closed_while_running() -> None:
    proto = ready()
    whole(proto, exec_frame(b"yes"))
    assert whole(proto, encode_frame("closed", {"stream": "stderr"})) == [sp.OutputClosed("stderr")]
    assert proto.state is ServerState.RUNNING


def test_server_drops_closed_racing_the_exit() -> None:
    proto = ready()
    assert whole(proto, encode_frame("closed", {"stream": "nonsense"})) == []
    assert proto.state is ServerState.READY


@pytest.mark.parametrize("stream", [None, "stdin", 1])
def test_server_refuses_a_closed_frame_naming_no_output(stream: object) -> None:
    proto = ready()
    whole(proto, exec_frame(b"yes"))
    with pytest.raises(ProtocolError) as info:
        whole(proto, encode_frame("closed", {"stream": stream}))
    assert info.value.code == "bad_field"


def test_command_meets_a_closed_pipe_and_the_connection_carries_on(server: ServerProcess) -> None:
    with rsh.connect(server.host, server.port, token=server.token) as c:
        conn = c._pump.conn
        conn.start_command(exec_request("yes; echo yes=$? >&2; exit 7"))
        assert conn.close_output("stdout")
        stderr = b""
        while True:
            event = c._pump.next_event()
            if isinstance(event, Output) and event.stream == "stderr":
                stderr += event.data
            elif isinstance(event, Exited):
                status = event.status
                break
        assert (status.exit_code, stderr) == (7, b"yes=141\n")  # of SIGPIPE, as with a local pipe
        assert c.run("echo next").stdout == b"next\n"
