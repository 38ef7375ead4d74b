"""Hypothesis throws random and mutated frames at connections that have not authenticated.

Whatever arrives, nothing runs (the marker file the frames ask for is never
created, the audit log holds no command), every such connection ends
unauthenticated, and the server keeps answering a good client throughout.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rsh
from rsh.protocol import auth
from rsh.protocol.frames import MESSAGE_TYPES, FrameDecoder, encode_frame

from .conftest import ServerFactory, ServerProcess


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, rsh.Client]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    servers = ServerFactory(tmp)
    s = servers("--auth-fail-delay", "0.01", "--auth-timeout", "5", "--max-unauthenticated", "500", where=tmp)
    good = rsh.connect(s.host, s.port, s.token)
    try:
        yield s, tmp / "marker", good
    finally:
        good.close()
        servers.close()


def marker_command(marker: Path) -> bytes:
    return f"touch '{marker}'".encode()


json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=80)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
frame_types = st.sampled_from(sorted(MESSAGE_TYPES) + ["", "AUTH", "exec ", "bogus"])


@st.composite
def raw_frame(draw: st.DrawFn, marker: bytes) -> bytes:
    """One frame with any header fields, whose prefix and size may lie."""
    header: dict[str, object] = {"type": draw(frame_types)}
    header.update(draw(st.dictionaries(st.sampled_from(["nonce", "mac", "cwd", "env", "stdin", "eof", "signal", "code", "x"]), json_values, max_size=4)))
    payload = draw(st.sampled_from([b"", marker]) | st.binary(max_size=64))
    size = draw(st.sampled_from([len(payload), len(payload), 0, len(payload) + 1, -1, 2**31]) | json_values)
    if size != 0:
        header["size"] = size
    body = json.dumps(header).encode()
    prefix = draw(st.sampled_from([len(body), len(body), len(body) - 1, len(body) + 3, 0, 2**32 - 1]))
    return struct.pack("!I", max(0, min(prefix, 2**32 - 1))) + body + payload


@st.composite
def attack(draw: st.DrawFn, marker: bytes) -> bytes | tuple[str, bytes]:
    """Bytes to send after hello: random, forged frames, or a mutated honest-looking exchange."""
    kind = draw(st.sampled_from(["random", "frames", "mutated"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    if kind == "frames":
        return b"".join(draw(st.lists(raw_frame(marker), min_size=1, max_size=4)))
    # An auth for this very connection's nonce (filled in later) with the wrong
    # token, or an exec straight away; then bytes flipped, cut or inserted.
    return ("mutate", draw(st.binary(min_size=0, max_size=8)))


def mutate(data: bytes, seed: bytes) -> bytes:
    buf = bytearray(data)
    for i, b in enumerate(seed):
        op = b % 4
        pos = (b * 7919 + i * 104729) % (len(buf) + 1)
        if op == 0 and pos < len(buf):
            buf[pos] ^= 1 << (b % 8)
        elif op == 1:
            del buf[pos:]
        elif op == 2:
            buf[pos:pos] = bytes([b])
        elif pos < len(buf):
            del buf[pos]
    return bytes(buf)


def exchange(port: int, payload: bytes | tuple[str, bytes], marker: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        dec = FrameDecoder()
        frames: list = []  # type: ignore[type-arg]
        while not frames:
            data = sock.recv(65536)
            assert data, "the server closed before hello"
            frames = dec.feed(data)
        hello = frames[0]
        assert hello.type == "hello"
        if isinstance(payload, tuple):
            nc = "ee" * 32
            honest = encode_frame("auth", {"nonce": nc, "mac": auth.client_mac("not-the-token", hello.get("nonce"), nc)})
            payload = mutate(honest + encode_frame("exec", None, marker), payload[1])
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the server already hung up on an earlier part
        # Read to the end: the server must close every one of these by itself.
        while True:
            try:
                if not sock.recv(65536):
                    return
            except ConnectionResetError:
                return


def test_fuzzed_unauthenticated_connections_run_nothing(fuzz_target: tuple[ServerProcess, Path, rsh.Client]) -> None:
    server, marker, good = fuzz_target
    cmd = marker_command(marker)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(payload=attack(cmd))
    def one_connection(payload: bytes | tuple[str, bytes]) -> None:
        exchange(server.port, payload, cmd)
        assert not marker.exists()
        assert good.run("echo alive").stdout == b"alive\n"

    one_connection()

    assert not marker.exists()
    with rsh.connect(server.host, server.port, server.token) as fresh:
        assert fresh.run("echo fresh").stdout == b"fresh\n"
    server.stop()
    records = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
    # Only the good clients' own commands ever ran.
    commands = [r for r in records if r["event"] == "command"]
    assert commands and {r["command"] for r in commands} == {"echo alive", "echo fresh"}
    fuzzed = [r for r in records if r["event"] == "connection" and not r["authenticated"]]
    assert len(fuzzed) >= 300 and all(r["commands"] == 0 for r in fuzzed)
    # Every way of being turned away was exercised, so the fuzzing reached past the codec.
    assert {"auth_failed", "unexpected_frame", "bad_header", "truncated"} <= {r["end"] for r in fuzzed}
