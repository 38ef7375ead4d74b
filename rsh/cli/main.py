"""The ``rsh`` command line: build the parser, hand off to the subcommand, map errors to exit codes.

Each subcommand is a module of this package with ``add_parser(sub, name)``
and ``run(args) -> int``.  Exit statuses: the remote command's own status,
128+N when signal N ended it (as a shell reports it; ssh says 255 there),
and 255 when rsh itself failed (connection, auth, protocol), with a
one-line ``rsh: ...`` message and no traceback; 2 for a wrong command line.

The connecting subcommands take their words as ssh does (``rsh.cli.argv``):
rsh's options before or after HOST, then the command; ``rsh HOST CMD...``
is ``rsh exec HOST CMD...``.

Start-up is most of a short ``rsh exec``, so only the named subcommand's
module is imported and its parser built (all of them for ``rsh --help``),
and each module imports the heavy parts (asyncio, the server, the prompt)
only when it runs.  The plain ``rsh exec HOST CMD`` builds no parser at all
(``rsh.cli.exec.quick_args``), and its process ends without tearing the
interpreter down (``entry``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ..errors import RshError
from .argv import COMMAND, HOST_ONLY, split_words
from .options import EXIT_RSH_ERROR, EXIT_USAGE, UsageError, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import signal
    from typing import NoReturn
else:
    import _signal as signal  # signal.py's functions and numbers, without the enums it makes (3% of a cold `rsh exec`)

__all__ = ["main", "entry", "parse", "build_parser", "SUBCOMMANDS", "EXIT_RSH_ERROR", "EXIT_USAGE"]

# Subcommand -> the module of this package that defines it, in --help's order.
_MODULES = {
    "serve": "serve",
    "exec": "exec",
    "connect": "connect",
    "put": "transfer",
    "get": "transfer",
    "config": "show_config",
    "completion": "completion",
    "demo": "demo",
}
SUBCOMMANDS = tuple(_MODULES)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the parser of every subcommand, or of the one named *only*."""
    import argparse
    import importlib

    from ..protocol.messages import PROTOCOL_VERSION
    from ..version import __version__

    parser = argparse.ArgumentParser(
        prog="rsh",
        description="A remote shell over a small, exact framed protocol.",
        epilog="Run 'rsh COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"rsh {__version__} (protocol version {PROTOCOL_VERSION})")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        importlib.import_module(f"{__package__}.{_MODULES[name]}").add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    return _main(argv)[0]


def entry() -> NoReturn:
    """The ``rsh`` command (``python -m rsh``): run ``main`` and leave the process with its status.

    After a plain ``rsh exec`` (nothing left running, no exit handler),
    once stdout and stderr are flushed, the process ends there (``os._exit``):
    tearing down the interpreter's modules is a tenth of its run, and its
    connection is closed and its output written already.
    """
    status, args = _main(None)
    if getattr(args, "subcommand", None) == "exec" and _nothing_left():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # the interpreter's own last flush says what it says of that
        else:
            os._exit(status & 0xFF)
    sys.exit(status)


def _nothing_left() -> bool:
    """No thread but this one, and nothing for ``atexit`` to run."""
    import atexit

    threading = sys.modules.get("threading")
    # CPython's count of exit handlers; where it is missing, assume there are some.
    handlers = getattr(atexit, "_ncallbacks", None)
    return handlers is not None and handlers() == 0 and (threading is None or threading.active_count() == 1)


def parse(words: Sequence[str], *, quick: bool = True) -> argparse.Namespace:
    """Command line *words* as the named subcommand reads them (``rsh HOST ...`` as ``exec`` or ``connect``).

    *quick*: a plain ``rsh exec`` is read without argparse (False: by its
    parser all the same, which the quick reading must agree with).

    Raises:
        SystemExit: --help, --version or a usage error, which argparse has reported.
    """
    from .exec import quick_args

    words = list(words)
    # `rsh HOST CMD...` is `rsh exec HOST CMD...` (`rsh HOST`, the prompt, is left to the parser).
    implicit = bool(words) and words[0] not in SUBCOMMANDS and words[0] not in ("-h", "--help", "--version")
    if quick and (implicit or words[:1] == ["exec"]):
        args = quick_args(words if implicit else words[1:])
        if args is not None:
            return args
    # `rsh` alone and `rsh HOST` mean `rsh connect [HOST]`, as `ssh HOST` does;
    # `rsh HOST CMD...` means `rsh exec HOST CMD...`, as `ssh HOST CMD` does.
    if not words or implicit:
        exec_parser = _subparser(build_parser("exec"), "exec")
        words.insert(0, "exec" if split_words(exec_parser, words, COMMAND).command else "connect")
    name = words[0] if words[0] in SUBCOMMANDS else None
    parser = build_parser(name)
    args = parser.parse_args(words) if name is None else _parse(parser, name, words[1:])
    if getattr(args, "run", None) is None:
        parser.print_help()
        raise SystemExit(EXIT_USAGE)
    return args


def _main(argv: Sequence[str] | None) -> tuple[int, argparse.Namespace | None]:
    """``main``, and the command line it ran (None: none was read)."""
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has said its piece.
        return (0 if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_USAGE), None
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args), args
    except UsageError as exc:
        say(str(exc))
        return EXIT_USAGE, args
    except RshError as exc:
        say(str(exc))
        return EXIT_RSH_ERROR, args
    except KeyboardInterrupt:
        return 128 + signal.SIGINT, args


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    import argparse

    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise LookupError(name)


def _parse(parser: argparse.ArgumentParser, name: str, words: list[str]) -> argparse.Namespace:
    """Parse subcommand *name*'s *words*: as ssh does for those that connect (``rsh.cli.argv``), else as argparse does."""
    sub = _subparser(parser, name)
    kind = sub.get_default("words")
    if kind is None:
        args = sub.parse_args(words)
    else:
        split = split_words(sub, words, kind)
        if kind == HOST_ONLY and split.command:
            # `rsh connect HOST CMD`: only the implicit form runs a command.
            sub.error(f"unexpected {split.command[0]!r} after HOST (to run a command: rsh exec HOST -- CMD)")
        # "--": whatever the positionals look like, they are not options.
        args = sub.parse_args([*split.options, "--", *split.positionals])
        if kind == COMMAND:
            args.command = split.command or []
    args.subcommand = name
    return args
