"""What the server answers to a ``complete`` request: command and file names.

The prompt's Tab asks for the names that start with what has been typed:
command names found on the session's ``PATH``, or entries of a directory
relative to the session's working directory (directories end in ``/``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

__all__ = ["MAX_COMPLETIONS", "complete_commands", "complete_paths", "complete_variables"]

#: A Tab in a directory of 100,000 files must not send 100,000 names.
MAX_COMPLETIONS = 1000

# Scanning every PATH directory costs milliseconds; a person pressing Tab
# twice in a row should not pay twice.
_PATH_CACHE_SECONDS = 5.0
_path_cache: dict[str, tuple[float, list[str]]] = {}


def _commands_on(path: str) -> list[str]:
    hit = _path_cache.get(path)
    if hit is not None and time.monotonic() - hit[0] < _PATH_CACHE_SECONDS:
        return hit[1]
    names: set[str] = set()
    for directory in path.split(os.pathsep):
        try:
            with os.scandir(directory or ".") as it:
                for entry in it:
                    try:
                        if entry.is_file() and os.access(entry.path, os.X_OK):
                            names.add(entry.name)
                    except OSError:
                        continue
        except OSError:
            continue
    found = sorted(names)
    _path_cache[path] = (time.monotonic(), found)
    return found


def complete_commands(prefix: str, path: str) -> list[str]:
    """Executable names on *path* (a ``PATH`` value) that start with *prefix*."""
    return [n for n in _commands_on(path) if n.startswith(prefix)][:MAX_COMPLETIONS]


def complete_paths(prefix: str, cwd: str, home: str) -> list[str]:
    """Paths that complete *prefix*, as the user would type them.

    ``~/`` is expanded for the lookup but kept in the answer; relative
    prefixes are taken from *cwd*.  Directories get a trailing ``/``.
    """
    head, _, stem = prefix.rpartition("/")
    head = head + "/" if _ else ""
    lookup = head
    if lookup.startswith("~/") or lookup == "~":
        lookup = home + lookup[1:]
    directory = os.path.join(cwd, lookup) if lookup else cwd
    out: list[str] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if not entry.name.startswith(stem):
                    continue
                if entry.name.startswith(".") and not stem.startswith("."):
                    continue  # as shells do: hidden files only when asked for
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                out.append(head + entry.name + ("/" if is_dir else ""))
    except OSError:
        return []
    return sorted(out)[:MAX_COMPLETIONS]


def complete_variables(names: Iterable[str], prefix: str) -> list[str]:
    """The shell variables among *names* that start with *prefix*, sorted; never rsh's own ``__rsh_`` ones."""
    return sorted(n for n in names if n.startswith(prefix) and not n.startswith("__rsh_"))[:MAX_COMPLETIONS]
