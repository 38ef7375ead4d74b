"""The code under study: how a learner would send and receive replies, naive and framed.

Each pair is a server's send and a client's receive, written as plainly as
possible: one ``recv()`` per reply, a length as text, start and end markers,
and rsh's own frames (``rsh.protocol.frames``).  docs/sticky-packets.md
quotes these functions' source, and the demos run them on sockets from
``rsh.teach.harness``, whose waiting makes each fault show on every run.
"""

from __future__ import annotations

import re
from typing import Any

from ..protocol.frames import Frame, FrameDecoder, encode_frame
from ..protocol.messages import ExitStatus
from .harness import Conn

__all__ = [
    "END",
    "START",
    "exit_fields",
    "framed_reply",
    "framed_send",
    "marker_reply",
    "marker_send",
    "naive_reply",
    "naive_send",
    "textlen_recv",
    "textlen_send",
]


def naive_send(sock: Conn, output: bytes) -> None:
    """The naive server: send the command's output as it is."""
    sock.sendall(output)


def naive_reply(sock: Conn) -> bytes:
    """The naive client: one recv() per command, and hope the reply fits."""
    return sock.recv(1024)


def framed_send(sock: Conn, output: bytes, exit_code: int = 0) -> None:
    """rsh's way: the output in a stdout frame, then an exit frame."""
    sock.sendall(
        encode_frame("stdout", None, output)
        + encode_frame("exit", exit_fields(exit_code, len(output)))
    )


def framed_reply(sock: Conn, decoder: FrameDecoder) -> tuple[bytes, list[Frame]]:
    """rsh's way: recv() until the decoder has handed back the exit frame."""
    output = bytearray()
    frames: list[Frame] = []
    while not frames or frames[-1].type != "exit":
        data = sock.recv(1024)
        if not data:
            raise ConnectionError("the server closed the connection in the middle of a reply")
        for frame in decoder.feed(data):
            frames.append(frame)
            if frame.type == "stdout":
                output += frame.payload
    return bytes(output), frames


#: What the marker server wraps each output in.
START, END = b"<<<START>>>", b"<<<END>>>"


def marker_send(sock: Conn, output: bytes) -> None:
    """The marker server: wrap the output between a start and an end string."""
    sock.sendall(START + output + END)


def marker_reply(sock: Conn, buf: bytearray) -> bytes:
    """The marker client: read until the end marker; what follows it stays in buf."""
    while END not in buf:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection in the middle of a reply")
        buf += data
    reply, _, rest = bytes(buf).partition(END)
    buf[:] = rest
    return reply.removeprefix(START)


def textlen_send(sock: Conn, message: bytes) -> None:
    """The length as text: str(len(message)), then the message."""
    sock.sendall(str(len(message)).encode() + message)


def textlen_recv(sock: Conn, buf: bytearray) -> bytes:
    """Read the leading digits as the length, then that many bytes."""
    if not buf:
        buf += sock.recv(1024)
    digits = re.match(rb"[0-9]*", bytes(buf)).group()  # type: ignore[union-attr]
    size = int(digits)
    del buf[: len(digits)]
    while len(buf) < size:
        buf += sock.recv(1024)
    message = bytes(buf[:size])
    del buf[:size]
    return message


def exit_fields(exit_code: int, stdout_bytes: int) -> dict[str, Any]:
    """The header fields of an exit frame, as rsh's server builds them (elapsed fixed at 0 to stay repeatable)."""
    status = ExitStatus(exit_code=exit_code, signal=None, timed_out=False, elapsed=0.0, stdout_bytes=stdout_bytes, stderr_bytes=0, encoding="utf-8")
    return status.to_fields()
