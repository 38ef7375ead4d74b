"""The demos' narration: bilingual paragraphs, technical lines, hex dumps and verdicts.

``Narrator`` writes everything a demo prints.  With ``lang="zh"`` each piece
of narration comes in Chinese with the English beneath it; text is wrapped to
a fixed width in terminal cells, so Chinese (two cells a character) lines up
too.  ``hexdump`` lays bytes out ``hexdump -C``-style with coloured spans, and
``frame_spans``, ``origin_spans`` and ``frames_text`` say which bytes are what.
"""

from __future__ import annotations

import json
import re
import struct
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import TextIO

from ..protocol.frames import Frame
from ..protocol.trace import printable, use_color

__all__ = ["Narrator", "Span", "frame_spans", "frames_text", "hexdump", "origin_spans", "origin_styles", "text_width", "wrap"]

# Narration is wrapped to a fixed width (not the terminal's) so that the
# output, and the docs captured from it, are the same everywhere.
_WIDTH = 78

_SGR = {
    "title": "1;4",
    "head": "1",
    "dim": "2",
    "bad": "1;31",
    "good": "1;32",
    "moral": "1;33",
    "send": "36",
    "recv": "32",
    "prefix": "33",
    "header": "36",
    "payload": "1",
    "m0": "34",
    "m1": "35",
    "m2": "33",
    "marker": "1;31",
}


def _cell_width(ch: str) -> int:
    # Chinese characters and full-width punctuation take two terminal cells.
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    """How many terminal cells *text* takes."""
    return sum(_cell_width(ch) for ch in text)


# Chinese has no spaces: every wide character is a place a line may break.
_TOKENS = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+|\s+")
_NO_LINE_START = set("，。、；：！？）」』》")


def wrap(text: str, width: int = _WIDTH, indent: str = "", first: str | None = None) -> list[str]:
    """Wrap *text* (English, Chinese, or both mixed) to *width* terminal cells."""
    lines: list[str] = []
    lead = indent if first is None else first
    cur, cur_w = lead, text_width(lead)
    for tok in _TOKENS.findall(text):
        if tok.isspace():
            if cur.strip():
                cur, cur_w = cur + " ", cur_w + 1
            continue
        w = text_width(tok)
        if cur_w + w > width and cur.strip() and tok not in _NO_LINE_START:
            lines.append(cur.rstrip())
            cur, cur_w = indent, text_width(indent)
        cur, cur_w = cur + tok, cur_w + w
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


Span = tuple[int, int, str]


