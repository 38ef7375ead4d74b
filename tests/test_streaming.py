"""Output streamed at speed stays exact: spliced frames, a full socket, a slow reader, lent payloads.

The server moves a pipe that holds a lot straight to the socket with
``splice`` (``FramedProtocol.send_from_pipe``), and falls back to queueing
the rest of a frame in the transport when the socket takes only part of it;
``rsh exec`` writes payloads out as views of its read buffer
(``FrameDecoder.lend``).  These tests drive each of those paths through a
real server and check every byte.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import select
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsh.errors import ProtocolError
from rsh.net.framed import FramedProtocol
from rsh.protocol.connection import STAY, Connection, Direction
from rsh.protocol.frames import FrameDecoder, encode_frame
from rsh.server.pipes import PIPE_SIZE, STREAM_PIPE_SIZE, OutputPipe, send_output, widen

from .conftest import ServerProcess, rsh_argv
from .proxy import Proxy
from .rawpeer import RawPeer

_F_GETPIPE_SZ = 1032  # fcntl.F_GETPIPE_SZ, missing from older Pythons

SLOW_READER = r"""
import hashlib, os, sys, time
h, n = hashlib.sha256(), 0
while chunk := os.read(0, 1 << 16):
    h.update(chunk)
    n += len(chunk)
    time.sleep(0.0005)  # slower than the server sends: its socket fills
