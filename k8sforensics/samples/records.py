"""The platform-neutral records a scenario emits before a platform writes them in its own
formats: Kubernetes audit events (``audit.k8s.io/v1`` ``Event`` dicts), network flows
(``Flow``) and runtime events (already in their tool's format: runtime sensors look the same on
every platform). Each record carries the attack step it is evidence of, if any."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """A pod as a CNI flow log (Hubble, Calico, GKE's flow-log annotations) names it."""

    namespace: str
    pod: str
    labels: tuple[tuple[str, str], ...]
    workload: tuple[str, str] | None  # (kind, name), e.g. ("Deployment", "web")
    node: str
    host_network: bool = False


@dataclass
class Flow:
    """One connection as the initiator opened it: ``src_ip:sport`` → ``dst_ip:dport``. A
    platform writer turns it into the records its logs hold — a VPC flow log has one record
    per direction and interface (the reply too), a CNI log one per observation point.

    ``src_ip``/``dst_ip`` are the addresses on the wire inside the cluster (pod addresses);
    ``src_host``/``dst_host`` the node address the packets leave or arrive through when the
    endpoint is a pod (a VPC log records the interface address, and ``pkt-*addr`` the pod's);
    ``snat`` says whether the source pod's address is translated to its node's on the way out
    (traffic to the Internet, or on overlay networks)."""

    time: dt.datetime
    src_ip: str
    dst_ip: str
    sport: int
    dport: int
    protocol: str = "TCP"  # TCP or UDP
    action: str = "ACCEPT"  # ACCEPT, or REJECT when a firewall/NetworkPolicy dropped it
    packets: int = 10
    bytes: int = 1500
    reply_packets: int = 8
    reply_bytes: int = 4000
    src: Endpoint | None = None
    dst: Endpoint | None = None
    src_host: str | None = None
    dst_host: str | None = None
    snat: bool = False
    dns_query: str | None = None
    step: str | None = None


@dataclass
class Emitted:
    """Everything one scenario emitted, in emission order (writers sort by time)."""

    audit: list[tuple[dt.datetime, dict[str, Any], str | None]] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    # runtime events per file name ("runtime/falco-alerts.jsonl", ...): (time, record, step)
    runtime: dict[str, list[tuple[dt.datetime, dict[str, Any], str | None]]] = field(default_factory=dict)


@dataclass
class Written:
    """What a platform writer wrote: lines per file (1-based) that are evidence of a step, the
    records it made bad on purpose (a truncated export), and the line count of each file."""

    evidence: list[tuple[str, str, int]] = field(default_factory=list)  # (step, file, line)
    malformed: list[dict[str, Any]] = field(default_factory=list)  # {"file", "line", "reason"}
    files: dict[str, int] = field(default_factory=dict)
