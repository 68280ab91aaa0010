"""What is inside the cluster and what is not: pod CIDRs and node addresses from the context,
so rules can tell an outside address from a pod address that no lifetime covers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

METADATA_IPS = frozenset({"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"})
KUBELET_PORTS = frozenset({10250, 10255})
MINING_PORTS = frozenset({3333, 4444, 5555, 6666, 7777, 8888, 9999, 14433, 14444, 45560, 45700})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def cluster_networks(nodes: pd.DataFrame) -> list[Network]:
    """Pod CIDRs and node addresses from the ``nodes`` context table."""
    nets: list[Network] = []
    for col in ("pod_cidrs", "internal_ips", "external_ips"):
        if col not in nodes.columns:
            continue
        for values in nodes[col].dropna():
            for v in values if isinstance(values, Iterable) and not isinstance(values, str) else [values]:
                try:
                    nets.append(ipaddress.ip_network(str(v), strict=False))
                except ValueError:
                    continue
    return nets


def external_mask(ips: pd.Series, networks: list[Network]) -> pd.Series:
    """True where the address is outside the cluster: not in a pod CIDR or node address,
    not loopback, link-local or a cloud metadata address. Without any known network,
    private (RFC 1918, ULA, CGNAT) addresses count as inside."""
    nets = tuple(networks)
    values = ips.astype(object)
    uniq = {v: _external(v, nets) for v in pd.unique(values.dropna())}
    return values.map(uniq).fillna(False).astype(bool)


@lru_cache(maxsize=200_000)
def _external(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip).strip("[]"))
    except ValueError:
        return False
    if addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast or str(addr) in METADATA_IPS:
        return False
    if nets:
        return not any(addr in n for n in nets if n.version == addr.version)
    return not addr.is_private