print(n, h.hexdigest())
"""


def _blob(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_both_streams_exact_through_rsh_exec_into_a_slow_reader(server: ServerProcess, tmp_path: Path) -> None:
    out_sum = _blob(tmp_path / "out", 24 << 20)
    err_sum = _blob(tmp_path / "err", 6 << 20)
    exec_argv = rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", f"cat {tmp_path}/out & cat {tmp_path}/err >&2; wait")
    with open(tmp_path / "stderr", "wb") as err:
        rsh = subprocess.Popen(exec_argv, stdout=subprocess.PIPE, stderr=err, env=server.env)
        reader = subprocess.run([sys.executable, "-c", SLOW_READER], stdin=rsh.stdout, capture_output=True, text=True, timeout=120)
        assert rsh.stdout is not None
        rsh.stdout.close()
        assert rsh.wait(60) == 0
    assert reader.stdout.split() == [str(24 << 20), out_sum]
    assert hashlib.sha256((tmp_path / "stderr").read_bytes()).hexdigest() == err_sum


def test_stdin_exact_into_a_slow_reader_and_into_one_that_leaves_early(server: ServerProcess, tmp_path: Path) -> None:
    """The server writes stdin straight from its read buffer, keeping a copy only of what a full pipe leaves."""
    data_sum = _blob(tmp_path / "in", 16 << 20)
    reader = shlex.join([sys.executable, "-c", SLOW_READER])
    with open(tmp_path / "in", "rb") as stdin:
        argv = rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", reader)
        done = subprocess.run(argv, stdin=stdin, capture_output=True, env=server.env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == [str(16 << 20), data_sum]
    with open(tmp_path / "in", "rb") as stdin:
        early = subprocess.run(
            rsh_argv("exec", "--token-file", str(server.token_file), server.address, "--", "head -c 5 >/dev/null; echo left"),
            stdin=stdin,
            capture_output=True,
            env=server.env,
            timeout=60,
        )
    assert (early.returncode, early.stdout) == (0, b"left\n")


def test_a_stalled_reader_gets_every_byte_in_frames_no_bigger_than_a_grown_pipe(server: ServerProcess, tmp_path: Path) -> None:
    data_sum = _blob(tmp_path / "blob", 8 << 20)
    with RawPeer(server.port) as peer:
        assert peer.authenticate(server.token) is not None
        # Wait before reading anything: the socket fills, the server's splices stop part way.
        peer.send("exec", None, f"cat {tmp_path}/blob".encode())
        time.sleep(0.3)
        sizes, h = [], hashlib.sha256()
        while (frame := peer.recv()) is not None and frame.type != "exit":
            assert frame.type == "stdout"
            sizes.append(len(frame.payload))
            h.update(frame.payload)
    assert frame is not None and frame.get("stdout_bytes") == 8 << 20
    assert h.hexdigest() == data_sum
    assert max(sizes) <= STREAM_PIPE_SIZE


class _Recorder:
    """A Link that records how output was sent."""

    def __init__(self) -> None:
        self.spliced: list[int] = []
        self.sent: list[int] = []

    def send_from_pipe(self, type: str, fd: int, size: int) -> bool:
        self.spliced.append(len(os.read(fd, size)))
        return True

    def send(self, type: str, fields: object = None, payload: bytes | memoryview = b"") -> None:
        self.sent.append(len(payload))


def test_a_pipe_that_holds_a_lot_is_spliced_once_its_stream_has_begun() -> None:
    r, w = os.pipe()
    widen(w)
    pipe, link = OutputPipe("stdout", r), _Recorder()
    try:
        os.write(w, b"x" * 100_000)
        assert send_output(pipe, link)  # type: ignore[arg-type]
        os.write(w, b"x" * 100_000)
        assert send_output(pipe, link)  # type: ignore[arg-type]
        os.write(w, b"x" * 1000)
        assert send_output(pipe, link)  # type: ignore[arg-type]
        os.close(w)
        w = -1
        assert not send_output(pipe, link)  # type: ignore[arg-type]
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    # The first read is a plain one (a short command's only output costs no extra
    # system call); then a pipe holding 16 KiB or more is spliced, a little is read.
    assert link.sent == [100_000, 1000]
    assert link.spliced == [100_000]
    assert pipe.count == 201_000


def test_a_pipe_grows_once_its_writer_keeps_it_full() -> None:
    """A splice of half a starting pipe or more grows the pipe, for frames of up to STREAM_PIPE_SIZE; smaller ones leave it."""
    r, w = os.pipe()
    widen(w)
    pipe, link = OutputPipe("stdout", r, streaming=True), _Recorder()
    try:
        os.write(w, b"x" * (PIPE_SIZE // 2 - 1))
        assert send_output(pipe, link)  # type: ignore[arg-type]
        assert fcntl.fcntl(r, _F_GETPIPE_SZ) == PIPE_SIZE and not pipe.grown
        os.write(w, b"x" * PIPE_SIZE)
        assert send_output(pipe, link)  # type: ignore[arg-type]
        assert pipe.grown
        if fcntl.fcntl(r, _F_GETPIPE_SZ) == STREAM_PIPE_SIZE:  # where the system allows that size
            os.write(w, b"x" * STREAM_PIPE_SIZE)
            assert send_output(pipe, link)  # type: ignore[arg-type]
        assert link.spliced == [PIPE_SIZE // 2 - 1, PIPE_SIZE, STREAM_PIPE_SIZE][: len(link.spliced)]
        assert len(link.spliced) >= 2
    finally:
        os.close(r)
        os.close(w)


def test_output_is_written_as_it_arrives_not_when_its_frame_is_complete(server: ServerProcess) -> None:
    """A frame held up half way (a slow network, a flood behind a line): rsh exec writes what has come of it already."""
    held = 150_000
    script = "import sys; sys.stdout.write('x' * 400_000); sys.stdout.flush()"
    with Proxy(server.port, hold="down", after=held) as proxy:
        argv = rsh_argv("exec", "--token-file", str(server.token_file), f"127.0.0.1:{proxy.port}", "--", shlex.join([sys.executable, "-c", script]))
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server.env)
        assert proc.stdout is not None
        got = b""
        deadline = time.monotonic() + 20
        try:
            # All but the frame headers (and the hello and auth reply) of what the proxy let through.
            while len(got) < held - 2000:
                left = deadline - time.monotonic()
                assert left > 0 and select.select([proc.stdout], [], [], left)[0], f"only {len(got)} bytes came out"
                chunk = os.read(proc.stdout.fileno(), 1 << 20)
                assert chunk, len(got)
                got += chunk
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            if proc.stderr is not None:
                proc.stderr.close()
    assert proxy.holding.is_set()
    assert got == b"x" * len(got)


def test_a_frame_is_given_out_in_pieces_as_its_payload_comes() -> None:
    decoder = FrameDecoder()
    decoder.lend({"stdout"})
    wire = encode_frame("stdout", None, b"a" * 1000) + encode_frame("exit", {"exit_code": 0})
    other = FrameDecoder()
    other.lend({"stdout"})
    assert other.feed(encode_frame("stderr", None, b"e" * 1000)[:300]) == []
    assert other.detach() is None  # not of a lent type
    assert decoder.feed(wire[:300]) == []
    piece = decoder.detach()
    first = 300 - 4 - len(b'{"type":"stdout","size":1000}')
    assert piece is not None and piece.type == "stdout" and bytes(piece.payload) == b"a" * first
    assert decoder.detach() is None  # nothing more has come
    assert decoder.feed(wire[300:700]) == []
    with pytest.raises(ValueError):
        bytes(piece.payload)  # lent: released at the next read
    second = decoder.detach()
    assert second is not None and bytes(second.payload) == b"a" * 400
    rest = decoder.feed(wire[700:])
    assert [f.type for f in rest] == ["stdout", "exit"]
    assert first + 400 + len(rest[0].payload) == 1000
    assert decoder.offset == len(wire)
    decoder.feed(b"")


def test_a_piece_cut_short_by_the_end_of_the_stream_is_an_error() -> None:
    decoder = FrameDecoder()
    decoder.lend({"stdout"})
    decoder.feed(encode_frame("stdout", None, b"a" * 100)[:50])
    assert decoder.detach() is not None
    with pytest.raises(ProtocolError, match="middle of a frame"):
        decoder.feed(b"")


class _Open(Connection):
    """A role that may send output at any time: the pump alone is under test."""

    TRANSITIONS = {"open": {(Direction.SEND, "stdout"): STAY}}


async def test_a_frame_the_socket_takes_only_part_of_is_finished_through_the_transport() -> None:
    """Small socket buffers: the splice moves part of the payload, the rest must follow it, in order."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        theirs = socket.socket()
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        theirs.connect(listener.getsockname())
        ours, _ = listener.accept()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    proto = FramedProtocol(_Open("open"))
    transport, _ = await loop.connect_accepted_socket(lambda: proto, ours)
    r, w = os.pipe()
    widen(w)
    payload = os.urandom(200_000)
    try:
        assert os.write(w, payload) == len(payload)
        assert proto.send_from_pipe("stdout", r, len(payload))
        assert 0 < transport.get_write_buffer_size() < len(payload)  # the socket took part, the transport the rest
        proto.send("stdout", None, b"after")  # queued behind it
        decoder, frames = FrameDecoder(), []
        theirs.setblocking(False)
        while len(frames) < 2:
            frames += decoder.feed(await loop.sock_recv(theirs, 1 << 16))
        assert [(f.type, f.payload) for f in frames] == [("stdout", payload), ("stdout", b"after")]
    finally:
        transport.close()
        theirs.close()
        os.close(r)
        os.close(w)


def test_lent_payloads_are_views_released_at_the_next_read() -> None:
    decoder = FrameDecoder()
    decoder.lend({"stdout"})
    (frame,) = decoder.feed(encode_frame("stdout", None, b"x" * 100_000))
    view = frame.payload
    assert isinstance(view, memoryview) and bytes(view) == b"x" * 100_000
    decoder.feed(encode_frame("stdout", None, b"y"))  # a read: the first view is released
    with pytest.raises(ValueError):
        bytes(view)
    (other,) = decoder.feed(encode_frame("stderr", None, b"e"))
    assert isinstance(other.payload, bytes)  # not a lent type
    decoder.lend(())
    (kept,) = decoder.feed(encode_frame("stdout", None, b"z" * 10))
    decoder.feed(b"")
    assert kept.payload == b"z" * 10 and isinstance(kept.payload, bytes)
