"""The sans-I/O codec, adversarially: any split, malformed headers, limits."""

from __future__ import annotations

import json
import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsh.errors import ProtocolError
from rsh.protocol import header_json
from rsh.protocol.frames import DEFAULT_MAX_PAYLOAD, MAX_HEADER_SIZE, MESSAGE_TYPES, Frame, FrameDecoder, encode_frame


def raw_frame(header: object, payload: bytes = b"", *, raw: bytes | None = None) -> bytes:
    body = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("!I", len(body)) + body + payload


def decode_all(chunks: list[bytes]) -> list[Frame]:
    dec = FrameDecoder()
    out: list[Frame] = []
    for c in chunks:
        out += dec.feed(c)
    dec.feed(b"")
    return out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
frames = st.builds(
    Frame,
    st.sampled_from(sorted(MESSAGE_TYPES)),
    st.dictionaries(st.text(max_size=10).filter(lambda k: k not in ("type", "size")), json_values, max_size=4),
    st.binary(max_size=300),
)


@settings(max_examples=100)
@given(st.dictionaries(st.text(max_size=8), json_values | st.floats(allow_nan=False), max_size=6))
def test_header_json_gives_what_json_dumps_gives(fields: dict[str, object]) -> None:
    for encode, ascii_only in ((header_json.encode_json, False), (header_json.encode_json_ascii, True)):
        assert encode.__qualname__ == "_made_once.<locals>.encode"  # CPython's _json: the made-once C encoder is in use
        assert encode(fields) == json.dumps(fields, separators=(",", ":"), ensure_ascii=ascii_only)


def test_header_json_without_the_c_encoder_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {"exit_code": 0, "signal": None, "elapsed": 0.25, "cwd": '/tmp/\u00e9 "x"\udcff', "exports": {"A": "1", "B": None}}
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    for ascii_only, fast in ((False, header_json.encode_json), (True, header_json.encode_json_ascii)):
        slow = header_json._made_once(ensure_ascii=ascii_only)
        assert slow.__qualname__ == "JSONEncoder.encode"
        assert slow(fields) == fast(fields) == json.dumps(fields, separators=(",", ":"), ensure_ascii=ascii_only)


@settings(max_examples=300)
@given(st.lists(frames, max_size=8), st.data())
def test_random_frames_rechunked_at_random_decode_to_the_same_frames(fs: list[Frame], data: st.DataObject) -> None:
    wire = b"".join(encode_frame(f.type, f.fields, f.payload) for f in fs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    # b"" means end of stream, so empty pieces are not fed.
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True) if b > a]
    assert decode_all(chunks) == fs


def test_large_frame_in_small_pieces_and_recv_into_api() -> None:
    payload = bytes(range(256)) * 4000
    wire = encode_frame("stdout", None, payload) * 3
    dec = FrameDecoder()
    got: list[Frame] = []
    pos = 0
    while pos < len(wire):
        with dec.get_buffer() as buf:
            n = min(len(buf), 1000, len(wire) - pos)
            buf[:n] = wire[pos : pos + n]
        got += dec.buffer_updated(n)
        pos += n
    assert [f.payload for f in got] == [payload] * 3
    assert dec.buffer_updated(0) == []


def test_one_byte_at_a_time() -> None:
    wire = encode_frame("stdout", None, b"hello") + encode_frame("exit", {"exit_code": 0})
    assert decode_all([wire[i : i + 1] for i in range(len(wire))]) == [
        Frame("stdout", {}, b"hello"),
        Frame("exit", {"exit_code": 0}),
    ]


def test_many_frames_in_one_chunk() -> None:
    wire = b"".join(encode_frame("stdout", None, bytes([i]) * i) for i in range(50))
    assert [f.payload for f in FrameDecoder().feed(wire)] == [bytes([i]) * i for i in range(50)]


def test_header_split_from_payload() -> None:
    wire = encode_frame("stderr", None, b"x" * 1000)
    dec = FrameDecoder()
    head_len = len(wire) - 1000
    assert dec.feed(wire[:head_len]) == []
    assert dec.buffered == 0  # the header is parsed; only the payload is awaited
    assert dec.feed(wire[head_len:]) == [Frame("stderr", {}, b"x" * 1000)]


def test_trailing_partial_frame_waits() -> None:
    wire = encode_frame("stdout", None, b"abc")
    dec = FrameDecoder()
    assert dec.feed(wire + wire[:5]) == [Frame("stdout", {}, b"abc")]
    assert dec.feed(wire[5:]) == [Frame("stdout", {}, b"abc")]


