"""Tab completion for the prompt: what to complete (pure) and the prompt_toolkit adapter.

``suggest(text)`` looks at the text before the cursor and says what kind of
word is being typed: a prompt command (``:he``), a command name (the first
word), or a path (any later word).  ``RshCompleter`` asks the server for
command and path names through ``AsyncClient.complete``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .commands import BUILTINS

__all__ = ["Suggestion", "suggest", "RshCompleter", "shell_quote", "shell_unquote"]

# Characters that end a word for completion purposes (shell metacharacters).
_BREAKS = " \t|;&()<>"


@dataclass(frozen=True)
class Suggestion:
    """What the word under the cursor is, and the part typed so far."""

    kind: str  # "builtin", "command", "path", "variable" or "local-path"
    prefix: str


def suggest(text: str) -> Suggestion | None:
    """Classify the word being typed at the end of *text* (the text before the cursor)."""
    stripped = text.lstrip()
    if stripped.startswith(":"):
        words = stripped[1:].split(" ")
        if len(words) == 1:
            return Suggestion("builtin", words[0])
        # :put LOCAL [REMOTE] / :get REMOTE [LOCAL]
        local = (words[0] == "put" and len(words) == 2) or (words[0] == "get" and len(words) == 3)
        if words[0] in ("put", "get"):
            return Suggestion("local-path" if local else "path", words[-1])
        return None
    start = _word_start(text)
    word = text[start:]
    bare = word.lstrip('"')
    if bare.startswith("$"):
        name = bare[2:] if bare.startswith("${") else bare[1:]
        if name.replace("_", "a").isalnum() or not name:
            return Suggestion("variable", name)
    before = text[:start].rstrip(" \t")
    first_word = not before or before[-1] in "|;&("
    if first_word and "/" not in word:
        return Suggestion("command", word)
    return Suggestion("path", word)


def _word_start(text: str) -> int:
    """Where the last word of *text* starts: after the last break that no backslash escapes."""
    i = len(text)
    while i > 0:
        c = text[i - 1]
        if c in _BREAKS:
            slashes = len(text[: i - 1]) - len(text[: i - 1].rstrip("\\"))
            if slashes % 2 == 0:
                break
        i -= 1
    return i


# What a shell would take as anything but a letter of the name.
_SPECIAL = frozenset(" \t\n'\"\\$`!*?[](){}<>|&;#")


def shell_quote(name: str) -> str:
    """*name* as one shell word, backslash before each special character (``my\\ file.txt``, ``it\\'s.txt``), as bash completes."""
    return "".join("\\" + c if c in _SPECIAL else c for c in name)


def shell_unquote(word: str) -> str:
    """The name a partly typed, backslash-quoted word stands for."""
    out, escaped = [], False
    for c in word:
        if escaped or c != "\\":
            out.append(c)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _local_paths(prefix: str) -> list[str]:
    import os

    head, sep, stem = prefix.rpartition("/")
    directory = os.path.expanduser(head + sep) if sep else "."
    try:
        names = os.listdir(directory or "/")
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name.startswith(stem) and (stem.startswith(".") or not name.startswith(".")):
            is_dir = os.path.isdir(os.path.join(directory, name))
            out.append(head + sep + name + ("/" if is_dir else ""))
    return out


class RshCompleter(Completer):
    """Completes prompt commands locally and command/file names remotely."""

    def __init__(self, ask: Callable[[str, str], Awaitable[list[str]]]) -> None:
        # ask(kind, prefix) -> names; a callable so a reconnect can swap the client.
        self._ask = ask

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        # Synchronous use (no event loop): prompt commands and local paths only.
        s = suggest(document.text_before_cursor)
        if s is not None:
            yield from self._local(s)

    def _local(self, s: Suggestion) -> Iterable[Completion]:
        if s.kind == "builtin":
            for name, (usage, desc) in BUILTINS.items():
                if name.startswith(s.prefix):
                    yield Completion(name, -len(s.prefix), display=usage, display_meta=desc)
        elif s.kind == "local-path":
            for p in _local_paths(s.prefix):
                yield Completion(p, -len(s.prefix))

    async def get_completions_async(self, document: Document, complete_event: CompleteEvent) -> AsyncGenerator[Completion, None]:
        s = suggest(document.text_before_cursor)
        if s is None:
            return
        if s.kind in ("builtin", "local-path"):
            for c in self._local(s):
                yield c
            return
        try:
            names = await self._ask(s.kind, shell_unquote(s.prefix))
        except Exception:
            return  # a lost connection is reported when the next command runs
        for name in names:
            if s.kind == "variable":
                yield Completion(name, -len(s.prefix))
            else:
                yield Completion(shell_quote(name), -len(s.prefix), display=_basename(name))


def _basename(name: str) -> str:
    """``a/b/`` shows as ``b/`` and ``a/c`` as ``c`` in the menu."""
    return name.rstrip("/").rsplit("/", 1)[-1] + ("/" if name.endswith("/") else "")
