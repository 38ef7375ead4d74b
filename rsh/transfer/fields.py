"""Checking a transfer frame's header fields: the small tests every message's ``from_frame`` uses.

Each check either returns the field's value or raises the ``bad_field``
``ProtocolError`` that names the frame and what is wrong with it.
"""

from __future__ import annotations

import re

from ..errors import ProtocolError
from ..protocol.frames import Frame

__all__ = ["bad_field", "is_int", "is_sha256", "opt_str", "flag"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def bad_field(frame: Frame, what: str) -> ProtocolError:
    """Return the ``bad_field`` error for *frame*, saying *what* is wrong (for the caller to raise)."""
    return ProtocolError(f"{frame.type} frame: {what}", code="bad_field")


def is_int(v: object) -> bool:
    """True when *v* is an integer (and not a bool)."""
    # bool is an int in Python, but true is not a size.
    return isinstance(v, int) and not isinstance(v, bool)


def is_sha256(v: object) -> bool:
    """True when *v* is a SHA-256 as the protocol writes it: 64 lower-case hex digits."""
    return isinstance(v, str) and _SHA256.fullmatch(v) is not None


def opt_str(frame: Frame, name: str) -> str | None:
    """Return field *name*: a non-empty string without NUL, or None when absent.

    Raises:
        ProtocolError: the field is there but not such a string.
    """
    v = frame.get(name)
    if v is not None and (not isinstance(v, str) or not v or "\0" in v):
        raise bad_field(frame, f"{name!r} must be a non-empty string")
    return v


def flag(frame: Frame, name: str) -> bool:
    """Return boolean field *name* (false when absent).

    Raises:
        ProtocolError: the field is there but not true or false.
    """
    v = frame.get(name, False)
    if not isinstance(v, bool):
        raise bad_field(frame, f"{name!r} must be true or false")
    return v
