"""NetworkPolicies from the flows the case saw — default deny per namespace, then an allow per
workload for the legitimate flows (the attack's excluded) — and an evaluator that replays flows
against any set of policies with the Kubernetes semantics, to check what they would allow.

A workload is selected by the labels its pods share (hash labels a controller adds, such as
``pod-template-hash``, left out); a pod known only from the evidence takes its workload's labels.
Peers become a ``podSelector`` (with a ``namespaceSelector`` on
``kubernetes.io/metadata.name`` across namespaces), a node's address, or addresses outside:
each one, or — when a port is open to many — ``0.0.0.0/0`` less the attacker's addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
# labels a controller stamps on each pod (they change per rollout, or per pod)
UNSTABLE_LABELS = {
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "job-name",
    "controller-uid",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/controller-uid",
    "apps.kubernetes.io/pod-index",
    "pod-template-generation",
}
MANY_CLIENTS = 5  # this many outside addresses on one port: the port is public, allow the world (less the attacker)
PREFIX = "k8sforensics"
# the start of the Linux default ephemeral port range (net.ipv4.ip_local_port_range): a flow to a
# pod on such a port is the answer to a request (a DNS reply over UDP, which has no flags to say so)
EPHEMERAL = 32768
# the cluster DNS: CoreDNS keeps the kube-dns label and Service name (Kubernetes docs, "DNS for
# Services and Pods"; "Customizing DNS Service")
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def stable_labels(labels: Any) -> dict[str, str]:
    """A pod's labels without the ones its controller stamps per rollout or per pod."""
    items = labels.items() if isinstance(labels, Mapping) else (labels if isinstance(labels, (list, tuple)) else [])
    return {str(k): str(v) for k, v in items if k not in UNSTABLE_LABELS}


