"""Where a server is: ``DEFAULT_PORT`` and ``HOST[:PORT]`` as users write it."""

from __future__ import annotations

__all__ = ["DEFAULT_PORT", "parse_address"]

#: The port ``rsh serve`` listens on unless told otherwise.
DEFAULT_PORT = 7022


def parse_address(address: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Split ``HOST[:PORT]`` (``[v6addr]:PORT`` for IPv6) into host and port.

    Raises:
        ValueError: the port is not a number from 1 to 65535.
    """
    host, port_s = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, port_s = address.partition(":")
    if not port_s:
        return host or "127.0.0.1", default_port
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"invalid port {port_s!r} in {address!r}")
    return host or "127.0.0.1", int(port_s)
