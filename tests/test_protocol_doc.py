"""docs/protocol.md's byte-level example is decoded by the real codec, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from rsh.protocol import auth
from rsh.protocol.frames import FrameDecoder, encode_frame

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
LINE = re.compile(r"^(S->C|C->S)  ((?:[0-9a-f]{2} ){3}[0-9a-f]{2})  (\{.*?\})(?:  ((?:[0-9a-f]{2} ?)+))?", re.M)


def example_frames() -> list[tuple[str, bytes]]:
    out = []
    for m in LINE.finditer(DOC.read_text()):
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
