"""The ``udp`` demo: the same two sends over UDP stay two datagrams, since UDP keeps message boundaries."""

from __future__ import annotations

from .harness import udp_link
from .narrator import Narrator
from .staging import DemoResult

__all__ = ["demo_udp"]


def demo_udp(out: Narrator) -> DemoResult:
    """The same two sends over UDP stay two datagrams."""
    messages = [b"hello", b"world"]
    out.title("udp", "the same two sends as datagrams", "UDP：同样两次发送，变成两个数据报")
    out.say(
        'The same two sends, "hello" and "world", over UDP instead of TCP. UDP keeps message boundaries: each '
        "sendto() is one datagram, and each recvfrom() returns exactly one datagram, even though its 1024-byte "
        "buffer has room for both.",
        '同样两次发送 "hello" 和 "world"，这次走 UDP 而不是 TCP。UDP 保留消息边界：每次 sendto() 是一个数据报，每次 '
        "recvfrom() 恰好返回一个数据报，即使 1024 字节的缓冲区足以同时容纳两个。",
    )
    out.how(
        "No waiting trick is needed for this one: recvfrom() never returns more than one datagram, however many are "
        "queued, so the result is the same on every run. The receiver still starts reading only after both sendto() "
        "calls have returned.",
        "这个演示不需要等待的技巧：无论排队的数据报有多少，recvfrom() 都不会返回超过一个，所以每次运行结果都一样。"
        "接收端仍然在两次 sendto() 都返回之后才开始读取。",
    )
    out.section("Over UDP: two sendto(), two recvfrom()", "UDP：两次 sendto()，两次 recvfrom()")
    naive: list[bytes] = []
    with udp_link() as (rx, tx):
        for i, m in enumerate(messages, 1):
            tx.sendto(m, rx.getsockname())
            out.line(f"sender: sendto #{i}: {len(m)} bytes", style="send")
            out.dump(m, style="send")
        for _ in messages:
            data, _addr = rx.recvfrom(1024)
            naive.append(data)
            out.line(f"receiver: recvfrom(1024) -> {len(data)} bytes", style="recv")
            out.dump(data)
    out.verdict(
        naive == messages,
        f"{len(messages)} datagrams sent, {len(naive)} received: {naive!r}",
        f"发送 {len(messages)} 个数据报，收到 {len(naive)} 个：{naive!r}",
    )
    out.say(
        "What UDP costs: datagrams can be lost, duplicated or reordered, and one larger than the receive buffer is "
        "silently cut short; nothing is retransmitted. rsh needs every byte, in order, so it uses TCP and frames the stream.",
        "UDP 的代价：数据报可能丢失、重复或乱序，比接收缓冲区大的数据报会被悄悄截断，而且没有重传。rsh 需要每个字节都按顺序到达，"
        "所以它使用 TCP，并对字节流分帧。",
        indent=2,
    )
    out.moral(
        "Message boundaries come from the protocol: UDP has them built in, TCP needs framing.",
        "消息边界来自协议：UDP 自带边界，TCP 需要分帧。",
    )
    return DemoResult("udp", messages, naive, [])
