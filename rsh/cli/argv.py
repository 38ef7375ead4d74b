"""Command lines taken apart the way ssh takes them: options before or after HOST, then the command.

``rsh exec web1 -n --timeout 5 uptime -p`` is ``-n --timeout 5`` for rsh
and ``uptime -p`` for the remote shell: after HOST, rsh's options go on
until ``--`` or the first word that is not an option, and everything from
there is the command, untouched.  Which options take a value is read from
the subcommand's own argparse parser, so a flag added there with one
``add_argument`` line (``-t``, ``--no-pty``) is known here too.

``quick_parse`` reads the plain case of ``rsh exec`` (one HOST, a command,
options spelt out in full) from the subcommand's table of options alone,
without argparse, and gives up on anything else.
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, NamedTuple

    from .options import Option
else:
    from ..typeshim import NamedTuple

__all__ = ["Words", "split_words", "quick_parse", "COMMAND", "HOST_ONLY", "PATHS", "HOST_DESTS"]

#: How a subcommand's words split (``set_defaults(words=...)``): HOST, then a command (``exec``).
COMMAND = "command"
#: HOST and nothing after it but options (``connect``).
HOST_ONLY = "host"
#: Positionals anywhere among the options (``put``, ``get``, ``config``).
PATHS = "paths"
#: The options that name the hosts (``-H``, ``-g``, ``-f``: ``rsh.cli.fanout``):
#: with one of them, no HOST comes first and the first positional starts the command.
HOST_DESTS = frozenset({"fan_hosts", "fan_groups", "fan_files"})


class Words(NamedTuple):
    """A command line taken apart: rsh's option words, the positionals, and the command (None: none started)."""

    options: list[str]
    positionals: list[str]
    command: list[str] | None


def split_words(parser: argparse.ArgumentParser, words: Sequence[str], kind: str) -> Words:
    """Split *words* (what follows the subcommand's name) as *kind* says; see the module's docstring.

    Unknown options are kept among the options, so argparse reports them.
    """
    options: list[str] = []
    positionals: list[str] = []
    command_after = None if kind == PATHS else 1
    only_positionals = False  # after "--"
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        starts_command = command_after is not None and len(positionals) >= command_after
        if not only_positionals and word == "--":
            only_positionals = True
            if starts_command:
                return Words(options, positionals, list(words[i:]))
            continue
        if not only_positionals and word.startswith("-") and word != "-":
            if command_after is not None and _names_hosts(parser, word):
                command_after = 0
            options.append(word)
            if _takes_next(parser, word) and i < len(words):
                options.append(words[i])
                i += 1
            continue
        if starts_command:
            return Words(options, positionals, list(words[i - 1 :]))
        positionals.append(word)
    return Words(options, positionals, None)


def _names_hosts(parser: argparse.ArgumentParser, word: str) -> bool:
    """Whether option word *word* is ``-H``, ``-g`` or ``-f`` (``-Hh1,h2`` too)."""
    name = word.partition("=")[0] if word.startswith("--") else word[:2]
    action = parser._option_string_actions.get(name)
    return action is not None and action.dest in HOST_DESTS


def _takes_next(parser: argparse.ArgumentParser, word: str) -> bool:
    """Whether option word *word* takes the next word as its value (``--port 1``, ``-p 1``; not ``-p1``, ``--port=1``, ``-nt``)."""
    known = parser._option_string_actions  # argparse's own table of option strings
    if word.startswith("--"):
        name, eq, _ = word.partition("=")
        action = known.get(name)
        return action is not None and action.nargs != 0 and not eq
    # A cluster of short options: flags, possibly ending with one that takes a value.
    for j in range(1, len(word)):
        action = known.get("-" + word[j])
        if action is None:
            return False
        if action.nargs != 0:
            return j == len(word) - 1
    return False


def quick_parse(options: Sequence[Option], words: Sequence[str]) -> dict[str, Any] | None:
    """*words* (what follows ``exec``) as ``split_words`` then argparse would read them: every option's dest, ``address``, ``command``.

    Only where the answer is certain: each option word one of *options*
    exactly (``--name=VALUE`` too), a value that does not start with '-',
    no option naming hosts, one HOST, then a command.  Anything else (``-h``,
    an abbreviation, ``-nt``, a mistake) is None, for argparse to read and
    say what it says of it.
    """
    table = {name: option for option in options for name in option.names}
    values = {option.dest: option.default for option in options}
    values["address"] = None
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--" or not word.startswith("-") or word == "-":
            if values["address"] is None:
                if word == "--":
                    return None  # positionals only from here: rare, argparse's
                values["address"] = word
                continue
            values["command"] = list(words[i:] if word == "--" else words[i - 1 :])
            return values
        name, eq, given = word.partition("=") if word.startswith("--") else (word, "", "")
        option = table.get(name)
        if option is None or option.dest in HOST_DESTS:
            return None
        action = option.action
        if action == "store":
            if not eq:
                if i == len(words) or words[i].startswith("-"):
                    return None
                given = words[i]
                i += 1
            try:
                values[option.dest] = option.kwargs.get("type", str)(given)
            except ValueError:
                return None
        elif eq:
            return None
        elif action in ("store_true", "store_false"):
            values[option.dest] = action == "store_true"
        elif action == "count":
            values[option.dest] = (values[option.dest] or 0) + 1
        else:
            return None
    return None  # no command: `rsh HOST` is the prompt, `rsh exec HOST` an error
