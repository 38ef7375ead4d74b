"""``--trace``: one line per frame, and the lines account for every byte on the wire."""

from __future__ import annotations

import io
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsh.protocol.frames import Frame, encode_frame
from rsh.protocol.trace import PREFIX, format_frame, make_tracer

from .conftest import ServerFactory, rsh_argv

LINE = re.compile(
    rf"^{PREFIX} (?P<dir>send|recv) @(?P<off>\d+) +prefix (?P<prefix>(?:[0-9a-f]{{2}} ){{3}}[0-9a-f]{{2}})"
    r"  header (?P<header>\{.*?\})  payload (?P<size>\d+) B(?P<rest>.*)$"
)


@dataclass
class TraceLine:
    dir: str
    offset: int
    prefix: int  # the length prefix's value
    raw_len: int  # the header's length in bytes, as shown
    header: dict[str, Any]
    size: int
    rest: str  # the payload preview

    @property
    def type(self) -> str:
        return str(self.header["type"])


def parse(line: str) -> TraceLine:
    m = LINE.match(line)
    assert m, line
    raw = m["header"].encode()
    return TraceLine(m["dir"], int(m["off"]), int(m["prefix"].replace(" ", ""), 16), len(raw), json.loads(raw), int(m["size"]), m["rest"])


def test_format_frame_fields() -> None:
    wire = encode_frame("stdout", None, b"hi\n")
    raw = wire[4:-3]
    line = format_frame("recv", Frame("stdout", {}, b"hi\n"), raw, 310)
    assert line == 'rsh trace recv @310    prefix 00 00 00 1a  header {"type":"stdout","size":3}  payload 3 B  68 69 0a  |hi.|'
    p = parse(line)
    assert (p.dir, p.offset, p.prefix, p.raw_len, p.size) == ("recv", 310, 26, 26, 3)


def test_format_frame_long_payload_and_header() -> None:
    payload = bytes(range(100))
    line = format_frame("send", Frame("stdin", {}, payload), b'{"type":"stdin","size":100}', 0)
    assert "payload 100 B  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  |................| (+84 B)" in line
    raw = json.dumps({"type": "exec", "env": {"X": "y" * 1000}}).encode()
    line = format_frame("send", Frame("exec"), raw, 0, max_header=50)
    assert f"... ({len(raw)} B)" in line
    assert len(line) < 200


def test_colour_is_opt_in() -> None:
    frame = Frame("exit", {"exit_code": 0})
    assert "\x1b[" not in format_frame("recv", frame, b'{"type":"exit","exit_code":0}', 0)
    assert "\x1b[32m" in format_frame("recv", frame, b'{"type":"exit","exit_code":0}', 0, color=True)


def test_tracer_writes_and_can_be_switched_off() -> None:
    buf = io.StringIO()
    tracer = make_tracer(buf)  # not a terminal: no colour
    frame = Frame("exit", {"exit_code": 0})
    tracer("recv", frame, b'{"type":"exit","exit_code":0}', 5)
    tracer.enabled = False
    tracer("recv", frame, b'{"type":"exit","exit_code":0}', 40)
    assert buf.getvalue().count("\n") == 1
    assert buf.getvalue().startswith("rsh trace recv @5 ")


def test_exec_trace_shows_every_frame_in_order(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server(where=tmp_path)
    r = subprocess.run(
        rsh_argv("exec", "--trace", "--token-file", str(server.token_file), server.address, "--", "echo hi; echo err >&2"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=server.env,
        timeout=60,
    )
    server.stop()
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hi\n"
    lines = r.stderr.decode().splitlines()
    trace = [parse(line) for line in lines if line.startswith(PREFIX)]
    # The command's own stderr is still there, apart from the trace.
    assert [line for line in lines if not line.startswith(PREFIX)] == ["err"]

    types = [t.type for t in trace]
    for t in ("hello", "auth", "auth_ok", "exec", "stdout", "stderr", "exit"):
        assert t in types, types
    pos = {t: types.index(t) for t in types}
    assert pos["hello"] < pos["auth"] < pos["auth_ok"] < pos["exec"] < min(pos["stdout"], pos["stderr"])
    assert types[-1] == "exit"
    recv = [t for t in trace if t.dir == "recv"]
    send = [t for t in trace if t.dir == "send"]
    assert [t.type for t in send][:2] == ["auth", "exec"]
    assert {t.type for t in send[2:]} <= {"stdin"}  # stdin EOF only

    for t in trace:
        # The prefix is the header's length; the header's size is the payload's.
        assert t.prefix == t.raw_len
        assert t.header.get("size", 0) == t.size
    for stream in (recv, send):
        # Each frame starts where the one before ended: the offsets, prefixes,
        # headers and payload sizes account for every byte of the stream.
        assert stream[0].offset == 0
        for a, b in zip(stream, stream[1:], strict=False):
            assert b.offset == a.offset + 4 + a.raw_len + a.size

    exit_header = recv[-1].header
    assert sum(t.size for t in recv if t.type == "stdout") == exit_header["stdout_bytes"] == 3
    assert sum(t.size for t in recv if t.type == "stderr") == exit_header["stderr_bytes"] == 4
    stdout_line = next(t for t in recv if t.type == "stdout")
    assert stdout_line.rest == "  68 69 0a  |hi.|"
