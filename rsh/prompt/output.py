"""The prompt's writing to the terminal: command output as it arrives, and its own messages.

``Output`` writes stdout text as is and stderr text in red on a colour
terminal, and remembers whether the cursor is at the start of a line, so
that a message never lands after a command's unfinished last line.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

__all__ = ["Output"]


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
