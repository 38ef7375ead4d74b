"""The file-transfer half of ``rsh demo classic``: the recv(4096) countdown, then rsh's put.

The tutorials' receiver knows the file's size and loops ``recv(4096)``,
subtracting 4096 each time instead of what ``recv()`` returned.  Sent in one
go on loopback, every ``recv()`` does return 4096 and the copy is right.  But
a network delivers segments of about 1,448 bytes (an Ethernet frame's room
for data), and a receiver that keeps up reads each as it comes: then three
``recv()`` calls "count" 12,288 bytes, the loop ends, and the file is short.
``Trickle`` stages that on loopback: before each ``recv()`` the sender sends
one more 1,448-byte piece.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .harness import DemoError, Endpoint, tcp_link
from .local import LocalServer
from .narrator import Narrator
from .truncate import fake_file
from .tutorial import countdown_recv, counted_recv

__all__ = ["FILE_NAME", "FILE_SIZE", "PIECE", "Trickle", "demo_file_transfer", "sha256"]

FILE_NAME, FILE_SIZE = "backup.txt", 10_000
#: The data in one Ethernet segment: 1500 - 20 (IP) - 20 (TCP) - 12 (timestamps).
PIECE = 1448


def sha256(data: bytes) -> str:
    """The start of *data*'s SHA-256: enough to tell two files apart on screen."""
    return hashlib.sha256(data).hexdigest()[:16]


class Trickle:
    """The receiving end, with the sender always one segment ahead of it.

    Before each ``recv()`` the sender sends its next *piece* bytes, so a
    ``recv()`` finds one segment waiting, as on a network the receiver keeps
    up with.  ``finish()`` sends whatever the receiver did not ask for.
    """

    def __init__(self, receiver: Endpoint, sender: Endpoint, data: bytes, piece: int = PIECE) -> None:
        self.receiver, self.sender = receiver, sender
        self.pieces = [data[i : i + piece] for i in range(0, len(data), piece)]

    def sendall(self, data: bytes) -> None:
        raise DemoError("the receiving end sends nothing")

    def recv(self, bufsize: int) -> bytes:
        if self.pieces:
            self.sender.sendall(self.pieces.pop(0))
        return self.receiver.recv(bufsize)

    def finish(self) -> int:
        """Send the pieces not yet sent; return how many bytes that was."""
        left = b"".join(self.pieces)
        self.pieces.clear()
        if left:
            self.sender.sendall(left)
        return len(left)


def _show(out: Narrator, end: Endpoint, countdown: bool) -> None:
    left = have = 0
    for i, (bufsize, waiting, data) in enumerate(end.recvs):
        if countdown:
            before, left = (FILE_SIZE if i == 0 else left), (FILE_SIZE if i == 0 else left) - 4096
            note = f"left = {before} - 4096 = {left}"
        else:
            have += len(data)
            note = f"have {have} of {FILE_SIZE}"
        out.line(f"receiver: recv({bufsize}) -> {len(data)} bytes   (FIONREAD: {waiting} waiting); {note}", style="recv")


def _verdict_line(out: Narrator, got: bytes, data: bytes) -> bool:
    ok = got == data
    out.line(
        f"received {len(got)} of {len(data)} bytes; sha256 {sha256(got)} vs the sender's {sha256(data)}: " + ("the same file" if ok else "NOT the same file"),
        style="good" if ok else "bad",
    )
    return ok


