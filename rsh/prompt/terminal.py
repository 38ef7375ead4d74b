"""The local terminal while a line runs remotely: raw keys out, the remote screen in, and always given back.

While a line runs, the remote terminal (a pseudo-terminal on the server) is
the one that edits, echoes and turns Ctrl-C into SIGINT, as under ssh: the
local one is put in raw mode (``LocalTerminal.raw``) and every key goes to
the server as it is typed.  What the remote screen shows is decoded in the
session's encoding and written out (``ScreenWriter``).  Whatever happens,
the local terminal gets its modes back exactly (``stty -a`` is the same) and
leaves any mode a full-screen program set and could not undo (it was
killed, the connection went): the alternate screen, a hidden cursor, mouse
reporting, bracketed paste, application keys.

Escapes, typed after a newline, as ssh's: ``~.`` disconnects, ``~?`` lists
them, ``~~`` sends one ``~`` (``EscapeFilter``, pure).
"""

from __future__ import annotations

import codecs
import os
import re
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager

from .decoding import BinaryGate, StreamDecoder, binary_summary

__all__ = ["EscapeFilter", "LocalTerminal", "ScreenWriter", "ESCAPE_HELP", "DISCONNECT", "HELP", "strip_answers"]

DISCONNECT = "disconnect"
HELP = "help"

ESCAPE_HELP = "Supported escape sequences (after a newline):\r\n ~.  - disconnect\r\n ~?  - this message\r\n ~~  - send the escape character\r\n"

# Modes a program may leave set: DEC private mode number -> what undoes it.
_MODE_RESETS = {
    "1049": "\x1b[?1049l",  # alternate screen (and the cursor it saved)
    "1047": "\x1b[?1047l",
    "47": "\x1b[?47l",
    "1": "\x1b[?1l\x1b>",  # application cursor keys (with the keypad's)
    "1000": "\x1b[?1000l",  # mouse reporting
    "1002": "\x1b[?1002l",
    "1003": "\x1b[?1003l",
    "1006": "\x1b[?1006l",
    "2004": "\x1b[?2004l",  # bracketed paste
}
_PRIVATE_MODE = re.compile(rb"\x1b\[\?([0-9;]+)([hl])")
# The answer to a cursor-position query the prompt made, arriving late: not a key.
_CPR = re.compile(rb"\x1b\[[0-9]+;[0-9]+R")


class EscapeFilter:
    """ssh's escapes in the keys typed (pure: keys in, keys to send and an action out)."""

    def __init__(self, char: bytes = b"~") -> None:
        self.char = char[0]
        self._line_start = True
        self._pending = False

    def feed(self, data: bytes) -> tuple[bytes, str | None]:
        """Return the keys to send and the escape action (``DISCONNECT``, ``HELP``) met, if any."""
        out = bytearray()
        for b in data:
            if self._pending:
                self._pending = False
                if b == ord("."):
                    return bytes(out), DISCONNECT
                if b == ord("?"):
                    self._line_start = False
                    return bytes(out), HELP
                if b != self.char:
                    out.append(self.char)
                out.append(b)
                self._line_start = b in (0x0D, 0x0A)
                continue
            if self._line_start and b == self.char:
                self._pending = True
                continue
            out.append(b)
            self._line_start = b in (0x0D, 0x0A, 0x03, 0x04, 0x15)
        return bytes(out), None


