"""``rsh demo``: make TCP "sticky packets" happen on a real socket, then fix them with framing.

Each demo runs on 127.0.0.1 inside this one process, over real sockets on
free ports: first a naive sender and receiver show the fault, then the same
messages go through rsh's own codec (``rsh.protocol.frames``) and arrive whole.

The faults are made to happen on every run, not only when timing is
unlucky.  The TCP sockets set ``TCP_NODELAY`` (so each ``send()`` leaves at
once, unmerged), and every ``recv()`` first waits, polling ``select()`` and
``ioctl(FIONREAD)``, until every byte the peer has sent so far is in the
socket's receive buffer, then checks it got them all.  That waiting lives in
``Endpoint``, so the naive code itself (``naive_*``, ``marker_*``,
``framed_*`` below, which docs/sticky-packets.md quotes) is just what a
learner would write.  Each demo returns a ``DemoResult`` saying what was sent
and what each receiver made of it, which the tests check.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import termios
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ..errors import RshError
from ..protocol.frames import Frame, FrameDecoder, encode_frame
from ..protocol.messages import ExitStatus
from ..protocol.trace import printable, use_color

__all__ = [
    "DEMOS",
    "DemoError",
    "DemoResult",
    "Endpoint",
    "Narrator",
    "demo_coalesce",
    "demo_header",
    "demo_markers",
    "demo_truncate",
    "demo_udp",
    "main",
    "run_demos",
    "tcp_link",
    "wait_buffered",
]

# A recv() that has to wait longer than this on loopback is broken, not slow.
_WAIT_LIMIT = 5.0
# Narration is wrapped to a fixed width (not the terminal's) so that the
# output, and the docs captured from it, are the same everywhere.
_WIDTH = 78


class DemoError(RshError):
    """A demo could not set up the conditions it needs, or saw something it did not expect."""


class WouldBlockForever(DemoError):
    """A naive receiver called recv() when its peer had sent everything: it would wait forever."""


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


# -- sockets that make the timing repeatable ---------------------------------


def _fionread(sock: socket.socket) -> int:
    """How many bytes wait unread in *sock*'s receive buffer."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def wait_buffered(sock: socket.socket, count: int, timeout: float = _WAIT_LIMIT) -> int:
    """Block until at least *count* bytes wait in *sock*'s receive buffer; return how many do.

    Raises:
        DemoError: they did not all arrive within *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        have = _fionread(sock)
        if have >= count:
            return have
        left = deadline - time.monotonic()
        if left <= 0:
            raise DemoError(f"only {have} of {count} bytes reached the receive buffer within {timeout:g}s")
        if have == 0:
            select.select([sock], [], [], left)  # wakes on the first byte
        else:
            time.sleep(0.0005)  # select() would return at once: part is there


class Conn(Protocol):
    """What the naive and framed code below needs of a socket."""

    def sendall(self, data: bytes) -> None: ...

    def recv(self, bufsize: int) -> bytes: ...


class Endpoint:
    """One end of a loopback TCP connection whose ``recv()`` is repeatable.

    ``recv()`` first waits until every byte the peer has sent so far is in
    the receive buffer, then checks that it returned all of them (or
    *bufsize*).  Both ends count what they send, so the receiver knows what
    to wait for.  Every call is logged for the demo to show.
    """

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.peer: Endpoint | None = None
        self.sent = 0
        self.received = 0
        #: (bufsize, bytes waiting before the call, bytes returned) per recv().
        self.recvs: list[tuple[int, int, bytes]] = []
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)
        self.sends.append(bytes(data))

    def pending(self) -> int:
        """Bytes the peer has sent that this end has not read yet."""
        assert self.peer is not None
        return self.peer.sent - self.received

    def recv(self, bufsize: int) -> bytes:
        pending = self.pending()
        if pending == 0:
            raise WouldBlockForever(f"{self.name} called recv() with nothing more coming: it would wait forever")
        waiting = wait_buffered(self.sock, pending)
        data = self.sock.recv(bufsize)
        if len(data) != min(bufsize, pending):
            raise DemoError(f"recv({bufsize}) returned {len(data)} bytes with {waiting} waiting; the demo cannot control this machine's timing")
        self.received += len(data)
        self.recvs.append((bufsize, waiting, data))
        return data


@contextmanager
def tcp_link() -> Iterator[tuple[Endpoint, Endpoint]]:
    """Yield (client, server) ends of a fresh TCP connection on 127.0.0.1, port picked by the OS."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client_sock = socket.create_connection(listener.getsockname()[:2])
        try:
            server_sock, _ = listener.accept()
        except BaseException:
            client_sock.close()
            raise
    try:
        for s in (client_sock, server_sock):
            # Each send() leaves at once as its own segment: what merges them
            # is the receiver's buffer, not Nagle's algorithm on the sender.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(_WAIT_LIMIT)  # a bug must fail, not hang
        client, server = Endpoint(client_sock, "client"), Endpoint(server_sock, "server")
        client.peer, server.peer = server, client
        yield client, server
    finally:
        client_sock.close()
        server_sock.close()


