"""``rsh demo``: make TCP "sticky packets" happen on a real socket, then fix them with framing.

This is the entry ``rsh demo [NAME] [--lang zh]`` calls (``main``): it lists
the demos or runs them in order.  Each demo runs on 127.0.0.1 inside this one
process, over real sockets on free ports: first a naive sender and receiver
show the fault, then the same messages go through rsh's own codec
(``rsh.protocol.frames``) and arrive whole.  Where the parts live:

* ``rsh.teach.coalesce``, ``truncate``, ``header``, ``markers``, ``udp``: one demo each;
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
from typing import TextIO

from .coalesce import demo_coalesce
from .harness import DemoError
from .header import demo_header
from .markers import demo_markers
from .narrator import Narrator, wrap
from .staging import DemoResult
from .truncate import demo_truncate
from .udp import demo_udp

__all__ = ["DEMOS", "Demo", "list_demos", "main", "run_demos"]


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
    )
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
        "Everything runs on 127.0.0.1 inside this process; no server is needed.",
        "rsh demo 名称 [--lang zh]：在真实的套接字上观察 TCP“粘包”如何发生，再看分帧如何解决它。一切都在本进程内的 127.0.0.1 上运行，不需要服务端。",
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
