"""What the prompt redoes after a reconnect: the session's exports and unsets, as shell commands."""

from __future__ import annotations

import re
import shlex

__all__ = ["restore_script"]

# Only names the shell would take: anything else in the server's report is not replayed.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def restore_script(exports: dict[str, str | None]) -> str:
    """Shell commands that redo *exports* (NAME -> value, or None when unset) in a new session."""
    parts = [f"export {name}={shlex.quote(value)}" for name, value in exports.items() if value is not None and _NAME.fullmatch(name)]
    gone = [name for name, value in exports.items() if value is None and _NAME.fullmatch(name)]
    if gone:
        parts.append("unset " + " ".join(gone))
    return "; ".join(parts)
