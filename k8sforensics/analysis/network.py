"""What is inside the cluster and what is not: pod CIDRs and node addresses from the context,
so rules can tell an outside address from a pod address that no lifetime covers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

METADATA_IPS = frozenset({"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"})
KUBELET_PORTS = frozenset({10250, 10255})
MINING_PORTS = frozenset({3333, 4444, 5555, 6666, 7777, 14433, 14444, 45560, 45700})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Private ranges a cluster and its VPC use. (ipaddress's is_private also counts the
# documentation ranges, which are outside addresses in every test and example.)
INTERNAL_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))


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
    """True where the address is outside the cluster and its private network: not in a pod
    CIDR or node address, not RFC 1918, CGNAT or ULA (a database or the control plane in
    the same VPC is not "the internet"), not loopback, link-local or a metadata address."""
    nets = tuple(networks)
    codes, uniq = pd.factorize(ips, use_na_sentinel=True)  # each distinct address judged once
    judged = np.array([_external(str(v), nets) for v in uniq] + [False], dtype=bool)  # the last entry: missing
    return pd.Series(judged[codes], index=ips.index, dtype=bool)


def is_external(ip: str, networks: Iterable[Network] = ()) -> bool:
    """One address: outside the cluster and its private network (see ``external_mask``)."""
    return _external(str(ip), tuple(networks))


@lru_cache(maxsize=200_000)
def _external(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip).strip("[]"))
    except ValueError:
        return False
    if addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast or str(addr) in METADATA_IPS:
        return False
    return not any(addr in n for n in (*nets, *INTERNAL_RANGES) if n.version == addr.version)
