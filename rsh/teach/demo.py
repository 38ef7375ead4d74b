"""``rsh demo``: make TCP "sticky packets" happen on a real socket, then fix them with framing.

This is the entry ``rsh demo [NAME] [--lang zh]`` calls (``main``): it lists
the demos or runs them in order.  Each demo runs on 127.0.0.1 inside this one
process, over real sockets on free ports: first a naive sender and receiver
show the fault, then the same messages go through rsh's own codec
(``rsh.protocol.frames``) and arrive whole.  Where the parts live:

* ``rsh.teach.coalesce``, ``truncate``, ``header``, ``markers``, ``udp``: one demo each;
* ``rsh.teach.classic``: the tutorials' broken remote shell and file transfer,
  then a real rsh server (``rsh.teach.local``) doing the same;
* ``rsh.teach.wireshark``, ``capture``: the tools beside the demos (the Wireshark
  dissector ``rsh_wire.lua``, and a recorded session to open with it);
* ``rsh.teach.specimens``: the naive, marker and framed code under study,
  which docs/sticky-packets.md quotes;
* ``rsh.teach.harness``: the sockets that make the faults happen on every run;
* ``rsh.teach.narrator``: the bilingual narration and hex dumps;
* ``rsh.teach.staging``: what the demos share (``DemoResult``, the stand-in
  server's round trip).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .capture import demo_capture
from .classic import demo_classic
from .coalesce import demo_coalesce
from .harness import DemoError
from .header import demo_header
from .markers import demo_markers
from .narrator import Narrator, wrap
from .staging import DemoResult
from .truncate import demo_truncate
from .udp import demo_udp
from .wireshark import demo_wireshark

__all__ = ["DEMOS", "TOOLS", "Demo", "list_demos", "main", "run_demos"]


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
        Demo(
            "truncate",
            "recv(1024) cuts a 1517-byte reply; the rest turns up as the next command's output",
            "半包：recv(1024) 截断 1517 字节的回复，余下的成了下条命令的输出",
            demo_truncate,
        ),
        Demo(
            "header",
            "a real frame byte by byte; why the length is 4 fixed bytes, not str(len)",
            "逐字节拆开一个真实的帧；为什么长度是固定的 4 字节而不是 str(len)",
            demo_header,
        ),
        Demo("markers", "start/end marker strings, and the output that breaks them", "起止标记字符串，以及能破坏它的输出", demo_markers),
        Demo("udp", "the same two sends over UDP stay two datagrams", "同样两次发送走 UDP，仍是两个数据报", demo_udp),
        Demo(
            "classic",
            "the tutorials' remote shell (recv(1024)) and file transfer (recv(4096) counted down), then rsh doing both",
            "教程里的远程 shell（recv(1024)）和文件传输（按 4096 倒数），再看 rsh 怎么做",
            demo_classic,
        ),
    )
}

#: What ``rsh demo`` offers beside the demos (not part of ``all``): name -> (en, zh).
TOOLS: dict[str, tuple[str, str]] = {
    "wireshark": (
        "where the Wireshark dissector for rsh frames is; --install puts it in your plugin folder",
        "rsh 帧的 Wireshark 解析器在哪里；--install 把它装进你的插件目录",
    ),
    "capture": (
        "capture FILE.pcapng: record a real rsh session on loopback, to open in Wireshark",
        "capture FILE.pcapng：在回环地址上录下一次真实的 rsh 会话，用 Wireshark 打开",
    ),
}


def run_demos(names: Sequence[str], out: Narrator) -> list[DemoResult]:
    """Run the named demos in order, separated by a blank line and a rule."""
    results = []
    for i, name in enumerate(names):
        if i:
            out.rule()
        results.append(DEMOS[name].run(out))
    return results


def list_demos(out: Narrator) -> None:
    """Print what ``rsh demo`` offers."""
    out.say(
        'rsh demo NAME [--lang zh]: watch TCP "sticky packets" happen on a real socket, then watch framing fix them. '
        "Everything runs on 127.0.0.1 and needs no server of yours (classic starts a throw-away one).",
        "rsh demo 名称 [--lang zh]：在真实的套接字上观察 TCP“粘包”如何发生，再看分帧如何解决它。"
        "一切都在 127.0.0.1 上运行，不需要你自己的服务端（classic 会启动一个临时的）。",
    )
    out.write()
    for d in DEMOS.values():
        for line in wrap(out.t(d.en, d.zh), indent=" " * 13, first=f"  {d.name:<10} "):
            out.write(line)
    out.write(f"  {'all':<10} " + out.t("run them all, in this order", "按上面的顺序全部运行"))
    out.write()
    for tool, (en, zh) in TOOLS.items():
        for line in wrap(out.t(en, zh), indent=" " * 13, first=f"  {tool:<10} "):
            out.write(line)


def _usage(message: str) -> int:
    print(f"rsh: {message}", file=sys.stderr)
    return 2


def main(name: str | None, lang: str = "en", stream: TextIO | None = None, *, file: str | None = None, install: bool = False) -> int:
    """``rsh demo [NAME [FILE]] [--lang zh] [--install]``: return the exit status."""
    out = Narrator(stream, lang)
    if name and name != "all" and name not in DEMOS and name not in TOOLS:
        return _usage(f"no demo called {name!r}; choose one of {', '.join([*DEMOS, 'all', *TOOLS])}")
    if name == "capture" and not file:
        return _usage("rsh demo capture FILE.pcapng: say which file to write")
    if file and name != "capture":
        return _usage(f"rsh demo {name or ''} takes no file (only 'rsh demo capture FILE.pcapng' does)".replace("  ", " "))
    if install and name != "wireshark":
        return _usage("--install goes with 'rsh demo wireshark' only")
    try:
        if not name:
            list_demos(out)
        elif name == "wireshark":
            demo_wireshark(out, install)
        elif name == "capture":
            assert file is not None
            demo_capture(out, Path(file))
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