def demo_file_transfer(out: Narrator, stage: Path, server: LocalServer) -> dict[str, Any]:
    """The countdown receiver, lucky then short; the loop that counts right; then ``rsh put``; return the facts."""
    data = fake_file(FILE_NAME, FILE_SIZE)
    facts: dict[str, Any] = {"sha256": sha256(data)}
    out.section("The tutorials' file transfer: recv(4096), counted down by 4096", "教程里的文件传输：recv(4096)，每次减去 4096")
    out.say(
        f"The sender has already told the receiver the file's size ({FILE_SIZE} bytes); now the bytes. The receiver "
        "loops recv(4096) and subtracts 4096 from what is left each time, not what recv() returned.",
        f"发送端已经告诉接收端文件大小（{FILE_SIZE} 字节）；接下来是文件内容。接收端循环调用 recv(4096)，每次从剩余量里减去 "
        "4096，而不是 recv() 实际返回的字节数。",
        indent=2,
    )
    out.write()
    out.line(f"sender: send {FILE_NAME}, {FILE_SIZE} bytes, in one sendall()", style="send")
    with tcp_link() as (sender, receiver):
        sender.sendall(data)
        got = countdown_recv(receiver, FILE_SIZE)
        _show(out, receiver, countdown=True)
    facts["lucky"] = _verdict_line(out, got, data)
    out.say(
        "On loopback the whole file is waiting, so each recv() fills its 4096 bytes and the count happens to be right.",
        "在回环地址上整个文件都已在缓冲区里，所以每次 recv() 都拿满 4096 字节，计数碰巧是对的。",
        indent=2,
    )
    out.how(
        f"Segments of {PIECE} bytes are staged on loopback (whose own segments are far larger): before each recv() the "
        f"sender sends one more {PIECE}-byte piece, so each recv() finds exactly one segment waiting, as it does on a "
        "network when the receiver keeps up with the sender.",
        f"在回环地址上（它自己的报文段大得多）模拟 {PIECE} 字节的报文段：每次 recv() 之前，发送端再发出一块 {PIECE} 字节的数据，"
        "所以每次 recv() 恰好看到一个报文段在等待，就像网络上接收端跟得上发送端时那样。",
    )
    out.write()
    out.line(f"sender: send {FILE_NAME} in {PIECE}-byte segments, each as the receiver is ready for it", style="send")
    with tcp_link() as (sender, receiver):
        trickle = Trickle(receiver, sender, data)
        got = countdown_recv(trickle, FILE_SIZE)
        _show(out, receiver, countdown=True)
        unread = trickle.finish()
    facts["short"] = len(got)
    _verdict_line(out, got, data)
    out.say(
        f"Segments of {PIECE} bytes, as a network delivers them: three recv() calls return {3 * PIECE} bytes, the "
        f"countdown says {3 * 4096} and stops. The file is {FILE_SIZE - len(got)} bytes short, and those {unread} bytes "
        "are still in the socket, where the next read on this connection (the next file's size, say) will take them.",
        f"按网络上的方式，每段 {PIECE} 字节：三次 recv() 返回 {3 * PIECE} 字节，倒数却算成了 {3 * 4096}，循环结束。文件少了 "
        f"{FILE_SIZE - len(got)} 字节，而这 {unread} 字节还留在套接字里，这条连接上的下一次读取（比如下一个文件的大小）会把它们读走。",
        indent=2,
    )
    out.verdict(False, "the countdown works only while recv() happens to return all it asked for.", "只有 recv() 恰好拿满请求的字节时，倒数才是对的。")

    out.section("Counting what recv() returned, then rsh put", "按 recv() 实际返回的字节计数，再看 rsh put")
    out.write()
    out.line(f"sender: send {FILE_NAME} in {PIECE}-byte segments, as before", style="send")
    with tcp_link() as (sender, receiver):
        got = counted_recv(Trickle(receiver, sender, data), FILE_SIZE)
        _show(out, receiver, countdown=False)
    facts["counted"] = _verdict_line(out, got, data)
    local = stage.parent / "outbox" / FILE_NAME
    local.parent.mkdir()
    local.write_bytes(data)
    remote = stage / FILE_NAME
    r = server.run("put", server.address, str(local), str(remote))
    if r.returncode != 0:
        raise DemoError(f"rsh put failed: {r.stderr.decode(errors='replace').strip()}")
    copied = remote.read_bytes()
    out.write()
    out.line(f"$ rsh put 127.0.0.1:PORT {FILE_NAME} share/{FILE_NAME}", style="head")
    facts["put"] = _verdict_line(out, copied, data)
    out.say(
        "rsh put announces the file's length in a 'file' frame, sends its bytes in 'data' frames (each frame says how "
        "many bytes it carries) and the length and SHA-256 again in 'file_end'; the receiver counts what arrived, "
        "checks both, and only then answers 'ok'.",
        "rsh put 在 “file” 帧里声明文件长度，用 “data” 帧发送内容（每个帧都写明自己装了多少字节），再在 “file_end” 里"
        "给出长度和 SHA-256；接收端按实际到达的字节计数，两者都核对无误后才回答 “ok”。",
        indent=2,
    )
    out.verdict(facts["counted"] and facts["put"], "the same file arrives, byte for byte.", "收到的是同一个文件，一个字节都不差。")
    return facts
