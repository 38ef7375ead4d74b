"""The ``header`` demo: why rsh's length is 4 fixed bytes and not str(len), and what the JSON header holds."""

from __future__ import annotations

import json
import re
import struct

from ..protocol.frames import FrameDecoder, encode_frame
from .harness import WouldBlockForever, tcp_link
from .narrator import Narrator, frame_spans, frames_text
from .specimens import exit_fields, framed_reply, textlen_recv, textlen_send
from .staging import DemoResult, how_tcp, show_recvs

__all__ = ["demo_header"]

#: What each header field of an exit frame means, as _dissect explains it (en, zh).
_FIELD_NOTES: dict[str, tuple[str, str]] = {
    "type": ("what kind of message this is", "消息的种类"),
    "size": ("payload bytes after the header (absent = 0)", "头之后的载荷字节数（省略即为 0）"),
    "exit_code": ("the command's exit status", "命令的退出状态"),
    "signal": ("the signal that killed it, or null", "杀死它的信号，没有则为 null"),
    "timed_out": ("stopped by the server's timeout?", "是否因超时被服务端终止"),
    "elapsed": ("seconds it ran (0 here, to stay repeatable)", "运行秒数（此处固定为 0 以便复现）"),
    "stdout_bytes": ("stdout bytes sent in all", "共发送的 stdout 字节数"),
    "stderr_bytes": ("stderr bytes sent in all", "共发送的 stderr 字节数"),
    "encoding": ("the encoding the output is in", "输出所用的编码"),
}


def _dissect(out: Narrator, wire: bytes) -> None:
    """Print one frame field by field."""
    (hlen,) = struct.unpack_from("!I", wire)
    raw = wire[4 : 4 + hlen]
    header = json.loads(raw)
    payload = wire[4 + hlen :]

    def hexs(b: bytes, n: int = 8) -> str:
        s = " ".join(f"{x:02x}" for x in b[:n])
        return s + (" ..." if len(b) > n else "")

    out.line(
        f"bytes {0:>3}-{3:<4} {out.paint('prefix', hexs(wire[:4])):<27} "
        + out.t(f"length prefix: the header is {hlen} bytes (uint32, big-endian)", f"长度前缀：头部有 {hlen} 字节（uint32，大端序）")
    )
    out.line(f"bytes {4:>3}-{3 + hlen:<4} {out.paint('header', hexs(raw)):<27} " + out.t("JSON header:", "JSON 头部：") + f" {raw.decode()}")
    width = max(len(json.dumps(k)) + len(json.dumps(v)) + 2 for k, v in header.items())
    for k, v in header.items():
        pair = f"{json.dumps(k)}: {json.dumps(v)}"
        note = _FIELD_NOTES.get(k)
        out.line(f"{'':>15}{pair:<{width}}  {out.t(*note) if note else ''}".rstrip(), indent=2)
    if payload:
        out.line(f"bytes {4 + hlen:>3}-{len(wire) - 1:<4} {hexs(payload):<27} " + out.t("payload:", "载荷：") + f" {payload!r}")
    else:
        out.line(f"{'':>15}" + out.t("no payload", "无载荷"))


