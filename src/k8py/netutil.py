"""Small address helpers shared by the API server, kubelet, DNS and ingress."""

from __future__ import annotations

import ipaddress


def is_ip(s: str) -> bool:
    """Is `s` an IPv4 or IPv6 address (not a name, not a network)?"""
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True
