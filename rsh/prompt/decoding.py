"""Turn a command's output bytes into text for the terminal, chunk by chunk.

Output arrives in frames cut wherever the pipe was read, so a multi-byte
character can straddle two frames.  One incremental decoder per stream keeps
the partial character until its last byte arrives, so it prints whole.

Beyond that, ``StreamDecoder`` notices the classic mix-up of a UTF-8 server
running a program that writes GBK: when a stream is invalid in the declared
encoding but valid in a likely alternative, it switches that stream and says
so once.  An encoding the user chose (``:encoding``) is never second-guessed.
Bytes that fit no encoding show as U+FFFD; nothing here raises.
"""

from __future__ import annotations

import codecs

__all__ = ["ALTERNATIVES", "StreamDecoder", "BinaryGate", "binary_summary"]

#: Encodings worth trying when output is invalid in the declared one.  Only
#: multi-byte encodings with strict rules: a single-byte one (latin-1,
#: cp1252) accepts any bytes at all, so "valid" would prove nothing.
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "utf-8": ("gbk", "big5", "shift_jis"),
    "gbk": ("utf-8",),
    "gb2312": ("utf-8", "gbk"),
    "big5": ("utf-8",),
    "shift_jis": ("utf-8",),
}


class StreamDecoder:
    """Decode one output stream incrementally, switching encoding at most once.

    Args:
        encoding: what the server declared (or the user chose).
        pinned: the user chose it; never switch away from it.
    """

    def __init__(self, encoding: str, *, pinned: bool = False) -> None:
        self.encoding = codecs.lookup(encoding).name
        self.pinned = pinned
        self.switched_from: str | None = None
        self._strict = True
        self._decoder = codecs.getincrementaldecoder(self.encoding)("strict")

    def decode(self, data: bytes, final: bool = False) -> tuple[str, str | None]:
        """Return the text *data* completes, and a one-time notice if the encoding switched."""
        if not self._strict:
            return self._decoder.decode(data, final), None
        held = self._decoder.getstate()[0]
        try:
            return self._decoder.decode(data, final), None
        except UnicodeDecodeError:
            pass
        raw = held + data
        if not self.pinned and self.switched_from is None:
            for alt in ALTERNATIVES.get(self.encoding, ()):
                candidate = codecs.getincrementaldecoder(alt)("strict")
                try:
                    text = candidate.decode(raw, final)
                except UnicodeDecodeError:
                    continue
                self.switched_from, self.encoding, self._decoder = self.encoding, alt, candidate
                return text, f"output is not valid {self.switched_from} but is valid {alt}: showing it as {alt} (:encoding NAME to choose)"
        # No better reading: keep the encoding, show bad bytes as U+FFFD.
        self._strict = False
        self._decoder = codecs.getincrementaldecoder(self.encoding)("replace")
        return self._decoder.decode(raw, final), None


# Bytes no text has: NUL, DEL and the C0 controls that no terminal output
# uses (tab, newline, carriage return, backspace, bell, form feed, vertical
# tab, ESC for colours and cursor moves, SO/SI for line drawing are text).
_BINARY = (frozenset(range(0x20)) - {0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x1B}) | {0x7F}
_LINE_LIMIT = 64 * 1024


def _first_binary(data: bytes | bytearray) -> int:
    """Index of the first binary byte in *data*, or -1."""
    # The C-speed test first: most output has no binary byte at all.
    if not data.translate(None, _TEXT_BYTES):
        return -1
    return next(i for i, b in enumerate(data) if b in _BINARY)


_TEXT_BYTES = bytes(b for b in range(256) if b not in _BINARY)


class BinaryGate:
    """The one rule for binary output, whatever the chunking: where it starts and ends is decided by the bytes alone.

    Text passes as it comes.  From the first binary byte (NUL, or a control
    character no terminal output uses) output is counted, not shown, up to
    the end of the last line that holds a binary byte; the first line after
    it that is all text ends the run, which shows as one
    ``[binary output: N bytes]`` line before it.  So ``echo start; head -c
    2000 /bin/ls; echo end`` shows start, the summary and end, however the
    bytes were cut into frames; a line of over 64 KiB inside a run is
    counted with it.
    """

    def __init__(self) -> None:
        self._run = 0  # bytes of the binary run so far (0: in text)
        self._line = bytearray()  # in a run: the line being judged
        self._tainted = False  # that line has a binary byte already counted

    def feed(self, data: bytes) -> list[bytes | int]:
        """What to show for *data*: text (bytes) and finished runs' sizes (int), in order."""
        out: list[bytes | int] = []
        while data:
            if not self._run:
                i = _first_binary(data)
                if i < 0:
                    out.append(data)
                    return out
                if i:
                    out.append(data[:i])
                # The run starts at the binary byte: the rest of its line is in it.
                end = data.find(b"\n", i)
                stop = len(data) if end < 0 else end + 1
                self._run = stop - i
                self._tainted = end < 0
                data = data[stop:]
                continue
            end = data.find(b"\n")
            piece, data = (data, b"") if end < 0 else (data[: end + 1], data[end + 1 :])
            self._line += piece
            if end < 0:
                if len(self._line) > _LINE_LIMIT:
                    self._run += len(self._line)
                    self._line.clear()
                    self._tainted = True
                continue
            line, self._line = bytes(self._line), bytearray()
            tainted, self._tainted = self._tainted, False
            if tainted or _first_binary(line) >= 0:
                self._run += len(line)
            else:
                out += [self._run, line]
                self._run = 0
        return out

    def finish(self) -> list[bytes | int]:
        """The end of the output: a run still open is summarised, a last line of text after it shown."""
        if not self._run:
            return []
        line, self._line = bytes(self._line), bytearray()
        run, self._run = self._run, 0
        tainted, self._tainted = self._tainted, False
        if line and not tainted and _first_binary(line) < 0:
            return [run, line]
        return [run + len(line)]


def binary_summary(size: int) -> str:
    """The line that stands for *size* bytes of binary output."""
    return f"[binary output: {size} bytes]\n"