def pod_labels(pods: pd.DataFrame, pod_ips: pd.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, pod) → stable labels, for every pod the case knows: its own labels from the
    inventory, else those its workload's pods share, else — for a pod named like a Deployment's
    (``<deployment>-<hash>-<suffix>``) — that Deployment's; ``{}`` when none is known (a
    namespace-wide policy still selects the pod, no policy of its own can)."""
    known = pd.concat(
        [
            pods.rename(columns={"name": "pod"})[["namespace", "pod", "workload", "labels"]],
            pod_ips[["namespace", "pod", "workload"]].assign(labels=None),
        ],
        ignore_index=True,
    )
    known = known[known["namespace"].notna() & known["pod"].notna()]
    own = {
        (r.namespace, r.pod): stable_labels(r.labels)
        for r in known.itertuples(index=False)
        if r.labels is not None and stable_labels(r.labels)
    }
    shared: dict[tuple[str, str], dict[str, str]] = {}
    for (ns, wl), g in known[known["workload"].notna()].groupby(["namespace", "workload"]):
        sets = [own[(ns, p)] for p in g["pod"] if (ns, p) in own]
        if sets:
            shared[(ns, wl)] = {k: v for k, v in sets[0].items() if all(s.get(k) == v for s in sets[1:])}
    out = {}
    for r in known.drop_duplicates(["namespace", "pod"]).itertuples(index=False):
        key = (r.namespace, r.pod)
        workload = r.workload if isinstance(r.workload, str) else str(r.pod).rsplit("-", 2)[0]
        out[key] = own.get(key) or shared.get((r.namespace, workload)) or {}  # {}: known, but no label to select it by
    return out


def network_policies(
    flows: pd.DataFrame,
    labels: Mapping[tuple[str, str], Mapping[str, str]],
    *,
    attack: pd.Series | None = None,
    attacker_ips: Iterable[str] = (),
    nodes: pd.DataFrame | None = None,
    skip_namespace: Callable[[str], bool] | None = None,
    stale_addresses: Mapping[str, tuple[str, str]] | None = None,
    api_servers: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """NetworkPolicy objects: per namespace with pods in ``flows`` (the attack's included), a
    default deny (ingress and egress) with the egress every pod needs whatever the flows show —
    the cluster DNS over UDP and TCP 53, and the API server (``api_servers``: its endpoint
    addresses) — then per workload one policy allowing what it was seen to send and receive in
    the allowed flows that are not ``attack`` (a boolean Series aligned with ``flows``).
    A namespace ``skip_namespace`` says yes to (the cluster's own: DNS, the pod network, the
    cloud controllers) gets nothing: a default deny there takes the cluster down, and its flows
    rarely show everything it needs. An address in ``stale_addresses`` (a pod address no pod
    held at the time of the flow: ip → the (namespace, pod) that held it last) never becomes an
    ``ipBlock`` — another pod may hold it now — but stands for that pod's workload, by its labels."""
    skip = skip_namespace or (lambda ns: False)
    stale = dict(stale_addresses or {})
    f = flows[~flows["is_reply"].eq(True) & (flows["verdict"].fillna("allowed") == "allowed")]
    if attack is not None:
        f = f[~attack.reindex(f.index).fillna(False).astype(bool)]
    attacker = sorted({ip for ip in attacker_ips if _is_ip(ip)})
    node_ips = _node_ips(nodes)
    Target = tuple[str, frozenset[tuple[str, str]]]  # namespace, the labels that select the workload
    rules: dict[tuple[Target, str], dict[tuple[Any, ...], set[tuple[str, int]]]] = {}
    outside: dict[tuple[Target, str, str, int], set[str]] = {}
    for side, other, direction in (("dst", "src", "ingress"), ("src", "dst", "egress")):
        mine = _endpoints(f, side, labels, stale)
        theirs = _endpoints(f, other, labels, stale)
        protocols = list(zip(f["protocol"].fillna("tcp").str.upper(), pd.to_numeric(f["dst_port"], errors="coerce")))
        for me, them, ip, (proto, port) in zip(mine, theirs, f[f"{other}_ip"], protocols):
            if me is None or pd.isna(port) or proto not in ("TCP", "UDP", "SCTP") or skip(me[0]):
                continue
            if them is None and isinstance(ip, str) and ip in stale:
                continue  # a pod address with no workload to stand for: no rule rather than a stale ipBlock
            if int(port) >= EPHEMERAL and them is not None:
                continue  # an answer to a request (UDP replies carry no flag saying so), not a service
            target: Target = (me[0], _freeze(me[1]))
            if them is not None:
                spec: tuple[Any, ...] = ("pod", them[0], _freeze(them[1]))
            elif isinstance(ip, str) and ip in node_ips:
                spec = ("ip", f"{ip}/32")
            elif isinstance(ip, str) and _is_ip(ip):
                outside.setdefault((target, direction, proto, int(port)), set()).add(ip)
                continue
            else:
                continue
            rules.setdefault((target, direction), {}).setdefault(spec, set()).add((proto, int(port)))
    for (target, direction, proto, port), ips in outside.items():
        group = rules.setdefault((target, direction), {})
        if len(ips) >= MANY_CLIENTS:
            group.setdefault(("world",), set()).add((proto, port))
        else:
            for ip in ips:
                group.setdefault(("ip", _host_cidr(ip)), set()).add((proto, port))
    targets = sorted({t for t, _ in rules}, key=lambda t: (t[0], sorted(t[1])))
    # every namespace that ran a pod in these flows is closed, even one with no workload to allow
    pod_namespaces = {
        ns
        for side in ("src", "dst")
        for ns, pod in zip(flows[f"{side}_namespace"], flows[f"{side}_pod"])
        if isinstance(ns, str) and isinstance(pod, str)
    }
    servers = sorted({ip for ip in api_servers if _is_ip(ip)})
    out = [
        p
        for ns in sorted(pod_namespaces | {ns for ns, _ in targets})
        if not skip(ns)
        for p in _default_deny(ns, servers)
    ]
    for ns, frozen in targets:
        policy: dict[str, Any] = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": _name(ns, dict(frozen)),
                "namespace": ns,
                "labels": {"app.kubernetes.io/managed-by": PREFIX},
                "annotations": {f"{PREFIX}.io/source": "flows observed in the case, attack flows excluded"},
            },
            "spec": {
                "podSelector": {"matchLabels": dict(sorted(frozen))},
                "policyTypes": [],
                "ingress": [],
                "egress": [],
            },
        }
        for direction in ("ingress", "egress"):
            for spec, ports in sorted(rules.get(((ns, frozen), direction), {}).items(), key=lambda x: str(x[0])):
                policy["spec"][direction].append(
                    {
                        "from" if direction == "ingress" else "to": [_peer(spec, ns, attacker)],
                        "ports": [{"protocol": p, "port": n} for p, n in sorted(ports)],
                    }
                )
            if policy["spec"][direction]:
                policy["spec"]["policyTypes"].append(direction.capitalize())
            else:
                del policy["spec"][direction]
        out.append(policy)
    return out


