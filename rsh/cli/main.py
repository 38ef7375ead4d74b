"""The ``rsh`` command line: build the parser, hand off to the subcommand, map errors to exit codes.

Each subcommand is a module of this package with ``add_parser(sub, name)``
and ``run(args) -> int``.  Exit statuses follow ssh: the remote command's
own status, 128+N when signal N ended it, and 255 when rsh itself failed
(connection, auth, protocol), with a one-line ``rsh: ...`` message and no
traceback; 2 for a wrong command line.

Start-up is most of a short ``rsh exec``, so only the named subcommand's
module is imported and its parser built (all of them for ``rsh --help``),
and each module imports the heavy parts (asyncio, the server, the prompt)
only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Callable, Sequence

from ..errors import RshError
from ..version import __version__
from .options import EXIT_RSH_ERROR, EXIT_USAGE, UsageError, say

__all__ = ["main", "build_parser", "SUBCOMMANDS", "EXIT_RSH_ERROR", "EXIT_USAGE"]

# Subcommand -> the module of this package that defines it, in --help's order.
_MODULES = {"serve": "serve", "exec": "exec", "connect": "connect", "put": "transfer", "get": "transfer", "demo": "demo"}
SUBCOMMANDS = tuple(_MODULES)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the parser of every subcommand, or of the one named *only*."""
    parser = argparse.ArgumentParser(
        prog="rsh",
        description="A remote shell over a small, exact framed protocol.",
        epilog="Run 'rsh COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"rsh {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        importlib.import_module(f"{__package__}.{_MODULES[name]}").add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    # `rsh` alone and `rsh HOST` mean `rsh connect [HOST]`, as `ssh HOST` does.
    if not words or (words[0] not in SUBCOMMANDS and words[0] not in ("-h", "--help", "--version")):
        words.insert(0, "connect")
    parser = build_parser(words[0] if words[0] in SUBCOMMANDS else None)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:
        # --help, --version and usage errors: argparse has said its piece.
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return run(args)
    except UsageError as exc:
        say(str(exc))
        return EXIT_USAGE
    except RshError as exc:
        say(str(exc))
        return EXIT_RSH_ERROR
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
