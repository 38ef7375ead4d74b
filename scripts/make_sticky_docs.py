#!/usr/bin/env python3
"""Regenerate the captured output and quoted code in docs/sticky-packets.md.

The tutorial is prose written by hand around blocks this script fills in, so
what it shows is what the program really prints and really runs:

* ``<!-- demo: ARGS -->`` ... ``<!-- /demo -->``: the output of
  ``python -m rsh demo ARGS`` with ``NO_COLOR=1``.
* ``<!-- code: NAME [NAME...] -->`` ... ``<!-- /code -->``: the source of
  those functions, from whichever module of ``rsh/teach/`` defines them.
* ``<!-- trace -->`` ... ``<!-- /trace -->``: a real ``rsh exec --trace``
  session against a throw-away server; only with ``--trace``, since its
  nonces and timings differ on every run.
* ``<!-- tshark -->`` ... ``<!-- /tshark -->``: a session recorded with
  ``rsh demo capture`` and read back by tshark with the rsh dissector; only
  with ``--trace`` too (and tshark installed), for the same reason.

Usage: ``python3 scripts/make_sticky_docs.py [--check] [--trace]``.
``--check`` changes nothing and exits 1 if the file is out of date (the test
suite runs it).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "sticky-packets.md"

BLOCK = re.compile(r"(<!-- (demo|code|trace|tshark)(?::([^>]*?))? -->\n)(.*?)(<!-- /\2 -->)", re.DOTALL)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def demo_output(args: str) -> str:
    """What ``python -m rsh demo ARGS`` prints."""
    r = subprocess.run(
        [sys.executable, "-m", "rsh", "demo", *args.split()],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    if r.returncode != 0:
        sys.exit(f"rsh demo {args} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def _teach_function(name: str) -> object:
    """The function called *name* in the rsh.teach module that defines it (not one that imports it)."""
    sys.path.insert(0, str(ROOT))
    import rsh.teach

    found = []
    for info in pkgutil.iter_modules(rsh.teach.__path__, "rsh.teach."):
        module = importlib.import_module(info.name)
        obj = getattr(module, name, None)
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            found.append(obj)
    if len(found) != 1:
        sys.exit(f"a code block names {name!r}, which {'no' if not found else 'more than one'} module in rsh/teach/ defines")
    return found[0]


def code(names: str) -> str:
    """The source of the named functions in rsh.teach."""
    return "\n\n".join(inspect.getsource(_teach_function(n)).rstrip() for n in names.split()) + "\n"


def trace_session() -> str:
    """A real ``rsh exec --trace`` against a server started for the purpose."""
    with tempfile.TemporaryDirectory() as tmp:
        env = _env()
        env["RSH_CONFIG_DIR"] = tmp
        env.pop("RSH_TOKEN", None)
        token = str(Path(tmp) / "token")
        rsh = [sys.executable, "-m", "rsh"]
        common: dict[str, Any] = {"cwd": ROOT, "env": env, "stdin": subprocess.DEVNULL, "text": True}
        server = subprocess.Popen(
            [*rsh, "serve", "--host", "127.0.0.1", "--port", "0", "--token-file", token], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **common
        )
        try:
            assert server.stderr is not None
            port = None
            for line in server.stderr:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m:
                    port = m.group(1)
                    break
            if port is None:
                sys.exit("rsh serve did not start")
            cmd = "echo hi; echo err >&2"
            r = subprocess.run(
                [*rsh, "exec", "-n", "--trace", "--token-file", token, f"127.0.0.1:{port}", "--", cmd],
                # One pipe for both, so trace lines and output keep the order a terminal would show.
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
                **common,
            )
        finally:
            server.terminate()
            server.wait(10)
            if server.stderr is not None:
                server.stderr.close()
    return f"$ rsh exec -n --trace 127.0.0.1:{port} -- '{cmd}'\n{r.stdout}"


def tshark_session() -> str:
    """``rsh demo capture`` of a real session, then tshark's packet list and its -V view of the exit frame."""
    import shutil

    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("the tshark block needs tshark (apt-get install tshark)")
    lua = "rsh/teach/rsh_wire.lua"
    with tempfile.TemporaryDirectory() as tmp:
        pcap = str(Path(tmp) / "session.pcapng")
        r = subprocess.run(
            [sys.executable, "-m", "rsh", "demo", "capture", pcap], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False
        )
        if r.returncode != 0:
            sys.exit(f"rsh demo capture failed:\n{r.stderr}")
        m = re.search(r"-d tcp\.port==\d+,rshwire", r.stdout)
        decode = [m.group(0).split()[0], m.group(0).split()[1]] if m else []
        shown = ["$ rsh demo capture session.pcapng"]
        for filt, more in (("rshwire", []), ('rshwire.type == "exit"', ["-O", "rshwire"])):
            argv = [tshark, "-r", pcap, "-X", f"lua_script:{lua}", *decode, "-Y", filt, *more]
            out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
            quoted = f"'{filt}'" if " " in filt else filt
            shown.append(" ".join(["$ tshark -r session.pcapng", f"-X lua_script:{lua}", *decode, "-Y", quoted, *more]))
            shown += [line.rstrip() for line in out.splitlines()]
    return "\n".join(shown) + "\n"


def render(text: str, with_trace: bool) -> str:
    def fill(m: re.Match[str]) -> str:
        kind, args = m.group(2), (m.group(3) or "").strip()
        if kind == "demo":
            body = f"```text\n$ rsh demo {args}\n{demo_output(args)}```\n"
        elif kind == "code":
            body = f"```python\n{code(args)}```\n"
        elif with_trace and kind == "tshark":
            body = f"```text\n{tshark_session()}```\n"
        elif with_trace:
            body = f"```text\n{trace_session()}```\n"
        else:
            return m.group(0)
        return m.group(1) + body + m.group(5)

    return BLOCK.sub(fill, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date; change nothing")
    parser.add_argument("--trace", action="store_true", help="also capture a fresh --trace session (needs no network)")
    args = parser.parse_args()
    old = DOC.read_text(encoding="utf-8")
    new = render(old, with_trace=args.trace and not args.check)
    if args.check:
        if new != old:
            diff = difflib.unified_diff(old.splitlines(), new.splitlines(), "docs/sticky-packets.md", "regenerated", lineterm="")
            print("\n".join(list(diff)[:60]))
            print("docs/sticky-packets.md is out of date: run python3 scripts/make_sticky_docs.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        DOC.write_text(new, encoding="utf-8")
        print(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
