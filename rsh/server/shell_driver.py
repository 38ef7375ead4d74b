"""The live shell's driver: the few lines of shell that let a real shell take lines from rsh.

A prompt session's shell is one long-lived shell process on a pseudo-terminal
(``rsh.server.live_shell`` starts it), so everything a shell keeps lives on
from line to line: variables, ``$?``, functions, aliases, options, traps, the
directory, jobs.  Lines do not come through the terminal: the terminal is the
commands' (their keyboard and screen), and a line typed into it would be read
by whatever runs.  They come on a pipe of their own, and the shell says
where each line ends, and with what status, on another::

    descriptor 8  (server -> shell): MODE "\\n" LINE... TERMINATOR "\\n"
    descriptor 9  (shell -> server): STATUS "\\0" PWD "\\0", once per line

Both are closed for everything a line runs (``eval "$line" 8<&- 9>&-``), so
no command, whatever it prints or does, can end a line early or fake a
status.  MODE is ``t`` (the line's output on the terminal) or ``p`` (its
stdout and stderr on descriptors 4 and 5, the prompt's pipe mode).

bash runs interactive (so that ``~/.bashrc``'s aliases and interactive
settings apply as in a terminal and job control is on) with the driver as
``PROMPT_COMMAND``, fed empty lines on its stdin so that it comes back to
its prompt; a Ctrl-C that makes bash abandon a line is noticed at the next
prompt.  Other shells run the driver as a loop (POSIX ``sh -c``) with job
control (``set -m``): dash, ash, ksh and the like.  Pure functions only.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["LINE_FD", "REPORT_FD", "OUT_FD", "ERR_FD", "TTY_FD", "RC_FD", "LIST", "Driver", "driver_for", "frame_line", "frame_list", "parse_reports"]

#: The shell's descriptors (single digits: dash takes no more).
TTY_FD, OUT_FD, ERR_FD, RC_FD, LINE_FD, REPORT_FD = 3, 4, 5, 7, 8, 9

_POSIX_SHELLS = frozenset({"sh", "dash", "ash", "ksh", "ksh93", "mksh", "posh", "busybox"})

# Run the line with $? as the last line left it; everything but the
# terminal (or, in pipe mode, the two output pipes) closed for it.
_RUN = """\
if [ "$__rsh_mode" = p ]; then __rsh_ret "$__rsh_last"; eval "$__rsh_line" <&3 >&4 2>&5 3<&- 4>&- 5>&- 8<&- 9>&-
else __rsh_ret "$__rsh_last"; eval "$__rsh_line" <&3 3<&- 4>&- 5>&- 8<&- 9>&-; fi
__rsh_last=$?
"""

_READ = """\
IFS= read -r __rsh_mode <&8 || exit "$__rsh_last"
__rsh_line=
while IFS= read -r __rsh_l <&8 && [ "$__rsh_l" != "$__rsh_end" ]; do __rsh_line="$__rsh_line$__rsh_l
"; done
"""

# Double quotes only: bash's driver is itself inside single quotes.
_REPORT = """printf "%s\\0%s\\0" "$__rsh_last" "$PWD" >&9\n"""

# A login starts at home, whatever directory the server runs in.
_BASH_RC = """\
exec 7<&-
cd 2>/dev/null; unset OLDPWD
if [ -r /etc/profile ]; then . /etc/profile; fi
for __rsh_l in ~/.bash_profile ~/.bash_login ~/.profile; do
  if [ -r "$__rsh_l" ]; then . "$__rsh_l"; break; fi