# -- the code under study (docs/sticky-packets.md quotes these) ---------------


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


# -- output -------------------------------------------------------------------

_SGR = {
    "title": "1;4",
    "head": "1",
    "dim": "2",
    "bad": "1;31",
    "good": "1;32",
    "moral": "1;33",
    "send": "36",
    "recv": "32",
    "prefix": "33",
    "header": "36",
    "payload": "1",
    "m0": "34",
    "m1": "35",
    "m2": "33",
    "marker": "1;31",
}


def _cell_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _text_width(text: str) -> int:
    return sum(_cell_width(ch) for ch in text)


# Chinese has no spaces: every wide character is a place a line may break.
_TOKENS = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+|\s+")
_NO_LINE_START = set("，。、；：！？）」』》")


def wrap(text: str, width: int = _WIDTH, indent: str = "", first: str | None = None) -> list[str]:
    """Wrap *text* (English, Chinese, or both mixed) to *width* terminal cells."""
    lines: list[str] = []
    lead = indent if first is None else first
    cur, cur_w = lead, _text_width(lead)
    for tok in _TOKENS.findall(text):
        if tok.isspace():
            if cur.strip():
                cur, cur_w = cur + " ", cur_w + 1
            continue
        w = _text_width(tok)
        if cur_w + w > width and cur.strip() and tok not in _NO_LINE_START:
            lines.append(cur.rstrip())
            cur, cur_w = indent, _text_width(indent)
        cur, cur_w = cur + tok, cur_w + w
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


Span = tuple[int, int, str]


