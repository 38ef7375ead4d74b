"""docs/protocol.md's byte-level example is decoded by the real codec, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from rsh.protocol import auth
from rsh.protocol.frames import FrameDecoder, encode_frame

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
LINE = re.compile(r"^(S->C|C->S)  ((?:[0-9a-f]{2} ){3}[0-9a-f]{2})  (\{.*?\})(?:  ((?:[0-9a-f]{2} ?)+))?", re.M)


def example_frames(heading: str = "## A whole exchange, byte by byte") -> list[tuple[str, bytes]]:
    """The frames of the example under *heading*, as (direction, bytes on the wire)."""
    text = DOC.read_text()
    section = text[text.index(heading + "\n") :]
    section = section[: section.find("\n#", len(heading))]
    out = []
    for m in LINE.finditer(section):
        wire = bytes.fromhex(m.group(2)) + m.group(3).encode() + bytes.fromhex(m.group(4) or "")
        out.append((m.group(1), wire))
    return out


def test_example_decodes_and_reencodes_byte_for_byte() -> None:
    frames = example_frames()
    assert [d for d, _ in frames] == ["S->C", "C->S", "S->C", "C->S", "S->C", "S->C"]
    for _, wire in frames:
        (frame,) = FrameDecoder().feed(wire)
        assert encode_frame(frame.type, frame.fields, frame.payload) == wire
    assert FrameDecoder().feed(frames[3][1])[0].payload == b"echo hi; exit 3"


def test_example_macs_are_the_real_hmacs() -> None:
    frames = [FrameDecoder().feed(w)[0] for _, w in example_frames()]
    hello, auth_frame, ok = frames[0], frames[1], frames[2]
    token = "0f" * 32
    ns, nc = hello.get("nonce"), auth_frame.get("nonce")
    assert auth_frame.get("mac") == auth.client_mac(token, ns, nc)
    assert ok.get("mac") == auth.server_mac(token, ns, nc)


def test_live_shell_example_is_what_the_protocols_send_and_accept() -> None:
    from rsh.protocol import server_events as ev
    from rsh.protocol.server import ServerProtocol, ServerState

    frames = example_frames("### A live shell, byte by byte")
    assert [d for d, _ in frames] == ["C->S", "S->C", "C->S", "C->S", "S->C", "S->C", "S->C", "C->S", "S->C"]
    decoded = []
    for _, wire in frames:
        (frame,) = FrameDecoder().feed(wire)
        assert encode_frame(frame.type, frame.fields, frame.payload) == wire
        decoded.append(frame)
    # The server's state machine takes the client's frames and lets it send its own, in this order.
    server = ServerProtocol(None, software="rsh/test", encoding="utf-8", system="Linux", shell="/bin/sh", identity={})
    assert isinstance(server.next_event(), ev.Authenticated)
    server.data_to_send()
    for (direction, wire), frame in zip(frames, decoded, strict=True):
        if direction == "C->S":
            server.receive_data(wire)
            assert server.next_event() is not None
        else:
            server.send(frame.type, {k: v for k, v in frame.fields.items() if k != "size"}, frame.payload)
    assert server.state is ServerState.READY
