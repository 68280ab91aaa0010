"""What is inside the cluster and what is not, and which flows are replies.

Outside-ness is one predicate, ``external_mask``, over the networks ``cluster_networks``
learns: pod CIDRs and node addresses, Services' cluster IPs and load-balancer ingress
addresses, and the addresses of the interfaces that wrote the flow logs (a VPC/NSG flow log
record is written by an interface of that VPC, so its own address is inside). Enrichment
(``kind``), attribution and every rule decide with it, so no address is ``external`` in one
place and inside in another.

Direction: ``reply_mask`` is the flows' ``is_reply`` where the source said, else a reply is
recognised by its ports (a service port answering an ephemeral one) or by a listening socket
the runtime saw on the sending pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

METADATA_IPS = frozenset({"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"})
KUBELET_PORTS = frozenset({10250, 10255})
MINING_PORTS = frozenset({3333, 4444, 5555, 6666, 7777, 14433, 14444, 45560, 45700})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Private ranges a cluster and its VPC use. (ipaddress's is_private also counts the
# documentation ranges, which are outside addresses in every test and example.)
INTERNAL_RANGES = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)

# Flow formats written by an interface (or endpoint) of the VPC/cluster whose ``direction``
# says which end that interface is: ingress → the destination, egress → the source.
# Hubble is left out: its traffic_direction is the connection's, so on a reply flow the
# source is the remote end (and its pods are known from their lifetimes anyway).
INTERFACE_FORMATS = ("aws-vpc-flow", "gcp-vpc-flow", "azure-flow", "azure-traffic-analytics", "ocsf-network", "calico")

# Where the source cannot say which end opened a connection, a flow from a port below the
# ephemeral range to one inside it is the server answering: Linux picks client ports from
# 32768-60999 (ip_local_port_range), Windows and RFC 6335's dynamic range from 49152.
# NodePorts (30000-32767) stay below it, so a NodePort's answers are replies too.
EPHEMERAL_MIN = 32768


def cluster_networks(
    nodes: pd.DataFrame, *, services: pd.DataFrame | None = None, interfaces: Iterable[str] = ()
) -> list[Network]:
    """Inside networks: pod CIDRs and node addresses (``nodes`` context table), Services'
    cluster IPs and external/load-balancer ingress addresses (``services``), and
    ``interfaces``, the addresses that wrote flow-log records (``interface_addresses``)."""
    values: list[Any] = []
    for frame, cols in (
        (nodes, ("pod_cidrs", "internal_ips", "external_ips")),
        (services, ("cluster_ips", "external_ips")),
    ):
        if frame is None:
            continue
        for col in cols:
            if col in frame.columns:
                for v in frame[col].dropna():
                    values.extend(v if isinstance(v, Iterable) and not isinstance(v, str) else [v])
    values.extend(interfaces)
    nets: list[Network] = []
    for v in dict.fromkeys(str(v) for v in values if v is not None):
        if v in ("None", "", "-"):  # a headless Service's clusterIP is the word "None"
            continue
        try:
            nets.append(ipaddress.ip_network(v.strip("[]"), strict=False))
        except ValueError:
            continue
    return nets


def case_networks(source: Any) -> list[Network]:
    """``cluster_networks`` of a case (or anything with ``context(name)``, and ``sql`` for
    the flow-log interfaces): what enrichment and detection both call inside."""
    return cluster_networks(
        source.context("nodes"), services=source.context("services"), interfaces=interface_addresses(source)
    )


def external_mask(ips: pd.Series, networks: list[Network]) -> pd.Series:
    """True where the address is outside the cluster and its private network: not in
    ``networks`` (``cluster_networks``), not RFC 1918, CGNAT or ULA (a database or the control
    plane in the same VPC is not "the internet"), not loopback, link-local, multicast or a
    metadata address. A missing or unparsable address is not external.

    Dotted IPv4 addresses are judged as whole columns (their integers against the sorted
    ranges of everything that is not outside); any other text (IPv6, a bracketed address, an
    unparsable value) one distinct value at a time, as ``is_external`` does."""
    nets = tuple(networks)
    return _judge(ips, _not_outside_v4(nets), lambda v: _external(v, nets), inside=False)


def within(ips: pd.Series, networks: list[Network]) -> pd.Series:
    """True where the address is in one of ``networks`` (a missing or unparsable one is not)."""
    nets = tuple(networks)
    return _judge(ips, _v4_ranges(nets), lambda v: _within(v, nets), inside=True)


# a dotted IPv4 address exactly as ipaddress.IPv4Address takes it: four decimal octets of 0-255,
# no leading zeros (rejected since Python 3.9.5), nothing around them
_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_TEXT = rf"^{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}$"
# IPv4 addresses that are never outside, whatever the networks: loopback, link-local (and the
# metadata addresses in it), the unspecified address, multicast (ipaddress's is_* predicates)
_NEVER_OUTSIDE_V4 = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/32", "224.0.0.0/4")
) + tuple(ipaddress.ip_network(ip) for ip in METADATA_IPS if ipaddress.ip_address(ip).version == 4)


@lru_cache(maxsize=64)
def _v4_ranges(nets: tuple[Network, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The IPv4 networks of ``nets`` as sorted, merged ranges of integers: (starts, ends), ends inclusive."""
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == 4)
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in spans:
        if starts and lo <= ends[-1] + 1:
            ends[-1] = max(ends[-1], hi)
        else:
            starts.append(lo)
            ends.append(hi)
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