class Narrator:
    """Writes a demo's narration, byte dumps and verdicts to a text stream.

    ``lang="zh"`` prints each piece of narration in Chinese with the English
    beneath it; labels inside dumps and tables stay in English.
    """

    def __init__(self, stream: TextIO | None = None, lang: str = "en", color: bool | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        if lang not in ("en", "zh"):
            raise ValueError(f"unknown language {lang!r}; one of en, zh")
        self.lang = lang
        self.color = use_color(self.stream) if color is None else color

    def paint(self, style: str | None, text: str) -> str:
        if not self.color or not style or not text:
            return text
        return f"\x1b[{_SGR[style]}m{text}\x1b[0m"

    def write(self, line: str = "") -> None:
        self.stream.write(line + "\n")

    def t(self, en: str, zh: str) -> str:
        """Pick the text for a short label."""
        return zh if self.lang == "zh" else en

    def title(self, name: str, en: str, zh: str) -> None:
        self.write(self.paint("title", f"== rsh demo {name}: {en} =="))
        if self.lang == "zh":
            self.write(self.paint("title", f"== {zh} =="))
        self.write()

    def section(self, en: str, zh: str) -> None:
        self.write()
        self.write(self.paint("head", f"-- {en}"))
        if self.lang == "zh":
            self.write(self.paint("head", f"-- {zh}"))

    def say(self, en: str, zh: str, *, style: str | None = None, label: tuple[str, str] | None = None, indent: int = 0) -> None:
        """A paragraph of narration: Chinese then English with ``--lang zh``."""
        pad = " " * indent
        texts = [(zh, label[1] if label else ""), (en, label[0] if label else "")] if self.lang == "zh" else [(en, label[0] if label else "")]
        for i, (text, lab) in enumerate(texts):
            # A full-width colon already carries its own space.
            head = (lab if lab.endswith("：") else f"{lab} ") if lab else ""
            lines = wrap(head + text, indent=pad + " " * (2 if lab else 0), first=pad)
            # In bilingual output the English echo is dimmed so the Chinese leads.
            sty = style if i == 0 or style else "dim"
            for line in lines:
                self.write(self.paint(sty, line))

    def line(self, text: str, *, style: str | None = None, indent: int = 2) -> None:
        """One technical line (not translated): sizes, calls, decoded frames."""
        self.write(" " * indent + self.paint(style, text))

    def how(self, en: str, zh: str) -> None:
        """Say what was done to make the effect happen on every run."""
        self.say(en, zh, label=("[repeatable]", "[可复现]"), style="dim", indent=2)

    def verdict(self, ok: bool, en: str, zh: str) -> None:
        self.say(en, zh, style="good" if ok else "bad", label=("OK:", "正确：") if ok else ("WRONG:", "错误："), indent=2)

    def moral(self, en: str, zh: str) -> None:
        self.write()
        self.say(en, zh, style="moral", label=("Moral:", "要点："))

    def dump(self, data: bytes, spans: Sequence[Span] = (), *, indent: int = 4, keep: int | None = 6, style: str | None = None) -> None:
        """Hex and text side by side, 16 bytes a line, offsets in decimal.

        *spans* colour byte ranges; when a dump is longer than *keep* lines
        only the first two, the last, and those where a span starts are shown.
        """
        for line in hexdump(data, spans, keep=keep, paint=self.paint, style=style):
            self.write(" " * indent + line)


def hexdump(
    data: bytes,
    spans: Sequence[Span] = (),
    *,
    keep: int | None = None,
    paint: Callable[[str | None, str], str] = lambda s, t: t,
    style: str | None = None,
) -> list[str]:
    """Return ``hexdump -C``-like lines for *data* (offsets in decimal)."""
    if not data:
        return ["(no bytes)"]
    styles: list[str | None] = [style] * len(data)
    for start, end, sty in spans:
        for i in range(max(start, 0), min(end, len(data))):
            styles[i] = sty
    nlines = (len(data) + 15) // 16
    shown = set(range(nlines))
    if keep is not None and nlines > keep:
        shown = {0, 1, nlines - 1} | {s // 16 for s, _, _ in spans if 0 < s < len(data)}
    out: list[str] = []
    prev = -1
    for ln in sorted(shown):
        if ln != prev + 1:
            skipped = ln - prev - 1
            out.append(f"{'':5}  ... {skipped} line{'s' if skipped > 1 else ''} ({sum(min(16, len(data) - (prev + 1 + k) * 16) for k in range(skipped))} bytes) not shown")
        prev = ln
        base = ln * 16
        chunk = data[base : base + 16]
        line_styles = styles[base : base + len(chunk)]
        cells = [f"{b:02x}" for b in chunk]
        left = _runs(cells[:8], line_styles[:8], " ", paint)
        right = _runs(cells[8:], line_styles[8:], " ", paint)
        plain_width = len(chunk[:8]) * 3 - 1 + (2 + len(chunk[8:]) * 3 - 1 if chunk[8:] else 0)
        hex_part = left + ("  " + right if right else "") + " " * (48 - plain_width)
        text = _runs([printable(bytes([b])) for b in chunk], line_styles, "", paint)
        out.append(f"{base:5d}  {hex_part}  |{text}|")
    return out


def _runs(cells: Sequence[str], styles: Sequence[str | None], sep: str, paint: Callable[[str | None, str], str]) -> str:
    """Join *cells* with *sep*, painting each run of same-style cells once (fewer escape codes)."""
    out: list[str] = []
    i = 0
    while i < len(cells):
        j = i
        while j < len(cells) and styles[j] == styles[i]:
            j += 1
        out.append(paint(styles[i], sep.join(cells[i:j])))
        i = j
    return sep.join(out)


def frame_spans(wire: bytes, base: int = 0) -> list[Span]:
    """Spans colouring the prefix, header and payload of each frame in *wire*."""
    spans: list[Span] = []
    pos = 0
    while pos + 4 <= len(wire):
        (hlen,) = struct.unpack_from("!I", wire, pos)
        if pos + 4 + hlen > len(wire):
            break  # a header cut short: leave the rest uncoloured
        size = json.loads(wire[pos + 4 : pos + 4 + hlen]).get("size", 0)
        spans += [
            (base + pos, base + pos + 4, "prefix"),
            (base + pos + 4, base + pos + 4 + hlen, "header"),
            (base + pos + 4 + hlen, base + pos + 4 + hlen + size, "payload"),
        ]
        pos += 4 + hlen + size
    return spans


def _origin_spans(chunks: Sequence[bytes], start: int, length: int) -> list[tuple[int, int, int]]:
    """Split stream range [start, start+length) by which chunk each byte came from: (begin, end, chunk index), relative to start."""
    out: list[tuple[int, int, int]] = []
    pos = 0
    for idx, chunk in enumerate(chunks):
        lo, hi = max(pos, start), min(pos + len(chunk), start + length)
        if lo < hi:
            out.append((lo - start, hi - start, idx))
        pos += len(chunk)
    return out


def _frames_text(frames: Sequence[Frame]) -> str:
    parts = []
    for f in frames:
        if f.type == "exit":
            parts.append(f"exit (exit_code={f.get('exit_code')})")
        else:
            shown = f.payload if len(f.payload) <= 24 else f.payload[:20] + b"..."
            parts.append(f"{f.type} {len(f.payload)} B {shown!r}")
    return ", ".join(parts)


def _how_tcp(out: Narrator) -> None:
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


def _show_recvs(out: Narrator, end: Endpoint, first: int = 0) -> None:
    for bufsize, waiting, data in end.recvs[first:]:
        out.line(f"{end.name}: recv({bufsize}) -> {len(data)} bytes   (FIONREAD: {waiting} waiting)", style="recv")


# -- the demos --------------------------------------------------------------


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
    _how_tcp(out)

    out.section("Without framing: raw bytes", "不分帧：直接发送原始字节")
    with tcp_link() as (receiver, sender):
        for i, m in enumerate(messages, 1):
            naive_send(sender, m)
            out.line(f"server: send #{i}: {len(m)} bytes", style="send")
            out.dump(m, style="send")
        data = naive_reply(receiver)
        _show_recvs(out, receiver)
        out.dump(data, [(s, e, f"m{i}") for s, e, i in _origin_spans(messages, 0, len(data))])
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
        _show_recvs(out, receiver)
        out.dump(data, frame_spans(data))
        frames = FrameDecoder().feed(data)
    out.line(f"client: FrameDecoder().feed(...) -> {len(frames)} frames: {_frames_text(frames)}", style="recv")
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
    files = {cmd: o for cmd, o in zip(commands, outputs)}
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
    _how_tcp(out)

    out.section("Without framing: output sent raw, read with one recv(1024)", "不分帧：输出原样发送，用一次 recv(1024) 读取")
    naive: list[bytes] = []
    rows: list[tuple[str, int, int, str, bool]] = []
    with tcp_link() as (client, server):
        for cmd in commands:
            client.sendall(cmd + b"\n")
            request = server.recv(1024).rstrip(b"\n")
            output = files[request]
            naive_send(server, output)
            start = client.received
            got = naive_reply(client)
            naive.append(got)
            out.write()
            out.line(f"$ {cmd.decode()}", style="head")
            out.line(f"server: send {len(output)} bytes", style="send")
            out.dump(output, keep=3, style="send")
            _show_recvs(out, client, len(client.recvs) - 1)
            origins = _origin_spans(outputs, start, len(got))
            out.dump(got, [(s, e, f"m{i}") for s, e, i in origins], keep=5)
            parts = []
            for s, e, i in origins:
                whole = e - s == len(outputs[i])
                stream_start = sum(len(o) for o in outputs[:i])
                lo = start + s - stream_start
                parts.append(f"{TRUNCATE_FILES[i][0]} {'(whole)' if whole else f'bytes {lo}-{lo + e - s - 1}'}")
            ok = got == output
            out.line(f"client prints as the output of {cmd.decode()!r}: bytes " + "; ".join(
                f"{s}-{e - 1} = {p}" for (s, e, _), p in zip(origins, parts)), style="good" if ok else "bad")
            rows.append((cmd.decode(), len(output), len(got), " + ".join(parts), ok))
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
            client.sendall(encode_frame("exec", None, cmd))
            (exec_frame,) = server_dec.feed(server.recv(1024))
            output = files[exec_frame.payload]
            sent_before = server.sent
            framed_send(server, output)
            first = len(client.recvs)
            got, frames = framed_reply(client, client_dec)
            framed.append(got)
            out.write()
            out.line(f"$ {cmd.decode()}", style="head")
            wire = server.sends[-1]
            out.line(f"server: send stdout frame + exit frame = {server.sent - sent_before} bytes", style="send")
            out.dump(wire, frame_spans(wire), keep=4)
            _show_recvs(out, client, first)
            out.line(f"client: FrameDecoder -> {_frames_text(frames)}", style="recv")
            ok = got == output
            name = exec_frame.payload.decode().removeprefix("cat ")
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

    out.line(f"bytes {0:>3}-{3:<4} {out.paint('prefix', hexs(wire[:4])):<27} " + out.t(
        f"length prefix: the header is {hlen} bytes (uint32, big-endian)", f"长度前缀：头部有 {hlen} 字节（uint32，大端序）"))
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
    _how_tcp(out)

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
        _show_recvs(out, client)
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
    out.verdict(False, f"0 of {len(messages)} messages delivered; the receiver waits for {wanted} bytes that never come.",
                f"{len(messages)} 条消息一条也没收到；接收端在等永远不会到来的 {wanted} 字节。")

    out.section("rsh: a fixed 4-byte length, then a JSON header", "rsh：固定 4 字节的长度，然后是 JSON 头部")
    out.say(
        'rsh sends the header\'s length as exactly 4 bytes, an unsigned 32-bit big-endian integer (struct "!I"). The '
        "receiver always reads 4 bytes, and then knows exactly how many more to read: no byte of a message can be "
        "taken for part of a length. (A text length ended by a delimiter, as netstrings do, also works, but the "
        "reader must scan for the delimiter, and a fixed width bounds what a hostile peer can make it buffer.) Here "
        "is encode_frame('stdout', payload=b'42 files\\n'), field by field:",
        "rsh 把头部长度写成恰好 4 个字节：一个无符号 32 位大端整数（struct \"!I\"）。接收端总是先读 4 个字节，然后就确切知道"
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
        _show_recvs(out, client)
        data = b"".join(d for _, _, d in client.recvs)
        out.dump(data, frame_spans(data), keep=None)
    out.line(f"client: FrameDecoder -> {_frames_text(frames)}", style="recv")
    framed = [f.payload for f in frames if f.type == "stdout"]
    out.verdict(framed == messages, f"{len(framed)} of {len(messages)} messages delivered whole: {framed!r}",
                f"{len(messages)} 条消息全部完整收到：{framed!r}")
    out.moral(
        "Put the length in a fixed number of bytes before the message, and the receiver always knows how much to read next.",
        "把长度用固定数量的字节放在消息前面，接收端就总能知道下一步该读多少。",
    )
    return DemoResult("header", messages, naive, framed,
                      {"wanted": wanted, "available": have, "frame_bytes": len(first), "completed_at": completed_at})


MARKER_COMMANDS = (
    (b"whoami", b"alice\n"),
    (b"cat notes.txt", b"the client reads until it sees <<<END>>> on the wire\n"),
    (b"hostname", b"box1\n"),
)


def demo_markers(out: Narrator) -> DemoResult:
    """Start/end markers work until the output contains the end marker."""
    outputs = [o for _, o in MARKER_COMMANDS]
    out.title("markers", "start/end strings, and the output that breaks them", "标记：起止字符串，以及能破坏它的输出")
    out.say(
        f"Another common fix, used by many reverse-shell tools: the server wraps each output between two marker "
        f"strings, {START.decode()} and {END.decode()}, and the client reads until it sees the end marker. That works "
        "until a command prints the marker itself: here, a notes file that mentions it.",
        f"另一种常见做法（许多反弹 shell 工具都这么做）：服务端把每段输出包在两个标记字符串 {START.decode()} 和 "
        f"{END.decode()} 之间，客户端一直读到看见结束标记为止。这在命令自己输出了这个标记之前都能工作：这里就是一个提到了它的笔记文件。",
    )
    _how_tcp(out)

    out.section("Markers: START + output + END, read until END", "标记：START + 输出 + END，读到 END 为止")
    naive: list[bytes] = []
    with tcp_link() as (client, server):
        buf = bytearray()
        for cmd, output in MARKER_COMMANDS:
            client.sendall(cmd + b"\n")
            server.recv(1024)
            marker_send(server, output)
            first = len(client.recvs)
            got = marker_reply(client, buf)
            naive.append(got)
            out.write()
            out.line(f"$ {cmd.decode()}", style="head")
            wire = server.sends[-1]
            out.line(f"server: send {len(wire)} bytes", style="send")
            out.dump(wire, _marker_spans(wire))
            if len(client.recvs) > first:
                _show_recvs(out, client, first)
            else:
                out.line("client: no recv(): an end marker was already in its buffer", style="recv")
            ok = got == output
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
    wrong = sum(a != b for a, b in zip(naive, outputs))
    out.verdict(
        naive == outputs,
        f"{wrong} of {len(outputs)} outputs wrong, and the client is out of step.",
        f"{len(outputs)} 个输出中有 {wrong} 个错误，而且客户端已经错位。",
    )

    out.section("With rsh framing: the same outputs as stdout frames", "使用 rsh 分帧：同样的输出放进 stdout 帧")
    framed: list[bytes] = []
    with tcp_link() as (client, server):
        dec = FrameDecoder()
        for cmd, output in MARKER_COMMANDS:
            client.sendall(cmd + b"\n")
            server.recv(1024)
            framed_send(server, output)
            first = len(client.recvs)
            got, frames = framed_reply(client, dec)
            framed.append(got)
            out.write()
            out.line(f"$ {cmd.decode()}", style="head")
            wire = server.sends[-1]
            out.line(f"server: send stdout frame + exit frame = {len(wire)} bytes", style="send")
            if END in output:  # the one that broke the markers: show it all
                out.dump(wire, frame_spans(wire) + _marker_spans(wire), keep=None)
            _show_recvs(out, client, first)
            out.line(f"client: FrameDecoder -> {_frames_text(frames)}", style="recv")
            out.line(f"client prints {got!r}", style="good" if got == output else "bad")
    out.say(
        "The length says where the output ends. Nothing inside the payload is ever looked at, so any bytes at all, "
        "markers included, get through.",
        "长度说明了输出在哪里结束。载荷里面的内容从来不会被检查，所以任何字节，包括标记本身，都能原样通过。",
        indent=2,
    )
    right = sum(a == b for a, b in zip(framed, outputs))
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
    spans: list[Span] = []
    for marker in (START, END):
        for m in re.finditer(re.escape(marker), wire):
            spans.append((m.start(), m.end(), "marker"))
    return spans


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
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(_WAIT_LIMIT)
        for i, m in enumerate(messages, 1):
            tx.sendto(m, rx.getsockname())
            out.line(f"sender: sendto #{i}: {len(m)} bytes", style="send")
            out.dump(m, style="send")
        for _ in messages:
            data, _addr = rx.recvfrom(1024)
            naive.append(data)
            out.line(f"receiver: recvfrom(1024) -> {len(data)} bytes", style="recv")
            out.dump(data)
    out.verdict(naive == messages, f"{len(messages)} datagrams sent, {len(naive)} received: {naive!r}",
                f"发送 {len(messages)} 个数据报，收到 {len(naive)} 个：{naive!r}")
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


@dataclass(frozen=True)
class Demo:
    """One entry of ``rsh demo``'s list."""

    name: str
    en: str
    zh: str
    run: Callable[[Narrator], DemoResult]


#: The demos in the order ``rsh demo all`` runs them.
DEMOS: dict[str, Demo] = {
    d.name: d
    for d in (
        Demo("coalesce", "two send()s arrive as one recv()", "粘包：两次 send() 被一次 recv() 全部收到", demo_coalesce),
        Demo("truncate", "recv(1024) cuts a 1517-byte reply; the rest turns up as the next command's output",
             "半包：recv(1024) 截断 1517 字节的回复，余下的成了下条命令的输出", demo_truncate),
        Demo("header", "a real frame byte by byte; why the length is 4 fixed bytes, not str(len)",
             "逐字节拆开一个真实的帧；为什么长度是固定的 4 字节而不是 str(len)", demo_header),
        Demo("markers", "start/end marker strings, and the output that breaks them",
             "起止标记字符串，以及能破坏它的输出", demo_markers),
        Demo("udp", "the same two sends over UDP stay two datagrams", "同样两次发送走 UDP，仍是两个数据报", demo_udp),
    )
}


def run_demos(names: Sequence[str], out: Narrator) -> list[DemoResult]:
    """Run the named demos in order, separated by a blank line and a rule."""
    results = []
    for i, name in enumerate(names):
        if i:
            out.write()
            out.write(out.paint("dim", "-" * _WIDTH))
            out.write()
        results.append(DEMOS[name].run(out))
    return results


def list_demos(out: Narrator) -> None:
    """Print what ``rsh demo`` offers."""
    out.say(
        'rsh demo NAME [--lang zh]: watch TCP "sticky packets" happen on a real socket, then watch framing fix them. '
        "Everything runs on 127.0.0.1 inside this process; no server is needed.",
        "rsh demo 名称 [--lang zh]：在真实的套接字上观察 TCP“粘包”如何发生，再看分帧如何解决它。一切都在本进程内的 "
        "127.0.0.1 上运行，不需要服务端。",
    )
    out.write()
    for d in DEMOS.values():
        for line in wrap(out.t(d.en, d.zh), indent=" " * 13, first=f"  {d.name:<10} "):
            out.write(line)
    out.write(f"  {'all':<10} " + out.t("run them all, in this order", "按上面的顺序全部运行"))


def main(name: str | None, lang: str = "en", stream: TextIO | None = None) -> int:
    """``rsh demo [NAME] [--lang zh]``: return the exit status."""
    out = Narrator(stream, lang)
    if name and name != "all" and name not in DEMOS:
        print(f"rsh: no demo called {name!r}; choose one of {', '.join(DEMOS)}, or all", file=sys.stderr)
        return 2
    try:
        if not name:
            list_demos(out)
        else:
            run_demos(list(DEMOS) if name == "all" else [name], out)
        out.stream.flush()
    except DemoError as exc:
        out.stream.flush()
        print(f"rsh: demo could not run: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `rsh demo all | head`: the reader left.  Point fd 1 at /dev/null so
        # the interpreter's last flush does not complain, and stop quietly.
        if out.stream is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 128 + signal.SIGPIPE
    return 0