class ScreenWriter:
    """Writes what the remote side shows to the local terminal: decoded, re-encoded, binary summarised, modes tracked.

    Each stream (``tty``, or ``stdout`` and ``stderr`` in pipe mode) goes
    through the one binary rule (``rsh.prompt.decoding.BinaryGate``) and an
    incremental decoder in the session's encoding, which notices GBK or the
    like under a UTF-8 declaration and says so once (``StreamDecoder``);
    the text is written in the local terminal's encoding.

    Args:
        encoding: the session's (the server's) encoding.
        pinned: the person chose it: never switch away.
        out: where to write (the local terminal's descriptor).
    """

    def __init__(self, encoding: str, *, pinned: bool = False, out: int = 1) -> None:
        self.encoding = encoding
        self.pinned = pinned
        self._local = codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name
        self._out = out
        self._streams: dict[str, tuple[BinaryGate, StreamDecoder]] = {}
        self._said = False
        self._set: set[str] = set()
        self._cursor_hidden = False
        #: Whether the last character written ended a line.
        self.at_line_start = True

    def write(self, data: bytes, *, stream: str = "tty", newline: bytes = b"\n", red: bool = False) -> None:
        """Show *data* from *stream*; *newline*: what a bare newline becomes (``\\r\\n`` for a pipe's output on a raw terminal)."""
        if not data:
            return
        if stream == "tty" and b"\x1b[?" in data:
            self._track(data)
        gate, decoder = self._stream(stream)
        self._show(gate.feed(data), decoder, newline, red)

    def finish(self, newline: bytes = b"\n") -> None:
        """The line is over: show what each stream still holds (a binary run's summary, a last partial character)."""
        for gate, decoder in self._streams.values():
            self._show([*gate.finish(), b""], decoder, newline, False, final=True)

    def _stream(self, stream: str) -> tuple[BinaryGate, StreamDecoder]:
        found = self._streams.get(stream)
        if found is None:
            found = self._streams[stream] = (BinaryGate(), StreamDecoder(self.encoding, pinned=self.pinned))
        return found

    def _show(self, items: list[bytes | int], decoder: StreamDecoder, newline: bytes, red: bool, final: bool = False) -> None:
        parts: list[str] = []
        for item in items:
            if isinstance(item, int):
                parts.append(binary_summary(item))
                continue
            text, notice = decoder.decode(item, final)
            if notice and not self._said:
                self._said = True  # once a session, not once a line
                parts.append(f"{'' if self.at_line_start and not parts else chr(10)}rsh: {notice}\n")
            parts.append(text)
        text = "".join(parts)
        if not text:
            return
        if red:
            text = f"\x1b[31m{text}\x1b[0m"
        raw = text.encode(self._local, "replace")
        if newline != b"\n":
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", newline)
        self.at_line_start = raw.endswith(b"\n") or raw.endswith(b"\n\x1b[0m")
        _write_all(self._out, raw)

    def _track(self, data: bytes) -> None:
        for numbers, action in _PRIVATE_MODE.findall(data):
            for number in numbers.decode().split(";"):
                if number == "25":
                    self._cursor_hidden = action == b"l"
                elif number in _MODE_RESETS:
                    if action == b"h":
                        self._set.add(number)
                    else:
                        self._set.discard(number)

    def reset_modes(self) -> None:
        """Undo what a program left set (nothing when it cleaned up after itself)."""
        undo = "".join(_MODE_RESETS[n] for n in sorted(self._set)) + ("\x1b[?25h" if self._cursor_hidden else "")
        self._set.clear()
        self._cursor_hidden = False
        if undo:
            _write_all(self._out, undo.encode())

    def end_line(self) -> None:
        """Finish a line the output left unfinished, so that the prompt starts on its own."""
        if not self.at_line_start:
            _write_all(self._out, b"\r\n")
            self.at_line_start = True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            import select

            select.select([], [fd], [])
        except OSError:
            return  # the terminal is gone: nothing to show anything on


class LocalTerminal:
    """The local terminal (descriptor *fd*): its modes, saved once and put back on every way out."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.is_tty = os.isatty(fd)
        self._saved = termios.tcgetattr(fd) if self.is_tty else None

    def size(self) -> tuple[int, int]:
        """Rows and columns (0, 0 when unknown)."""
        for fd in (self.fd, 1, 2):
            try:
                cols, rows = os.get_terminal_size(fd)
                return rows, cols
            except OSError:
                continue
        return 0, 0

    @contextmanager
    def raw(self) -> Iterator[None]:
        """Raw mode for the duration (ssh's: no local echo, editing or signals; output untouched by the driver)."""
        if self._saved is None:
            yield
            return
        saved = termios.tcgetattr(self.fd)
        try:
            tty.setraw(self.fd, termios.TCSADRAIN)
            yield
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def restore(self) -> None:
        """Put back the modes the terminal had when rsh started."""
        if self._saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass


def strip_answers(keys: bytes) -> bytes:
    """*keys* without late answers to the prompt's cursor-position queries."""
    return _CPR.sub(b"", keys) if b"R" in keys else keys
