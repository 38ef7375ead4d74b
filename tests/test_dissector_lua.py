"""The Wireshark dissector's logic without Wireshark: rsh_wire.lua run by lupa against a stub of the API.

tests/test_wireshark.py runs the real tshark when it is installed; this runs
everywhere the ``lupa`` test extra does, under Lua 5.2 (Wireshark 4.0 to
4.2) and 5.4 (4.4 on).  The dissector is checked against rsh's own
``FrameDecoder``: fed the same bytes split the same way (Wireshark's TCP
reassembly emulated from ``desegment_offset``/``desegment_len``), it must
find the same frames, and refuse a malformed one with the same error code.
"""

from __future__ import annotations

import importlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsh.errors import ProtocolError
from rsh.protocol.frames import MESSAGE_TYPES, FrameDecoder, encode_frame
from rsh.teach.wireshark import dissector_path

pytest.importorskip("lupa", reason="the lupa test extra runs the dissector without Wireshark")

STUB = (Path(__file__).parent / "wireshark_stub.lua").read_bytes()
SERVER_PORT = 7022


def _runtimes() -> list[ModuleType]:
    found = []
    for name in ("lupa.lua52", "lupa.lua54"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            pass
    return found


RUNTIMES = _runtimes()


@dataclass
class Dissected:
    """One frame as the dissector put it in the tree."""

    text: str
    prefix: int | None = None
    header: bytes = b""
    type: str | None = None
    size: int = 0
    payload: bytes = b""
    payload_len: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    experts: list[str] = field(default_factory=list)


class Dissector:
    """rsh_wire.lua loaded in one Lua runtime, with the stub API."""

    def __init__(self, runtime: ModuleType) -> None:
        self.lua = runtime.LuaRuntime(encoding=None, unpack_returned_tuples=True)
        self.lua.execute(STUB)
        self.lua.execute(dissector_path().read_bytes())
        self.g = self.lua.globals()
        self.proto = self.g[b"PROTO"]

    def segment(self, data: bytes, src_port: int = 50000) -> tuple[list[Dissected], int, int, bytes]:
        """Dissect one TCP segment's data: the frames, desegment_offset, desegment_len, the Info column."""
        pinfo = self.g[b"make_pinfo"](src_port, SERVER_PORT)
        tree = self.g[b"make_tree"]()
        taken = self.proto[b"dissector"](self.g[b"make_tvb"](data), pinfo, tree)
        assert taken == len(data)  # every byte is the dissector's: a frame, or a part kept for later
        frames: list[Dissected] = []

        def emit(kind: bytes, *args: Any) -> None:
            if kind == b"frame":
                frames.append(Dissected(args[0].decode()))
                return
            f = frames[-1]
            if kind == b"expert":
                f.experts.append(args[1].decode())
                return
            abbr, label, value = args[0].decode(), args[1].decode(), args[2]
            if abbr == "rshwire.prefix":
                f.prefix = int(value)
            elif abbr == "rshwire.header":
                f.header = value
            elif abbr == "rshwire.type":
                f.type = value.decode()
            elif abbr == "rshwire.size":
                f.size = int(value)
            elif abbr == "rshwire.payload":
                f.payload = value
            elif abbr == "rshwire.payload_len":
                f.payload_len = int(value)
            elif abbr == "rshwire.error":
                f.error = value.decode()
            elif abbr == "rshwire.field":
                key, _, text = value.decode().partition(": ")
                f.fields[key] = text
            elif abbr != "rshwire.preview":
                f.fields[label] = value.decode()

        self.g[b"walk"](tree, emit)
        return frames, int(pinfo[b"desegment_offset"]), int(pinfo[b"desegment_len"]), pinfo[b"cols"][b"info"][b"text"]

    def stream(self, segments: list[bytes]) -> list[Dissected]:
        """Dissect one direction of a connection, reassembling as Wireshark's TCP does."""
        out: list[Dissected] = []
        pending, need = b"", 0
        for seg in segments:
            pending += seg
            if len(pending) < need:
                continue  # TCP holds the segment until the bytes asked for are all there
            frames, offset, more, _ = self.segment(pending)
            out += frames
            if any(f.error for f in frames):
                break  # the receiver hangs up here
            pending, need = (pending[offset:], len(pending) - offset + more) if more else (b"", 0)
        return out


@pytest.fixture(params=RUNTIMES, ids=lambda m: m.__name__.removeprefix("lupa."), scope="module")
def dissector(request: pytest.FixtureRequest) -> Dissector:
    return Dissector(request.param)


def decoded(segments: list[bytes]) -> tuple[list[Any], str | None]:
    """What rsh's FrameDecoder makes of the same segments: the frames, and the error code it stopped at."""
    decoder, frames = FrameDecoder(), []
    try:
        for seg in segments:
            frames += decoder.feed(seg)
    except ProtocolError as exc:
        return frames, exc.code
    return frames, None


def shown(value: Any) -> str:
    """A header value as the dissector shows it: a string as it is, anything else as rsh's encoder wrote it."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def test_it_registers_as_rshwire_on_rsh_port(dissector: Dissector) -> None:
    (entry,) = dissector.g[b"REGISTERED"].values()
    assert (entry[b"table"], entry[b"port"]) == (b"tcp.port", SERVER_PORT)
    assert dissector.proto[b"name"] == b"rshwire"  # Wireshark's own "rsh" is BSD rsh, port 514


def test_one_session_frame_by_frame(dissector: Dissector) -> None:
    wire = encode_frame("exec", {"env": {"A": "1"}}, b"echo hi") + encode_frame("stdin", {"eof": True})
    (hlen,) = struct.unpack("!I", wire[:4])
    (exec_frame, eof), _, _, info = dissector.segment(wire)
    assert (exec_frame.prefix, exec_frame.header, exec_frame.type, exec_frame.size) == (hlen, wire[4 : 4 + hlen], "exec", 7)
    assert exec_frame.payload == b"echo hi" and exec_frame.payload_len == 7
    assert exec_frame.fields == {"env": '{"A":"1"}'}
    assert exec_frame.text == f"rsh frame: exec, 4 + {hlen} + 7 = {4 + hlen + 7} bytes"
    assert (eof.type, eof.fields, eof.payload_len) == ("stdin", {"eof": "true"}, 0)
    assert info == b"client -> exec(7 B) stdin"


def test_a_frame_one_byte_a_segment(dissector: Dissector) -> None:
    wire = encode_frame("stdout", None, bytes(range(256)) * 4)
    (f,) = dissector.stream([wire[i : i + 1] for i in range(len(wire))])
    assert (f.type, f.size, f.payload) == ("stdout", 1024, bytes(range(256)) * 4)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
# A field shows as "KEY: VALUE", as Wireshark's tree has it: a key holding ": " reads two ways there.
FIELDS = st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("type", "size") and ": " not in k), JSON, max_size=4)
FRAME = st.builds(encode_frame, st.sampled_from(sorted(MESSAGE_TYPES)), FIELDS, st.binary(max_size=300))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(FRAME, min_size=1, max_size=4), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_any_frames_any_split_decode_as_rsh_decodes_them(dissector: Dissector, frames: list[bytes], cuts: list[int]) -> None:
    segments = split(b"".join(frames), cuts)
    expected, error = decoded(segments)
    assert error is None
    got = dissector.stream(segments)
    assert [(f.type, f.size, f.payload, f.header, f.prefix, f.error) for f in got] == [
        (e.type, len(e.payload), e.payload, e.raw_header, len(e.raw_header), None) for e in expected
    ]
    assert [f.fields for f in got] == [{k: shown(v) for k, v in e.fields.items()} for e in expected]


def frame_of(header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("!I", len(header)) + header + payload


MALFORMED = {
    "prefix over 64 KiB": (b"\x00\x01\x00\x01", "header_too_large"),
    "prefix ff ff ff ff": (b"\xff\xff\xff\xff", "header_too_large"),
    "not UTF-8": (frame_of(b'{"type":"exec\xff"}'), "bad_header"),
    "a UTF-16 surrogate in UTF-8": (frame_of(b'{"type":"\xed\xa0\x80"}'), "bad_header"),
    "not JSON": (frame_of(b"{bad}"), "bad_header"),
    "trailing garbage": (frame_of(b'{"type":"exec"}x'), "bad_header"),
    "a number with a minus in it": (frame_of(b'{"type":"exec","a":1-2}'), "bad_header"),
    "not an object": (frame_of(b'["type","exec"]'), "bad_header"),
    "no type": (frame_of(b'{"size":3}'), "bad_header"),
    "a null type": (frame_of(b'{"type":null}'), "bad_header"),
    "an unknown type": (frame_of(b'{"type":"nope"}'), "unknown_type"),
    "a type that is a number": (frame_of(b'{"type":7}'), "unknown_type"),
    "a negative size": (frame_of(b'{"type":"exec","size":-1}'), "bad_size"),
    "a float size": (frame_of(b'{"type":"exec","size":1.0}'), "bad_size"),
    "a boolean size": (frame_of(b'{"type":"exec","size":true}'), "bad_size"),
    "a null size": (frame_of(b'{"type":"exec","size":null}'), "bad_size"),
    "a NaN size": (frame_of(b'{"type":"exec","size":NaN}'), "bad_size"),
    "a payload over 1 MiB": (frame_of(b'{"type":"stdout","size":1048577}'), "payload_too_large"),
    "a size past 2**64": (frame_of(b'{"type":"stdout","size":99999999999999999999999}'), "payload_too_large"),
}


@pytest.mark.parametrize("wire", [w for w, _ in MALFORMED.values()], ids=list(MALFORMED))
def test_a_malformed_frame_is_flagged_with_rsh_code(dissector: Dissector, wire: bytes) -> None:
    _, code = decoded([wire])
    assert code == dict(MALFORMED.values())[wire]
    good = encode_frame("stdout", None, b"ok")
    (first, bad), _, _, info = dissector.segment(good + wire)
    assert first.error is None and first.payload == b"ok"  # the frames before it still decode
    assert bad.error == code and bad.experts and bad.experts[0].startswith(f"{code}: ")
    assert info.endswith(f"[{code}] malformed".encode())


HEADER_BYTES = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda v: json.dumps(v).encode(), JSON),
    st.builds(
        lambda t, s, extra: json.dumps({"type": t, "size": s, **extra}).encode(),
        st.one_of(st.sampled_from(sorted(MESSAGE_TYPES)), JSON),
        st.one_of(st.integers(min_value=-5, max_value=2**21), JSON),
        FIELDS,
    ),
    st.builds(lambda v: b' {"type":"exec","size":' + v + b"} ", st.sampled_from([b"0", b"-0", b"1e2", b"01", b"1.", b"0.5", b"2E0", b"-", b"Infinity"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=HEADER_BYTES)
def test_any_header_is_judged_as_rsh_judges_it(dissector: Dissector, header: bytes) -> None:
    wire = frame_of(header)
    expected, code = decoded([wire])
    got, _, more, _ = dissector.segment(wire)
    if code is not None:
        assert [f.error for f in got] == [code], header
    elif expected:
        assert [(f.type, f.error) for f in got] == [(expected[0].type, None)], header
    else:
        # A good header announcing a payload that has not come: the dissector asks for it.
        assert got == [] and more > 0, header
