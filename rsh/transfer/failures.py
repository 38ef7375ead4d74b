"""Failure codes: what one entry's failure is called, and what an ``error`` frame in a transfer means.

An entry's failure (a ``Failure``: path, code, message) is reported and the
transfer goes on.  It is named here from an ``OSError`` (code from errno,
message from strerror) or read back from the peer's ``error`` frame, which
may instead be a refusal of the whole request or an error that ends the
connection.
"""

from __future__ import annotations

import errno
import os

from ..protocol.frames import Frame
from ..results import Failure
from .fields import bad_field

__all__ = ["FAILURE_CODES", "EntryRefused", "failure_from_frame", "failure_from_oserror", "failure_notice", "is_refusal"]

#: ``error`` codes that report one entry's failure; the connection stays up.
FAILURE_CODES = frozenset(
    {
        "not_found",
        "permission_denied",
        "is_a_directory",
        "not_a_directory",
        "not_regular",
        "exists",
        "no_space",
        "checksum_mismatch",
        "busy",
        "bad_name",
        "io_error",
        "aborted",
        "skipped",
    }
)

_ERRNO_CODES = {
    errno.ENOENT: "not_found",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EROFS: "permission_denied",
    errno.EISDIR: "is_a_directory",
    errno.ENOTDIR: "not_a_directory",
    errno.ELOOP: "not_a_directory",  # a symlink where we needed a directory
    errno.EEXIST: "exists",
    errno.ENOTEMPTY: "exists",
    errno.ENOSPC: "no_space",
    errno.EDQUOT: "no_space",
    errno.EFBIG: "no_space",
}


class EntryRefused(Exception):
    """An entry cannot be received; carries the failure to report."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def failure_from_oserror(path: str, exc: OSError) -> Failure:
    """Name the failure an ``OSError`` stands for: code from errno, message from strerror."""
    code = _ERRNO_CODES.get(exc.errno or 0, "io_error")
    message = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP and message == os.strerror(errno.ELOOP):
        # What O_NOFOLLOW meeting a link means, in words.
        message = "is a symbolic link (not followed)"
    return Failure(path, code, message)


def failure_from_frame(frame: Frame, code: object) -> Failure:
    """The peer's failure *frame* reports under *code* (an ``error``'s ``code``, a ``file_end``'s ``failed``).

    Raises:
        ProtocolError: an unknown code, or no ``path`` or ``message``.
    """
    path, message = frame.get("path"), frame.get("message")
    if code not in FAILURE_CODES or not isinstance(path, str) or not isinstance(message, str):
        raise bad_field(frame, "a failure needs a known 'code', a 'path' and a 'message'")
    return Failure(path, str(code), message, True)


def failure_notice(frame: Frame) -> Failure | None:
    """The entry failure an ``error`` frame reports, or None when it is a connection-ending error.

    Raises:
        ProtocolError: it names a known code and a path but no message.
    """
    if frame.get("code") not in FAILURE_CODES or "path" not in frame.fields:
        return None
    return failure_from_frame(frame, frame.get("code"))


def is_refusal(frame: Frame) -> bool:
    """True when *frame* refuses a transfer request outright (restricted mode).

    Such an ``error`` (``not_allowed``, no ``path``) is the server's first
    answer to ``put`` or ``get``; it ends that transfer and leaves the
    connection usable.
    """
    return frame.type == "error" and frame.get("code") == "not_allowed" and "path" not in frame.fields
