"""``rsh config HOST``: the settings a connection to HOST would use, and where each came from (like ``ssh -G``).

One ``key value`` line per setting, then ``# from ...``, so a person sees
why and a script can still ``awk '$1 == "port" {print $2}'``.  Nothing is
connected to; ``tls`` is decided as the client would decide it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .argv import PATHS
from .options import UsageError, add_client_options

if TYPE_CHECKING:
    from ..client.known_hosts import ServerPin
    from .resolve import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh config`` to the subcommands."""
    p = sub.add_parser(
        name,
        usage="rsh config [OPTIONS] [USER@]HOST[:PORT]",
        help="print the settings rsh would use for HOST (like 'ssh -G')",
        description="Print the settings a connection to HOST would use, from the command line, the config file "
        "(config.toml in the config directory, or -F) and the defaults, each with where it came from. "
        "Without HOST, list the config file's hosts and groups.",
    )
    add_client_options(p)
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="as rsh exec's")
    p.add_argument("--shell", metavar="PATH", help="as rsh exec's")
    p.add_argument("address", nargs="*", metavar="HOST")
    p.set_defaults(run=run, words=PATHS)


def run(args: argparse.Namespace) -> int:
    """Print HOST's settings (or the file's hosts and groups); return 0.

    Raises:
        UsageError: more than one HOST, or a malformed one.
        ConfigError: the config file cannot be used.
    """
    from ..client.known_hosts import ServerPin
    from ..config import path_exists
    from .resolve import config_of, resolve

    config = config_of(args)
    if not args.address:
        print(f"# {config.path}{'' if path_exists(config.path) else ' (there is no such file)'}")
        for name, values in config.hosts.items():
            print(f"host {name}" + (f"  # {values['address'].value}" if "address" in values else ""))
        for name, members in config.groups.items():
            print(f"group {name} {' '.join(members)}")
        return 0
    if len(args.address) > 1:
        raise UsageError(f"one HOST at a time, not {' '.join(args.address)}")
    settings = resolve(args, args.address[0], config)
    rows: list[tuple[str, object, str]] = [("host", settings.name, "config file" if settings.alias else "command line")]
    rows.append(("address", settings.host, settings.origin("address") if settings.values["address"].value else "the host's name"))
    for key in ("port", "user", "token_file", "fingerprint", "tls", "accept_new", "known_hosts", "shell", "timeout", "connect_timeout"):
        value: object = settings.values[key].value
        if key == "known_hosts" and value is None:
            value = settings.known_hosts_file()
        rows.append((key, value, settings.origin(key)))
    if not settings.values["tls"].value:  # false, as unset, leaves it to rsh
        # As the client decides: asked for, implied by a pin, or beyond loopback.
        try:
            pin = ServerPin(settings.host, settings.port, fingerprint=settings.fingerprint, known_hosts=settings.known_hosts_file())
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        wants = bool(settings.accept_new) or pin.wants_tls(None)
        rows[[r[0] for r in rows].index("tls")] = ("tls", wants, "decided: " + _why_tls(settings, pin, wants))
    width = max(len(k) for k, _, _ in rows)
    for key, value, origin in rows:
        print(f"{key:<{width}}  {_shown(value):<24}  # {origin}".rstrip())
    return 0


def _why_tls(settings: Settings, pin: ServerPin, wants: bool) -> str:
    from ..net.tls import is_loopback

    if settings.accept_new:
        return "accept_new"
    if settings.fingerprint:
        return "a fingerprint is given"
    if not is_loopback(settings.host):
        return "not a loopback address"
    if wants:
        return f"pinned in {pin.known_hosts.path}"
    return "loopback without a pin (a server that speaks TLS is then asked about)"


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
