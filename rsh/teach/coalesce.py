"""The ``coalesce`` demo: two send()s arrive as one recv() (sticky packets), and frames part them again."""

from __future__ import annotations

from ..protocol.frames import FrameDecoder, encode_frame
from .harness import tcp_link
from .narrator import Narrator, frame_spans, frames_text, origin_spans, origin_styles
from .specimens import naive_reply, naive_send
from .staging import DemoResult, how_tcp, show_recvs

__all__ = ["demo_coalesce"]


def demo_coalesce(out: Narrator) -> DemoResult:
    """Two send()s arrive as one recv(); as frames they come apart again."""
    messages = [b"hello", b"world"]
    out.title("coalesce", "two send()s, one recv()", "粘包：两次 send()，一次 recv() 全收到")
    out.say(
        'A program calls send() twice, with "hello" and then "world". TCP does not keep the two apart: it delivers '
        "a stream of bytes, and recv() returns whatever has arrived, up to the size asked for. A receiver that takes "
        "one recv() for one message gets both at once.",
        '程序调用两次 send()，先发 "hello"，再发 "world"。TCP 不会把两者分开：它传送的是字节流，recv() 返回已经到达的'
        "全部字节（不超过请求的大小）。把一次 recv() 当作一条消息的接收端，会一下子收到两条。这就是常说的“粘包”。",
    )
    how_tcp(out)

    out.section("Without framing: raw bytes", "不分帧：直接发送原始字节")
    with tcp_link() as (receiver, sender):
        for i, m in enumerate(messages, 1):
            naive_send(sender, m)
            out.line(f"server: send #{i}: {len(m)} bytes", style="send")
            out.dump(m, style="send")
        data = naive_reply(receiver)
        show_recvs(out, receiver)
        out.dump(data, origin_styles(origin_spans(messages, 0, len(data))))
    naive = [data]
    out.verdict(
        naive == messages,
        f"{len(messages)} messages sent, {len(naive)} received: {data!r}",
        f"发送了 {len(messages)} 条消息，只收到 {len(naive)} 条：{data!r}",
    )

    out.section("With rsh framing: each message as a frame (rsh.protocol.frames)", "使用 rsh 分帧：每条消息编码成一个帧（rsh.protocol.frames）")
    with tcp_link() as (receiver, sender):
        for i, m in enumerate(messages, 1):
            wire = encode_frame("stdout", None, m)
            sender.sendall(wire)
            out.line(f"server: send #{i}: encode_frame('stdout', payload={m!r}) = {len(wire)} bytes", style="send")
            out.dump(wire, frame_spans(wire))
        data = receiver.recv(1024)
        show_recvs(out, receiver)
        out.dump(data, frame_spans(data))
        frames = FrameDecoder().feed(data)
    out.line(f"client: FrameDecoder().feed(...) -> {len(frames)} frames: {frames_text(frames)}", style="recv")
    framed = [f.payload for f in frames]
    out.say(
        "The bytes still arrive in one recv(). The difference is that each frame says how long it is, so "
        "FrameDecoder cuts the stream back into the two messages.",
        "字节仍然在一次 recv() 中全部到达；区别在于每个帧都写明了自己的长度，FrameDecoder 据此把字节流重新切回两条消息。",
        indent=2,
    )
    out.verdict(
        framed == messages,
        f"{len(messages)} messages sent, {len(framed)} received: {framed!r}",
        f"发送 {len(messages)} 条，收到 {len(framed)} 条：{framed!r}",
    )
    out.moral(
        "TCP carries a stream of bytes, not messages: the receiver must be told where each message ends.",
        "TCP 传的是字节流，不是消息：必须告诉接收端每条消息在哪里结束。",
    )
    return DemoResult("coalesce", messages, naive, framed)
