"""The ``truncate`` demo: recv(1024) cuts a 1517-byte reply short (half packets), and the rest
turns up as the next command's output; read until the exit frame and every reply is whole.
"""

from __future__ import annotations

from ..protocol.frames import FrameDecoder
from .harness import tcp_link
from .narrator import Narrator, frame_spans, frames_text, origin_spans, origin_styles
from .specimens import framed_reply, framed_send, naive_reply, naive_send
from .staging import DemoResult, command_trip, how_tcp, show_recvs

__all__ = ["TRUNCATE_FILES", "demo_truncate", "fake_file"]


def fake_file(name: str, size: int) -> bytes:
    """*size* bytes of text whose every line says which file it is from."""
    letter = name[0]
    lines: list[str] = []
    total, n = 0, 1
    while size - total >= 64:
        line = f"{name} line {n:02d} ".ljust(31, letter) + "\n"
        lines.append(line)
        total += len(line)
        n += 1
    lines.append(f"{name} line {n:02d} end ".ljust(size - total - 1, letter) + "\n")
    data = "".join(lines).encode()
    assert len(data) == size
    return data


TRUNCATE_FILES = (("a.txt", 418), ("b.txt", 1517), ("c.txt", 418))


def demo_truncate(out: Narrator) -> DemoResult:
    """recv(1024) on a 1517-byte reply: the rest arrives as the next command's output."""
    commands = [f"cat {name}".encode() for name, _ in TRUNCATE_FILES]
    outputs = [fake_file(name, size) for name, size in TRUNCATE_FILES]
    files = {cmd: o for cmd, o in zip(commands, outputs, strict=True)}
    out.title("truncate", "recv(1024) meets a 1517-byte reply", "半包：recv(1024) 遇上 1517 字节的回复")
    out.say(
        "A naive remote-command tool: the client sends a command line, the server runs it and sends the output back "
        "as it is, and the client calls recv(1024) once and prints what it got. Three commands print "
        f"{', '.join(str(s) for _, s in TRUNCATE_FILES[:-1])} and {TRUNCATE_FILES[-1][1]} bytes. The server is a "
        "stand-in that 'runs' cat on fixed files, so every machine sees the same bytes; every line of a file starts "
        "with its name.",
        "一个朴素的远程命令工具：客户端发送一行命令，服务端执行后把输出原样发回，客户端调用一次 recv(1024) 并打印收到"
        f"的内容。三条命令分别输出 {'、'.join(str(s) for _, s in TRUNCATE_FILES[:-1])} 和 {TRUNCATE_FILES[-1][1]} "
        "字节。这里的服务端是模拟的：它对内容固定的文件“执行” cat，所以每台机器看到的字节都相同；文件的每一行都以文件名开头。",
    )
    how_tcp(out)

    out.section("Without framing: output sent raw, read with one recv(1024)", "不分帧：输出原样发送，用一次 recv(1024) 读取")
    naive: list[bytes] = []
    rows: list[tuple[str, int, int, str, bool]] = []
    with tcp_link() as (client, server):
        for cmd in commands:
            naive_trip = command_trip(out, client, server, cmd, files, naive_send, naive_reply)
            got = naive_trip.reply
            naive.append(got)
            out.line(f"server: send {len(naive_trip.wire)} bytes", style="send")
            out.dump(naive_trip.wire, keep=3, style="send")
            show_recvs(out, client, naive_trip.first)
            origins = origin_spans(outputs, naive_trip.start, len(got))
            out.dump(got, origin_styles(origins), keep=5)
            parts = []
            for s, e, i in origins:
                whole = e - s == len(outputs[i])
                stream_start = sum(len(o) for o in outputs[:i])
                lo = naive_trip.start + s - stream_start
                parts.append(f"{TRUNCATE_FILES[i][0]} {'(whole)' if whole else f'bytes {lo}-{lo + e - s - 1}'}")
            ok = got == naive_trip.output
            out.line(
                f"client prints as the output of {cmd.decode()!r}: bytes "
                + "; ".join(f"{s}-{e - 1} = {p}" for (s, e, _), p in zip(origins, parts, strict=True)),
                style="good" if ok else "bad",
            )
            rows.append((cmd.decode(), len(naive_trip.output), len(got), " + ".join(parts), ok))
    out.write()
    out.line(f"{'command':<11} {'sent':>5} {'got':>5}  client prints")
    for cmd_s, sent_n, got_n, what, ok in rows:
        out.line(f"{cmd_s:<11} {sent_n:>5} {got_n:>5}  {what:<38} {'ok' if ok else 'WRONG'}", style=None if ok else "bad")
    left = len(outputs[1]) - 1024
    out.say(
        f"The second reply is longer than the 1024 bytes the client asked for, so {left} bytes stay in the socket. "
        "They come out of the next recv() ahead of c.txt's output: from then on, what the client prints for a "
        "command belongs, at least in part, to the command before it. A bigger buffer only moves the limit; some "
        "reply is always longer.",
        f"第二个回复比客户端请求的 1024 字节长，剩下的 {left} 字节留在了套接字里。它们在下一次 recv() 时跑到了 c.txt "
        "输出的前面：从此客户端为一条命令打印的内容，至少有一部分属于上一条命令。把缓冲区调大只是挪动了界限，总会有更长的回复。",
        indent=2,
    )
    out.verdict(
        naive == outputs,
        "the client is one command out of step: output arrives a command late.",
        "客户端与服务端错开了一条命令：输出晚到了一条命令。",
    )

    out.section("With rsh framing: exec frame out; stdout and exit frames back", "使用 rsh 分帧：发出 exec 帧，收回 stdout 帧和 exit 帧")
    out.say(
        "The same three commands through rsh's framing. The command goes in an exec frame; the output comes back in "
        "a stdout frame followed by an exit frame. The client still calls recv(1024), but it keeps calling it until "
        "FrameDecoder has handed back the exit frame. (The same waiting before each recv() applies.)",
        "同样三条命令改用 rsh 的分帧：命令放在 exec 帧里发出，输出放在 stdout 帧里返回，后面跟一个 exit 帧。客户端仍然"
        "调用 recv(1024)，但会一直读，直到 FrameDecoder 交回 exit 帧为止。（每次 recv() 前同样先等待。）",
        indent=2,
    )
    framed: list[bytes] = []
    with tcp_link() as (client, server):
        client_dec, server_dec = FrameDecoder(), FrameDecoder()
        for cmd in commands:
            framed_trip = command_trip(out, client, server, cmd, files, framed_send, lambda c: framed_reply(c, client_dec), exec_decoder=server_dec)
            got, frames = framed_trip.reply
            framed.append(got)
            out.line(f"server: send stdout frame + exit frame = {len(framed_trip.wire)} bytes", style="send")
            out.dump(framed_trip.wire, frame_spans(framed_trip.wire), keep=4)
            show_recvs(out, client, framed_trip.first)
            out.line(f"client: FrameDecoder -> {frames_text(frames)}", style="recv")
            ok = got == framed_trip.output
            name = cmd.decode().removeprefix("cat ")
            out.line(f"client prints {len(got)} bytes: {'all of ' + name + ', nothing else' if ok else 'not ' + name}", style="good" if ok else "bad")
    out.verdict(
        framed == outputs,
        "every reply arrives whole and in step with its command.",
        "每个回复都完整到达，并且与它的命令一一对应。",
    )
    out.moral(
        "One recv() is not one reply: read until the framing says the message is complete.",
        "一次 recv() 不等于一条回复：要一直读，直到分帧信息表明消息已经完整。",
    )
    return DemoResult("truncate", outputs, naive, framed, {"recv_sizes": [len(b) for b in naive]})