def _not_outside_v4(nets: tuple[Network, ...]) -> tuple[np.ndarray, np.ndarray]:
    return _v4_ranges((*nets, *INTERNAL_RANGES, *_NEVER_OUTSIDE_V4))


def _judge(ips: pd.Series, ranges: tuple[np.ndarray, np.ndarray], one: Any, *, inside: bool) -> pd.Series:
    """Per address: in ``ranges`` (``inside``) or not in them (not ``inside``) for the dotted IPv4
    ones, ``one(text)`` for each distinct other value; False where missing."""
    try:
        values = ips.array
        text = (
            pa.array(values)
            if hasattr(values, "__arrow_array__")
            else pa.array(ips.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        )
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            raise TypeError(text.type)
    except (pa.ArrowException, TypeError, ValueError):  # not text (addresses as objects): one value at a time
        return _judge_each(ips, one)
    # each distinct address judged once: millions of flows hold a few thousand addresses, and
    # the hash pass costs a fraction of the regex and the split it spares
    encoded = pc.dictionary_encode(text)
    judged = np.append(_judge_distinct(encoded.dictionary, ranges, one, inside=inside), False)  # last: missing
    at = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    return pd.Series(judged[at], index=ips.index, dtype=bool)


def _judge_distinct(text: pa.Array, ranges: tuple[np.ndarray, np.ndarray], one: Any, *, inside: bool) -> np.ndarray:
    """``_judge`` over distinct text values (no nulls): whole columns for dotted IPv4, ``one`` for the rest."""
    v4 = pc.fill_null(pc.match_substring_regex(text, IPV4_TEXT), False).to_numpy(zero_copy_only=False)
    out = np.zeros(len(text), dtype=bool)
    if v4.any():
        octets = pc.list_flatten(pc.split_pattern(text.filter(pa.array(v4)), "."))
        parts = np.asarray(pc.cast(octets, pa.int64())).reshape(-1, 4)
        addr = (parts[:, 0] << 24) | (parts[:, 1] << 16) | (parts[:, 2] << 8) | parts[:, 3]
        starts, ends = ranges
        at = np.searchsorted(starts, addr, side="right") - 1
        hit = (at >= 0) & (addr <= ends[np.maximum(at, 0)]) if len(starts) else np.zeros(len(addr), dtype=bool)
        out[v4] = hit if inside else ~hit
    rest = np.flatnonzero(~v4)
    if len(rest):
        out[rest] = [bool(one(v)) for v in text.take(pa.array(rest)).to_pylist()]
    return out


def _judge_each(ips: pd.Series, one: Any) -> pd.Series:
    codes, uniq = pd.factorize(ips, use_na_sentinel=True)  # each distinct address judged once
    judged = np.array([one(str(v)) for v in uniq] + [False], dtype=bool)  # the last entry: missing
    return pd.Series(judged[codes], index=ips.index, dtype=bool)


@lru_cache(maxsize=200_000)
def _within(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return False
    return any(addr in n for n in nets if n.version == addr.version)


def is_external(ip: str, networks: Iterable[Network] = ()) -> bool:
    """One address: ``external_mask`` for a single value."""
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


# the address of the interface that wrote each record: AWS keeps srcaddr/dstaddr (the ENI's
# own address, per the AWS docs' "Available fields") in extra when pkt-srcaddr/pkt-dstaddr
# differ — an NLB forwarding with client-IP preservation has the client's address as pkt-srcaddr
_INTERFACE_SQL = f"""
    SELECT DISTINCT addr FROM (
        SELECT CASE direction
            WHEN 'ingress' THEN coalesce(CASE WHEN contains(extra, 'interface-dstaddr') AND json_valid(extra)
                                              THEN json_extract_string(extra, '$."interface-dstaddr"') END, dst_ip)
            WHEN 'egress' THEN coalesce(CASE WHEN contains(extra, 'interface-srcaddr') AND json_valid(extra)
                                             THEN json_extract_string(extra, '$."interface-srcaddr"') END, src_ip) END AS addr
        FROM (SELECT source, direction, src_ip::VARCHAR AS src_ip, dst_ip::VARCHAR AS dst_ip, extra::VARCHAR AS extra FROM {{table}})
        WHERE source IN ({", ".join(repr(s) for s in INTERFACE_FORMATS)}) AND direction IN ('ingress', 'egress'))
    WHERE addr IS NOT NULL ORDER BY addr"""
_CASE_INTERFACES: dict[tuple[str, str], frozenset[str]] = {}


def interface_addresses(source: Any) -> frozenset[str]:
    """The addresses of the interfaces that wrote interface-level flow-log records (VPC,
    NSG/VNet, Traffic Analytics, OCSF, Calico): ``source`` is a flows DataFrame (with
    ``source, direction, src_ip, dst_ip, extra``) or a case (its whole flows table, once per
    version of the table). An empty set when neither is there."""
    if isinstance(source, pd.DataFrame):
        if not {"source", "direction", "src_ip", "dst_ip"} <= set(source.columns) or source.empty:
            return frozenset()
        frame = (
            source[["source", "direction", "src_ip", "dst_ip"]]
            .assign(extra=source["extra"] if "extra" in source.columns else None)
            .astype(object)
        )
        con = duckdb.connect()
        try:
            con.register("_flows", frame)
            return frozenset(con.sql(_INTERFACE_SQL.format(table="_flows")).fetchnumpy()["addr"].tolist())
        finally:
            con.close()
    sql = getattr(source, "sql", None)
    if sql is None:
        return frozenset()
    parts = (getattr(source, "manifest", None) or {}).get("tables", {}).get("flows", {})
    key = (str(getattr(source, "path", id(source))), repr(parts))
    if key not in _CASE_INTERFACES:
        _CASE_INTERFACES.clear()  # one case at a time: the cache is for the chunks of one run
        _CASE_INTERFACES[key] = frozenset(sql(_INTERFACE_SQL.format(table="flows"))["addr"].dropna().astype(str))
    return _CASE_INTERFACES[key]


def reply_mask(flows: pd.DataFrame, *, listening: frozenset[tuple[str, str, int]] = frozenset()) -> pd.Series:
    """True for the flows that are replies (the responder's packets). ``is_reply`` where the
    source said; else by listening sockets (``listening``: (namespace, pod, port) a runtime
    sensor saw listen or accept, ``listening_sockets``): a flow from a pod's listening port to
    another port is that server answering; else by ports: from below ``EPHEMERAL_MIN`` to an
    ephemeral port ≥ it. A flow that none of these decide counts as an initiator's."""
    given = (
        flows["is_reply"].astype("boolean")
        if "is_reply" in flows.columns
        else pd.Series(pd.NA, index=flows.index, dtype="boolean")
    )
    sport = (
        pd.to_numeric(flows.get("src_port"), errors="coerce")
        if "src_port" in flows.columns
        else pd.Series(np.nan, index=flows.index)
    )
    dport = (
        pd.to_numeric(flows.get("dst_port"), errors="coerce")
        if "dst_port" in flows.columns
        else pd.Series(np.nan, index=flows.index)
    )
    by_port = (sport < EPHEMERAL_MIN) & (dport >= EPHEMERAL_MIN)
    if listening and {"src_namespace", "src_pod"} <= set(flows.columns):
        keys = pd.Series(list(zip(flows["src_namespace"], flows["src_pod"], sport)), index=flows.index, dtype=object)
        back = (
            pd.Series(list(zip(flows["dst_namespace"], flows["dst_pod"], dport)), index=flows.index, dtype=object)
            if {"dst_namespace", "dst_pod"} <= set(flows.columns)
            else pd.Series(None, index=flows.index, dtype=object)
        )
        # the sender listens on its port and the receiver does not listen on its own: an answer
        by_port = by_port | (keys.isin(listening) & ~back.isin(listening))
    return given.fillna(by_port.fillna(False)).astype(bool)


_LISTEN = (
    r"(?i)listen|accept"  # process_listen, inet_csk_listen_start, security_socket_listen/accept, listen/accept syscalls
)


def listening_sockets(runtime: pd.DataFrame) -> frozenset[tuple[str, str, int]]:
    """(namespace, pod, port) of the sockets runtime sensors saw a pod listen on or accept
    from (Tetragon process_listen / inet_csk_listen_start kprobes, Tracee
    security_socket_listen/accept, Falco listen/accept syscalls): the local port of such an
    event is a server port of that pod."""
    need = {"event_type", "namespace", "pod", "src_port"}
    if runtime.empty or not need <= set(runtime.columns):
        return frozenset()
    r = runtime[(runtime["event_type"] == "network") & runtime["pod"].notna() & runtime["src_port"].notna()]
    if r.empty:
        return frozenset()
    text = pd.Series("", index=r.index)
    for col in ("rule", "extra", "output"):
        if col in r.columns:
            text = text + " " + r[col].fillna("").astype(str)
    r = r[text.str.contains(_LISTEN, regex=True)]
    return frozenset(
        (str(n), str(p), int(port)) for n, p, port in zip(r["namespace"], r["pod"], r["src_port"]) if int(port) > 0
    )
