"""File transfer, the sans-I/O part: messages, path rules, failure codes, results.

A transfer moves one *source* (a file, a tree, or a stream) from a sender to
a receiver as a sequence of *entries*, each named by a path relative to the
source's root (``""`` is the root itself, ``"a/b"`` is inside it)::

    sender                                receiver
      file {path, mode, mtime_ns, length}  -->
                                         <--  ready {offset}        (or error)
      data ... file_end {length, sha256} -->
                                         <--  ok                    (or error)
      dir / symlink {path, ...}          -->
                                         <--  ok                    (or error)
      end                                -->
                                         <--  done

The same two roles serve both directions: for ``put`` the client sends and
the server receives, for ``get`` the other way round.  This module holds
what both roles agree on and nothing that touches a file or a socket:
message validation, the rules a relative path must obey, how an ``OSError``
becomes a failure code, and the result types the API returns.
``rsh.transfer.send`` and ``rsh.transfer.receive`` do the file work;
docs/protocol.md is the authority on the frames.
"""

from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ProtocolError
from ..results import Failure, TransferProgress, TransferResult, printable
from ..protocol.frames import Frame

__all__ = [
    "CHUNK",
    "MAX_IN_FLIGHT",
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
    "TransferProgress",
    "TransferResult",
    "check_entry_path",
    "check_name",
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

# Linux's PATH_MAX and NAME_MAX: no entry the receiver could create is longer.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255

#: Frames that announce an entry (sender to receiver).
ENTRY_TYPES = frozenset({"file", "dir", "symlink"})
#: Every frame a sender sends during a transfer.
SENDER_TYPES = ENTRY_TYPES | {"resume", "data", "file_end", "error", "end"}
#: Every frame a receiver sends during a transfer.
RECEIVER_TYPES = frozenset({"ready", "ok", "error", "done"})

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

_SHA256 = re.compile(r"[0-9a-f]{64}")

EntryKind = Literal["file", "dir", "symlink"]


def _bad(frame: Frame, what: str) -> ProtocolError:
    return ProtocolError(f"{frame.type} frame: {what}", code="bad_field")


def _is_int(v: object) -> bool:
    # bool is an int in Python, but true is not a size.
    return isinstance(v, int) and not isinstance(v, bool)


def check_name(name: str) -> bool:
    """True when *name* is one path component the receiver may create."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        return False
    try:
        return len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:
        return False


def check_entry_path(frame: Frame, path: object) -> tuple[str, ...]:
    """Split an entry's path into components, refusing anything that could leave the tree.

    ``""`` is the root (no components).  Otherwise every ``/``-separated
    component must be a plain name: no ``.``, ``..``, empty part or NUL,
    at most 255 bytes, and the whole at most 4096 bytes.

    Raises:
        ProtocolError: the path breaks a rule (``bad_field``).
    """
    if not isinstance(path, str):
        raise _bad(frame, "'path' must be a string")
    if path == "":
        return ()
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _bad(frame, f"'path' is over {MAX_PATH_BYTES} bytes")
    parts = tuple(path.split("/"))
    if not all(check_name(p) for p in parts):
        raise _bad(frame, f"'path' {path!r} is not a relative path of plain names")
    return parts


def _opt_str(frame: Frame, name: str) -> str | None:
    v = frame.get(name)
    if v is not None and (not isinstance(v, str) or not v or "\0" in v):
        raise _bad(frame, f"{name!r} must be a non-empty string")
    return v


def _bool(frame: Frame, name: str) -> bool:
    v = frame.get(name, False)
    if not isinstance(v, bool):
        raise _bad(frame, f"{name!r} must be true or false")
    return v


@dataclass(frozen=True, slots=True)
class PutRequest:
    """``put``: the client is about to send a source to ``path`` on the server."""

    path: str
    cwd: str | None = None
    #: ``path`` must be an existing directory (several sources, or a trailing slash).
    into: bool = False
    #: Keep partial data if interrupted, and continue from what an earlier one kept.
    resume: bool = False

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields."""
        fields: dict[str, Any] = {"path": self.path}
        if self.cwd is not None:
            fields["cwd"] = self.cwd
        if self.into:
            fields["into"] = True
        if self.resume:
            fields["resume"] = True
        return fields

    @classmethod
    def from_frame(cls, frame: Frame) -> PutRequest:
        """Validate a ``put`` frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        path = _opt_str(frame, "path")
        if path is None:
            raise _bad(frame, "'path' is required")
        return cls(path, _opt_str(frame, "cwd"), _bool(frame, "into"), _bool(frame, "resume"))


@dataclass(frozen=True, slots=True)
class GetRequest:
    """``get``: the client asks the server to send it ``path``."""

    path: str
    cwd: str | None = None
    recursive: bool = False

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields."""
        fields: dict[str, Any] = {"path": self.path}
        if self.cwd is not None:
            fields["cwd"] = self.cwd
        if self.recursive:
            fields["recursive"] = True
        return fields

    @classmethod
    def from_frame(cls, frame: Frame) -> GetRequest:
        """Validate a ``get`` frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        path = _opt_str(frame, "path")
        if path is None:
            raise _bad(frame, "'path' is required")
        return cls(path, _opt_str(frame, "cwd"), _bool(frame, "recursive"))


@dataclass(frozen=True, slots=True)
class Entry:
    """A ``file``, ``dir`` or ``symlink`` frame: one thing in the source."""

    kind: EntryKind
    path: str
    mode: int = 0o644
    mtime_ns: int = 0
    #: Files: the size when known (None for a stream).
    size: int | None = None
    #: Symlinks: what the link points to, verbatim.
    target: str | None = None
    #: The root entry only: the source's own name, used when the destination
    #: is a directory (None for a stream, which has no name).
    name: str | None = None
    parts: tuple[str, ...] = field(default=(), compare=False)

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields."""
        fields: dict[str, Any] = {"path": self.path, "mtime_ns": self.mtime_ns}
        if self.kind != "symlink":
            fields["mode"] = self.mode
        if self.kind == "file":
            # Not "size": that header field is the frame's payload length.
            fields["length"] = self.size
        if self.target is not None:
            fields["target"] = self.target
        if self.name is not None:
            fields["name"] = self.name
        return fields

    @classmethod
    def from_frame(cls, frame: Frame) -> Entry:
        """Validate an entry frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        kind = frame.type
        assert kind in ENTRY_TYPES
        parts = check_entry_path(frame, frame.get("path"))
        mode = frame.get("mode", 0o644 if kind != "dir" else 0o755)
        if not _is_int(mode) or not 0 <= mode <= 0o7777:
            raise _bad(frame, "'mode' must be an integer from 0 to 0o7777")
        mtime_ns = frame.get("mtime_ns", 0)
        if not _is_int(mtime_ns):
            raise _bad(frame, "'mtime_ns' must be an integer")
        size = frame.get("length")
        if size is not None and (not _is_int(size) or size < 0):
            raise _bad(frame, "'length' must be a non-negative integer or null")
        target = None
        if kind == "symlink":
            target = frame.get("target")
            if not isinstance(target, str) or not target or "\0" in target or len(target.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
                raise _bad(frame, "'target' must be a non-empty string of at most 4096 bytes")
        name = frame.get("name")
        if name is not None and (parts or not isinstance(name, str) or not check_name(name)):
            raise _bad(frame, "'name' is for the root entry only, and must be one plain name")
        return cls(kind, frame.get("path"), mode, mtime_ns, size, target, name, parts)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Ready:
    """``ready``: the receiver can take the file's data, from ``offset`` on.

    ``offset`` > 0 offers to resume: the receiver already holds that many
    bytes whose SHA-256 is ``sha256``.  The sender then answers ``resume``.
    """

    offset: int = 0
    sha256: str | None = None

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields."""
        if not self.offset:
            return {"offset": 0}
        return {"offset": self.offset, "sha256": self.sha256}

    @classmethod
    def from_frame(cls, frame: Frame) -> Ready:
        """Validate a ``ready`` frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        offset = frame.get("offset", 0)
        if not _is_int(offset) or offset < 0:
            raise _bad(frame, "'offset' must be a non-negative integer")
        digest = frame.get("sha256")
        if offset and (not isinstance(digest, str) or not _SHA256.fullmatch(digest)):
            raise _bad(frame, "'sha256' must be 64 lower-case hex digits when 'offset' is set")
        return cls(offset, digest if offset else None)


def check_resume(frame: Frame, offered: int) -> int:
    """Validate a ``resume`` frame answering an offer of *offered* bytes; return the offset.

    Raises:
        ProtocolError: the offset is neither 0 nor the offer.
    """
    offset = frame.get("offset")
    if not _is_int(offset) or offset not in (0, offered):
        raise _bad(frame, f"'offset' must be 0 or the {offered} bytes offered")
    return offset  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class FileEnd:
    """``file_end``: the file's data is complete (``length``, ``sha256``), or the sender gave up on it."""

    size: int = 0
    sha256: str = ""
    failure: Failure | None = None

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields."""
        if self.failure is not None:
            return {"failed": self.failure.code, "path": self.failure.path, "message": self.failure.message}
        return {"length": self.size, "sha256": self.sha256}

    @classmethod
    def from_frame(cls, frame: Frame) -> FileEnd:
        """Validate a ``file_end`` frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        if frame.get("failed") is not None:
            return cls(failure=_failure_fields(frame, frame.get("failed"), remote=True))
        size, digest = frame.get("length"), frame.get("sha256")
        if not _is_int(size) or size < 0:
            raise _bad(frame, "'length' must be a non-negative integer")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise _bad(frame, "'sha256' must be 64 lower-case hex digits")
        return cls(size, digest)


def _failure_fields(frame: Frame, code: object, *, remote: bool) -> Failure:
    path, message = frame.get("path"), frame.get("message")
    if code not in FAILURE_CODES or not isinstance(path, str) or not isinstance(message, str):
        raise _bad(frame, "a failure needs a known 'code', a 'path' and a 'message'")
    return Failure(path, str(code), message, remote)


def failure_notice(frame: Frame) -> Failure | None:
    """The entry failure an ``error`` frame reports, or None when it is a connection-ending error."""
    if frame.get("code") not in FAILURE_CODES or "path" not in frame.fields:
        return None
    return _failure_fields(frame, frame.get("code"), remote=True)


def is_refusal(frame: Frame) -> bool:
    """True when *frame* refuses a transfer request outright (restricted mode).

    Such an ``error`` (``not_allowed``, no ``path``) is the server's first
    answer to ``put`` or ``get``; it ends that transfer and leaves the
    connection usable.
    """
    return frame.type == "error" and frame.get("code") == "not_allowed" and "path" not in frame.fields


def failure_from_oserror(path: str, exc: OSError) -> Failure:
    """Name the failure an ``OSError`` stands for: code from errno, message from strerror."""
    code = _ERRNO_CODES.get(exc.errno or 0, "io_error")
    message = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP and message == os.strerror(errno.ELOOP):
        # What O_NOFOLLOW meeting a link means, in words.
        message = "is a symbolic link (not followed)"
    return Failure(path, code, message)


class TransferCounts:
    """What one end of a transfer has done so far, for ``Sender`` and ``Receiver`` alike."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self._started = time.monotonic()
        self._files = self._dirs = self._symlinks = 0
        #: Bytes of files in place; bytes that crossed the wire; bytes a resume kept.
        self._bytes = self._moved = self._resumed = 0
        self._last_sha: str | None = None

    def result(self) -> TransferResult:
        """What this transfer did."""
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
