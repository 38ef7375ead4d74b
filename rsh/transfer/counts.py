"""What one end of a transfer has done so far: the counts behind its result, and its progress reports.

``Sender`` and ``Receiver`` both keep them the same way: entries and bytes
in place, bytes that crossed the wire, bytes a resume kept, failures, and
a ``progress`` callback told as data moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..results import Failure, TransferProgress, TransferResult

__all__ = ["ProgressCallback", "TransferCounts"]

ProgressCallback = Callable[[TransferProgress], None]


class TransferCounts:
    """The tally of one end of a transfer, for ``Sender`` and ``Receiver`` alike.

    Args:
        progress: called as data moves (see ``TransferProgress``).
        sent_before: bytes already counted by earlier transfers of the same
            call, so ``TransferProgress.sent`` keeps growing across sources.
    """

    def __init__(self, *, progress: ProgressCallback | None = None, sent_before: int = 0) -> None:
        self.failures: list[Failure] = []
        self._progress = progress
        self._sent_before = sent_before
        self._started = time.monotonic()
        self._files = self._dirs = self._symlinks = 0
        #: Bytes of files in place; bytes that crossed the wire; bytes a resume kept.
        self._bytes = self._moved = self._resumed = 0
        self._last_sha: str | None = None

    def _report(self, path: str, done: int, size: int | None) -> None:
        """Tell the progress callback that *done* bytes of file *path* (of *size*) are across."""
        if self._progress is not None:
            self._progress(TransferProgress(path, done, size, self._sent_before + self._moved))

    def _file_in_place(self, size: int, resumed: int, sha256: str) -> None:
        """Count one file verified and in place."""
        self._files += 1
        self._bytes += size
        self._resumed += resumed
        self._last_sha = sha256

    def result(self) -> TransferResult:
        """What this transfer did.

        Returns:
            The counts so far; ``sha256`` only when exactly one file moved.
        """
        return TransferResult(
            files=self._files,
            dirs=self._dirs,
            symlinks=self._symlinks,
            bytes=self._bytes,
            sent=self._moved,
            resumed=self._resumed,
            elapsed=time.monotonic() - self._started,
            sha256=self._last_sha if self._files == 1 else None,
            failures=tuple(self.failures),
        )
