"""The rules an entry's path obeys, so that no entry can name anything outside the destination.

An entry is named relative to the source's root: ``""`` is the root
itself, ``"a/b"`` is ``b`` inside the root's directory ``a``.  Every
component is a plain name the receiver could create.
"""

from __future__ import annotations

from ..protocol.frames import Frame
from .fields import bad_field

__all__ = ["MAX_PATH_BYTES", "MAX_NAME_BYTES", "check_name", "check_entry_path"]

# Linux's PATH_MAX and NAME_MAX: no entry the receiver could create is longer.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


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

    Args:
        frame: the entry frame, named in the error.
        path: its ``path`` field, as it arrived.

    Returns:
        The path's components.

    Raises:
        ProtocolError: the path breaks a rule (``bad_field``).
    """
    if not isinstance(path, str):
        raise bad_field(frame, "'path' must be a string")
    if path == "":
        return ()
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise bad_field(frame, f"'path' is over {MAX_PATH_BYTES} bytes")
    parts = tuple(path.split("/"))
    if not all(check_name(p) for p in parts):
        raise bad_field(frame, f"'path' {path!r} is not a relative path of plain names")
    return parts
