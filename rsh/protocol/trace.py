"""Show frames as they cross the wire: the formatter behind ``--trace``.

``make_tracer(sys.stderr)`` returns a ``TraceHook`` (see ``rsh.net.framed``)
that prints one line per frame::

    rsh trace send @0    prefix 00 00 00 1d  header {"type":"exec","size":8}  payload 8 B  65 63 68 6f 20 68 69 0a  |echo hi.|

direction, the frame's offset in that direction's byte stream, the 4-byte
length prefix in hex, the JSON header exactly as it went over the wire, and
the payload size with a short hex/text preview.  The offsets chain up: the
next frame starts at ``offset + 4 + len(header) + size``.  ``format_frame``
is pure, so any front end (``rsh exec``, the prompt) can reuse it; a
``Tracer`` can be switched off and on again through ``enabled``.
"""

from __future__ import annotations

import os
import struct
from typing import TextIO

from .frames import Frame

__all__ = ["Tracer", "format_frame", "make_tracer", "printable", "use_color", "PREFIX"]

#: Every trace line starts with this, so it can be told apart from the remote
#: command's own stderr, which shares the stream.
PREFIX = "rsh trace"

# ANSI SGR codes; kept to the eight basic colours so any terminal shows them.
_RESET = "\x1b[0m"
_STYLES = {
    "send": "\x1b[36m",  # cyan
    "recv": "\x1b[32m",  # green
    "prefix": "\x1b[33m",  # yellow
    "dim": "\x1b[2m",
}


def use_color(stream: TextIO) -> bool:
    """True when *stream* is a terminal and the user has not asked for plain text.

    Follows https://no-color.org: a non-empty ``NO_COLOR`` turns colour off,
    and so does ``TERM=dumb``.
    """
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or the stream is closed
        return False


def printable(data: bytes) -> str:
    """Return *data* as ASCII text, every non-printable byte shown as ``.`` (as ``hexdump -C`` does)."""
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


def format_frame(
    direction: str,
    frame: Frame,
    raw_header: bytes,
    offset: int,
    *,
    color: bool = False,
    preview: int = 16,
    max_header: int = 400,
) -> str:
    """Return the one-line description of a frame for ``--trace``.

    Args:
        direction: "send" or "recv".
        frame: the frame; only its type and payload are used.
        raw_header: the JSON header bytes exactly as on the wire (without the prefix).
        offset: where the frame's length prefix starts in that direction's stream.
        color: add ANSI colours.
        preview: how many payload bytes to show.
        max_header: longer headers (a big ``env``) are cut to this many characters.
    """

    def paint(style: str, text: str) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if color else text

    prefix_hex = " ".join(f"{b:02x}" for b in struct.pack("!I", len(raw_header)))
    header = raw_header.decode("utf-8", "replace")
    if len(header) > max_header:
        header = header[:max_header] + f"... ({len(raw_header)} B)"
    size = len(frame.payload)
    parts = [
        PREFIX,
        paint(direction if direction in _STYLES else "dim", f"{direction} @{offset:<6}"),
        "prefix " + paint("prefix", prefix_hex),
        f" header {header}",
        f" payload {size} B",
    ]
    if size:
        head = frame.payload[:preview]
        more = f" (+{size - len(head)} B)" if size > len(head) else ""
        hex_part = " ".join(f"{b:02x}" for b in head)
        parts.append(" " + paint("dim", f"{hex_part}  |{printable(head)}|{more}"))
    return " ".join(parts)


class Tracer:
    """A ``TraceHook`` that writes ``format_frame`` lines to a text stream.

    Set ``enabled`` to False to silence it without unhooking it (``:trace off``).
    """

    def __init__(self, stream: TextIO, *, color: bool | None = None) -> None:
        self.stream = stream
        self.color = use_color(stream) if color is None else color
        self.enabled = True

    def __call__(self, direction: str, frame: Frame, raw_header: bytes, offset: int) -> None:
        if not self.enabled:
            return
        self.stream.write(format_frame(direction, frame, raw_header, offset, color=self.color) + "\n")
        # Flushed per line so trace lines and the command's own stderr
        # (written straight to the buffer underneath) stay in order.
        self.stream.flush()


def make_tracer(stream: TextIO, *, color: bool | None = None) -> Tracer:
    """Return a trace hook printing every frame to *stream* (colour when it is a terminal)."""
    return Tracer(stream, color=color)
