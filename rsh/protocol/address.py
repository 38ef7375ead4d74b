"""Where a server is: ``DEFAULT_PORT``, and ``[USER@]HOST[:PORT]`` as users write it (``[v6addr]:PORT`` for IPv6)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ..typeshim import NamedTuple

__all__ = ["DEFAULT_PORT", "Target", "parse_address", "parse_target", "parse_port", "split_remote"]

#: The port ``rsh serve`` listens on unless told otherwise.
DEFAULT_PORT = 7022


class Target(NamedTuple):
    """``[USER@]HOST[:PORT]`` taken apart; *user* and *port* are None when not written."""

    user: str | None
    host: str
    port: int | None


def parse_port(text: str, where: str | None = None) -> int:
    """*text* as a port number.

    Raises:
        ValueError: it is not a number from 1 to 65535.
    """
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"invalid port {text!r}" + (f" in {where!r}" if where else "") + " (a number from 1 to 65535)")
    return int(text)


def _split_host(text: str) -> tuple[str, str | None]:
    """``HOST`` and what follows its colon (None: no colon), with ``[v6]`` brackets; a bare v6 address has no port."""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or not host:
            raise ValueError(f"unclosed or empty '[' in {text!r} (an IPv6 address is written [ADDR]:PORT)")
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after ']' in {text!r}")
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, _, rest = text.partition(":")
        return host, rest
    return text, None


def parse_target(text: str) -> Target:
    """Split ``[USER@]HOST[:PORT]`` (``[v6addr]:PORT``, or a bare v6 address without a port).

    Raises:
        ValueError: an empty host or user, an unclosed bracket, or a port that is not 1 to 65535.
    """
    user: str | None = None
    if "@" in text:
        # The last '@', as ssh: the host part holds none.
        user, _, text = text.rpartition("@")
        if not user:
            raise ValueError(f"empty user name before '@' in {user + '@' + text!r}")
    host, port_s = _split_host(text)
    if not host:
        raise ValueError(f"no host in {text!r}")
    port = parse_port(port_s, text) if port_s else None
    return Target(user, host, port)


def parse_address(address: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split ``HOST[:PORT]`` (``[v6addr]:PORT`` for IPv6) into host and port; an empty host is 127.0.0.1.

    Raises:
        ValueError: the port is not a number from 1 to 65535, or the address is malformed.
    """
    if address in ("", ":") or address.startswith(":") and address.count(":") == 1:
        # ":7022" is this machine, as it always was.
        return "127.0.0.1", parse_port(address[1:], address) if address[1:] else default_port
    target = parse_target(address)
    return target.host, target.port if target.port is not None else default_port


def split_remote(text: str) -> tuple[str, str] | None:
    """``[USER@]HOST:PATH`` (scp's form) as (``[USER@]HOST``, PATH); None when *text* names a local path.

    As with scp, a colon before any slash marks a remote: ``./a:b`` and ``/x:y`` are local.
    """
    user = ""
    at = text.find("@")
    if at > 0 and not any(c in text[:at] for c in "/:["):
        user, text = text[: at + 1], text[at + 1 :]
    if text.startswith("["):
        close = text.find("]")
        if close > 0 and text[close + 1 : close + 2] == ":":
            return user + text[: close + 1], text[close + 2 :]
        return None
    colon = text.find(":")
    if colon <= 0 or "/" in text[:colon]:
        return None
    return user + text[:colon], text[colon + 1 :]
