"""The messages of a transfer: the requests, the entries, the replies, the end of a file's data.

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

Each class here turns one frame's header into checked values
(``from_frame``) and back (``to_fields``); nothing here touches a file or
a socket.  docs/protocol.md, "Transfers", is the authority on the frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from ..protocol.frames import Frame
from ..protocol.messages import ENTRY_TYPES
from ..results import Failure
from .failures import failure_from_frame
from .fields import bad_field, flag, is_int, is_sha256, opt_str
from .paths import MAX_PATH_BYTES, check_entry_path, check_name

__all__ = [
    "ENTRY_TYPES",
    "EntryKind",
    "PutRequest",
    "GetRequest",
    "Entry",
    "Ready",
    "FileEnd",
    "check_resume",
]


EntryKind = Literal["file", "dir", "symlink"]


@dataclass(frozen=True, slots=True)
class _Request:
    """What ``put`` and ``get`` have in common: a ``path``, a ``cwd``, and flags.

    Every field a subclass adds is a flag: a bool, sent only when true.
    """

    path: str
    cwd: str | None = None

    @classmethod
    def _flags(cls) -> tuple[str, ...]:
        # The fields after path and cwd, in the order they go on the wire.
        return tuple(f.name for f in dataclasses.fields(cls)[2:])

    def to_fields(self) -> dict[str, Any]:
        """Return the header fields."""
        fields: dict[str, Any] = {"path": self.path}
        if self.cwd is not None:
            fields["cwd"] = self.cwd
        for name in self._flags():
            if getattr(self, name):
                fields[name] = True
        return fields

    @classmethod
    def from_frame(cls, frame: Frame) -> Self:
        """Validate a request frame.

        Raises:
            ProtocolError: a field has the wrong type or value.
        """
        path = opt_str(frame, "path")
        if path is None:
            raise bad_field(frame, "'path' is required")
        flags = {name: flag(frame, name) for name in cls._flags()}
        return cls(path, opt_str(frame, "cwd"), **flags)


@dataclass(frozen=True, slots=True)
class PutRequest(_Request):
    """``put``: the client is about to send a source to ``path`` on the server."""

    #: ``path`` must be an existing directory (several sources, or a trailing slash).
    into: bool = False
    #: Keep partial data if interrupted, and continue from what an earlier one kept.
    resume: bool = False


@dataclass(frozen=True, slots=True)
class GetRequest(_Request):
    """``get``: the client asks the server to send it ``path``."""

    #: Send a directory and everything in it (else a directory is a failure).
    recursive: bool = False


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
        if not is_int(mode) or not 0 <= mode <= 0o7777:
            raise bad_field(frame, "'mode' must be an integer from 0 to 0o7777")
        mtime_ns = frame.get("mtime_ns", 0)
        if not is_int(mtime_ns):
            raise bad_field(frame, "'mtime_ns' must be an integer")
        size = frame.get("length")
        if size is not None and (not is_int(size) or size < 0):
            raise bad_field(frame, "'length' must be a non-negative integer or null")
        target = None
        if kind == "symlink":
            target = frame.get("target")
            if not isinstance(target, str) or not target or "\0" in target or len(target.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
                raise bad_field(frame, "'target' must be a non-empty string of at most 4096 bytes")
        name = frame.get("name")
        if name is not None and (parts or not isinstance(name, str) or not check_name(name)):
            raise bad_field(frame, "'name' is for the root entry only, and must be one plain name")
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
        if not is_int(offset) or offset < 0:
            raise bad_field(frame, "'offset' must be a non-negative integer")
        digest = frame.get("sha256")
        if offset and not is_sha256(digest):
            raise bad_field(frame, "'sha256' must be 64 lower-case hex digits when 'offset' is set")
        return cls(offset, digest if offset else None)


def check_resume(frame: Frame, offered: int) -> int:
    """Validate a ``resume`` frame answering an offer of *offered* bytes; return the offset.

    Raises:
        ProtocolError: the offset is neither 0 nor the offer.
    """
    offset = frame.get("offset")
    if not is_int(offset) or offset not in (0, offered):
        raise bad_field(frame, f"'offset' must be 0 or the {offered} bytes offered")
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
            return cls(failure=failure_from_frame(frame, frame.get("failed")))
        size, digest = frame.get("length"), frame.get("sha256")
        if not is_int(size) or size < 0:
            raise bad_field(frame, "'length' must be a non-negative integer")
        if not is_sha256(digest):
            raise bad_field(frame, "'sha256' must be 64 lower-case hex digits")
        return cls(size, digest)
