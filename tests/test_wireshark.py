"""The Wireshark dissector (rsh/teach/rsh_wire.lua), run by the real tshark on a capture of real sessions.

One capture, made once for the module, holds: an ``rsh exec --trace`` session
whose exec frame (80 kB) TCP must split over several segments; a hand-driven
connection that sends three frames in one segment; and connections that send
malformed frames, which the server refuses.  tshark decodes it with the
dissector, and every frame must match what ``--trace`` printed, or be flagged
with the code the server refused it with.  Skipped without tshark and dumpcap.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rsh.protocol.frames import encode_frame
from rsh.teach.capture import Capture
from rsh.teach.harness import DemoError
from rsh.teach.wireshark import PROTOCOL, decode_as, dissector_path, lua_flag

from .conftest import ServerFactory, ServerProcess, rsh_argv
from .rawpeer import RawPeer

TSHARK = shutil.which("tshark")
DUMPCAP = shutil.which("dumpcap") or TSHARK
pytestmark = pytest.mark.skipif(TSHARK is None or DUMPCAP is None, reason="tshark and dumpcap are not installed (Debian/Ubuntu: apt-get install tshark)")

BIG = 80_000  # an exec payload larger than any loopback segment
MALFORMED = {
    "header_too_large": b"\xff\xff\xff\xff",
    "bad_header": struct.pack("!I", 5) + b"{bad}",
    "unknown_type": struct.pack("!I", 15) + b'{"type":"nope"}',
    "bad_size": struct.pack("!I", 26) + b'{"type":"exec","size":1.5}',
}


@dataclass
class Frame:
    """One rsh frame as the dissector showed it."""

    packet: int
    stream: int
    direction: str  # "send" (client to server) or "recv", as --trace names them
    type: str = ""
    size: int = 0
    header: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    expert: bool = False
    segments: int = 1  # TCP segments of the packet's reassembled data


@dataclass
class Recorded:
    server: ServerProcess
    trace: list[str]
    refused: dict[str, str]  # what the server answered each malformed frame with
    frames: list[Frame]


def first(packet: ET.Element, name: str) -> ET.Element:
    """The first field called *name* in *packet*'s PDML."""
    found = packet.find(f".//field[@name='{name}']")
    assert found is not None, name
    return found


