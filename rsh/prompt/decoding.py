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

__all__ = ["ALTERNATIVES", "StreamDecoder", "looks_binary"]

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


def looks_binary(data: bytes) -> bool:
    """True when *data* is clearly not text: it holds NUL bytes."""
    return b"\0" in data


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