class Narrator:
    """Writes a demo's narration, byte dumps and verdicts to a text stream.

    ``lang="zh"`` prints each piece of narration in Chinese with the English
    beneath it; labels inside dumps and tables stay in English.
    """

    def __init__(self, stream: TextIO | None = None, lang: str = "en", color: bool | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        if lang not in ("en", "zh"):
            raise ValueError(f"unknown language {lang!r}; one of en, zh")
        self.lang = lang
        self.color = use_color(self.stream) if color is None else color

    def paint(self, style: str | None, text: str) -> str:
        if not self.color or not style or not text:
            return text
        return f"\x1b[{_SGR[style]}m{text}\x1b[0m"

    def write(self, line: str = "") -> None:
        self.stream.write(line + "\n")

    def t(self, en: str, zh: str) -> str:
        """Pick the text for a short label."""
        return zh if self.lang == "zh" else en

    def title(self, name: str, en: str, zh: str) -> None:
        self.write(self.paint("title", f"== rsh demo {name}: {en} =="))
        if self.lang == "zh":
            self.write(self.paint("title", f"== {zh} =="))
        self.write()

    def section(self, en: str, zh: str) -> None:
        self.write()
        self.write(self.paint("head", f"-- {en}"))
        if self.lang == "zh":
            self.write(self.paint("head", f"-- {zh}"))

    def say(self, en: str, zh: str, *, style: str | None = None, label: tuple[str, str] | None = None, indent: int = 0) -> None:
        """A paragraph of narration: Chinese then English with ``--lang zh``."""
        pad = " " * indent
        texts = [(zh, label[1] if label else ""), (en, label[0] if label else "")] if self.lang == "zh" else [(en, label[0] if label else "")]
        for i, (text, lab) in enumerate(texts):
            # A full-width colon already carries its own space.
            head = (lab if lab.endswith("：") else f"{lab} ") if lab else ""
            lines = wrap(head + text, indent=pad + " " * (2 if lab else 0), first=pad)
            # In bilingual output the English echo is dimmed so the Chinese leads.
            sty = style if i == 0 or style else "dim"
            for line in lines:
                self.write(self.paint(sty, line))

    def line(self, text: str, *, style: str | None = None, indent: int = 2) -> None:
        """One technical line (not translated): sizes, calls, decoded frames."""
        self.write(" " * indent + self.paint(style, text))

    def how(self, en: str, zh: str) -> None:
        """Say what was done to make the effect happen on every run."""
        self.say(en, zh, label=("[repeatable]", "[可复现]"), style="dim", indent=2)

    def verdict(self, ok: bool, en: str, zh: str) -> None:
        self.say(en, zh, style="good" if ok else "bad", label=("OK:", "正确：") if ok else ("WRONG:", "错误："), indent=2)

    def rule(self) -> None:
        """A dim line across the page, between two demos."""
        self.write()
        self.write(self.paint("dim", "-" * _WIDTH))
        self.write()

    def moral(self, en: str, zh: str) -> None:
        self.write()
        self.say(en, zh, style="moral", label=("Moral:", "要点："))

    def dump(self, data: bytes, spans: Sequence[Span] = (), *, indent: int = 4, keep: int | None = 6, style: str | None = None) -> None:
        """Hex and text side by side, 16 bytes a line, offsets in decimal.

        *spans* colour byte ranges; when a dump is longer than *keep* lines
        only the first two, the last, and those where a span starts are shown.
        """
        for line in hexdump(data, spans, keep=keep, paint=self.paint, style=style):
            self.write(" " * indent + line)


def hexdump(
    data: bytes,
    spans: Sequence[Span] = (),
    *,
    keep: int | None = None,
    paint: Callable[[str | None, str], str] = lambda s, t: t,
    style: str | None = None,
) -> list[str]:
    """Return ``hexdump -C``-like lines for *data* (offsets in decimal)."""
    if not data:
        return ["(no bytes)"]
    styles: list[str | None] = [style] * len(data)
    for start, end, sty in spans:
        for i in range(max(start, 0), min(end, len(data))):
            styles[i] = sty
    nlines = (len(data) + 15) // 16
    shown = set(range(nlines))
    if keep is not None and nlines > keep:
        shown = {0, 1, nlines - 1} | {s // 16 for s, _, _ in spans if 0 < s < len(data)}
    out: list[str] = []
    prev = -1
    for ln in sorted(shown):
        if ln != prev + 1:
            skipped = ln - prev - 1
            out.append(
                f"{'':5}  ... {skipped} line{'s' if skipped > 1 else ''} "
                f"({sum(min(16, len(data) - (prev + 1 + k) * 16) for k in range(skipped))} bytes) not shown"
            )
        prev = ln
        base = ln * 16
        chunk = data[base : base + 16]
        line_styles = styles[base : base + len(chunk)]
        cells = [f"{b:02x}" for b in chunk]
        left = _runs(cells[:8], line_styles[:8], " ", paint)
        right = _runs(cells[8:], line_styles[8:], " ", paint)
        plain_width = len(chunk[:8]) * 3 - 1 + (2 + len(chunk[8:]) * 3 - 1 if chunk[8:] else 0)
        hex_part = left + ("  " + right if right else "") + " " * (48 - plain_width)
        text = _runs([printable(bytes([b])) for b in chunk], line_styles, "", paint)
        out.append(f"{base:5d}  {hex_part}  |{text}|")
    return out


def _runs(cells: Sequence[str], styles: Sequence[str | None], sep: str, paint: Callable[[str | None, str], str]) -> str:
    """Join *cells* with *sep*, painting each run of same-style cells once (fewer escape codes)."""
    out: list[str] = []
    i = 0
    while i < len(cells):
        j = i
        while j < len(cells) and styles[j] == styles[i]:
            j += 1
        out.append(paint(styles[i], sep.join(cells[i:j])))
        i = j
    return sep.join(out)


def frame_spans(wire: bytes, base: int = 0) -> list[Span]:
    """Spans colouring the prefix, header and payload of each frame in *wire*."""
    spans: list[Span] = []
    pos = 0
    while pos + 4 <= len(wire):
        (hlen,) = struct.unpack_from("!I", wire, pos)
        if pos + 4 + hlen > len(wire):
            break  # a header cut short: leave the rest uncoloured
        size = json.loads(wire[pos + 4 : pos + 4 + hlen]).get("size", 0)
        spans += [
            (base + pos, base + pos + 4, "prefix"),
            (base + pos + 4, base + pos + 4 + hlen, "header"),
            (base + pos + 4 + hlen, base + pos + 4 + hlen + size, "payload"),
        ]
        pos += 4 + hlen + size
    return spans


def origin_spans(chunks: Sequence[bytes], start: int, length: int) -> list[tuple[int, int, int]]:
    """Split stream range [start, start+length) by which chunk each byte came from: (begin, end, chunk index), relative to start."""
    out: list[tuple[int, int, int]] = []
    pos = 0
    for idx, chunk in enumerate(chunks):
        lo, hi = max(pos, start), min(pos + len(chunk), start + length)
        if lo < hi:
            out.append((lo - start, hi - start, idx))
        pos += len(chunk)
    return out


def origin_styles(origins: Sequence[tuple[int, int, int]]) -> list[Span]:
    """Spans giving each message's bytes (from ``origin_spans``) its own colour."""
    return [(s, e, f"m{i}") for s, e, i in origins]


def frames_text(frames: Sequence[Frame]) -> str:
    """Decoded frames on one line: type, size and the start of each payload."""
    parts = []
    for f in frames:
        if f.type == "exit":
            parts.append(f"exit (exit_code={f.get('exit_code')})")
        else:
            shown = f.payload if len(f.payload) <= 24 else f.payload[:20] + b"..."
            parts.append(f"{f.type} {len(f.payload)} B {shown!r}")
    return ", ".join(parts)
