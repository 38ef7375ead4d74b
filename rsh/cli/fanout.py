"""``rsh exec``, ``rsh put`` and ``rsh get`` on many hosts: ``-H h1,h2``, ``-g GROUP``, ``-f FILE``.

Each host is resolved as ``rsh exec HOST`` resolves it (``rsh.cli.resolve``:
the config file's entry, the command line's options over it), then all run
through one ``rsh.Group``, ``-j N`` at a time.  stdin, when it is not a
terminal, is read once and given to every host.  What is printed is
``rsh.cli.fanout_output``'s; the exit status is 0 when every host
succeeded, 255 when one could not be reached or authenticated, else the
largest remote status (1 for a copy that left something behind).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .options import Option, UsageError
from .options import add_options as _add

# argparse, threading and pathlib are not imported here: `rsh exec HOST`
# imports this module to ask `requested`, and needs none of them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import threading
    from typing import Any

    from ..client.group import Member
    from .resolve import Settings

__all__ = ["OPTIONS", "OUTPUT_OPTIONS", "add_options", "add_output_options", "requested", "run_exec", "run_transfer", "hosts_of"]

#: ``-H``, ``-g``, ``-f`` (their dests are ``rsh.cli.argv.HOST_DESTS``), ``-j`` and ``--summary``.
OPTIONS = (
    Option("-H", dest="fan_hosts", action="append", metavar="HOST,...", help="run on these hosts (names, aliases or HOST:PORT; may repeat)"),
    Option("-g", dest="fan_groups", action="append", metavar="GROUP", help="run on the hosts of GROUP in the config file's [groups] (may repeat)"),
    Option("-f", dest="fan_files", action="append", metavar="FILE", help="run on the hosts in FILE, one a line ('#' starts a comment; may repeat)"),
    Option("-j", dest="fan_limit", type=int, metavar="N", help="with -H/-g/-f: at most N hosts at once (default 32)"),
    Option("--summary", action="store_true", help="with -H/-g/-f: end with a table of each host's status, time and bytes (always on a terminal)"),
)
#: ``rsh exec``'s ``--group`` and ``--out-dir``.
OUTPUT_OPTIONS = (
    Option("--group", dest="fan_grouped", action="store_true", help="with -H/-g/-f: print each distinct output once, under the hosts that gave it"),
    Option("--out-dir", dest="fan_out_dir", metavar="DIR", help="with -H/-g/-f: write each host's output to DIR/HOST.stdout and DIR/HOST.stderr"),
)


def add_options(p: argparse.ArgumentParser) -> None:
    """Add ``OPTIONS``: ``-H``, ``-g``, ``-f``, ``-j`` and ``--summary``."""
    _add(p, OPTIONS)


def add_output_options(p: argparse.ArgumentParser) -> None:
    """Add ``OUTPUT_OPTIONS``: ``rsh exec``'s ``--group`` and ``--out-dir``."""
    _add(p, OUTPUT_OPTIONS)


def requested(args: argparse.Namespace) -> bool:
    """Whether the command line names hosts with ``-H``, ``-g`` or ``-f``."""
    return bool(getattr(args, "fan_hosts", None) or getattr(args, "fan_groups", None) or getattr(args, "fan_files", None))


def hosts_of(args: argparse.Namespace) -> list[str]:
    """The host words ``-H``, ``-g`` and ``-f`` name, in order, each once.

    Raises:
        UsageError: an unknown group, an unreadable file, no host at all.
        ConfigError: the config file cannot be used.
    """
    from pathlib import Path

    from .resolve import config_of

    words: list[str] = []
    for spec in args.fan_hosts or ():
        words += [w.strip() for w in spec.split(",") if w.strip()]
    if args.fan_groups:
        config = config_of(args)
        for spec in args.fan_groups:
            for name in (w.strip() for w in spec.split(",") if w.strip()):
                if name not in config.groups:
                    known = f"groups: {', '.join(config.groups)}" if config.groups else "it has no [groups]"
                    raise UsageError(f"-g {name}: no such group in {config.path} ({known})")
                words += config.groups[name]
    for file in args.fan_files or ():
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"-f {file}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from exc
        words += [w for line in text.splitlines() if (w := line.partition("#")[0].strip())]
    unique = list(dict.fromkeys(words))
    if not unique:
        raise UsageError("-H/-g/-f named no hosts")
    return unique


