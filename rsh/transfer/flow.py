"""How a transfer's frames flow: the size of a data frame and how far a sender may run ahead.

The messages themselves are ``rsh.transfer.messages``'; docs/protocol.md is
the authority on the frames.
"""

from __future__ import annotations

__all__ = ["CHUNK", "MAX_IN_FLIGHT"]

# File data travels in frames of at most this many payload bytes.  A quarter
# of the default 1 MiB frame limit: big enough that per-frame costs (a header,
# a poll, a callback) vanish next to copying the bytes, small enough that a
# receiver holds little and a slow reader stalls the sender quickly.
CHUNK = 256 * 1024

# Entries a sender may have sent without their reply yet.  Replies to
# directories and symlinks are not waited for one by one (a round trip each
# would make a tree of small entries crawl), but without a cap a huge tree
# would queue unbounded replies and bookkeeping on both sides.
MAX_IN_FLIGHT = 64