def _default_deny(ns: str, api_servers: list[str]) -> list[dict[str, Any]]:
    """The default deny of a namespace, and beside it the egress every pod needs: DNS, and the
    API server for the pods that use their service-account token."""
    meta = {"namespace": ns, "labels": {"app.kubernetes.io/managed-by": PREFIX}}
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{PREFIX}-default-deny", **meta},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    egress = [{"to": [DNS_PEER], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    if api_servers:
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": _host_cidr(ip)}} for ip in api_servers],
                "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}],
            }
        )
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{PREFIX}-allow-dns-and-api", **meta},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
    }
    return [deny, allow]


def _peer(spec: tuple[Any, ...], ns: str, attacker: list[str]) -> dict[str, Any]:
    if spec[0] == "pod":
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(sorted(spec[2]))}}
        if spec[1] != ns:
            peer["namespaceSelector"] = {"matchLabels": {NAMESPACE_LABEL: spec[1]}}
        return peer
    if spec[0] == "ip":
        return {"ipBlock": {"cidr": spec[1]}}
    block: dict[str, Any] = {"cidr": "0.0.0.0/0"}
    v4 = [_host_cidr(ip) for ip in attacker if ipaddress.ip_address(ip).version == 4]
    if v4:
        block["except"] = v4
    return {"ipBlock": block}


def _endpoints(
    f: pd.DataFrame,
    side: str,
    labels: Mapping[tuple[str, str], Mapping[str, str]],
    stale: Mapping[str, tuple[str, str]],
) -> list[tuple[str, dict[str, str]] | None]:
    """Each flow's pod on one side, with the labels that select it: the flow's own pod, else the
    pod that last held a stale address."""
    out: list[tuple[str, dict[str, str]] | None] = []
    for ns, pod, ip in zip(f[f"{side}_namespace"], f[f"{side}_pod"], f[f"{side}_ip"]):
        if not (isinstance(ns, str) and isinstance(pod, str)) and isinstance(ip, str) and ip in stale:
            ns, pod = stale[ip]
        sel = labels.get((ns, pod)) if isinstance(ns, str) and isinstance(pod, str) else None
        out.append((ns, dict(sel)) if sel else None)
    return out


def _freeze(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _name(ns: str, sel: dict[str, str]) -> str:
    value = (
        sel.get("app.kubernetes.io/name")
        or sel.get("app")
        or sel.get("k8s-app")
        or "-".join(f"{v}" for _, v in sorted(sel.items()))
    )
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in f"{PREFIX}-allow-{value}".lower()).strip("-")
    return name[:63].rstrip("-")


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def _host_cidr(ip: str) -> str:
    return f"{ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}"


def _node_ips(nodes: pd.DataFrame | None) -> set[str]:
    if nodes is None or nodes.empty:
        return set()
    return {str(ip) for col in ("internal_ips", "external_ips") for ips in nodes[col] if ips is not None for ip in ips}


# ------------------------------------------------------------------------------------ evaluation


