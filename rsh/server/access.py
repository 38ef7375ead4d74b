"""``--allow`` / ``--deny``: which peer addresses may connect at all.

Checked by ``rsh.server.gate`` before a byte is read from a new connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["AccessList", "Address", "peer_address"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_address(host: str) -> Address:
    """The address of a peer as the access list sees it (IPv4-mapped IPv6 as IPv4)."""
    addr = ipaddress.ip_address(host.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class AccessList:
    """``--allow`` / ``--deny``: addresses and CIDR ranges, IPv4 and IPv6.

    With any ``allow`` entry only matching peers get in; a ``deny`` match
    keeps a peer out whatever ``allow`` says.

    Raises:
        ValueError: an entry is not an address or a CIDR range.
    """

    def __init__(self, allow: Sequence[str] = (), deny: Sequence[str] = ()) -> None:
        self.allow = [self._network(a) for a in allow]
        self.deny = [self._network(d) for d in deny]

    @staticmethod
    def _network(text: str) -> Network:
        try:
            net = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or CIDR range (like 192.0.2.0/24 or 2001:db8::/32)") from exc
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None and net.prefixlen >= 96:
            # ::ffff:a.b.c.d/n means the IPv4 range; peers are compared as IPv4.
            return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
        return net

    def permits(self, addr: Address) -> bool:
        """True when *addr* may connect."""
        if any(addr in net for net in self.deny):
            return False
        return not self.allow or any(addr in net for net in self.allow)

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)
