"""What the demos are staged with: their result, the stand-in server's round trip, the recv() log.

Every demo returns a ``DemoResult`` (what was sent, what each receiver made
of it), which the tests check.  The command demos (truncate, markers) run
each command through ``command_trip``: a stand-in server on the far end of a
``tcp_link`` that "runs" it by looking its output up, so every machine sees
the same bytes.  ``how_tcp`` is the ``[repeatable]`` paragraph the TCP
demos share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..protocol.frames import FrameDecoder, encode_frame
from .harness import Conn, Endpoint
from .narrator import Narrator

__all__ = ["DemoResult", "Trip", "command_trip", "how_tcp", "show_recvs"]

R = TypeVar("R")


@dataclass
class DemoResult:
    """What a demo sent and what its two receivers made of it.

    ``naive`` holds the messages as the unframed receiver delivered them (one
    per ``recv()``, or per marker, ...), ``framed`` those the framed receiver
    delivered.  ``details`` holds demo-specific facts the tests check.
    """

    name: str
    sent: list[bytes]
    naive: list[bytes]
    framed: list[bytes]
    details: dict[str, Any] = field(default_factory=dict)


def how_tcp(out: Narrator) -> None:
    """Say how the TCP demos make their fault happen on every run."""
    out.how(
        "To make this happen on every run, not only when timing is unlucky: both sockets set TCP_NODELAY, so each "
        "send() leaves at once as its own segment (Nagle's algorithm merges nothing), and before each recv() the "
        "receiver polls select() and ioctl(FIONREAD) until every byte its peer has sent so far is waiting in its "
        "socket buffer, then checks that recv() returned all of them (or as many as it asked for). On a real "
        "network the same happens whenever the receiver falls a little behind.",
        "为了每次运行都能复现，而不是靠运气：两端都设置了 TCP_NODELAY，每次 send() 都立即作为单独的报文段发出"
        "（Nagle 算法没有合并任何东西）；每次 recv() 之前，接收端用 select() 和 ioctl(FIONREAD) 轮询，直到对方"
        "已发送的全部字节都进入自己的接收缓冲区，然后检查 recv() 确实拿到了它们（或者拿满了请求的字节数）。在真实"
        "网络上，只要接收端稍微落后一点，同样的事就会发生。",
    )


def show_recvs(out: Narrator, end: Endpoint, first: int = 0) -> None:
    """One line for each recv() *end* has made, from its *first* on."""
    for bufsize, waiting, data in end.recvs[first:]:
        out.line(f"{end.name}: recv({bufsize}) -> {len(data)} bytes   (FIONREAD: {waiting} waiting)", style="recv")


@dataclass
class Trip(Generic[R]):
    """One command's round trip through the stand-in server, as ``command_trip`` ran it."""

    command: bytes
    output: bytes  # what the command printed: what the client ought to end up with
    wire: bytes  # every byte the server sent in reply
    reply: R  # what the client's reader returned
    start: int  # where the reply starts in the client's stream: the bytes it had read before
    first: int  # index in the client's ``recvs`` of the first recv() for this reply


def command_trip(
    out: Narrator,
    client: Endpoint,
    server: Endpoint,
    command: bytes,
    outputs: Mapping[bytes, bytes],
    send: Callable[[Conn, bytes], None],
    read: Callable[[Conn], R],
    *,
    exec_decoder: FrameDecoder | None = None,
) -> Trip[R]:
    """Run *command* once through the stand-in server, and head its narration with ``$ command``.

    The client sends the command as a line or, when the server decodes
    requests with *exec_decoder*, as an exec frame.  The server takes it with
    one ``recv(1024)``, looks its output up in *outputs* and answers with
    *send*; then *read* takes the reply on the client's side.
    """
    if exec_decoder is None:
        client.sendall(command + b"\n")
        asked = server.recv(1024).rstrip(b"\n")
    else:
        client.sendall(encode_frame("exec", None, command))
        (request,) = exec_decoder.feed(server.recv(1024))
        asked = request.payload
    output = outputs[asked]
    sends, start, first = len(server.sends), client.received, len(client.recvs)
    send(server, output)
    reply = read(client)
    out.write()
    out.line(f"$ {command.decode()}", style="head")
    return Trip(command, output, b"".join(server.sends[sends:]), reply, start, first)