def _members(args: argparse.Namespace, words: list[str]) -> dict[str, tuple[Member, Settings]]:
    """Each host resolved as ``rsh exec HOST`` would, with its ``Member`` for the group."""
    import threading

    from ..client.group import Member
    from ..config import resolve_client_token
    from .resolve import check_user, client_options, config_of, resolve

    config = config_of(args)
    ask = threading.Lock()  # one first-use question on the terminal at a time
    out: dict[str, tuple[Member, Settings]] = {}
    for word in words:
        settings = resolve(args, word, config)
        options = client_options(settings)
        options["confirm"] = _one_at_a_time(ask, options["confirm"])
        token = resolve_client_token(settings.token_file)
        member = Member(word, settings.host, settings.port, token, options, _user_check(check_user, settings))
        out[word] = (member, settings)
    return out


def _user_check(check: Callable[[Settings, dict[str, Any]], None], settings: Settings) -> Callable[[dict[str, Any]], None]:
    return lambda info: check(settings, info)


def _one_at_a_time(lock: threading.Lock, confirm: Callable[[str, str], bool | None]) -> Callable[[str, str], bool | None]:
    def ask(address: str, fingerprint: str) -> bool | None:
        with lock:
            return confirm(address, fingerprint)

    return ask


def _group(args: argparse.Namespace, hosts: dict[str, tuple[Member, Settings]]) -> Any:
    from ..client.group import DEFAULT_LIMIT, Group

    limit = args.fan_limit if args.fan_limit is not None else DEFAULT_LIMIT
    if limit < 1:
        raise UsageError(f"-j {limit}: must be at least 1")
    return Group([m for m, _ in hosts.values()], limit=limit)


def run_exec(args: argparse.Namespace) -> int:
    """``rsh exec -H h1,h2 -- CMD``: CMD on every host; return the exit status.

    Raises:
        UsageError: no command, an option that takes one host, bad hosts.
    """
    from . import fanout_output as out

    words = [args.address, *args.command] if args.address is not None else list(args.command)
    command = " ".join(words)
    if not command.strip():
        raise UsageError("no command given: rsh exec -H HOST,... -- CMD [ARG...]")
    for flag, given in (("-t", args.tty), ("--trace", args.trace)):
        if given:
            raise UsageError(f"{flag} takes one host, not -H/-g/-f")
    if args.fan_grouped and args.fan_out_dir:
        raise UsageError("--group and --out-dir: choose one")
    hosts = _members(args, hosts_of(args))
    stdin = None if args.no_stdin else _stdin_data()
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    printer: out.Printer
    if args.fan_out_dir:
        try:
            printer = out.OutDir(stdout, stderr, out.make_out_dir(args.fan_out_dir))
        except OSError as exc:
            raise UsageError(f"--out-dir {args.fan_out_dir}: {getattr(exc, 'strerror', None) or exc}") from exc
    elif args.fan_grouped:
        printer = out.Grouped(stdout, stderr)
    else:
        printer = out.Live(stdout, stderr, list(hosts), colour=_is_tty(1) and out.colours(os.environ))

    def one(client: Any, m: Member) -> Any:
        settings = hosts[m.name][1]
        cmd = f"exec {_quoted(settings.shell)} -c {_quoted(command)}" if settings.shell else command
        return client.run(
            cmd,
            input=stdin,
            timeout=settings.timeout,
            encoding=args.encoding,
            on_stdout=lambda data: printer.output(m.name, "stdout", data),
            on_stderr=lambda data: printer.output(m.name, "stderr", data),
        )

    try:
        with _group(args, hosts) as group:
            result = group.each(one, on_done=_explaining(hosts, printer.done))
        printer.finish(_explained(hosts, result))
    except BrokenPipeError:
        printer.reader_left = True
    if printer.reader_left:
        # Like `rsh exec HOST ... | head`: the reader had enough; stop quietly.
        _quiet_stdout()
        return _EXIT_SIGPIPE
    return _end(args, result)