def demo_header(out: Narrator) -> DemoResult:
    """Why the length is 4 fixed bytes, and what the JSON header after it holds."""
    messages = [b"42 files\n", b"done\n"]
    out.title("header", "a 4-byte length, then a JSON header", "帧头：4 字节长度，然后是 JSON 头部")
    out.say(
        "The fix for the first two demos is to send each message's length before it. The obvious way, the length as "
        "text, str(len(msg)), breaks at once: the receiver cannot tell where the number ends and the message begins. "
        'The messages here are "42 files\\n" and "done\\n".',
        "前两个问题的解决办法，是在每条消息前面先发送它的长度。最直接的写法是把长度写成文本 str(len(msg))，但这马上就出错："
        '接收端分不清数字在哪里结束、消息从哪里开始。这里的两条消息是 "42 files\\n" 和 "done\\n"。',
    )
    how_tcp(out)

    out.section("The length as text: str(len(msg)) + msg", "长度写成文本：str(len(msg)) + msg")
    naive: list[bytes] = []
    with tcp_link() as (client, server):
        for m in messages:
            textlen_send(server, m)
            out.line(f"server: send {server.sends[-1]!r} ({len(server.sends[-1])} bytes)", style="send")
            out.dump(server.sends[-1], [(0, len(str(len(m))), "prefix")])
        buf = bytearray()
        try:
            naive.append(textlen_recv(client, buf))
        except WouldBlockForever:
            pass
        show_recvs(out, client)
        out.dump(client.recvs[0][2])
    digits = re.match(rb"\d*", client.recvs[0][2]).group()  # type: ignore[union-attr]
    wanted, have = int(digits), len(buf)
    out.say(
        f'The receiver reads the leading digits as the length: "{digits.decode()}", because the message\'s own "42" '
        f'ran into the "9" before it. It now waits for {wanted} bytes; only {have} more were ever sent, so its next '
        "recv() would block forever. (The demo's socket knows nothing more is coming and stops it there.)",
        f"接收端把开头的数字当作长度：“{digits.decode()}”，因为消息本身的“42”紧贴在前面的“9”后面。它现在要等 {wanted} 字节，"
        f"而对方总共只再发了 {have} 字节，所以下一次 recv() 会永远阻塞。（演示用的套接字知道不会再有数据，在这里把它停下。）",
        indent=2,
    )
    out.verdict(
        False,
        f"0 of {len(messages)} messages delivered; the receiver waits for {wanted} bytes that never come.",
        f"{len(messages)} 条消息一条也没收到；接收端在等永远不会到来的 {wanted} 字节。",
    )

    out.section("rsh: a fixed 4-byte length, then a JSON header", "rsh：固定 4 字节的长度，然后是 JSON 头部")
    out.say(
        'rsh sends the header\'s length as exactly 4 bytes, an unsigned 32-bit big-endian integer (struct "!I"). The '
        "receiver always reads 4 bytes, and then knows exactly how many more to read: no byte of a message can be "
        "taken for part of a length. (A text length ended by a delimiter, as netstrings do, also works, but the "
        "reader must scan for the delimiter, and a fixed width bounds what a hostile peer can make it buffer.) Here "
        "is encode_frame('stdout', payload=b'42 files\\n'), field by field:",
        'rsh 把头部长度写成恰好 4 个字节：一个无符号 32 位大端整数（struct "!I"）。接收端总是先读 4 个字节，然后就确切知道'
        "还要读多少：消息中的任何字节都不可能被当成长度的一部分。（文本长度后面加分隔符，就像 netstring 那样，也可以工作，"
        "但读取方必须逐字节寻找分隔符；而固定宽度还能限制恶意对端让它缓存的数据量。）下面逐个字段拆开 "
        "encode_frame('stdout', payload=b'42 files\\n')：",
        indent=2,
    )
    first = encode_frame("stdout", None, messages[0])
    out.dump(first, frame_spans(first))
    _dissect(out, first)
    dec = FrameDecoder()
    completed_at = [i + 1 for i in range(len(first)) if dec.feed(first[i : i + 1])]
    out.say(
        f"Fed to FrameDecoder one byte at a time, this {len(first)}-byte frame came out at byte "
        f"{completed_at[0] if completed_at else '?'} and not before: the decoder holds partial bytes until the "
        "lengths say the frame is complete, however the stream was split.",
        f"把这个 {len(first)} 字节的帧逐字节喂给 FrameDecoder，它在第 {completed_at[0] if completed_at else '?'} 个字节"
        "时才交出这个帧，之前什么也不返回：无论字节流被怎样切分，解码器都会把不完整的字节留着，直到长度表明帧已完整。",
        indent=2,
    )
    out.say(
        "After the prefix comes a JSON header: the message type, the payload size, and whatever that type needs. An "
        "exit frame carries the exit code, the signal, the output's encoding and more, with no payload at all. JSON "
        "keeps it readable and lets fields be added without breaking old readers; the payload follows untouched, so "
        "output never needs escaping. The exit frame rsh sends after a command:",
        "前缀之后是 JSON 头部：消息类型、载荷大小，以及该类型需要的其他字段。exit 帧带有退出码、信号、输出的编码等信息，"
        "根本没有载荷。JSON 易读，而且增加字段不会破坏旧的读取方；载荷原样跟在后面，所以输出永远不需要转义。命令结束后 rsh "
        "发送的 exit 帧：",
        indent=2,
    )
    exit_wire = encode_frame("exit", exit_fields(0, sum(len(m) for m in messages)))
    out.dump(exit_wire, frame_spans(exit_wire), keep=None)
    _dissect(out, exit_wire)

    out.write()
    out.say("The same two messages over the socket as frames, then the exit frame:", "同样两条消息以帧的形式经套接字发送，然后是 exit 帧：", indent=2)
    with tcp_link() as (client, server):
        for m in messages:
            server.sendall(encode_frame("stdout", None, m))
        server.sendall(exit_wire)
        got, frames = framed_reply(client, FrameDecoder())
        show_recvs(out, client)
        data = b"".join(d for _, _, d in client.recvs)
        out.dump(data, frame_spans(data), keep=None)
    out.line(f"client: FrameDecoder -> {frames_text(frames)}", style="recv")
    framed = [f.payload for f in frames if f.type == "stdout"]
    out.verdict(framed == messages, f"{len(framed)} of {len(messages)} messages delivered whole: {framed!r}", f"{len(messages)} 条消息全部完整收到：{framed!r}")
    out.moral(
        "Put the length in a fixed number of bytes before the message, and the receiver always knows how much to read next.",
        "把长度用固定数量的字节放在消息前面，接收端就总能知道下一步该读多少。",
    )
    return DemoResult("header", messages, naive, framed, {"wanted": wanted, "available": have, "frame_bytes": len(first), "completed_at": completed_at})
