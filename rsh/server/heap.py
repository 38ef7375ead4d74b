"""The server process's malloc settings: keep freed memory for the next buffer instead of giving it back.

A TLS stream makes every buffer anew: each read's frame is joined into one
``bytes`` for the SSL transport, and asyncio's SSL protocol reads each
batch of records out of its memory BIO as another (up to 256 KiB each).
With glibc's defaults the heap's top is trimmed after such a buffer is
freed, or the buffer is mapped and unmapped on its own, so the next one
lands on fresh pages: measured, 393k page faults per GiB, 1.4 s of the
server's kernel time (plain streams, which splice, fault 9k times).  With
allocations up to 1 MiB kept on the heap and 8 MiB of free heap kept at its
top, the same GiB faults a few hundred times, and the server's CPU per GiB
goes from 2.1 to 1.0 s.  The price is at most those 8 MiB held while idle.
"""

from __future__ import annotations

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Allocations up to this come from the heap (glibc's default is 128 KiB, raised as it goes).
MMAP_THRESHOLD = 1024 * 1024
#: The heap is trimmed only when this much is free at its top (default 128 KiB).
TRIM_THRESHOLD = 8 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep what ``MMAP_THRESHOLD`` and ``TRIM_THRESHOLD`` say; False where it is not glibc's."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # no ctypes, or a libc without mallopt (musl)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
