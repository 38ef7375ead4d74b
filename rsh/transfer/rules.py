"""What both roles of a transfer agree on, in one import: the flow limits, and the shared vocabulary.

The same two roles serve both directions: for ``put`` the client sends and
the server receives, for ``get`` the other way round.  This module defines
the two limits on how frames flow (``CHUNK``, ``MAX_IN_FLIGHT``) and gathers
the rest of what sender and receiver share from the modules that own it:

- ``rsh.transfer.messages``: the requests, entries and replies, checked;
- ``rsh.transfer.paths``: the rules a relative entry path must obey;
- ``rsh.transfer.failures``: failure codes, from an ``OSError`` or an ``error``;
- ``rsh.transfer.counts``: the counts behind a ``TransferResult``;
- ``rsh.results``: the result types the API returns.

Nothing here touches a file or a socket; ``rsh.transfer.send`` and
``rsh.transfer.receive`` do the file work.  docs/protocol.md is the
authority on the frames.
"""

from __future__ import annotations

from ..results import Failure, TransferProgress, TransferResult, printable
from .counts import TransferCounts
from .failures import FAILURE_CODES, failure_from_oserror, failure_notice, is_refusal
from .messages import ENTRY_TYPES, RECEIVER_TYPES, SENDER_TYPES, Entry, FileEnd, GetRequest, PutRequest, Ready, check_resume
from .paths import MAX_NAME_BYTES, MAX_PATH_BYTES, check_entry_path, check_name

__all__ = [
    "CHUNK",
    "MAX_IN_FLIGHT",
    "MAX_PATH_BYTES",
    "MAX_NAME_BYTES",
    "ENTRY_TYPES",
    "SENDER_TYPES",
    "RECEIVER_TYPES",
    "FAILURE_CODES",
    "Entry",
    "PutRequest",
    "GetRequest",
    "Ready",
    "FileEnd",
    "Failure",
    "TransferCounts",
    "TransferProgress",
    "TransferResult",
    "check_entry_path",
    "check_name",
    "check_resume",
    "failure_from_oserror",
    "failure_notice",
    "is_refusal",
    "printable",
]

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
