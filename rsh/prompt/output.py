"""The prompt's writing to the terminal: command output as it arrives, and its own messages.

``Output`` writes stdout text as is and stderr text in red on a colour
terminal, and remembers whether the cursor is at the start of a line, so
that a message or the next prompt never lands after a command's unfinished
last line.  ``show`` streams one running command's output through it,
decoded per stream (rsh.prompt.decoding) and summarised when binary.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from ..client.aio import RemoteCommand
from .decoding import StreamDecoder, looks_binary

__all__ = ["Output", "show"]


def _use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    """Writes to sys.stdout and sys.stderr (looked up at each write, as print does)."""

    def __init__(self) -> None:
        self.colour = _use_colour(sys.stdout)
        self.at_line_start = True

    def emit(self, stream: str, text: str) -> None:
        """Write *text* from the remote command's *stream* (``stdout`` or ``stderr``)."""
        if not text:
            return
        if stream == "stderr":
            self.write(sys.stderr, text, red=True)
        else:
            self.write(sys.stdout, text)

    def error(self, message: str) -> None:
        """Say ``rsh: message`` on a line of its own."""
        self.end_line()
        self.write(sys.stderr, f"rsh: {message}\n", red=True)

    def end_line(self) -> None:
        """Finish a line a command left unfinished."""
        if not self.at_line_start:
            self.write(sys.stdout, "\n")

    def write(self, out: TextIO, text: str, *, red: bool = False) -> None:
        """Write *text* to *out* now, in red if asked and the terminal shows colour."""
        if red and self.colour:
            text = f"\x1b[31m{text}\x1b[0m"
        try:
            out.write(text)
            out.flush()
        except UnicodeEncodeError:
            # A terminal that cannot show some character: show what it can.
            enc = out.encoding or "utf-8"
            out.write(text.encode(enc, "replace").decode(enc))
            out.flush()
        self.at_line_start = text.endswith("\n") or text.endswith("\n\x1b[0m")


async def show(cmd: RemoteCommand, out: Output, *, encoding: str, pinned: bool, quiet: bool = False) -> None:
    """Write *cmd*'s output through *out* as it arrives, until the command ends (nothing if *quiet*).

    *encoding* is what to decode with; *pinned* says the person chose it, so
    it is never second-guessed.
    """
    decoders = {s: StreamDecoder(encoding, pinned=pinned) for s in ("stdout", "stderr")}
    binary = {"stdout": 0, "stderr": 0}
    async for stream, data in cmd:
        if quiet:
            continue
        if binary[stream] or looks_binary(data):
            binary[stream] += len(data)
            continue
        text, notice = decoders[stream].decode(data)
        if notice:
            out.error(f"{stream}: {notice}")
        out.emit(stream, text)
    for stream, dec in decoders.items():
        if binary[stream]:
            out.emit(stream, f"[binary output: {binary[stream]} bytes]\n")
        else:
            out.emit(stream, dec.decode(b"", final=True)[0])
