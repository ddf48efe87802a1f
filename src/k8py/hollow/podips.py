"""Pod IPs from a node's podCIDR, as the host-local CNI plugin hands them
out: the network address and the gateway (.1) are never given."""

from __future__ import annotations

import ipaddress


class PodIPs:
    def __init__(self, cidr: str):
        self.net = ipaddress.ip_network(cidr, strict=False)
        self._base = int(self.net.network_address)
        self._size = self.net.num_addresses
        self._used: set[int] = set()
        self._next = 2

    def allocate(self) -> str | None:
        """The next free address after the last one given (round robin)."""
        span = self._size - 3  # minus network, gateway and broadcast
        if span <= 0 or len(self._used) >= span:
            return None
        off = self._next
        while off in self._used:
            off = off + 1 if off + 1 < self._size - 1 else 2
        self._used.add(off)
        self._next = off + 1 if off + 1 < self._size - 1 else 2
        return str(ipaddress.ip_address(self._base + off))

    def reserve(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if addr not in self.net:
            return False
        self._used.add(int(addr) - self._base)
        return True

    def release(self, ip: str) -> None:
        try:
            self._used.discard(int(ipaddress.ip_address(ip)) - self._base)
        except ValueError:
            pass

    def __len__(self) -> int:
        return len(self._used)
