"""``rsh -H h1,h2`` (also ``-g GROUP``, ``-f FILE``) with no command: one prompt, each line sent to every host.

In the manner of clusterssh, but with output read as ``rsh exec --group``
prints it: each distinct output once, under the hosts that gave it, so
twenty identical answers read as one.  Each host keeps its connection and
its shell session between lines (``cd``, ``export`` and ``unset`` persist
on every host, as in the single-host session API), and the prompt shows how
many hosts are connected, and how many lines failed where.  Lines run
without a terminal (``rsh exec -H``'s way): a program that needs one is the
single-host prompt's job.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import fanout_output as out
from .fanout import _group, _members, hosts_of

__all__ = ["run_prompt"]


def run_prompt(args: argparse.Namespace) -> int:
    """The broadcast prompt; return the last line's status (``fanout_output.exit_status``'s rule)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    from ..prompt.repl import history_file

    hosts = _members(args, hosts_of(args))
    names = list(hosts)
    session: PromptSession[str] = PromptSession(history=FileHistory(str(history_file())))
    status = 0
    with _group(args, hosts) as group:
        connected = len(names)
        while True:
            mark = f"[{status}] " if status else ""
            try:
                line = session.prompt(f"{mark}{connected}/{len(names)} hosts$ ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            text = line.strip()
            if not text:
                continue
            if text in (":exit", "exit", "logout"):
                break
            printer = out.Grouped(sys.stdout.buffer, sys.stderr.buffer)

            def one(client: Any, _m: Any, command: str = line) -> Any:
                return client.run(command, session=True)

            try:
                result = group.each(one, on_done=printer.done)
            except KeyboardInterrupt:
                print("rsh: interrupted; the hosts stop the line", file=sys.stderr)
                continue
            printer.finish(result)
            _say_failures(result)
            status = out.exit_status(result)
            connected = sum(1 for value in result.values() if out.outcome(value)[1] != 255)
    return status


def _say_failures(result: Any) -> None:
    """One line per host that answered with something other than output (unreachable, refused)."""
    for host, value in result.items():
        what, code = out.outcome(value)
        if code == 255:
            print(f"rsh: {host}: {what}", file=sys.stderr, flush=True)
