"""The ``classic`` demo: the tutorials' broken remote shell and file transfer, then rsh doing both.

The shell: the server runs each command line in a real shell and ``send()``s
its output; the client ``recv(1024)``s once per command.  ``ls``,
``ipconfig``, ``ls``: the 1,517-byte ``ipconfig`` is cut at 1,024 and its
last 493 bytes come out as the second ``ls``'s answer, as in the tutorials'
``dir`` / ``ipconfig`` / ``dir`` table.  Then the same commands through a
real ``rsh serve``, every byte where it belongs.  The file transfer lives in
``rsh.teach.classic_files``.  Everything runs in a staged directory whose
files are the same on every machine, so every run prints the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .classic_files import demo_file_transfer
from .harness import tcp_link
from .local import LocalServer, Session, local_server
from .narrator import Narrator, origin_spans, origin_styles
from .specimens import naive_reply, naive_send
from .staging import DemoResult, how_tcp, show_recvs
from .truncate import fake_file
from .tutorial import tutorial_run

__all__ = ["COMMANDS", "IPCONFIG", "demo_classic", "staged"]

#: The tutorials' three commands, as a Unix shell has them.
COMMANDS = (b"ls", b"ipconfig", b"ls")


def _ipconfig() -> bytes:
    """1,517 bytes in the manner of Windows' ipconfig /all: long enough to be cut."""
    lines = ["", "Windows IP Configuration", ""]
    for i in range(1, 6):
        lines += [
            f"Ethernet adapter Ethernet {i}:",
            "",
            f"   Physical Address. . . . . . . . . : 52-54-00-00-00-0{i}",
            f"   IPv4 Address. . . . . . . . . . . : 127.0.0.{i}",
            "   Subnet Mask . . . . . . . . . . . : 255.0.0.0",
            "   Default Gateway . . . . . . . . . : (none)",
            "",
        ]
    text = "\r\n".join(lines).encode()
    return text + b"=" * (1515 - len(text)) + b"\r\n"


#: What the staged ``ipconfig`` prints.
IPCONFIG = _ipconfig()
assert len(IPCONFIG) == 1517


@contextmanager
def staged() -> Iterator[tuple[Path, dict[str, str]]]:
    """A directory the commands run in, and their environment: the same files and bytes everywhere."""
    with tempfile.TemporaryDirectory(prefix="rsh-classic-") as tmp:
        stage = Path(tmp) / "share"
        (stage / "bin").mkdir(parents=True)
        (stage / "bin" / "ipconfig.txt").write_bytes(IPCONFIG)
        script = stage / "bin" / "ipconfig"
        script.write_text('#!/bin/sh\nexec cat "$(dirname "$0")/ipconfig.txt"\n')
        script.chmod(0o755)
        for name, size in (("notes.txt", 418), ("photo.jpg", 2048), ("report.pdf", 4096)):
            (stage / name).write_bytes(fake_file(name, size))
        env = dict(os.environ, PATH=f"{stage / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", LC_ALL="C")
        yield stage, env


def _table(out: Narrator, rows: list[tuple[str, int, int, str, bool]]) -> None:
    out.write()
    out.line(f"{'command':<9} {'sent':>5} {'got':>5}  client prints")
    for cmd, sent_n, got_n, what, ok in rows:
        out.line(f"{cmd:<9} {sent_n:>5} {got_n:>5}  {what:<42} {'ok' if ok else 'WRONG'}", style=None if ok else "bad")


def _naive_shell(out: Narrator, stage: Path, env: dict[str, str]) -> tuple[list[bytes], list[bytes]]:
    """The tutorials' shell over one connection: return what each command printed and what the client got."""
    outputs: list[bytes] = []
    got: list[bytes] = []
    rows = []
    with tcp_link() as (client, server):
        for cmd in COMMANDS:
            client.sendall(cmd + b"\n")
            line = server.recv(1024).rstrip(b"\n")
            output = tutorial_run(line, str(stage), env)
            outputs.append(output)
            start, first = client.received, len(client.recvs)
            naive_send(server, output)
            reply = naive_reply(client)
            got.append(reply)
            out.write()
            out.line(f"$ {cmd.decode()}", style="head")
            out.line(f"server: ran {line.decode()!r} in a shell, send {len(output)} bytes in one send()", style="send")
            out.dump(output, keep=3, style="send")
            show_recvs(out, client, first)
            origins = origin_spans(outputs, start, len(reply))
            out.dump(reply, origin_styles(origins), keep=5)
            parts = []
            for s, e, i in origins:
                lo = start + s - sum(len(o) for o in outputs[:i])
                name = f"{COMMANDS[i].decode()}#{i + 1}"
                parts.append(f"{name} (whole)" if e - s == len(outputs[i]) else f"{name} bytes {lo}-{lo + e - s - 1}")
            ok = reply == output
            out.line(f"client prints as the output of {cmd.decode()!r}: " + " + ".join(parts), style="good" if ok else "bad")
            rows.append((cmd.decode(), len(output), len(reply), " + ".join(parts), ok))
    _table(out, rows)
    return outputs, got