def test_offsets_and_raw_header_record_the_wire() -> None:
    a = encode_frame("stdout", None, b"abc")
    b = encode_frame("exit", {"exit_code": 3})
    fa, fb = FrameDecoder().feed(a + b)
    assert (fa.offset, fb.offset) == (0, len(a))
    assert fb.raw_header == b[4:]


def test_size_absent_means_empty_payload() -> None:
    assert FrameDecoder().feed(raw_frame({"type": "exit", "exit_code": 0})) == [Frame("exit", {"exit_code": 0})]


@pytest.mark.parametrize(
    "wire, code",
    [
        (raw_frame(None, raw=b"\xff\xfe{}"), "bad_header"),
        (raw_frame(None, raw=b"{not json"), "bad_header"),
        (raw_frame([1, 2]), "bad_header"),
        (raw_frame("exec"), "bad_header"),
        (raw_frame({"size": 0}), "bad_header"),
        (raw_frame({"type": "launch_missiles"}), "unknown_type"),
        (raw_frame({"type": 7}), "unknown_type"),
        (raw_frame({"type": "stdout", "size": -1}), "bad_size"),
        (raw_frame({"type": "stdout", "size": 1.5}), "bad_size"),
        (raw_frame({"type": "stdout", "size": "10"}), "bad_size"),
        (raw_frame({"type": "stdout", "size": True}), "bad_size"),
        (raw_frame({"type": "stdout", "size": DEFAULT_MAX_PAYLOAD + 1}), "payload_too_large"),
        (struct.pack("!I", MAX_HEADER_SIZE + 1), "header_too_large"),
    ],
    ids=[
        "utf8",
        "json",
        "array",
        "string",
        "no-type",
        "unknown-type",
        "type-not-str",
        "negative-size",
        "float-size",
        "string-size",
        "bool-size",
        "payload-too-large",
        "header-too-large",
    ],
)
def test_malformed_headers_raise_protocol_error(wire: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        FrameDecoder().feed(wire)
    assert info.value.code == code


def test_oversize_is_refused_before_the_payload_arrives() -> None:
    # Only the header is fed: the limit is checked before any payload is held.
    head = raw_frame({"type": "stdout", "size": 10 * DEFAULT_MAX_PAYLOAD})
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(head)


def test_huge_length_prefix_allocates_nothing_large() -> None:
    dec = FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            dec.feed(b"\xff\xff\xff\xff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_eof_mid_frame_raises() -> None:
    dec = FrameDecoder()
    dec.feed(encode_frame("stdout", None, b"abcdef")[:-2])
    with pytest.raises(ProtocolError) as info:
        dec.feed(b"")
    assert info.value.code == "truncated"


def test_clean_eof_is_fine() -> None:
    dec = FrameDecoder()
    dec.feed(encode_frame("stdout", None, b"abc"))
    assert dec.feed(b"") == []


def test_decoder_stays_dead_after_an_error() -> None:
    dec = FrameDecoder()
    with pytest.raises(ProtocolError):
        dec.feed(raw_frame({"type": "nope"}))
    with pytest.raises(ProtocolError):
        dec.feed(encode_frame("stdout", None, b"fine"))


def test_custom_payload_limit() -> None:
    dec = FrameDecoder(max_payload=10)
    assert dec.feed(encode_frame("stdout", None, b"x" * 10))[0].payload == b"x" * 10
    with pytest.raises(ProtocolError):
        dec.feed(encode_frame("stdout", None, b"x" * 11))


def test_encoder_refuses_unknown_type_and_huge_header() -> None:
    with pytest.raises(ProtocolError):
        encode_frame("nope")
    with pytest.raises(ProtocolError):
        encode_frame("exec", {"env": {"A": "x" * MAX_HEADER_SIZE}})


def test_encoding_is_length_prefixed_compact_json() -> None:
    wire = encode_frame("stdout", None, b"hi")
    assert wire == b'\x00\x00\x00\x1a{"type":"stdout","size":2}hi'


def test_the_wireshark_dissector_knows_every_message_type() -> None:
    # It refuses an unknown type as the receiver does: its list must be the codec's.
    import re
    from pathlib import Path

    from rsh.protocol.frames import MESSAGE_TYPES

    lua = (Path(__file__).resolve().parent.parent / "rsh" / "teach" / "rsh_wire.lua").read_text()
    listed = re.search(r"for t in \(\[\[(.*?)\]\]\)", lua, re.S)
    assert listed is not None
    assert set(listed.group(1).split()) == MESSAGE_TYPES
