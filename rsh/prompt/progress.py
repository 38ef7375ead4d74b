"""The transfer progress bar and the one-line summary, for a terminal.

``ProgressBar`` is a ``progress`` callback for ``Client.put``/``get`` that
redraws one line on a terminal stream.  It keeps quiet for the first
``DELAY`` seconds (a transfer that is over by then needs no bar) and redraws
at most ``REDRAW`` times a second, whatever the callback rate.  The
formatting functions are pure, so other front ends (the prompt) can use
them with their own output.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

from ..results import TransferProgress, TransferResult, printable

__all__ = ["ProgressBar", "format_bytes", "format_rate", "format_duration", "format_bar", "format_summary"]

# A transfer shorter than this never shows a bar: it would only flicker.
DELAY = 0.5
# Redraws per second at most: a terminal redrawn faster only costs CPU.
REDRAW = 10
# How quickly the shown rate follows the real one (seconds of memory).
RATE_WINDOW = 2.0


def format_bytes(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``200.0 MiB``, ``1.00 GiB``."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.2f} {unit}" if n < 10 else f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def format_rate(bytes_per_second: float) -> str:
    """``312.4 MiB/s``."""
    return f"{format_bytes(bytes_per_second)}/s"


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:34``, ``1:02:03``."""
    s = max(0, int(seconds + 0.5))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_bar(p: TransferProgress, rate: float, width: int) -> str:
    """One line, at most *width* columns: name, percent, bar, bytes, rate, ETA."""
    if p.size:
        frac = min(1.0, p.done / p.size)
        eta = format_duration((p.size - p.done) / rate) if rate > 0 else "--:--"
        right = f" {frac * 100:3.0f}% {format_bytes(p.done)}/{format_bytes(p.size)} {format_rate(rate)} ETA {eta}"
    else:
        frac = None
        right = f" {format_bytes(p.done)} {format_rate(rate)}"
    name = printable(p.path)
    bar_width = max(0, min(30, width - len(right) - 12))
    bar = ""
    if frac is not None and bar_width >= 5:
        filled = int(frac * bar_width)
        bar = " [" + "#" * filled + "." * (bar_width - filled) + "]"
    room = width - len(right) - len(bar) - 1
    if room < 4:
        return right.strip()[:width]
    if len(name) > room:
        name = "..." + name[-(room - 3) :]
    return f"{name:<{room}}{bar}{right}"[:width]


def format_summary(label: str, result: TransferResult, elapsed: float) -> str:
    """``LABEL: 1.00 GiB in 3.2 s (320.0 MiB/s), sha256 verified``."""
    parts = []
    if result.files != 1 or result.dirs or result.symlinks:
        counts = [f"{result.files} file{'s' * (result.files != 1)}"]
        if result.dirs:
            counts.append(f"{result.dirs} director{'ies' if result.dirs != 1 else 'y'}")
        if result.symlinks:
            counts.append(f"{result.symlinks} symlink{'s' * (result.symlinks != 1)}")
        parts.append(", ".join(counts))
    rate = result.sent / elapsed if elapsed > 0 else 0.0
    parts.append(f"{format_bytes(result.bytes)} in {elapsed:.1f} s ({format_rate(rate)})")
    if result.resumed:
        parts.append(f"resumed after {format_bytes(result.resumed)}")
    if result.files:
        parts.append("sha256 verified")
    return f"{printable(label)}: " + ", ".join(parts)


class ProgressBar:
    """A ``progress`` callback drawing a bar on *stream* (a terminal).

    Call ``clear()`` before writing anything else to *stream*.
    """

    def __init__(self, stream: TextIO, *, delay: float = DELAY) -> None:
        self.stream = stream
        self.delay = delay
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_sample = (self.start, 0)
        self._rate = 0.0
        self._drawn = False

    def __call__(self, p: TransferProgress) -> None:
        now = time.monotonic()
        t0, sent0 = self._last_sample
        if now - t0 >= 0.1:
            # Smoothed over about RATE_WINDOW seconds, so the ETA does not jump
            # with every scheduling hiccup.
            inst = (p.sent - sent0) / (now - t0)
            weight = min(1.0, (now - t0) / RATE_WINDOW)
            self._rate = inst if self._rate == 0 else self._rate + weight * (inst - self._rate)
            self._last_sample = (now, p.sent)
        if now - self.start < self.delay or now - self._last_draw < 1 / REDRAW:
            return
        self._last_draw = now
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.stream.write("\r" + format_bar(p, self._rate, width) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the bar, if it was drawn."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
