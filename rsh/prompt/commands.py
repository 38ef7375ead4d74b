"""The prompt's own commands (``:help``, ``:exit``, ...), parsed without side effects.

Anything that starts with ``:`` is ours and never reaches the remote shell.
``parse(line)`` returns a ``Builtin`` (name and arguments) or None for a
line meant for the shell; ``maybe_incomplete(text)`` says when a line may
need a continuation, which only the remote shell can then tell.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["BUILTINS", "Builtin", "parse", "maybe_incomplete", "help_text", "CommandLineError"]

#: name -> (usage, one-line description); :help prints them in this order.
BUILTINS: dict[str, tuple[str, str]] = {
    "help": (":help", "list the prompt's own commands"),
    "exit": (":exit [N]", "leave, with status N or the last line's (Ctrl-D on an empty line does too)"),
    "encoding": (":encoding [NAME|auto]", "show, pin or unpin the encoding output is decoded with"),
    "put": (":put LOCAL [REMOTE]", "copy a local file to the remote host"),
    "get": (":get REMOTE [LOCAL]", "copy a remote file here"),
    "trace": (":trace on|off", "show every frame crossing the wire"),
    "pty": (":pty on|off", "off: lines run with stdout and stderr apart (stderr red), not on the terminal"),
}


class CommandLineError(ValueError):
    """A prompt command was typed wrong; the message says how to type it."""


@dataclass(frozen=True)
class Builtin:
    """A parsed prompt command."""

    name: str
    args: tuple[str, ...] = ()


def parse(line: str) -> Builtin | None:
    """Parse *line*: a ``Builtin`` for ``:name args``, None for a shell command.

    Raises:
        CommandLineError: an unknown ``:name``, or unbalanced quotes.
    """
    text = line.strip()
    if not text.startswith(":"):
        return None
    try:
        words = shlex.split(text[1:])
    except ValueError as exc:
        raise CommandLineError(f"{exc} in {text!r}") from exc
    if not words:
        raise CommandLineError("':' alone is not a command; :help lists them")
    name = words[0]
    if name not in BUILTINS:
        raise CommandLineError(f"unknown command ':{name}'; :help lists them")
    return Builtin(name, tuple(words[1:]))


# What may make a line continue on the next (quotes, escapes, brackets,
# operators that want more, reserved words that open a block).  A line
# with none of them is complete in any shell; any other is asked about.
_MAYBE_OPEN = frozenset("'\"\\`$(){}[]|&<")
_OPENERS = frozenset("if then elif else case for while until do select function".split())


def maybe_incomplete(text: str) -> bool:
    """Whether *text* could be incomplete shell input (then the remote shell is asked; False is certain)."""
    return bool(_MAYBE_OPEN.intersection(text)) or not _OPENERS.isdisjoint(text.replace(";", " ").split())


def help_text() -> str:
    """The text :help prints."""
    width = max(len(usage) for usage, _ in BUILTINS.values())
    lines = ["Prompt commands (everything else runs on the remote host):"]
    lines += [f"  {usage:<{width}}  {desc}" for usage, desc in BUILTINS.values()]
    lines += [
        "",
        "Keys: Ctrl-R searches history, Tab completes, Ctrl-C clears the line, Ctrl-D on an",
        "      empty line leaves.  While a line runs, keys go to it as in a terminal (Ctrl-C,",
        "      Ctrl-Z, Ctrl-D); after a newline, ~. disconnects and ~? lists the escapes.",
    ]
    return "\n".join(lines)
