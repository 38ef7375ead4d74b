"""The ``markers`` demo: start/end marker strings work until a command prints the end marker."""

from __future__ import annotations

import re

from ..protocol.frames import FrameDecoder
from .harness import tcp_link
from .narrator import Narrator, Span, frame_spans, frames_text
from .specimens import END, START, framed_reply, framed_send, marker_reply, marker_send
from .staging import DemoResult, command_trip, how_tcp, show_recvs

__all__ = ["MARKER_COMMANDS", "demo_markers"]


MARKER_COMMANDS = (
    (b"whoami", b"alice\n"),
    (b"cat notes.txt", b"the client reads until it sees <<<END>>> on the wire\n"),
    (b"hostname", b"box1\n"),
)


def demo_markers(out: Narrator) -> DemoResult:
    """Start/end markers work until the output contains the end marker."""
    outputs = [o for _, o in MARKER_COMMANDS]
    answers = dict(MARKER_COMMANDS)  # what the stand-in server prints for each command
    out.title("markers", "start/end strings, and the output that breaks them", "标记：起止字符串，以及能破坏它的输出")
    out.say(
        f"Another common fix, used by many reverse-shell tools: the server wraps each output between two marker "
        f"strings, {START.decode()} and {END.decode()}, and the client reads until it sees the end marker. That works "
        "until a command prints the marker itself: here, a notes file that mentions it.",
        f"另一种常见做法（许多反弹 shell 工具都这么做）：服务端把每段输出包在两个标记字符串 {START.decode()} 和 "
        f"{END.decode()} 之间，客户端一直读到看见结束标记为止。这在命令自己输出了这个标记之前都能工作：这里就是一个提到了它的笔记文件。",
    )
    how_tcp(out)

    out.section("Markers: START + output + END, read until END", "标记：START + 输出 + END，读到 END 为止")
    naive: list[bytes] = []
    with tcp_link() as (client, server):
        buf = bytearray()
        for cmd in answers:
            naive_trip = command_trip(out, client, server, cmd, answers, marker_send, lambda c: marker_reply(c, buf))
            got = naive_trip.reply
            naive.append(got)
            out.line(f"server: send {len(naive_trip.wire)} bytes", style="send")
            out.dump(naive_trip.wire, _marker_spans(naive_trip.wire))
            if len(client.recvs) > naive_trip.first:
                show_recvs(out, client, naive_trip.first)
            else:
                out.line("client: no recv(): an end marker was already in its buffer", style="recv")
            ok = got == naive_trip.output
            out.line(f"client prints {got!r}", style="good" if ok else "bad")
            if buf:
                out.line(f"left in the client's buffer: {bytes(buf)!r}", style="bad")
    out.say(
        f"The client stopped at the first {END.decode()}, which was part of the output. The rest of notes.txt and the "
        "real end marker were left over, and came back as the output of hostname, whose own reply is still unread: "
        "the client is now out of step and stays so. Escaping the marker inside the output would fix this, at the "
        "price of scanning and rewriting every byte on both sides.",
        f"客户端在第一个 {END.decode()} 处就停下了，而它其实是输出的一部分。notes.txt 的剩余部分和真正的结束标记被留了下来，"
        "成了 hostname 的输出，而 hostname 自己的回复还没被读取：客户端从此与服务端错位，再也回不来。在输出中对标记进行转义"
        "可以修复这个问题，代价是双方都要扫描并改写每一个字节。",
        indent=2,
    )
    wrong = sum(a != b for a, b in zip(naive, outputs, strict=True))
    out.verdict(
        naive == outputs,
        f"{wrong} of {len(outputs)} outputs wrong, and the client is out of step.",
        f"{len(outputs)} 个输出中有 {wrong} 个错误，而且客户端已经错位。",
    )

    out.section("With rsh framing: the same outputs as stdout frames", "使用 rsh 分帧：同样的输出放进 stdout 帧")
    framed: list[bytes] = []
    with tcp_link() as (client, server):
        dec = FrameDecoder()
        for cmd in answers:
            framed_trip = command_trip(out, client, server, cmd, answers, framed_send, lambda c: framed_reply(c, dec))
            got, frames = framed_trip.reply
            framed.append(got)
            out.line(f"server: send stdout frame + exit frame = {len(framed_trip.wire)} bytes", style="send")
            if END in framed_trip.output:  # the one that broke the markers: show it all
                out.dump(framed_trip.wire, frame_spans(framed_trip.wire) + _marker_spans(framed_trip.wire), keep=None)
            show_recvs(out, client, framed_trip.first)
            out.line(f"client: FrameDecoder -> {frames_text(frames)}", style="recv")
            out.line(f"client prints {got!r}", style="good" if got == framed_trip.output else "bad")
    out.say(
        "The length says where the output ends. Nothing inside the payload is ever looked at, so any bytes at all, markers included, get through.",
        "长度说明了输出在哪里结束。载荷里面的内容从来不会被检查，所以任何字节，包括标记本身，都能原样通过。",
        indent=2,
    )
    right = sum(a == b for a, b in zip(framed, outputs, strict=True))
    out.verdict(
        framed == outputs,
        f"{right} of {len(outputs)} outputs whole, the marker included.",
        f"{len(outputs)} 个输出中 {right} 个完整无缺，标记也在其中。",
    )
    out.moral(
        "In-band markers fail as soon as the data can contain them; a length prefix has no such hole.",
        "一旦数据中可能出现标记，带内标记就会失效；长度前缀没有这个漏洞。",
    )
    return DemoResult("markers", outputs, naive, framed)


def _marker_spans(wire: bytes) -> list[Span]:
    """Spans picking out every start and end marker in *wire*."""
    spans: list[Span] = []
    for marker in (START, END):
        for m in re.finditer(re.escape(marker), wire):
            spans.append((m.start(), m.end(), "marker"))
    return spans