def dissect(pcap: Path, port: int) -> list[Frame]:
    """Every rsh frame tshark finds in *pcap* with the dissector, in capture order."""
    assert TSHARK is not None
    r = subprocess.run(
        [TSHARK, "-r", str(pcap), *lua_flag().split(), *decode_as(port).split(), "-Y", PROTOCOL, "-T", "pdml"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    frames = []
    for packet in ET.fromstring(r.stdout).iter("packet"):
        number, stream = int(first(packet, "frame.number").get("show", "")), int(first(packet, "tcp.stream").get("show", ""))
        direction = "recv" if int(first(packet, "tcp.srcport").get("show", "")) == port else "send"
        count = packet.find(".//field[@name='tcp.segment.count']")
        segments = int(count.get("show", "1")) if count is not None else 1
        for proto in packet.iter("proto"):
            if proto.get("name") != PROTOCOL:
                continue
            for node in proto.findall("field[@name='rshwire.frame']"):
                f = Frame(number, stream, direction, segments=segments)
                for child in node.iter("field"):
                    name, show = child.get("name", ""), child.get("show", "")
                    if name == "rshwire.type":
                        f.type = show
                    elif name == "rshwire.size":
                        f.size = int(show)
                    elif name == "rshwire.header":
                        f.header = show
                    elif name == "rshwire.error":
                        f.error = show
                    elif name == "rshwire.malformed":
                        f.expert = True
                    elif name == "rshwire.field":
                        key, _, value = show.partition(": ")
                        f.fields[key] = value
                    elif name.startswith("rshwire.") and child.get("showname", "").startswith(f"{name[8:]}: "):
                        f.fields[child.get("showname", "").split(": ", 1)[0]] = show
                frames.append(f)
    return frames


def shown(value: Any) -> str:
    """A header value as the dissector shows it: strings as they are, the rest as their JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    root = tmp_path_factory.mktemp("wireshark")
    factory = ServerFactory(root)
    try:
        server = factory()
        pcap = root / "session.pcapng"
        assert DUMPCAP is not None
        try:
            capture = Capture(DUMPCAP, pcap, server.port).__enter__()
        except DemoError as exc:
            pytest.skip(f"cannot capture on loopback here: {exc}")
        refused = {}
        try:
            command = ": " + "x" * BIG + "; echo hi; echo err >&2"
            r = subprocess.run(
                rsh_argv("exec", "-n", "--trace", "--token-file", str(server.token_file), server.address, "--", command),
                env=server.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr
            with RawPeer(server.port) as peer:
                peer.authenticate(server.token)
                # exec, stdin and stdin-eof in one send(): three frames in one segment.
                peer.send_raw(encode_frame("exec", {"stdin": True}, b"cat") + encode_frame("stdin", None, b"data\n") + encode_frame("stdin", {"eof": True}))
                while (answer := peer.recv()) is not None and answer.type != "exit":
                    pass
                assert answer is not None, "the server closed the connection before exit"
            for code, raw in MALFORMED.items():
                with RawPeer(server.port) as peer:
                    peer.send_raw(raw)
                    (refusal,) = peer.recv_until_closed()
                    refused[code] = refusal.get("code")
        finally:
            capture.__exit__(None, None, None)
        trace = [line for line in r.stderr.decode().splitlines() if line.startswith("rsh trace ")]
        yield Recorded(server, trace, refused, dissect(pcap, server.port))
    finally:
        factory.close()


def test_every_frame_matches_the_trace(recorded: Recorded) -> None:
    session = [f for f in recorded.frames if f.stream == recorded.frames[0].stream]
    traced = []
    for line in recorded.trace:
        words = line.split()
        direction, header = words[2], line.split("  header ", 1)[1].rsplit("  payload ", 1)[0]
        traced.append((direction, json.loads(header)["type"], int(line.rsplit("  payload ", 1)[1].split()[0]), header))
    for direction in ("send", "recv"):
        # Each direction's frames come in order; how the two interleave depends on who was faster.
        mine = [(f.direction, f.type, f.size, f.header) for f in session if f.direction == direction]
        assert mine == [t for t in traced if t[0] == direction]
    assert [t[1] for t in traced] == ["hello", "auth", "auth_ok", "exec", "stdout", "stderr", "exit"]
    for f in session:
        fields = json.loads(f.header)
        del fields["type"]
        fields.pop("size", None)
        assert f.fields == {k: shown(v) for k, v in fields.items()}, f.type
        assert not f.expert and f.error is None


def test_a_frame_split_over_segments_decodes(recorded: Recorded) -> None:
    (exec_frame,) = [f for f in recorded.frames if f.type == "exec" and f.size > BIG]
    assert exec_frame.segments >= 2


def test_several_frames_in_one_segment_decode(recorded: Recorded) -> None:
    by_packet: dict[int, list[Frame]] = {}
    for f in recorded.frames:
        by_packet.setdefault(f.packet, []).append(f)
    together = [[(f.type, f.fields.get("eof")) for f in frames] for frames in by_packet.values() if len(frames) > 1 and frames[0].direction == "send"]
    assert [("exec", None), ("stdin", None), ("stdin", "true")] in together


def test_malformed_frames_are_flagged_as_the_server_refuses_them(recorded: Recorded) -> None:
    assert recorded.refused == {code: code for code in MALFORMED}
    flagged = [f for f in recorded.frames if f.error is not None]
    assert sorted(f.error for f in flagged if f.error) == sorted(MALFORMED)
    assert all(f.expert and f.direction == "send" for f in flagged)
    # Nothing else in the capture is flagged.
    assert all(f.error is None and not f.expert for f in recorded.frames if f not in flagged)


def test_the_dissector_is_in_the_package() -> None:
    assert dissector_path().is_file()
    assert dissector_path().read_text().count('Proto("rshwire"') == 1