done
__rsh_end=@END@
__rsh_last=0
__rsh_busy=
__rsh_user_pc=${PROMPT_COMMAND-}
__rsh_ret() { return "$1"; }
__rsh_body='
__rsh_rc=$?
if [ -n "$__rsh_busy" ]; then __rsh_busy= __rsh_last=$__rsh_rc; @REPORT@fi
PS1= PS2= PS0=
if [ "$PROMPT_COMMAND" != "$__rsh_pc" ]; then __rsh_user_pc=$PROMPT_COMMAND PROMPT_COMMAND=$__rsh_pc; fi
@READ@@LIST@else
__rsh_busy=1
@RUN@__rsh_busy=
if [ -n "$__rsh_user_pc" ]; then __rsh_ret "$__rsh_last"; eval "$__rsh_user_pc" <&3 3<&- 4>&- 5>&- 8<&- 9>&-; fi
@REPORT@fi
'
__rsh_pc='eval "$__rsh_body"'
PROMPT_COMMAND=$__rsh_pc
PS1= PS2= PS0=
"""

_POSIX = """\
cd 2>/dev/null; unset OLDPWD
set -m
trap : INT
__rsh_end=@END@
__rsh_last=0
__rsh_ret() { return "$1"; }
while :; do
@READ@@LIST@@RUN@@REPORT@done
"""


class Driver:
    """How to start one kind of shell as a live shell.

    Attributes:
        argv: the command line to exec.
        rc: the script to hand over on descriptor ``RC_FD`` (bash), or None.
        feeds_stdin: the shell's stdin is the prompt-return pipe (bash) rather than the terminal.
        terminator: the line that ends a line's text on ``LINE_FD``.
        name: the shell as the session reports it.
    """

    def __init__(self, argv: list[str], rc: str | None, feeds_stdin: bool, terminator: str, name: str) -> None:
        self.argv = argv
        self.rc = rc
        self.feeds_stdin = feeds_stdin
        self.terminator = terminator
        self.name = name

    def check_argv(self) -> list[str]:
        """The command that parses shell input on its stdin without running it (``SHELL -n``)."""
        return [self.argv[0], "-n"]


# Mode v: the names of the shell's variables, for completion, as a report
# whose status is "v" (and no line run, nothing else changed).
_LIST_BASH = """if [ "$__rsh_mode" = v ]; then printf "v\\0%s\\0" "$(compgen -v)" >&9
"""
_LIST_POSIX = """if [ "$__rsh_mode" = v ]; then printf "v\\0%s\\0" "$(set | sed -n "s/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p")" >&9; continue; fi
"""


def _fill(template: str, terminator: str, listing: str) -> str:
    body = template.replace("@READ@", _READ).replace("@LIST@", listing).replace("@RUN@", _RUN).replace("@REPORT@", _REPORT)
    return body.replace("@END@", terminator)


def driver_for(shell: str) -> Driver:
    """The driver for *shell* (a path): bash's, or the POSIX loop run by *shell*, or by /bin/sh for a shell that is neither."""
    # Random per session: no line a person types ends a line's text early.
    terminator = "__rsh_end_" + secrets.token_hex(8)
    base = os.path.basename(shell)
    if base == "bash":
        rc = _fill(_BASH_RC, terminator, _LIST_BASH)
        return Driver([shell, "--noprofile", "--rcfile", f"/dev/fd/{RC_FD}", "-i"], rc, True, terminator, shell)
    if base not in _POSIX_SHELLS:
        shell = "/bin/sh"  # zsh, fish, ...: not driven yet; a POSIX shell instead
    return Driver([shell, "-l", "-c", _fill(_POSIX, terminator, _LIST_POSIX), os.path.basename(shell)], None, False, terminator, shell)


#: ``frame_line``'s mode for a request of the variables' names (answered by a ``parse_reports`` status of ``LIST``).
LIST = -1


def frame_list(terminator: str) -> bytes:
    """What to write on ``LINE_FD`` to ask for the names of the shell's variables."""
    return b"v\n" + terminator.encode() + b"\n"


def frame_line(text: bytes, *, pipe: bool, terminator: str) -> bytes:
    """What to write on ``LINE_FD`` for one line of input."""
    if not text.endswith(b"\n"):
        text += b"\n"
    return (b"p\n" if pipe else b"t\n") + text + terminator.encode() + b"\n"


def parse_reports(buffer: bytearray) -> list[tuple[int, str]]:
    """Take every complete ``STATUS\\0PWD\\0`` report out of *buffer* (what is left stays in it)."""
    reports: list[tuple[int, str]] = []
    while True:
        first = buffer.find(b"\0")
        second = buffer.find(b"\0", first + 1) if first >= 0 else -1
        if second < 0:
            return reports
        status_raw, cwd_raw = bytes(buffer[:first]), bytes(buffer[first + 1 : second])
        del buffer[: second + 1]
        if status_raw == b"v":
            reports.append((LIST, os.fsdecode(cwd_raw)))  # the names, one a line
            continue
        try:
            status = int(status_raw)
        except ValueError:
            status = 1
        reports.append((status, os.fsdecode(cwd_raw)))
