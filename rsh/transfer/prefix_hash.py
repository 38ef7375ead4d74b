"""Hashing a file's first bytes, the blocking work a resume offer needs on either side.

The receiver hashes what its partial file holds before it offers to
resume; the sender hashes as many of its own first bytes to decide
whether to accept.  Either may read a whole large file, so the job is
handed to its driver to run wherever blocking is fine (a worker thread).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from .flow import CHUNK

__all__ = ["PrefixHash", "prefix_hash_job"]

#: The outcome of a prefix hash: the hash so far and how many bytes it covers
#: (None when the file could not be read).
PrefixHash = tuple["hashlib._Hash", int] | None


def prefix_hash_job(fd: int, length: int) -> Callable[[], PrefixHash]:
    """Return a job hashing the first *length* bytes of *fd*, safe to run in another thread.

    The job works on its own duplicate of *fd* (made here, on the caller's
    thread), so the connection giving up and closing *fd* meanwhile cannot
    pull the descriptor from under it.

    Args:
        fd: the open file.
        length: how many bytes from its start to hash.

    Returns:
        The job: it returns the hash and the bytes it covers (fewer than
        *length* when the file is shorter), or None when a read fails.

    Raises:
        OSError: *fd* cannot be duplicated.
    """
    dup = os.dup(fd)

    def job() -> PrefixHash:
        h = hashlib.sha256()
        got = 0
        try:
            while got < length:
                data = os.pread(dup, min(4 * CHUNK, length - got), got)
                if not data:
                    break
                h.update(data)
                got += len(data)
        except OSError:
            return None
        finally:
            os.close(dup)
        return h, got

    return job