def evaluate(
    policies: list[dict[str, Any]],
    flows: pd.DataFrame,
    labels: Mapping[tuple[str, str], Mapping[str, str]],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    stale_addresses: Mapping[str, tuple[str, str]] | None = None,
) -> pd.Series:
    """For each flow, whether ``policies`` would let it through (the Kubernetes semantics: a pod
    selected by no policy of a direction is open in that direction; otherwise a flow needs a
    matching rule on the sending pod's egress *and* the receiving pod's ingress). A side that is
    not a pod (a node, an outside address) is not policed; a pod address no pod held at the time
    (``stale_addresses``, as for ``network_policies``) stands for the pod that held it last —
    the replacement of that pod's workload, in the cluster the policies are applied to. Returns a
    boolean Series aligned with ``flows``."""
    stale = dict(stale_addresses or {})
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for p in policies:
        by_ns.setdefault(p["metadata"]["namespace"], []).append(p)
    ns_labels = {k: dict(v) for k, v in (namespace_labels or {}).items()}
    verdicts = []
    for r in flows.itertuples(index=False):
        src = _pod(r.src_namespace, r.src_pod, labels) or _pod(*stale.get(str(r.src_ip), (None, None)), labels)
        dst = _pod(r.dst_namespace, r.dst_pod, labels) or _pod(*stale.get(str(r.dst_ip), (None, None)), labels)
        proto = str(r.protocol or "tcp").upper()
        port = int(r.dst_port) if pd.notna(r.dst_port) else None
        ok = True
        if src is not None:
            ok = _policy_allows(by_ns.get(src[0], []), src, "Egress", dst, r.dst_ip, proto, port, ns_labels)
        if ok and dst is not None:
            ok = _policy_allows(by_ns.get(dst[0], []), dst, "Ingress", src, r.src_ip, proto, port, ns_labels)
        verdicts.append(ok)
    return pd.Series(verdicts, index=flows.index, dtype=bool)


def _pod(
    ns: Any, pod: Any, labels: Mapping[tuple[str, str], Mapping[str, str]]
) -> tuple[str, Mapping[str, str]] | None:
    if isinstance(ns, str) and isinstance(pod, str):
        return ns, labels.get(
            (ns, pod), {}
        )  # a pod the inventory never saw is still a pod its namespace's policies select
    return None


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def _policy_allows(
    policies: list[dict[str, Any]],
    me: tuple[str, Mapping[str, str]],
    direction: str,
    peer: tuple[str, Mapping[str, str]] | None,
    peer_ip: Any,
    proto: str,
    port: int | None,
    ns_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    selecting = [p for p in policies if direction in _types(p) and _selects(p["spec"].get("podSelector") or {}, me[1])]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for p in selecting:
        for rule in p["spec"].get(key) or []:
            if _ports_match(rule.get("ports"), proto, port) and _peers_match(
                rule.get(peers_key), me[0], peer, peer_ip, ns_labels
            ):
                return True
    return False


def _types(p: dict[str, Any]) -> list[str]:
    types = p["spec"].get("policyTypes")
    if types:
        return list(types)
    return ["Ingress"] + (["Egress"] if p["spec"].get("egress") else [])


def _ports_match(ports: list[dict[str, Any]] | None, proto: str, port: int | None) -> bool:
    if not ports:
        return True
    for p in ports:
        if str(p.get("protocol", "TCP")).upper() != proto:
            continue
        if p.get("port") is None:
            return True
        if port is not None and isinstance(p["port"], int) and p["port"] <= port <= int(p.get("endPort") or p["port"]):
            return True
    return False


def _peers_match(
    peers: list[dict[str, Any]] | None,
    my_ns: str,
    peer: tuple[str, Mapping[str, str]] | None,
    peer_ip: Any,
    ns_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    if peers is None:
        return True  # no from/to: every peer
    for rule in peers:
        if "ipBlock" in rule:
            if _in_block(rule["ipBlock"], peer_ip):
                return True
            continue
        if peer is None:
            continue
        pns, plabels = peer
        if "namespaceSelector" in rule:
            labels = {NAMESPACE_LABEL: pns, **ns_labels.get(pns, {})}
            if not _selects(rule["namespaceSelector"], labels):
                continue
        elif pns != my_ns:
            continue
        if "podSelector" not in rule or _selects(rule["podSelector"], plabels):
            return True
    return False


def _in_block(block: Mapping[str, Any], ip: Any) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip))
        if addr not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    except ValueError:
        return False