def run_transfer(args: argparse.Namespace) -> int:
    """``rsh put -H ... LOCAL... REMOTE`` or ``rsh get -H ... REMOTE... DIR`` (each host's copy in DIR/HOST/).

    Raises:
        UsageError: too few paths, a misplaced ``-``, bad hosts.
    """
    from . import fanout_output as out

    name, paths = args.subcommand, args.paths
    if len(paths) < 2:
        what = "LOCAL... REMOTE" if name == "put" else "REMOTE... DIR"
        raise UsageError(f"{name} -H needs at least two paths: {what}")
    *firsts, last = paths
    if "-" in firsts and (name == "get" or len(firsts) > 1):
        raise UsageError("'-' (stdin) must be the only LOCAL" if name == "put" else "get -H takes no '-': each host's copy goes to DIR/HOST/")
    if name == "get" and last == "-":
        raise UsageError("get -H writes to DIR/HOST/ for each host, not to '-'")
    hosts = _members(args, hosts_of(args))
    printer = out.Printer(sys.stdout.buffer, sys.stderr.buffer)
    options = {"recursive": args.recursive, "resume": args.resume}
    with _group(args, hosts) as group:
        if name == "put":
            from ..client.group import shared_source

            # stdin is read once, and each host is given the bytes as a stream of its own.
            local = shared_source(sys.stdin.buffer if firsts == ["-"] else firsts if len(firsts) > 1 else firsts[0])
            result = group.each(lambda client, m: client.put(local(), last, **options), on_done=_explaining(hosts, printer.done))
        else:
            from ..client.group import host_dir

            remotes: Any = firsts if len(firsts) > 1 else firsts[0]
            result = group.each(lambda client, m: client.get(remotes, host_dir(last, m.name), **options), on_done=_explaining(hosts, printer.done))
    return _end(args, _explained(hosts, result))


def _explain(settings: Settings, value: object) -> object:
    """A name neither in DNS nor in the config file is said to be neither (as ``Settings.explained`` says it for one host)."""
    import socket

    from ..errors import ConnectError

    if isinstance(value, ConnectError) and not settings.alias and isinstance(value.__cause__, socket.gaierror):
        return ConnectError(f"{value} (and {settings.name!r} is not a host in {settings.config.path})")
    return value


def _explaining(hosts: dict[str, tuple[Member, Settings]], done: Callable[[str, object, float], None]) -> Callable[[str, object, float], None]:
    return lambda name, value, elapsed: done(name, _explain(hosts[name][1], value), elapsed)


def _explained(hosts: dict[str, tuple[Member, Settings]], result: Any) -> Any:
    for name, value in result.items():
        result[name] = _explain(hosts[name][1], value)
    return result


#: Local stdout was closed under us, as a process killed by SIGPIPE (``rsh.cli.exec``'s status).
_EXIT_SIGPIPE = 141


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's last flush adds no traceback (as ``rsh.cli.exec`` does)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _end(args: argparse.Namespace, result: Any) -> int:
    from . import fanout_output as out

    if args.summary or _is_tty(2):
        sys.stderr.write(out.summary(result))
        sys.stderr.flush()
    return out.exit_status(result)


def _stdin_data() -> bytes | None:
    """As ssh without -t: stdin is the command's when it is not a terminal; read once, for every host."""
    if sys.stdin is None or _is_tty(0):
        return None
    try:
        return sys.stdin.buffer.read()
    except OSError:
        return None


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False  # closed: no terminal, and no data either


def _quoted(word: str) -> str:
    """*word* as one word for a POSIX shell (as ``rsh.cli.exec`` quotes ``--shell``)."""
    return "'" + word.replace("'", "'\\''") + "'"
