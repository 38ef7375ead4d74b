"""Restricted mode (``--allow-command``, ``--force-command``): what a client may run.

``CommandPolicy`` decides, for each ``exec``, what actually runs or why it
does not (``CommandRefused``); ``compile_pattern`` turns an
``--allow-command`` pattern into a regular expression whose wildcards never
match shell syntax, so an allowed prefix cannot smuggle in a second command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..protocol.messages import ExecRequest

__all__ = ["CommandPolicy", "CommandRefused", "SHELL_SPECIAL", "compile_pattern"]


class CommandRefused(Exception):
    """An ``exec`` the server will not run; ``code`` and ``message`` go into the ``error`` frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# What lets one command string do more than the command it starts with:
# separators, pipes, redirections, substitutions, subshells, and the quotes
# and escapes that could hide them.  A ``*`` or ``?`` in an --allow-command
# pattern never matches these; only the pattern's own literal text can.
SHELL_SPECIAL = ";&|<>()$`\\\"'\n\r"
_ANY = "[^" + re.escape(SHELL_SPECIAL) + "]"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Translate an fnmatch-style pattern whose wildcards stop at shell syntax.

    ``*`` is any run of characters, ``?`` one character and ``[...]`` /
    ``[!...]`` a class, as in ``fnmatch``, except that none of them matches
    a character of ``SHELL_SPECIAL``.  The pattern must match the whole command.
    """
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(_ANY + "*")
        elif c == "?":
            out.append(_ANY)
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))  # no closing bracket: a literal "["
                continue
            body = pattern[i:j].replace("\\", "\\\\")
            i = j + 1
            if body.startswith("!"):
                body = "^" + body[1:]
            elif body.startswith("^"):
                body = "\\" + body
            out.append(f"(?=[{body}]){_ANY}")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.S)


class CommandPolicy:
    """Restricted mode: what a client may run.

    Args:
        allow: ``--allow-command`` patterns (see ``compile_pattern``); a
            command must match one of them whole.
        force: ``--force-command``: run this instead of whatever the client
            asks, with the client's command in ``RSH_ORIGINAL_COMMAND``.

    In restricted mode an ``exec`` may not set ``env`` or ``cwd`` (either
    could change what an allowed command does: ``LD_PRELOAD``, a relative
    path), and commands run in the server's home directory.
    """

    def __init__(self, allow: Sequence[str] = (), force: str | None = None) -> None:
        if allow and force is not None:
            raise ValueError("--allow-command and --force-command cannot be combined: the forced command is all that runs")
        if force is not None and not force.strip():
            raise ValueError("--force-command needs a command")
        self.patterns = list(allow)
        self._compiled = [compile_pattern(p) for p in allow]
        self.force = force.encode("utf-8", "surrogateescape") if force is not None else None

    def __bool__(self) -> bool:
        return bool(self.patterns) or self.force is not None

    def decide(self, request: ExecRequest) -> tuple[ExecRequest, dict[bytes, bytes]]:
        """Return what to run for *request* and any environment to add.

        Raises:
            CommandRefused: ``not_allowed``.
        """
        if request.env or request.cwd is not None:
            which = "environment variables" if request.env else "a working directory"
            raise CommandRefused("not_allowed", f"this server runs in restricted mode and does not accept {which} from clients")
        if b"\0" in request.command:
            raise CommandRefused("not_allowed", "command contains a NUL byte")
        if self.force is not None:
            return request._replace(command=self.force), {b"RSH_ORIGINAL_COMMAND": request.command}
        text = request.command.decode("utf-8", "surrogateescape")
        if not any(p.fullmatch(text) for p in self._compiled):
            raise CommandRefused("not_allowed", "command not allowed: this server runs only the commands its operator listed")
        return request, {}
