"""A file's running SHA-256, computed on another thread while this one moves the bytes.

hashlib lets go of the GIL while it hashes a buffer of more than 2047 bytes,
and so do file and socket calls: with the hashing on a worker thread, one
core hashes while the other reads the next chunks or writes the last ones,
where a single thread would do those one after the other.

Chunks go to the worker in batches of ``BATCH`` bytes, one batch at a time:
every hand-off costs a wake-up of the other thread and GIL traffic (dear on
a VM, where each is an interrupt between CPUs), so there are few of them,
and one batch hashing while the next fills is all the overlap there is to
have.  That also bounds what is held: two batches.  A file's first batch
is hashed on the caller's thread, so small files cost no hand-off at all.

The workers are one pool for the process, a thread per core at most, so
transfers in several threads (``rsh get -H``) still hash side by side.  A
hash has one batch out at a time, which keeps its chunks in order and its
hashlib object touched by one thread at a time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["RunningHash", "BATCH"]

#: Bytes handed to the worker at a time (8 data frames).
BATCH = 2 * 1024 * 1024

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # Imported only now: most commands never receive a big file.
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="rsh-sha256")
        return _pool


def _hash_all(h: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        h.update(chunk)


class RunningHash:
    """SHA-256 of everything passed to ``update``, in order; ``hexdigest`` waits for the worker.

    Args:
        start: a hash to continue (a resumed file's verified first bytes).
    """

    def __init__(self, start: hashlib._Hash | None = None) -> None:
        self._h = hashlib.sha256() if start is None else start
        self._batch: list[bytes] = []
        self._size = 0
        self._busy: Future[None] | None = None
        self._inline = True

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add *data*; it is held until hashed, so a mutable buffer is copied first."""
        if type(data) is not bytes:
            data = bytes(data)
        self._batch.append(data)
        self._size += len(data)
        if self._size < BATCH:
            return
        batch, self._batch, self._size = self._batch, [], 0
        if self._inline:
            self._inline = False
            _hash_all(self._h, batch)
            return
        self._settle()
        self._busy = _worker().submit(_hash_all, self._h, batch)

    def hexdigest(self) -> str:
        """The SHA-256 of all the data so far, as 64 lower-case hex digits."""
        self._settle()
        batch, self._batch, self._size = self._batch, [], 0
        _hash_all(self._h, batch)
        return self._h.hexdigest()

    def _settle(self) -> None:
        """Wait for the batch in hand, if any."""
        if self._busy is not None:
            busy, self._busy = self._busy, None
            busy.result()
