"""The prompt's ``:put LOCAL [REMOTE]`` and ``:get REMOTE [LOCAL]``.

Remote paths are relative to the session's working directory, and, as
with ``cp -r``, a directory is copied whole without a flag to remember.
A progress bar shows on a terminal's stderr; a one-line summary follows.
"""

from __future__ import annotations

import os
import sys
import time

from ..client.aio import AsyncClient
from ..errors import TransferFailed
from .commands import BUILTINS, Builtin
from .output import Output
from .progress import ProgressBar, format_summary

__all__ = ["copy"]


async def copy(client: AsyncClient, b: Builtin, cwd: str, out: Output) -> int:
    """Run the ``:put`` or ``:get`` *b* in the session at *cwd*; return its status (2: used wrong, 1: failed)."""
    if not 1 <= len(b.args) <= 2:
        out.error(f"usage: {BUILTINS[b.name][0]}")
        return 2
    if b.name == "put":
        local = os.path.expanduser(b.args[0])
        remote = b.args[1] if len(b.args) == 2 else "."
        label = f"{b.args[0]} -> {remote}"
    else:
        remote = b.args[0]
        local = os.path.expanduser(b.args[1]) if len(b.args) == 2 else "."
        label = f"{remote} -> {local}"
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    start = time.monotonic()
    try:
        if b.name == "put":
            result = await client.put(local, remote, recursive=os.path.isdir(local), cwd=cwd, progress=bar)
        else:
            result = await client.get(remote, local, recursive=True, cwd=cwd, progress=bar)
    except TransferFailed as exc:
        if bar is not None:
            bar.clear()
        for failure in exc.result.failures:
            if failure.code != "skipped":
                out.error(failure.line(exc.host))
        return 1
    finally:
        if bar is not None:
            bar.clear()
    print(format_summary(label, result, time.monotonic() - start), flush=True)
    return 0
