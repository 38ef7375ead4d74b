"""Shell state that outlives one command: the prompt's ``cd`` and ``export``.

Each command still runs in a fresh ``/bin/sh``; what a person expects to
persist between prompts (the working directory, ``OLDPWD`` for ``cd -``,
exported variables) is carried over by wrapping the command::

    cd -- '<cwd>' ...; { <the command, verbatim>    # where the last one left off
    } 9>&-                             # the command itself never sees fd 9
    rc=$?
    { printf '%s\\0' "$PWD"; export -p; } >&9
    exit $rc

and reading back what the shell wrote to fd 9.  ``cd``, ``export`` and
``unset`` are then the shell's own builtins with the shell's own errors,
and so is anything else that changes them (``cd /tmp && ls``).  A command
that calls ``exit`` ends the shell before it reports: state is unchanged.

Pure functions only: building the script and parsing the report.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

__all__ = ["STATE_FD", "EXPORTS_LIMIT", "ShellSession", "parse_state"]

#: The descriptor the wrapper reports state on (dash takes single digits only).
STATE_FD = 9

#: The most bytes of names and values ``exports()`` reports; past it, nothing
#: (the exit frame's header must stay well under its 64 KiB limit).
EXPORTS_LIMIT = 16 * 1024

# Names a shell can export and unset.  PWD and OLDPWD follow cd, which the
# session already carries; SHLVL and _ are the shell's own bookkeeping.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_OWN = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})


@dataclass
class ShellSession:
    """One connection's persistent shell state.

    Args:
        cwd: where the next command starts.
        env: its environment (the server's, to begin with).
    """

    cwd: str
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._base = dict(self.env)

    def exports(self) -> dict[str, str | None] | None:
        """What ``export`` and ``unset`` changed since the session began: NAME -> value, or None if unset.

        None (not an empty dict) when the change is over ``EXPORTS_LIMIT``.
        """
        env, base = self.env, self._base
        changed: dict[str, str | None] = {k: v for k, v in env.items() if base.get(k) != v and k not in _SHELL_OWN and _NAME.fullmatch(k)}
        changed.update((k, None) for k in base if k not in env and k not in _SHELL_OWN and _NAME.fullmatch(k))
        if sum(len(k) + len(v or "") for k, v in changed.items()) > EXPORTS_LIMIT:
            return None
        return changed

    def script(self, command: bytes) -> bytes:
        """Return the shell script that runs *command* in this session and reports back.

        The set-up shares the command's first line, so the shell's own error
        messages give the line numbers the user expects (``sh: 1: cd: ...``).
        """
        cwd = shlex.quote(self.cwd).encode()
        # A directory deleted under us: say so and start over at home.
        setup = [b"cd -- " + cwd + b' 2>/dev/null || { echo "rsh: "' + cwd + b'": no longer exists; now in $HOME" >&2; cd; }']
        oldpwd = self.env.get("OLDPWD")
        if oldpwd is not None:
            # Our own cd just overwrote it; `cd -` must go where the user was.
            setup.append(b"OLDPWD=" + shlex.quote(oldpwd).encode())
        return (
            b"; ".join(setup)
            + b"; { "
            + command
            + (b"\n} %d>&-\n__rsh_rc=$?\n{ printf '%%s\\000' \"$PWD\"; export -p; } >&%d\nexit $__rsh_rc\n" % (STATE_FD, STATE_FD))
        )

    def update(self, report: bytes) -> bool:
        """Take the state the wrapper reported; False (and no change) if it is incomplete."""
        parsed = parse_state(report)
        if parsed is None:
            return False
        self.cwd, self.env = parsed
        return True


def parse_state(report: bytes) -> tuple[str, dict[str, str]] | None:
    """Parse ``PWD\\0`` then ``export -p`` output; None when it is cut short or garbled."""
    cwd_raw, sep, exports = report.partition(b"\0")
    if not sep or not cwd_raw.startswith(b"/"):
        return None
    try:
        words = shlex.split(os.fsdecode(exports), posix=True)
    except ValueError:  # unbalanced quotes: the report was cut short
        return None
    env: dict[str, str] = {}
    expect_name = False
    for word in words:
        if word == "export":
            expect_name = True
            continue
        if expect_name:
            name, eq, value = word.partition("=")
            if eq:  # "export NAME" alone is exported but unset: not in the environment
                env[name] = value
            expect_name = False
    return os.fsdecode(cwd_raw), env
