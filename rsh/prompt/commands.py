"""The prompt's own commands (``:help``, ``:exit``, ...), parsed without side effects.

Anything that starts with ``:`` is ours and never reaches the remote shell.
``parse(line)`` returns a ``Builtin`` (name and arguments) or None for a
line meant for the shell; ``needs_terminal(line)`` spots full-screen
programs that would hang without a pseudo-terminal.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["BUILTINS", "Builtin", "parse", "needs_terminal", "leave_status", "help_text", "CommandLineError"]

#: name -> (usage, one-line description); :help prints them in this order.
BUILTINS: dict[str, tuple[str, str]] = {
    "help": (":help", "list the prompt's own commands"),
    "exit": (":exit", "leave (Ctrl-D on an empty line does too)"),
    "encoding": (":encoding [NAME|auto]", "show, pin or unpin the encoding output is decoded with"),
    "put": (":put LOCAL [REMOTE]", "copy a local file to the remote host"),
    "get": (":get REMOTE [LOCAL]", "copy a remote file here"),
    "trace": (":trace on|off", "show every frame crossing the wire"),
}

# Programs that take over the screen and wait for keys: without a
# pseudo-terminal they would sit there with the user unable to reach them.
_FULL_SCREEN = frozenset(
    "vi vim nvim view vimdiff nano pico emacs mg joe micro ed top htop btop atop iotop "
    "less more most man info tmux screen ssh telnet ftp sftp mc watch nethack".split()
)


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


# Interpreters that, given no script or command, sit reading a terminal:
# with the empty stdin commands get here they would quietly exit instead.
_INTERACTIVE_ALONE = frozenset("python python3 python2 ipython bash sh dash zsh fish ksh node irb ruby perl php lua psql mysql sqlite3 bc gdb ftp".split())


def needs_terminal(line: str) -> str | None:
    """The program in *line* that needs a terminal: a full-screen one, or an interpreter with no arguments.

    Every command of a list or pipeline counts (``cd src; vim x``), not only the first.
    """
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    command: list[str] = []
    for token in [*tokens, ";"]:
        if token and set(token) <= set(";&|()"):
            found = _needs_terminal(command)
            if found:
                return found
            command = []
        else:
            command.append(token)
    return None


def _needs_terminal(words: list[str]) -> str | None:
    # Skip leading VAR=value assignments and `sudo`/`exec` wrappers.
    for i, word in enumerate(words):
        if "=" in word.split("/")[0] or word in ("sudo", "exec", "command", "nohup"):
            continue
        name = word.rsplit("/", 1)[-1]
        if name in _FULL_SCREEN:
            return None if name == "top" and ("-b" in words or "--batch" in words) else name
        alone = i == len(words) - 1
        return name if alone and name in _INTERACTIVE_ALONE else None
    return None


def leave_status(line: str, last: int = 0) -> int | None:
    """For a shell's ``exit [N]`` or ``logout`` typed at the prompt: the status to leave with.

    Without N that is *last*, the status of the last command, as in sh.
    """
    words = line.split()
    if words == ["logout"] or words == ["exit"]:
        return last & 0xFF
    if len(words) == 2 and words[0] == "exit" and words[1].isdigit():
        return int(words[1]) & 0xFF
    return None


def help_text() -> str:
    """The text :help prints."""
    width = max(len(usage) for usage, _ in BUILTINS.values())
    lines = ["Prompt commands (everything else runs on the remote host):"]
    lines += [f"  {usage:<{width}}  {desc}" for usage, desc in BUILTINS.values()]
    lines += [
        "",
        "Keys: Ctrl-R searches history, Tab completes, Ctrl-C interrupts a running command",
        "      or clears the line, Ctrl-D on an empty line leaves.",
    ]
    return "\n".join(lines)