def _rsh_shell(out: Narrator, server: LocalServer, stage: Path, env: dict[str, str], outputs: list[bytes]) -> list[bytes]:
    """The same commands through a real rsh server, over one connection; return what the client got."""
    got: list[bytes] = []
    rows = []
    session = Session(server)
    try:
        out.write()
        out.line("client: connected; hello, auth, auth_ok: authenticated", style="recv")
        for i, cmd in enumerate(COMMANDS):
            stdout, stderr, status = session.run(cmd, cwd=str(stage), env={"PATH": env["PATH"], "LC_ALL": "C"})
            got.append(stdout + stderr)
            ok = got[-1] == outputs[i]
            name = f"{cmd.decode()}#{i + 1}"
            out.write()
            out.line(f"$ {cmd.decode()}", style="head")
            out.line(f"client: send exec frame, payload {cmd!r}", style="send")
            out.line(
                f"client: recv(1024) until the exit frame: stdout frames carry {len(stdout)} bytes, then "
                f"exit (exit_code={status.exit_code}, stdout_bytes={status.stdout_bytes})",
                style="recv",
            )
            out.line(
                f"client prints {len(got[-1])} bytes: {f'all of {name}, nothing else' if ok else 'not its output'}",
                style="good" if ok else "bad",
            )
            rows.append((cmd.decode(), len(outputs[i]), len(got[-1]), f"{name} (whole)" if ok else "something else", ok))
    finally:
        session.close()
    _table(out, rows)
    return got


def demo_classic(out: Narrator) -> DemoResult:
    """The tutorials' remote shell and file transfer, broken; then rsh doing the same right."""
    out.title("classic", "the tutorials' remote shell and file transfer", "经典错误：教程里的远程 shell 和文件传输")
    out.say(
        "Most socket tutorials build the same remote shell: the server runs each command line in a shell and sends "
        "back what it printed with one send(); the client calls recv(1024) once per command and prints what it got. "
        "Here it is on 127.0.0.1, running ls, ipconfig, ls in a staged directory (ipconfig is a script there that "
        f"prints {len(IPCONFIG)} bytes in the manner of Windows' ipconfig /all, so every machine sees the same bytes).",
        "大多数套接字教程都会写同一个远程 shell：服务端在 shell 里执行每一行命令，用一次 send() 把输出发回；客户端对每条命令"
        "调用一次 recv(1024)，把收到的内容打印出来。这里它在 127.0.0.1 上运行，在一个准备好的目录里依次执行 ls、ipconfig、"
        f"ls（ipconfig 是那里的一个脚本，仿照 Windows 的 ipconfig /all 输出 {len(IPCONFIG)} 字节，所以每台机器看到的字节都相同）。",
    )
    how_tcp(out)
    with staged() as (stage, env), local_server() as server:
        out.section("The tutorials' shell: one send() per output, one recv(1024) per command", "教程里的 shell：每个输出一次 send()，每条命令一次 recv(1024)")
        outputs, naive = _naive_shell(out, stage, env)
        cut = len(IPCONFIG) - 1024
        out.say(
            f"ipconfig's output is longer than the 1024 bytes the client asked for: the client prints its first 1024, and "
            f"the other {cut} stay in the socket. The next recv() returns them first, so the second ls 'prints' the end "
            "of ipconfig, and its own listing with it: the shell is now a command out of step, as in the tutorials' "
            "dir / ipconfig / dir table.",
            f"ipconfig 的输出比客户端请求的 1024 字节长：客户端打印了前 1024 字节，其余 {cut} 字节留在套接字里。下一次 recv() "
            "先返回它们，于是第二个 ls “打印”出了 ipconfig 的结尾，连同它自己的列表：这个 shell 从此错开了一条命令，正如教程里"
            " dir / ipconfig / dir 的那张表。",
            indent=2,
        )
        out.verdict(
            naive == outputs,
            "ipconfig is cut at 1024 bytes; its last bytes answer the next command.",
            "ipconfig 在 1024 字节处被截断；它的结尾成了下一条命令的回答。",
        )

        out.section("The same three commands through rsh (a real rsh server on 127.0.0.1)", "同样三条命令走 rsh（127.0.0.1 上真实的 rsh 服务端）")
        out.say(
            "A real 'rsh serve' on a free port, and a client that still reads with recv(1024), but hands every byte to "
            "rsh's frame decoder and prints a command's output once its exit frame has come. Output travels in stdout "
            "frames; how many, and how TCP cuts them into segments, does not matter.",
            "一个在空闲端口上运行的真实 “rsh serve”，客户端仍然用 recv(1024) 读取，但把每个字节都交给 rsh 的帧解码器，等到 exit "
            "帧到达才打印这条命令的输出。输出装在 stdout 帧里；有几个帧、TCP 怎样把它们切成报文段，都无关紧要。",
            indent=2,
        )
        framed = _rsh_shell(out, server, stage, env, outputs)
        out.verdict(framed == outputs, "every output arrives whole, with its own command.", "每个输出都完整到达，并且属于它自己的命令。")
        files = demo_file_transfer(out, stage, server)
    out.moral(
        "recv() returns what has arrived, up to what you asked for: count what it returned, and let the framing say where each message ends.",
        "recv() 返回的是已经到达的数据，最多到你请求的大小：要按它实际返回的字节计数，并由分帧说明每条消息在哪里结束。",
    )
    return DemoResult("classic", outputs, naive, framed, {"cut": 1024, "carried": naive[2][:cut], "files": files})
