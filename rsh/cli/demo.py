"""``rsh demo [NAME]``: the teaching demos of rsh.teach.demo, on 127.0.0.1, no server needed."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh demo`` to the subcommands."""
    p = sub.add_parser(
        name,
        help="watch TCP 'sticky packets' happen, and framing fix them",
        description="Teaching demos on 127.0.0.1. Without NAME, list them.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="coalesce, truncate, header, markers, udp, classic, or all; or wireshark, capture")
    p.add_argument("file", nargs="?", metavar="FILE", help="for capture: the .pcapng file to write")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="narration language; zh adds Chinese above the English")
    p.add_argument("--install", action="store_true", help="for wireshark: copy the dissector into your Wireshark plugin folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo *args.name* (all of them for ``all``, a list for none); return the exit status."""
    from ..teach.demo import main as demo_main

    return demo_main(args.name, args.lang, file=args.file, install=args.install)
