"""What ``rsh exec -H ...`` prints: live ``host: `` lines, ``--group``'d outputs, ``--out-dir`` files, the summary.

Each printer takes output as it arrives (``output(host, stream, data)``,
called from the hosts' threads) and each host's end (``done``); ``finish``
is called once all have ended.  Whatever the printer, a host that failed
gets one ``rsh: HOST: why`` line on stderr as it ends, and the exit status
and the summary come from the same ``outcome`` of each host.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from ..errors import AuthError, CommandFailed, CommandTimeout, HostKeyError, RshConnectionError, RshError, TransferFailed
from ..results import CommandResult, GroupResult, TransferResult

__all__ = ["Printer", "Live", "Grouped", "OutDir", "outcome", "exit_status", "summary", "EXIT_UNREACHED"]

#: Some host could not be reached or authenticated (as ssh's 255).
EXIT_UNREACHED = 255
_EXIT_TIMEOUT = 124
_EXIT_FAILED = 1

# Prefix colours on a terminal, one per host in turn: green, yellow, blue, magenta, cyan, red.
_COLOURS = (32, 33, 34, 35, 36, 31)


def outcome(value: object) -> tuple[str, int]:
    """A host's status word for the summary, and the exit status it stands for.

    255 for a host not reached or not authenticated; 124 for a timeout;
    the remote status (128+N for signal N); 1 for a copy that left something behind.
    """
    if isinstance(value, CommandResult):
        return ("ok" if value.ok else value.status_text()), value.exit_status
    if isinstance(value, TransferResult):
        return ("ok", 0) if value.ok else (f"failed: {len(value.failures)} not copied", _EXIT_FAILED)
    if isinstance(value, CommandTimeout):
        return f"timeout after {value.result.elapsed:.1f}s", _EXIT_TIMEOUT
    if isinstance(value, CommandFailed):
        return value.result.status_text(), value.result.exit_status
    if isinstance(value, TransferFailed):
        return f"failed: {value}", _EXIT_FAILED
    if isinstance(value, RshConnectionError):
        return f"unreachable: {value}", EXIT_UNREACHED
    if isinstance(value, (AuthError, HostKeyError)):
        return f"not authenticated: {value}", EXIT_UNREACHED
    if isinstance(value, RshError):
        return f"error: {value}", EXIT_UNREACHED
    return f"error: {value}", EXIT_UNREACHED


def exit_status(result: GroupResult) -> int:
    """0 when every host succeeded; 255 if any was not reached or authenticated; else the largest status."""
    codes = [outcome(v)[1] for v in result.values()]
    if EXIT_UNREACHED in codes:
        return EXIT_UNREACHED
    return max(codes, default=0)


def _bytes(value: object) -> int:
    if isinstance(value, CommandFailed):
        value = value.result
    if isinstance(value, CommandResult):
        return len(value.stdout) + len(value.stderr)
    if isinstance(value, TransferFailed):
        value = value.result
    if isinstance(value, TransferResult):
        return value.bytes
    return 0


def summary(result: GroupResult) -> str:
    """The table at the end: host, status, seconds, bytes (output, or bytes copied), then the counts."""
    rows = [("HOST", "STATUS", "TIME", "BYTES")]
    counts: dict[str, int] = {}
    for host, value in result.items():
        status, code = outcome(value)
        kind = "ok" if code == 0 else "unreachable" if code == EXIT_UNREACHED else "failed"
        counts[kind] = counts.get(kind, 0) + 1
        rows.append((host, status, f"{result.elapsed.get(host, 0.0):.2f}s", str(_bytes(value))))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[2]:>{widths[2]}}  {r[3]:>6}  {r[1]}" for r in rows]
    told = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    lines.append(f"{len(result)} host{'s' if len(result) != 1 else ''}: {told}")
    return "\n".join(lines) + "\n"


class Printer:
    """Says each failed host's line on stderr as it ends; prints no output (``--out-dir`` adds files)."""

    def __init__(self, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.lock = threading.Lock()
        #: The reader of our stdout left (``| head``): the hosts still writing are stopped, quietly.
        self.reader_left = False

    def output(self, host: str, stream: str, data: bytes) -> None:
        pass

    def done(self, host: str, value: object, elapsed: float) -> None:
        if self.reader_left and isinstance(value, BrokenPipeError):
            return
        status, code = outcome(value)
        if code != 0:
            self.write(self.stderr, f"rsh: {host}: {status}\n".encode("utf-8", "replace"))

    def finish(self, result: GroupResult) -> None:
        pass

    def write(self, out: IO[bytes], data: bytes) -> None:
        """Write and flush; a closed stdout raises BrokenPipeError, which stops the host whose output it was."""
        with self.lock:
            if self.reader_left and out is self.stdout:
                raise BrokenPipeError("stdout was closed")
            try:
                out.write(data)
                out.flush()
            except BrokenPipeError:
                if out is self.stdout:
                    self.reader_left = True
                raise


class Live(Printer):
    """Every line as it arrives, ``host: `` before it (coloured on a terminal); a last line without newline ends at the host's end."""

    def __init__(self, stdout: IO[bytes], stderr: IO[bytes], hosts: list[str], colour: bool) -> None:
        super().__init__(stdout, stderr)
        self.prefix = {h: _prefix(h, _COLOURS[i % len(_COLOURS)] if colour else None) for i, h in enumerate(hosts)}
        self.partial: dict[tuple[str, str], bytes] = {}

    def output(self, host: str, stream: str, data: bytes) -> None:
        key = (host, stream)
        text = self.partial.pop(key, b"") + data
        *lines, rest = text.split(b"\n")
        if rest:
            self.partial[key] = rest
        if lines:
            prefix = self.prefix[host]
            self.write(self._out(stream), b"".join(prefix + line + b"\n" for line in lines))

    def done(self, host: str, value: object, elapsed: float) -> None:
        for stream in ("stdout", "stderr"):
            rest = self.partial.pop((host, stream), b"")
            if rest and not (self.reader_left and stream == "stdout"):
                self.write(self._out(stream), self.prefix[host] + rest + b"\n")
        super().done(host, value, elapsed)

    def _out(self, stream: str) -> IO[bytes]:
        return self.stdout if stream == "stdout" else self.stderr


def _prefix(host: str, colour: int | None) -> bytes:
    text = f"{host}: " if colour is None else f"\x1b[{colour}m{host}:\x1b[0m "
    return text.encode("utf-8", "replace")


class Grouped(Printer):
    """At the end, each distinct output once under the hosts that gave it (as ``clush -b``); stderr likewise, on stderr."""

    def finish(self, result: GroupResult) -> None:
        for stream, out in (("stdout", self.stdout), ("stderr", self.stderr)):
            same: dict[bytes, list[str]] = {}
            for host, value in result.items():
                text = _text_of(value, stream)
                if text:
                    same.setdefault(text, []).append(host)
            for text, hosts in same.items():
                self.write(out, grouped_block(hosts, text))


def grouped_block(hosts: list[str], text: bytes) -> bytes:
    """One ``--group`` block: a rule, the hosts and how many, a rule, the output (ending in a newline)."""
    title = f"{','.join(hosts)} ({len(hosts)})"
    rule = "-" * max(15, min(len(title), 79))  # as long as the title, within a terminal's width
    head = f"{rule}\n{title}\n{rule}\n".encode("utf-8", "replace")
    return head + text + (b"" if text.endswith(b"\n") else b"\n")


def _text_of(value: object, stream: str) -> bytes:
    if isinstance(value, CommandFailed):
        value = value.result
    if isinstance(value, CommandResult):
        return value.stdout if stream == "stdout" else value.stderr
    return b""


class OutDir(Printer):
    """Each host's stdout and stderr in ``DIR/HOST.stdout`` and ``DIR/HOST.stderr`` (as ``pssh -o DIR -e DIR``), written as it ends."""

    def __init__(self, stdout: IO[bytes], stderr: IO[bytes], directory: Path) -> None:
        super().__init__(stdout, stderr)
        self.directory = directory

    def done(self, host: str, value: object, elapsed: float) -> None:
        for stream in ("stdout", "stderr"):
            path = self.directory / f"{host}.{stream}"
            path.write_bytes(_text_of(value, stream))
        super().done(host, value, elapsed)


def make_out_dir(path: str) -> Path:
    """``--out-dir``'s directory, made if missing.

    Raises:
        OSError: it cannot be made (the caller says so in one line).
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"{directory}: not writable")
    return directory


def colours(env: Mapping[str, str]) -> bool:
    """Whether a terminal's output may be coloured (``NO_COLOR`` says no, as everywhere)."""
    return not env.get("NO_COLOR") and env.get("TERM") != "dumb"
