#!/usr/bin/env python3
"""Deterministic generator of synthetic network flows: Hubble exporter JSONL and AWS VPC Flow Logs.

Usage:
    python benchmarks/gen_flows.py N OUTDIR [--seed 7] [--formats hubble vpc vpc-v2 gcp azure] [--stats]

Besides the two formats below (the default), the same traffic in three more shapes:
``vpc-v2_N.log`` the default VPC format (version 2, 14 fields, with the S3 header);
``gcp_N.jsonl`` GCP VPC Flow Logs as Cloud Logging LogEntries (``jsonPayload.connection``,
GKE pod details); ``azure_N/`` Azure VNet flow logs v4, one ``{"records": [...]}`` blob per
hour with ``flowTuples``. ``--stats`` checks the first two.

Writes, for the same simulated EKS cluster (``prod-eks``, eu-west-1, Cilium in ENI mode so pods
have VPC addresses), N flow records per format:

``OUTDIR/hubble_N.jsonl``  Hubble exporter lines ``{"flow": {...}, "node_name": ..., "time": ...}``
    (~1.3 KB/line; the real hubble-otel samples are 1.3-1.7 KB) with the fields and key order of
    hubble-otel's basic samples and Cilium's exporter docs: RFC3339 times with nanoseconds;
    verdict FORWARDED (~98 %) or DROPPED with ``drop_reason`` 133 / ``drop_reason_desc``
    POLICY_DENIED (~1.3 %); ``ethernet`` (some), ``IP``, ``l4`` TCP (with flags) / UDP / ICMPv4;
    source/destination endpoints with ID, identity, namespace, pod_name, ``k8s:key=value``
    labels (pod, namespace and Cilium labels) and ``workloads`` [{name, kind}], or
    ``reserved:world`` / ``reserved:host`` / ``reserved:kube-apiserver`` / ``reserved:health`` /
    ``reserved:remote-node`` identities; ``Type`` L3_L4 (~87 %), or L7 with ``l7.dns`` (query,
    answer or NXDOMAIN) or ``l7.http`` (method, url, code, headers); destination_service,
    destination_names / source_names for traffic to named Internet hosts, event_type,
    traffic_direction, trace_observation_point, is_reply, Summary. ~45 % of lines are replies.
    One of the ten nodes runs an old Cilium (~17 % of lines): bare node name instead of
    ``cluster/node``, no ``workloads``, and the old ``"reply": true`` instead of ``is_reply``
    (absent when false, so is_reply is unknown there).
``OUTDIR/vpc_N.log``  AWS VPC Flow Logs as S3 delivers them: a header line, then N records in the
    custom v5 layout ``version account-id interface-id srcaddr dstaddr srcport dstport protocol
    packets bytes start end action log-status vpc-id pkt-srcaddr pkt-dstaddr flow-direction``,
    space separated, ``-`` for missing values, epoch-second start/end (60 s aggregation):
    pod-to-pod and DNS traffic on the pods' ENIs (same-node traffic never reaches an ENI, so it
    is not logged), pod egress SNATed to the node address plus the NAT gateway's view of it
    (dstaddr = NAT gateway, pkt-dstaddr = the Internet host), Internet clients to the ingress
    pods and the NLB, ~5 % REJECT (scanners, a CI pod hitting the database subnet), ~0.5 %
    ICMP and ~1 % NODATA / SKIPDATA records.

The cluster: 10 nodes in 3 AZs, ~40 running pods across 13 workloads (Deployments, StatefulSets,
a DaemonSet, a CronJob, bare CI runner pods), simulated minute by minute over 30 hours from
2026-03-14T06:30Z (two UTC dates whatever N is). Pods die and are replaced (rollouts bump the
version label and identity, StatefulSet pods come back with the same name and a new address,
CronJob and CI pods live minutes), and every node hands addresses out of a small FIFO pool, so
an address is reused by several pods over the day: resolving an IP to a pod needs the time.
Both files come from the same population (the same seed gives the same pods in both), and the
same seed and N always give byte-identical files.

How it stays fast: endpoint JSON fragments are serialised once per pod, the few dozen line
shapes are ``%``-format templates, and each record only draws ports, flags, times and ids.
Lines are streamed in blocks; nothing is held per record (1M records of both formats: ~1.3 GB
and ~0.17 GB in ~13 s on a 2-vCPU box).

``--stats`` re-reads what was written, checks every Hubble line is valid JSON and every VPC line
has 18 fields, and prints the mix. ``OUTDIR/<file>.meta.json`` (always written) holds the counts
the benchmark needs (lines, bytes, expected k8sforensics rows, dates).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import time
from collections import deque

START = dt.datetime(2026, 3, 14, 6, 30, tzinfo=dt.UTC)
SPAN_S = 30 * 3600  # 30 h -> dates 2026-03-14 and -15
SLICE_S = 60  # the population changes once a simulated minute
CLUSTER = "prod-eks"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
VPC_ID = "vpc-0c4d2e8f1a3b5c7d9"
N_NODES = 10
OLD_NODE = 9  # index of the node running an old Cilium
POOL_PER_NODE = 16  # pod addresses per node (FIFO, so they are reused)
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FORMATS = ("hubble", "vpc")
VPC_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
    "action log-status vpc-id pkt-srcaddr pkt-dstaddr flow-direction"
)
BLOCK = 4096

# ns, name, kind, service account, replicas, mean pod life (h), port, extra pod labels, namespace labels
WORKLOADS = [
    ("kube-system", "coredns", "Deployment", "coredns", 2, 40, 53, {"k8s-app": "kube-dns"}, {}),
    ("kube-system", "metrics-server", "Deployment", "metrics-server", 1, 40, 10250, {"k8s-app": "metrics-server"}, {}),
    (
        "monitoring",
        "prometheus-k8s",
        "StatefulSet",
        "prometheus-k8s",
        2,
        20,
        9090,
        {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"},
        {},
    ),
    (
        "ingress-nginx",
        "ingress-nginx-controller",
        "Deployment",
        "ingress-nginx",
        3,
        14,
        443,
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
        {},
    ),
    ("web", "frontend", "Deployment", "frontend", 6, 6, 8080, {"app": "frontend"}, {}),
    ("web", "checkout", "Deployment", "checkout", 4, 6, 8080, {"app": "checkout"}, {}),
    (
        "payments",
        "payments-api",
        "Deployment",
        "payments-api",
        4,
        8,
        8443,
        {"app": "payments-api", "pci": "true"},
        {"pod-security.kubernetes.io/enforce": "restricted"},
    ),
    ("payments", "ledger", "StatefulSet", "ledger", 2, 24, 5432, {"app": "ledger", "pci": "true"}, {}),
    ("payments", "redis", "StatefulSet", "redis", 1, 24, 6379, {"app": "redis"}, {}),
    (
        "argocd",
        "argocd-repo-server",
        "Deployment",
        "argocd-repo-server",
        1,
        30,
        8081,
        {"app.kubernetes.io/name": "argocd-repo-server", "app.kubernetes.io/part-of": "argocd"},
        {},
    ),
    ("logging", "fluent-bit", "DaemonSet", "fluent-bit", 0, 0, 2020, {"app.kubernetes.io/name": "fluent-bit"}, {}),
    ("data", "etl-runner", "CronJob", "etl", 0, 0, 0, {"app": "etl-runner"}, {"team": "data"}),
    ("ci", "runner", "Pod", "gitlab-runner", 0, 0, 0, {"app": "gitlab-runner-build"}, {}),
]
VERSIONS = {
    "coredns": "1.11.1",
    "metrics-server": "0.7.1",
    "prometheus-k8s": "2.51.2",
    "ingress-nginx-controller": "1.10.1",
    "frontend": "2026.3.2",
    "checkout": "5.2.0",
    "payments-api": "3.4.1",
    "ledger": "1.9.0",
    "redis": "7.2.4",
    "argocd-repo-server": "2.10.9",
    "fluent-bit": "3.0.4",
    "etl-runner": "0.18.3",
    "runner": "16.11.0",
}

# Internet peers: (name or None, addresses)
EXTERNAL = {
    "stripe": ("api.stripe.com", ["54.187.174.169", "54.187.205.235", "54.241.31.99"]),
    "github": ("github.com", ["140.82.121.3", "140.82.121.4"]),
    "datadog": ("http-intake.logs.datadoghq.eu", ["34.107.236.155", "35.190.80.1"]),
    "s3": ("s3.eu-west-1.amazonaws.com", ["52.218.36.170", "52.218.104.82", "3.5.72.11"]),
    "docker": ("registry-1.docker.io", ["54.198.86.24", "44.205.64.79"]),
    "imds": (None, ["169.254.169.254"]),
    "c2": (None, ["185.220.101.47"]),
}
HTTP_ROUTES = {
    "frontend": [
        ("GET", "/"),
        ("GET", "/products"),
        ("GET", "/products/%d"),
        ("GET", "/static/app.%s.js"),
        ("POST", "/cart"),
        ("GET", "/healthz"),
    ],
    "checkout": [
        ("POST", "/api/v1/checkout"),
        ("GET", "/api/v1/cart/%d"),
        ("PUT", "/api/v1/cart/%d"),
        ("DELETE", "/api/v1/cart/%d/items"),
    ],
    "metrics": [("GET", "/metrics")],
}
HTTP_CODES = [200] * 40 + [201] * 4 + [204] * 3 + [304] * 4 + [401, 403, 404, 404, 500, 503]
OBS_SUB = {"TO_ENDPOINT": 0, "TO_PROXY": 1, "TO_HOST": 2, "TO_STACK": 3, "FROM_ENDPOINT": 5, "FROM_NETWORK": 10}


# --------------------------------------------------------------------------------------------
# The simulated cluster and its pods
# --------------------------------------------------------------------------------------------
class Node:
    __slots__ = ("i", "name", "hubble_name", "ip", "az", "eni", "pod_eni", "old", "free", "ep_ids", "health_ip", "mac")


class Pod:
    __slots__ = ("name", "wl", "node", "ip", "ep_id", "frag_new", "frag_old", "dies", "mac")


class Workload:
    __slots__ = (
        "ns",
        "name",
        "kind",
        "sa",
        "replicas",
        "life_s",
        "port",
        "labels",
        "ns_labels",
        "version",
        "rs_hash",
        "identity",
        "pods",
        "ordinals",
    )


def jdump(o) -> str:
    return json.dumps(o, separators=(",", ":"))


class Cluster:
    """Nodes, ENIs, address pools and the pod population, advanced one simulated minute at a time.

    Only ``random.Random(seed)`` drives it, and the flow writers use their own generators, so every
    format sees the same pods at the same times.
    """

    def __init__(self, seed: int):
        self.rng = rng = random.Random(seed)
        used_ips: set[str] = set()
        self.nodes: list[Node] = []
        for i in range(N_NODES):
            n = Node()
            n.i, n.az = i, i % 3
            while True:
                ip = f"10.0.{16 * n.az + rng.randint(0, 15)}.{rng.randint(4, 250)}"
                if ip not in used_ips:
                    break
            used_ips.add(ip)
            n.ip = ip
            n.name = f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal"
            n.old = i == OLD_NODE
            n.hubble_name = n.name if n.old else f"{CLUSTER}/{n.name}"
            n.eni, n.pod_eni = self.eni(), self.eni()
            n.mac = self.mac()
            pool = []
            while len(pool) < POOL_PER_NODE + 1:
                ip = f"10.0.{16 * n.az + rng.randint(0, 15)}.{rng.randint(4, 250)}"
                if ip not in used_ips:
                    used_ips.add(ip)
                    pool.append(ip)
            n.health_ip = pool.pop()
            n.free = deque(pool)
            n.ep_ids = set()
            self.nodes.append(n)
        self.nat = [(self.eni(), f"10.0.{16 * az}.{rng.randint(4, 250)}") for az in range(3)]
        self.nlb = [(self.eni(), f"10.0.{16 * az + 1}.{rng.randint(4, 250)}") for az in range(3)]
        self.apiserver = [f"10.0.{16 * az + 2}.{rng.randint(4, 250)}" for az in range(2)]
        self.rds = f"10.0.{48 + rng.randint(0, 15)}.{rng.randint(4, 250)}"
        self.clients = [self.public_ip() for _ in range(3000)]
        self.scanners = [self.public_ip() for _ in range(200)]
        self.workloads: dict[str, Workload] = {}
        for ns, name, kind, sa, replicas, life_h, port, labels, ns_labels in WORKLOADS:
            w = Workload()
            w.ns, w.name, w.kind, w.sa, w.replicas, w.port = ns, name, kind, sa, replicas, port
            w.life_s = life_h * 3600
            w.labels, w.ns_labels = labels, ns_labels
            w.version = VERSIONS[name]
            w.rs_hash = self.name(10)
            w.identity = rng.randint(10_000, 65_000)
            w.pods, w.ordinals = [], {}
            self.workloads[name] = w
        self.t = int(START.timestamp())
        self.births = 0
        self.ip_pods: dict[str, int] = {}  # address -> how many pods it was given to
        self.step(0)

    # ---- ids ----
    def name(self, n: int) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(n))

    def eni(self) -> str:
        return "eni-%017x" % self.rng.getrandbits(68)

    def mac(self) -> str:
        b = [self.rng.getrandbits(8) for _ in range(5)]
        return "%02x:%02x:%02x:%02x:%02x:%02x" % (0x02 | (b[0] & 0xFC), b[1], b[2], b[3], b[4], self.rng.getrandbits(8))

    def public_ip(self) -> str:
        r = self.rng
        a = r.choice([3, 18, 31, 37, 45, 62, 77, 81, 89, 91, 94, 103, 109, 141, 176, 178, 185, 188, 193, 212, 217])
        return f"{a}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    # ---- population ----
    def start_pod(self, w: Workload, now: int, node: Node | None = None, life_s: float | None = None) -> Pod | None:
        rng = self.rng
        if node is None:
            cands = [n for n in self.nodes if n.free]
            if not cands:
                return None
            node = rng.choice(cands)
        if not node.free:
            return None
        p = Pod()
        p.wl, p.node = w, node
        p.ip = node.free.popleft()
        while True:
            eid = rng.randint(1, 4095)
            if eid not in node.ep_ids:
                break
        node.ep_ids.add(eid)
        p.ep_id = eid
        p.mac = self.mac()
        if w.kind == "Deployment":
            p.name = f"{w.name}-{w.rs_hash}-{self.name(5)}"
        elif w.kind == "StatefulSet":
            o = next(i for i in range(w.replicas) if i not in w.ordinals)
            w.ordinals[o] = p
            p.name = f"{w.name}-{o}"
        elif w.kind == "DaemonSet":
            p.name = f"{w.name}-{self.name(5)}"
        elif w.kind == "CronJob":
            p.name = f"{w.name}-{now // 60}-{self.name(5)}"
        else:
            p.name = f"runner-{self.name(8)}-project-{rng.choice([112, 415, 977])}-concurrent-{rng.randint(0, 3)}-{self.name(5)}"
        if life_s is None:
            life_s = rng.expovariate(1.0 / w.life_s) if w.life_s else float("inf")
        p.dies = now + max(120.0, life_s)
        labels = [f"k8s:{k}={v}" for k, v in w.labels.items()]
        labels.append(f"k8s:version=v{w.version}")
        labels.append(f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={w.ns}")
        labels += [f"k8s:io.cilium.k8s.namespace.labels.{k}={v}" for k, v in w.ns_labels.items()]
        labels.append(f"k8s:io.cilium.k8s.policy.cluster={CLUSTER}")
        labels.append(f"k8s:io.cilium.k8s.policy.serviceaccount={w.sa}")
        labels.append(f"k8s:io.kubernetes.pod.namespace={w.ns}")
        labels.sort()
        ep = {"ID": eid, "identity": w.identity, "namespace": w.ns, "labels": labels, "pod_name": p.name}
        if w.kind != "Pod":
            ep["workloads"] = [{"name": w.name, "kind": w.kind}]
        p.frag_new = jdump(ep)
        ep.pop("workloads", None)
        p.frag_old = jdump(ep)
        w.pods.append(p)
        self.births += 1
        self.ip_pods[p.ip] = self.ip_pods.get(p.ip, 0) + 1
        return p

    def stop_pod(self, p: Pod) -> None:
        w = p.wl
        w.pods.remove(p)
        if w.kind == "StatefulSet":
            w.ordinals.pop(int(p.name.rsplit("-", 1)[1]))
        p.node.free.append(p.ip)  # back of the queue: handed out again later
        p.node.ep_ids.discard(p.ep_id)

    def step(self, k: int) -> None:
        """Advance to the start of slice k (kills, rollouts, replacements, jobs)."""
        rng = self.rng
        now = int(START.timestamp()) + k * SLICE_S
        self.t = now
        for w in self.workloads.values():
            for p in [p for p in w.pods if p.dies <= now]:
                self.stop_pod(p)
            if w.kind == "Deployment" and k and rng.random() < SLICE_S / (10 * 3600):
                # rollout: new ReplicaSet hash, new version label (hence identity), old pods go within 5 min
                major, minor, patch = w.version.split(".")
                w.version = f"{major}.{minor}.{int(patch) + 1}"
                w.rs_hash = self.name(10)
                w.identity = rng.randint(10_000, 65_000)
                for p in w.pods:
                    p.dies = min(p.dies, now + rng.uniform(30, 300))
            if w.kind in ("Deployment", "StatefulSet"):
                while len(w.pods) < w.replicas + (
                    1 if w.kind == "Deployment" and any(p.dies < now + 300 for p in w.pods) else 0
                ):
                    if self.start_pod(w, now) is None:
                        break
            elif w.kind == "DaemonSet":
                have = {p.node.i for p in w.pods}
                for n in self.nodes:
                    if n.i not in have:
                        self.start_pod(w, now, node=n)
            elif w.kind == "CronJob":
                if (k * SLICE_S) % 900 == 0:
                    self.start_pod(w, now, life_s=rng.uniform(180, 480))
            elif w.kind == "Pod" and len(w.pods) < 4 and rng.random() < 0.15:
                self.start_pod(w, now, life_s=rng.uniform(120, 1200))


def slice_counts(n: int):
    """How many records fall into each of the SPAN_S / SLICE_S slices (spread evenly)."""
    slices = SPAN_S // SLICE_S
    prev = 0
    for k in range(slices):
        nxt = (k + 1) * n // slices
        yield k, nxt - prev
        prev = nxt


def weighted_table(weights: list[float], bits: int = 12) -> list[int]:
    total = sum(weights)
    table, acc = [], 0.0
    for i, w in enumerate(weights):
        acc += w / total * (1 << bits)
        table.extend([i] * (round(acc) - len(table)))
    table.extend([len(weights) - 1] * ((1 << bits) - len(table)))
    return table


# --------------------------------------------------------------------------------------------
# Hubble
# --------------------------------------------------------------------------------------------
HUB_FMT = (
    '{"flow":{"time":"%s",%s"verdict":"%s",%s%s"IP":{"source":"%s","destination":"%s","ipVersion":"IPv4"},'
    '"l4":{%s},"source":%s,"destination":%s,"Type":"%s","node_name":"%s",%s%s%s"event_type":%s,%s'
    '"traffic_direction":"%s",%s%s%s"Summary":"%s"},"node_name":"%s","time":"%s"}\n'
)
WORLD_EP = '{"identity":2,"labels":["reserved:world"]}'
HOST_EP = '{"identity":1,"labels":["reserved:host"]}'
APISERVER_EP = '{"identity":7,"labels":["reserved:kube-apiserver","reserved:world"]}'
HEALTH_EP = '{"ID":%d,"identity":4,"labels":["reserved:health"]}'
REMOTE_NODE_EP = '{"identity":6,"labels":["reserved:remote-node"]}'
TCP_FWD = [
    ('{"SYN":true}', "SYN", 5),
    ('{"ACK":true}', "ACK", 45),
    ('{"PSH":true,"ACK":true}', "ACK, PSH", 40),
    ('{"FIN":true,"ACK":true}', "ACK, FIN", 6),
    ('{"RST":true,"ACK":true}', "ACK, RST", 1),
]
TCP_REP = [
    ('{"SYN":true,"ACK":true}', "SYN, ACK", 5),
    ('{"ACK":true}', "ACK", 45),
    ('{"PSH":true,"ACK":true}', "ACK, PSH", 44),
    ('{"FIN":true,"ACK":true}', "ACK, FIN", 6),
]


class HubbleWriter:
    def __init__(self, cluster: Cluster, seed: int):
        self.c = cluster
        self.rng = rng = random.Random(seed * 1_000_003 + 1)
        self.getbits, self.rand = rng.getrandbits, rng.random
        self.fwd_table = weighted_table([w for *_, w in TCP_FWD], 8)
        self.rep_table = weighted_table([w for *_, w in TCP_REP], 8)
        self.counts = {
            "dropped": 0,
            "l7_dns": 0,
            "l7_http": 0,
            "reply": 0,
            "old_node": 0,
            "world": 0,
            "dst_names": 0,
            "icmp": 0,
        }
        W = self.c.workloads
        # (kind, weight, args)
        kinds = [
            ("svc", 14, ("ingress-nginx-controller", "frontend", 8080, "frontend")),
            ("svc", 10, ("frontend", "checkout", 8080, "checkout")),
            ("svc", 7, ("checkout", "payments-api", 8443, None)),
            ("svc", 8, ("payments-api", "ledger", 5432, None)),
            ("svc", 5, ("payments-api", "redis", 6379, None)),
            ("svc", 4, ("checkout", "redis", 6379, None)),
            ("svc", 2, ("etl-runner", "ledger", 5432, None)),
            ("svc", 1.2, ("prometheus-k8s", "frontend", 9090, "metrics")),
            ("svc", 1.2, ("prometheus-k8s", "checkout", 9090, "metrics")),
            ("svc", 1.2, ("prometheus-k8s", "payments-api", 9090, "metrics")),
            ("svc", 0.8, ("prometheus-k8s", "coredns", 9153, "metrics")),
            ("svc", 0.8, ("prometheus-k8s", "ingress-nginx-controller", 10254, "metrics")),
            ("dns", 14, None),
            ("egress", 4, ("payments-api", "stripe", 443)),
            ("egress", 2, ("argocd-repo-server", "github", 443)),
            ("egress", 6, ("fluent-bit", "datadog", 443)),
            ("egress", 2, ("etl-runner", "s3", 443)),
            ("egress", 1.5, ("runner", "docker", 443)),
            ("ingress", 30, None),
            ("probe", 16, None),
            ("apiserver", 4, None),
            ("health", 3, None),
            ("drop_pod", 0.8, ("runner", "ledger", 5432)),
            ("drop_pod", 0.3, ("frontend", "ledger", 5432)),
            ("drop_world", 0.4, ("runner", "imds", 80)),
            ("drop_world", 0.2, ("payments-api", "c2", 4444)),
            ("drop_scan", 0.6, None),
        ]
        self.kinds = kinds
        self.table = weighted_table([k[1] for k in kinds])
        self.methods = {
            "svc": self.svc,
            "dns": self.dns,
            "egress": self.egress,
            "ingress": self.ingress,
            "probe": self.probe,
            "apiserver": self.apiserver,
            "health": self.health,
            "drop_pod": self.drop_pod,
            "drop_world": self.drop_world,
            "drop_scan": self.drop_scan,
        }
        self.svc_fqdn = {w.name: f"{w.name}.{w.ns}.svc.cluster.local" for w in W.values()}
        self.minute_prefix: dict[int, str] = {}

    # ---- small helpers ----
    def ts(self, ns: int) -> str:
        m, rem = divmod(ns, 60_000_000_000)
        p = self.minute_prefix.get(m)
        if p is None:
            p = self.minute_prefix[m] = dt.datetime.fromtimestamp(m * 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:")
        s, f = divmod(rem, 1_000_000_000)
        return "%s%02d.%09dZ" % (p, s, f)

    def uuid(self) -> str:
        h = "%032x" % self.getbits(128)
        return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3], h[17:20], h[20:])

    def pick(self, wl: str):
        pods = self.c.workloads[wl].pods
        return pods[self.getbits(16) % len(pods)] if pods else None

    def eph(self) -> int:
        return 32768 + self.getbits(15) % 28232

    def line(
        self,
        t: str,
        old: bool,
        verdict: str,
        sip: str,
        dip: str,
        l4: str,
        src: str,
        dst: str,
        typ: str,
        node: str,
        direction: str,
        obs: str | None,
        is_reply: bool,
        summary: str,
        dnames: str = "",
        l7: str = "",
        svc: str = "",
        drop: bool = False,
        eth: str = "",
    ) -> str:
        if obs:
            et = '{"type":4,"sub_type":%d}' % OBS_SUB[obs]
        elif drop:
            et = '{"type":1,"sub_type":133}'
        else:
            et = '{"type":129}'
        if old:
            self.counts["old_node"] += 1
            return HUB_FMT % (
                t,
                "",
                verdict,
                '"drop_reason":133,' if drop else "",
                eth,
                sip,
                dip,
                l4,
                src,
                dst,
                typ,
                node,
                dnames,
                l7,
                '"reply":true,' if is_reply else "",
                et,
                svc,
                direction,
                '"trace_observation_point":"%s",' % obs if obs else "",
                '"drop_reason_desc":"POLICY_DENIED",' if drop else "",
                "",
                summary,
                node,
                t,
            )
        return HUB_FMT % (
            t,
            "",
            verdict,
            '"drop_reason":133,' if drop else "",
            eth,
            sip,
            dip,
            l4,
            src,
            dst,
            typ,
            node,
            dnames,
            l7,
            "",
            et,
            svc,
            direction,
            '"trace_observation_point":"%s",' % obs if obs else "",
            '"drop_reason_desc":"POLICY_DENIED",' if drop else "",
            '"is_reply":true,' if is_reply else '"is_reply":false,',
            summary,
            node,
            t,
        )

    def tcp(self, sport: int, dport: int, reply: bool) -> tuple[str, str]:
        flags, summ, _ = TCP_REP[self.rep_table[self.getbits(8)]] if reply else TCP_FWD[self.fwd_table[self.getbits(8)]]
        return '"TCP":{"source_port":%d,"destination_port":%d,"flags":%s}' % (sport, dport, flags), "TCP Flags: " + summ

    def http_l7(self, route: str, host: str, port: int, reply: bool) -> tuple[str, str]:
        r = HTTP_ROUTES[route]
        method, path = r[self.getbits(8) % len(r)]
        if "%d" in path:
            path = path % (1000 + self.getbits(14))
        elif "%s" in path:
            path = path % ("%08x" % self.getbits(32))
        url = "http://%s:%d%s" % (host, port, path)
        rid = self.uuid()
        self.counts["l7_http"] += 1
        if reply:
            code = HTTP_CODES[self.getbits(8) % len(HTTP_CODES)]
            lat = 300_000 + self.getbits(24)
            l7 = (
                '"l7":{"type":"RESPONSE","latency_ns":"%d","http":{"code":%d,"method":"%s","url":"%s",'
                '"protocol":"HTTP/1.1","headers":[{"key":"X-Request-Id","value":"%s"}]}},'
                % (lat, code, method, url, rid)
            )
            return l7, "HTTP/1.1 %d %dms (%s %s)" % (code, lat // 1_000_000, method, url)
        l7 = (
            '"l7":{"type":"REQUEST","http":{"method":"%s","url":"%s","protocol":"HTTP/1.1","headers":'
            '[{"key":"User-Agent","value":"Go-http-client/1.1"},{"key":"X-Request-Id","value":"%s"}]}},'
            % (method, url, rid)
        )
        return l7, "HTTP/1.1 %s %s" % (method, url)

    # ---- conversations; each returns one line ----
    def pod_pair_line(self, t, a: Pod, b: Pod, sport, dport, proto, reply, l7=None, svc_name=None, drop=False):
        """A pod-to-pod packet of connection a:sport -> b:dport, seen on a's or b's node."""
        # forwarded packets are seen on either node; policy drops mostly at the server (ingress policy)
        at_client = self.getbits(2) == 0 if drop else self.getbits(1) == 1
        obs_node = a.node if at_client else b.node
        old = obs_node.old
        sfrag, dfrag = (a.frag_old, b.frag_old) if old else (a.frag_new, b.frag_new)
        sip, dip = a.ip, b.ip
        direction = "EGRESS" if at_client else "INGRESS"
        if reply:
            sfrag, dfrag, sip, dip, sport, dport = dfrag, sfrag, dip, sip, dport, sport
            self.counts["reply"] += 1
        if proto == "udp":
            l4 = '"UDP":{"source_port":%d,"destination_port":%d}' % (sport, dport)
            summ = "UDP"
        else:
            l4, summ = self.tcp(sport, dport, reply)
        svc = ""
        if svc_name and at_client and not reply and not old:
            w = self.c.workloads[svc_name]
            svc = '"destination_service":{"name":"%s","namespace":"%s"},' % (w.name, w.ns)
        if drop:
            self.counts["dropped"] += 1
            l4 = '"TCP":{"source_port":%d,"destination_port":%d,"flags":{"SYN":true}}' % (sport, dport)
            return self.line(
                t,
                old,
                "DROPPED",
                sip,
                dip,
                l4,
                sfrag,
                dfrag,
                "L3_L4",
                obs_node.hubble_name,
                direction,
                None,
                False,
                "TCP Flags: SYN",
                drop=True,
            )
        if l7 is not None:
            l7s, summ = l7
            if proto != "udp":
                l4 = '"TCP":{"source_port":%d,"destination_port":%d}' % (sport, dport)
            return self.line(
                t,
                old,
                "FORWARDED",
                sip,
                dip,
                l4,
                sfrag,
                dfrag,
                "L7",
                obs_node.hubble_name,
                direction,
                None,
                reply,
                summ,
                l7=l7s,
                svc=svc,
            )
        if at_client:
            obs = "TO_ENDPOINT" if reply else ("TO_PROXY" if self.getbits(3) == 0 else "TO_STACK")
        else:
            obs = "TO_STACK" if reply else "TO_ENDPOINT"
        eth = ""
        if obs == "TO_ENDPOINT" and not old and self.getbits(2) == 0:
            eth = '"ethernet":{"source":"%s","destination":"%s"},' % (obs_node.mac, (b if not reply else a).mac)
        return self.line(
            t,
            old,
            "FORWARDED",
            sip,
            dip,
            l4,
            sfrag,
            dfrag,
            "L3_L4",
            obs_node.hubble_name,
            direction,
            obs,
            reply,
            summ,
            svc=svc,
            eth=eth,
        )

    def svc(self, t, args):
        client, server, port, route = args
        a, b = self.pick(client), self.pick(server)
        if a is None or b is None:
            return self.dns(t, None)
        reply = self.rand() < 0.45
        l7 = None
        if route and self.rand() < 0.35:
            host = self.svc_fqdn[server] if route != "metrics" else b.ip
            l7 = self.http_l7(route, host, port, reply)
        return self.pod_pair_line(
            t, a, b, self.eph(), port, "tcp", reply, l7=l7, svc_name=server if route != "metrics" else None
        )

    def dns(self, t, args):
        wls = (
            "frontend",
            "checkout",
            "payments-api",
            "ingress-nginx-controller",
            "argocd-repo-server",
            "fluent-bit",
            "etl-runner",
            "runner",
            "prometheus-k8s",
        )
        a = None
        while a is None:
            a = self.pick(wls[self.getbits(8) % len(wls)])
        b = self.pick("coredns")
        reply = self.rand() < 0.5
        l7 = None
        if self.rand() < 0.4:
            r = self.getbits(3)
            if r < 4:
                target = ("checkout", "payments-api", "ledger", "redis")[r]
                q, ans, rcode = self.svc_fqdn[target] + ".", "172.20.%d.%d" % (r, 10 + r * 7), 0
            else:
                name, ips = EXTERNAL[("stripe", "github", "datadog", "s3")[r - 4]]
                if self.getbits(1):
                    q, ans, rcode = "%s.%s.svc.cluster.local." % (name, a.wl.ns), None, 3
                else:
                    q, ans, rcode = name + ".", ips[self.getbits(4) % len(ips)], 0
            self.counts["l7_dns"] += 1
            if reply:
                if rcode:
                    l7s = (
                        '"l7":{"type":"RESPONSE","latency_ns":"%d","dns":{"query":"%s","rcode":3,"qtypes":["A"],'
                        '"observation_source":"proxy"}},' % (200_000 + self.getbits(20), q)
                    )
                    summ = "DNS Answer RCode: Non-Existent Domain TTL: 4294967295 (Proxy %s A)" % q
                else:
                    l7s = (
                        '"l7":{"type":"RESPONSE","latency_ns":"%d","dns":{"query":"%s","ips":["%s"],"ttl":30,'
                        '"qtypes":["A"],"rrtypes":["A"],"observation_source":"proxy"}},'
                        % (200_000 + self.getbits(20), q, ans)
                    )
                    summ = 'DNS Answer \\"%s\\" TTL: 30 (Proxy %s A)' % (ans, q)
            else:
                l7s = '"l7":{"type":"REQUEST","dns":{"query":"%s","qtypes":["A"],"observation_source":"proxy"}},' % q
                summ = "DNS Query %s A" % q
            l7 = (l7s, summ)
        return self.pod_pair_line(t, a, b, self.eph(), 53, "udp", reply, l7=l7, svc_name="coredns")

    def egress(self, t, args):
        client, ext, port = args
        a = self.pick(client)
        if a is None:
            return self.dns(t, None)
        name, ips = EXTERNAL[ext]
        ext_ip = ips[self.getbits(4) % len(ips)]
        return self.world_line(
            t, a, ext_ip, self.eph(), port, self.rand() < 0.45, outbound=True, name=name if self.rand() < 0.6 else None
        )

    def world_line(self, t, a: Pod, ext_ip, sport, dport, reply, outbound, name=None, drop=False):
        node = a.node
        old = node.old
        pfrag = a.frag_old if old else a.frag_new
        self.counts["world"] += 1
        if outbound:
            sfrag, dfrag, sip, dip, direction = pfrag, WORLD_EP, a.ip, ext_ip, "EGRESS"
        else:
            sfrag, dfrag, sip, dip, direction = WORLD_EP, pfrag, ext_ip, a.ip, "INGRESS"
        if reply:
            sfrag, dfrag, sip, dip, sport, dport = dfrag, sfrag, dip, sip, dport, sport
            self.counts["reply"] += 1
        dnames = ""
        if name and not old:
            dnames = '"destination_names":["%s"],' % name if not reply else '"source_names":["%s"],' % name
            self.counts["dst_names"] += not reply
        if drop:
            self.counts["dropped"] += 1
            l4 = '"TCP":{"source_port":%d,"destination_port":%d,"flags":{"SYN":true}}' % (sport, dport)
            return self.line(
                t,
                old,
                "DROPPED",
                sip,
                dip,
                l4,
                sfrag,
                dfrag,
                "L3_L4",
                node.hubble_name,
                direction,
                None,
                False,
                "TCP Flags: SYN",
                drop=True,
            )
        l4, summ = self.tcp(sport, dport, reply)
        toward_pod = (not outbound) != reply
        obs = "TO_ENDPOINT" if toward_pod else "TO_STACK"
        return self.line(
            t,
            old,
            "FORWARDED",
            sip,
            dip,
            l4,
            sfrag,
            dfrag,
            "L3_L4",
            node.hubble_name,
            direction,
            obs,
            reply,
            summ,
            dnames=dnames,
        )

    def ingress(self, t, args):
        a = self.pick("ingress-nginx-controller")
        cl = self.c.clients
        return self.world_line(
            t, a, cl[self.getbits(16) % len(cl)], self.eph(), 443, self.rand() < 0.45, outbound=False
        )

    def probe(self, t, args):
        wls = ("frontend", "checkout", "payments-api", "ingress-nginx-controller", "coredns", "ledger", "redis")
        a = None
        while a is None:
            a = self.pick(wls[self.getbits(8) % len(wls)])
        node = a.node
        old = node.old
        pfrag = a.frag_old if old else a.frag_new
        reply = self.rand() < 0.5
        sport, dport = self.eph(), a.wl.port if a.wl.port != 53 else 8181
        sfrag, dfrag, sip, dip = HOST_EP, pfrag, node.ip, a.ip
        if reply:
            sfrag, dfrag, sip, dip, sport, dport = dfrag, sfrag, dip, sip, dport, sport
            self.counts["reply"] += 1
        l4, summ = self.tcp(sport, dport, reply)
        return self.line(
            t,
            old,
            "FORWARDED",
            sip,
            dip,
            l4,
            sfrag,
            dfrag,
            "L3_L4",
            node.hubble_name,
            "INGRESS",
            "TO_HOST" if reply else "TO_ENDPOINT",
            reply,
            summ,
        )

    def apiserver(self, t, args):
        a = self.pick(("argocd-repo-server", "prometheus-k8s", "ingress-nginx-controller")[self.getbits(8) % 3])
        if a is None:
            return self.dns(t, None)
        node = a.node
        old = node.old
        pfrag = a.frag_old if old else a.frag_new
        reply = self.rand() < 0.45
        sport, dport = self.eph(), 443
        sfrag, dfrag, sip, dip = pfrag, APISERVER_EP, a.ip, self.c.apiserver[self.getbits(1)]
        if reply:
            sfrag, dfrag, sip, dip, sport, dport = dfrag, sfrag, dip, sip, dport, sport
            self.counts["reply"] += 1
        l4, summ = self.tcp(sport, dport, reply)
        svc = '"destination_service":{"name":"kubernetes","namespace":"default"},' if not reply and not old else ""
        return self.line(
            t,
            old,
            "FORWARDED",
            sip,
            dip,
            l4,
            sfrag,
            dfrag,
            "L3_L4",
            node.hubble_name,
            "EGRESS",
            "TO_ENDPOINT" if reply else "TO_STACK",
            reply,
            summ,
            svc=svc,
        )

    def health(self, t, args):
        nodes = self.c.nodes
        a = nodes[self.getbits(8) % len(nodes)]
        b = nodes[(a.i + 1 + self.getbits(8) % (len(nodes) - 1)) % len(nodes)]
        reply = self.rand() < 0.5
        sfrag, dfrag = HEALTH_EP % (100 + a.i), REMOTE_NODE_EP
        sip, dip = a.health_ip, b.health_ip
        if reply:
            sfrag, dfrag, sip, dip = dfrag, sfrag, dip, sip
            self.counts["reply"] += 1
        self.counts["icmp"] += 1
        l4 = '"ICMPv4":{"type":%d}' % (0 if reply else 8)
        return self.line(
            t,
            a.old,
            "FORWARDED",
            sip,
            dip,
            l4,
            sfrag,
            dfrag,
            "L3_L4",
            a.hubble_name,
            "EGRESS",
            "TO_ENDPOINT" if reply else "TO_STACK",
            reply,
            "ICMPv4 EchoReply" if reply else "ICMPv4 EchoRequest",
        )

    def drop_pod(self, t, args):
        client, server, port = args
        a, b = self.pick(client), self.pick(server)
        if a is None or b is None:
            return self.dns(t, None)
        return self.pod_pair_line(t, a, b, self.eph(), port, "tcp", False, drop=True)

    def drop_world(self, t, args):
        client, ext, port = args
        a = self.pick(client)
        if a is None:
            return self.dns(t, None)
        return self.world_line(t, a, EXTERNAL[ext][1][0], self.eph(), port, False, outbound=True, drop=True)

    def drop_scan(self, t, args):
        a = self.pick("ingress-nginx-controller")
        sc = self.c.scanners
        port = (22, 23, 2375, 3389, 6443, 9200, 10250, 10254)[self.getbits(3)]
        return self.world_line(t, a, sc[self.getbits(16) % len(sc)], self.eph(), port, False, outbound=False, drop=True)

    def write(self, n: int, path: str) -> dict:
        c, rand, getbits = self.c, self.rand, self.getbits
        kinds, table, methods = self.kinds, self.table, self.methods
        start_ns = int(START.timestamp()) * 1_000_000_000
        slice_ns = SLICE_S * 1_000_000_000
        nbytes = written = 0
        block: list[str] = []
        tmp = path + ".tmp"
        dates = set()
        with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
            for k, cnt in slice_counts(n):
                if k:
                    c.step(k)
                if not cnt:
                    continue
                base = start_ns + k * slice_ns
                step = slice_ns / cnt
                dates.add(self.ts(base)[:10])
                for i in range(cnt):
                    t = self.ts(base + int((i + rand()) * step))
                    kind, _, args = kinds[table[getbits(12)]]
                    block.append(methods[kind](t, args))
                    if len(block) >= BLOCK:
                        chunk = "".join(block)
                        nbytes += len(chunk)
                        f.write(chunk)
                        block.clear()
                written += cnt
            chunk = "".join(block)
            nbytes += len(chunk)
            f.write(chunk)
        os.replace(tmp, path)
        return {
            "format": "hubble",
            "path": os.path.abspath(path),
            "lines": written,
            "records": written,
            "bytes": nbytes,
            "expected_rows": written,
            "dates": sorted(dates),
            "counts": dict(self.counts),
        }


# --------------------------------------------------------------------------------------------
# AWS VPC Flow Logs
# --------------------------------------------------------------------------------------------
VPC_FMT = "5 " + ACCOUNT + " %s %s %s %d %d %d %d %d %d %d %s OK " + VPC_ID + " %s %s %s\n"
VPC_NODATA = "5 " + ACCOUNT + " %s - - - - - - - %d %d - %s " + VPC_ID + " - - -\n"


class VpcWriter:
    FORMAT = "vpc"
    header = VPC_HEADER

    def __init__(self, cluster: Cluster, seed: int):
        self.c = cluster
        self.rng = rng = random.Random(seed * 1_000_003 + 2)
        self.getbits, self.rand = rng.getrandbits, rng.random
        self.counts = {"reject": 0, "nodata": 0, "skipdata": 0, "nat_gateway": 0, "icmp": 0, "pkt_addr_differs": 0}
        kinds = [
            ("svc", 14, ("ingress-nginx-controller", "frontend", 8080)),
            ("svc", 10, ("frontend", "checkout", 8080)),
            ("svc", 7, ("checkout", "payments-api", 8443)),
            ("svc", 8, ("payments-api", "ledger", 5432)),
            ("svc", 5, ("payments-api", "redis", 6379)),
            ("svc", 4, ("checkout", "redis", 6379)),
            ("svc", 2, ("etl-runner", "ledger", 5432)),
            ("svc", 4, ("prometheus-k8s", "frontend", 9090)),
            ("dns", 12, None),
            ("egress", 3, ("payments-api", "stripe", 443)),
            ("egress", 1.5, ("argocd-repo-server", "github", 443)),
            ("egress", 3, ("fluent-bit", "datadog", 443)),
            ("egress", 2.5, ("etl-runner", "s3", 443)),
            ("egress", 1, ("runner", "docker", 443)),
            ("nat", 5, None),
            ("ingress", 9, None),
            ("nlb", 4, None),
            ("icmp", 0.5, None),
            ("scan", 4.6, None),
            ("rds_reject", 0.45, None),
            ("nodata", 0.8, None),
            ("skipdata", 0.2, None),
        ]
        self.kinds = kinds
        self.table = weighted_table([k[1] for k in kinds])
        self.methods = {
            "svc": self.svc,
            "dns": self.dns,
            "egress": self.egress,
            "nat": self.nat,
            "ingress": self.ingress,
            "nlb": self.nlb,
            "icmp": self.icmp,
            "scan": self.scan,
            "rds_reject": self.rds_reject,
            "nodata": self.nodata,
            "skipdata": self.skipdata,
        }
        self.all_enis = [n.pod_eni for n in cluster.nodes] + [n.eni for n in cluster.nodes]

    def pick(self, wl: str):
        pods = self.c.workloads[wl].pods
        return pods[self.getbits(16) % len(pods)] if pods else None

    def eph(self) -> int:
        return 32768 + self.getbits(15) % 28232

    def volume(self, big: bool) -> tuple[int, int]:
        g = self.getbits
        packets = 1 + (g(4) if not big else g(4) * (1 + g(6)))
        return packets, packets * (60 + g(10))

    def window(self, now: int) -> tuple[int, int]:
        start = now - self.getbits(6) % 60
        return start, start + 1 + self.getbits(6) % 59

    def rec(self, now, eni, src, dst, sport, dport, proto, big, action, direction, psrc=None, pdst=None) -> str:
        packets, nbytes = self.volume(big)
        start, end = self.window(now)
        if psrc or pdst:
            self.counts["pkt_addr_differs"] += 1
        return VPC_FMT % (
            eni,
            src,
            dst,
            sport,
            dport,
            proto,
            packets,
            nbytes,
            start,
            end,
            action,
            psrc or src,
            pdst or dst,
            direction,
        )

    def svc(self, now, args, proto=6):
        client, server, port = args
        for _ in range(4):  # same-node traffic never reaches an ENI
            a, b = self.pick(client), self.pick(server)
            if a is None or b is None:
                return self.ingress(now, None)
            if a.node is not b.node:
                break
        sport = self.eph()
        reply, at_src = self.getbits(1), self.getbits(1)
        src, dst = (b, a) if reply else (a, b)
        sp, dp = (port, sport) if reply else (sport, port)
        eni, direction = (src.node.pod_eni, "egress") if at_src else (dst.node.pod_eni, "ingress")
        return self.rec(now, eni, src.ip, dst.ip, sp, dp, proto, True, "ACCEPT", direction)

    def dns(self, now, args):
        wls = ("frontend", "checkout", "payments-api", "ingress-nginx-controller", "fluent-bit", "etl-runner")
        w = wls[self.getbits(8) % len(wls)]
        if not self.c.workloads[w].pods:
            w = "frontend"
        return self.svc(now, (w, "coredns", 53), proto=17)

    def egress(self, now, args):
        client, ext, port = args
        a = self.pick(client)
        if a is None:
            return self.ingress(now, None)
        ext_ip = EXTERNAL[ext][1][self.getbits(4) % len(EXTERNAL[ext][1])]
        node, sport = a.node, self.eph()  # SNAT to the node's primary address
        if self.getbits(1):
            return self.rec(now, node.eni, ext_ip, node.ip, port, sport, 6, True, "ACCEPT", "ingress")
        return self.rec(now, node.eni, node.ip, ext_ip, sport, port, 6, True, "ACCEPT", "egress")

    def nat(self, now, args):
        """The NAT gateway's ENI: dstaddr is the gateway, pkt-dstaddr the Internet host (and back)."""
        n = self.c.nodes[self.getbits(8) % len(self.c.nodes)]
        eni, nat_ip = self.c.nat[n.az]
        ext = ("stripe", "github", "datadog", "s3", "docker")[self.getbits(8) % 5]
        ext_ip = EXTERNAL[ext][1][0]
        sport = self.eph()
        self.counts["nat_gateway"] += 1
        if self.getbits(1):
            return self.rec(now, eni, nat_ip, n.ip, 443, sport, 6, True, "ACCEPT", "egress", psrc=ext_ip)
        return self.rec(now, eni, n.ip, nat_ip, sport, 443, 6, True, "ACCEPT", "ingress", pdst=ext_ip)

    def ingress(self, now, args):
        a = self.pick("ingress-nginx-controller")
        cl = self.c.clients
        client = cl[self.getbits(16) % len(cl)]
        sport = self.eph()
        if self.getbits(1):
            return self.rec(now, a.node.pod_eni, a.ip, client, 443, sport, 6, True, "ACCEPT", "egress")
        return self.rec(now, a.node.pod_eni, client, a.ip, sport, 443, 6, True, "ACCEPT", "ingress")

    def nlb(self, now, args):
        eni, nlb_ip = self.c.nlb[self.getbits(8) % 3]
        cl = self.c.clients
        client = cl[self.getbits(16) % len(cl)]
        sport = self.eph()
        if self.getbits(1):
            return self.rec(now, eni, nlb_ip, client, 443, sport, 6, True, "ACCEPT", "egress")
        return self.rec(now, eni, client, nlb_ip, sport, 443, 6, True, "ACCEPT", "ingress")

    def icmp(self, now, args):
        nodes = self.c.nodes
        a, b = nodes[self.getbits(8) % len(nodes)], nodes[self.getbits(8) % len(nodes)]
        self.counts["icmp"] += 1
        return self.rec(now, a.eni, a.ip, b.ip, 0, 0, 1, False, "ACCEPT", "egress")

    def scan(self, now, args):
        sc = self.c.scanners
        src = sc[self.getbits(16) % len(sc)]
        port = (22, 23, 80, 445, 2375, 3389, 5432, 6379, 9200, 10250, 27017, 8080)[self.getbits(8) % 12]
        if self.getbits(2):
            n = self.c.nodes[self.getbits(8) % len(self.c.nodes)]
            eni, dst = n.eni, n.ip
        else:
            eni, dst = self.c.nlb[self.getbits(8) % 3]
        self.counts["reject"] += 1
        return self.rec(now, eni, src, dst, self.eph(), port, 6, False, "REJECT", "ingress")

    def rds_reject(self, now, args):
        a = self.pick("runner") or self.pick("etl-runner") or self.pick("frontend")
        self.counts["reject"] += 1
        return self.rec(now, a.node.pod_eni, a.ip, self.c.rds, self.eph(), 5432, 6, False, "REJECT", "egress")

    def nodata(self, now, args, status="NODATA"):
        self.counts[status.lower()] += 1
        start = now - self.getbits(6) % 60
        return VPC_NODATA % (self.all_enis[self.getbits(8) % len(self.all_enis)], start, start + 60, status)

    def skipdata(self, now, args):
        return self.nodata(now, args, "SKIPDATA")

    def write(self, n: int, path: str) -> dict:
        c, getbits = self.c, self.getbits
        kinds, table, methods = self.kinds, self.table, self.methods
        t0 = int(START.timestamp())
        nbytes = written = 0
        dates = set()
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
            head = self.header + "\n" if self.header else ""
            f.write(head)
            nbytes += len(head)
            block: list[str] = []
            for k, cnt in slice_counts(n):
                if k:
                    c.step(k)
                if not cnt:
                    continue
                now = t0 + (k + 1) * SLICE_S  # records of a window are delivered after it closes
                dates.add(dt.datetime.fromtimestamp(now - SLICE_S, dt.UTC).date().isoformat())
                for _ in range(cnt):
                    kind, _, args = kinds[table[getbits(12)]]
                    block.append(methods[kind](now, args))
                    if len(block) >= BLOCK:
                        chunk = "".join(block)
                        nbytes += len(chunk)
                        f.write(chunk)
                        block.clear()
                written += cnt
            chunk = "".join(block)
            nbytes += len(chunk)
            f.write(chunk)
        os.replace(tmp, path)
        skipped = self.counts["nodata"] + self.counts["skipdata"]
        return {
            "format": self.FORMAT,
            "path": os.path.abspath(path),
            "lines": written + bool(self.header),
            "records": written,
            "bytes": nbytes,
            "expected_rows": written - skipped,
            "dates": sorted(dates),
            "counts": dict(self.counts),
        }


VPC_V2_HEADER = " ".join(VPC_HEADER.split()[:14])
VPC_V2_FMT = "2 " + ACCOUNT + " %s %s %s %d %d %d %d %d %d %d %s OK\n"
VPC_V2_NODATA = "2 " + ACCOUNT + " %s - - - - - - - %d %d - %s\n"


class VpcV2Writer(VpcWriter):
    """The same traffic in the default format (version 2, 14 fields, S3 header): no packet
    addresses, no flow direction -- the NAT gateway's records name the gateway, not the host."""

    FORMAT = "vpc-v2"
    header = VPC_V2_HEADER

    def rec(self, now, eni, src, dst, sport, dport, proto, big, action, direction, psrc=None, pdst=None) -> str:
        packets, nbytes = self.volume(big)
        start, end = self.window(now)
        return VPC_V2_FMT % (eni, src, dst, sport, dport, proto, packets, nbytes, start, end, action)

    def nodata(self, now, args, status="NODATA"):
        self.counts[status.lower()] += 1
        start = now - self.getbits(6) % 60
        return VPC_V2_NODATA % (self.all_enis[self.getbits(8) % len(self.all_enis)], start, start + 60, status)


# --------------------------------------------------------------------------------------------
# GCP VPC Flow Logs (Cloud Logging LogEntry JSON, one per line as a log sink writes them)
# --------------------------------------------------------------------------------------------
GCP_PROJECT = "acme-prod-4711"
GCP_CLUSTER = {"cluster_location": "europe-west1", "cluster_name": "prod-gke"}
GCP_KIND = {"Deployment": "DEPLOYMENT", "StatefulSet": "STATEFULSET", "DaemonSet": "DAEMONSET", "CronJob": "CRONJOB"}


class GcpWriter(VpcWriter):
    """The same traffic as GCP VPC Flow Logs: ``compute.googleapis.com/vpc_flows`` LogEntries with
    ``jsonPayload.connection``, start/end times, int64 counts as strings, the reporter, and GKE
    details (cluster, pod, workload) for pod addresses, instance details for node addresses.
    VPC Flow Logs has no NODATA records: those draws become ingress traffic."""

    FORMAT = "gcp"
    header = ""

    def __init__(self, cluster: Cluster, seed: int):
        super().__init__(cluster, seed)
        self.methods["nodata"] = self.methods["skipdata"] = self.ingress
        self.by_ip: dict[str, str] = {}
        self.map_t = None
        self.nodes = {n.ip: n for n in cluster.nodes}
        self.frag: dict[int, str] = {}

    def details(self, ip: str) -> str:
        if self.map_t != self.c.t:  # the population changes once a simulated minute
            self.map_t = self.c.t
            self.by_ip = {}
            for w in self.c.workloads.values():
                for p in w.pods:
                    f = self.frag.get(id(p))
                    if f is None:
                        pod = {"pod_name": p.name, "pod_namespace": w.ns}
                        if w.kind in GCP_KIND:
                            pod["pod_workload"] = {"workload_name": w.name, "workload_type": GCP_KIND[w.kind]}
                        f = self.frag[id(p)] = jdump({"cluster": GCP_CLUSTER, "pod": pod})
                    self.by_ip[p.ip] = f
        return self.by_ip.get(ip, "")

    def rec(self, now, eni, src, dst, sport, dport, proto, big, action, direction, psrc=None, pdst=None) -> str:
        packets, nbytes = self.volume(big)
        start, end = self.window(now)
        src, dst = psrc or src, pdst or dst
        g = self.getbits
        ms = g(10) % 1000
        t_start = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        t_end = dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        payload = [
            '"bytes_sent":"%d"' % nbytes,
            '"connection":{"dest_ip":"%s","dest_port":%d,"protocol":%d,"src_ip":"%s","src_port":%d}'
            % (dst, dport, proto, src, sport),
        ]
        for side, ip in (("dest", dst), ("src", src)):
            d = self.details(ip)
            if d:
                payload.append('"%s_gke_details":%s' % (side, d))
            elif ip in self.nodes:
                payload.append(
                    '"%s_instance":{"project_id":"%s","region":"europe-west1","vm_name":"%s","zone":"europe-west1-%s"}'
                    % (side, GCP_PROJECT, self.nodes[ip].name.split(".")[0], "bcd"[self.nodes[ip].az])
                )
        payload += [
            '"end_time":"%s.%03d%06dZ"' % (t_end, ms, g(20) % 1_000_000),
            '"packets_sent":"%d"' % packets,
            '"reporter":"%s"' % ("SRC" if direction == "egress" else "DEST"),
            '"rtt_msec":"%d"' % (1 + g(6)) if proto == 6 else '"rtt_msec":null',
            '"start_time":"%s.%03d%06dZ"' % (t_start, ms, g(20) % 1_000_000),
        ]
        return (
            '{"insertId":"%016x","jsonPayload":{%s},"logName":"projects/%s/logs/compute.googleapis.com%%2Fvpc_flows",'
            '"receiveTimestamp":"%s.%09dZ","resource":{"labels":{"location":"europe-west1-%s","project_id":"%s",'
            '"subnetwork_id":"%d","subnetwork_name":"gke-prod-subnet"},"type":"gce_subnetwork"},'
            '"timestamp":"%s.%09dZ"}\n'
        ) % (
            g(64),
            ",".join(p for p in payload if not p.endswith(":null")),
            GCP_PROJECT,
            dt.datetime.fromtimestamp(end + 5, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            g(30) % 1_000_000_000,
            "bcd"[g(2) % 3],
            GCP_PROJECT,
            4_000_000_000_000_000_000 + g(40),
            t_end,
            g(30) % 1_000_000_000,
        )


# --------------------------------------------------------------------------------------------
# Azure VNet flow logs (version 4): hourly PT1H.json blobs of {"records": [...]}
# --------------------------------------------------------------------------------------------
AZ_SUB = "8f2a1c3e-5b7d-4e9f-a1c3-5e7f9b1d3f5a"
AZ_RULES = {"ACCEPT": "AllowVnetOutBound", "REJECT": "DefaultRule_DenyAllInBound"}


class AzureWriter(VpcWriter):
    """The same traffic as Azure VNet flow logs v4 as the storage account holds them: one
    ``PT1H.json`` blob per hour (``{"records": [...]}``, one record per line), one record per
    network interface and minute, flowGroups per rule, and flowTuples
    ``time_ms,src,dst,sport,dport,proto,I|O,B|C|E|D,NX,packets→,bytes→,packets←,bytes←``.
    NODATA draws become ingress traffic; ``path`` is a folder of hourly blobs."""

    FORMAT = "azure"
    header = ""

    def __init__(self, cluster: Cluster, seed: int):
        super().__init__(cluster, seed)
        self.methods["nodata"] = self.methods["skipdata"] = self.ingress
        self.mac = {}
        for n in cluster.nodes:
            self.mac[n.eni] = self.mac[n.pod_eni] = n.mac.replace(":", "").upper()
        for eni, _ in cluster.nat + cluster.nlb:
            self.mac[eni] = "%012X" % self.rng.getrandbits(48)

    def rec(self, now, eni, src, dst, sport, dport, proto, big, action, direction, psrc=None, pdst=None):
        packets, nbytes = self.volume(big)
        start, _ = self.window(now)
        ms = start * 1000 + self.getbits(10) % 1000
        d = "I" if direction == "ingress" else "O"
        if action == "REJECT":
            t = "%d,%s,%s,%d,%d,%d,%s,D,NX,0,0,0,0" % (ms, src, dst, sport, dport, proto, d)
        else:
            back = packets // 2 + 1
            state = "CE"[self.getbits(1)]
            t = "%d,%s,%s,%d,%d,%d,%s,%s,NX,%d,%d,%d,%d" % (
                ms,
                src,
                dst,
                sport,
                dport,
                proto,
                d,
                state,
                packets,
                nbytes,
                back,
                back * 80,
            )
        return self.mac[eni], AZ_RULES[action], t

    def write(self, n: int, path: str) -> dict:
        c, getbits = self.c, self.getbits
        kinds, table, methods = self.kinds, self.table, self.methods
        t0 = int(START.timestamp())
        nbytes = files = records = 0
        dates: set[str] = set()
        tmp = path.rstrip("/") + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        hour = None
        held: list[str] = []  # one hour's records, written as one blob

        def flush() -> int:
            if not held:
                return 0
            text = '{"records":[' + ",\n".join(held) + "]}\n"
            with open(os.path.join(tmp, f"PT1H-{hour}.json"), "w", encoding="ascii") as f:
                f.write(text)
            held.clear()
            return len(text)

        for k, cnt in slice_counts(n):
            if k:
                c.step(k)
            if not cnt:
                continue
            minute = t0 + k * SLICE_S
            when = dt.datetime.fromtimestamp(minute, dt.UTC)
            dates.add(when.date().isoformat())
            if when.strftime("%Y%m%d%H") != hour:
                if held:
                    nbytes += flush()
                    files += 1
                hour = when.strftime("%Y%m%d%H")
            groups: dict[str, dict[str, list[str]]] = {}
            for _ in range(cnt):
                kind, _, args = kinds[table[getbits(12)]]
                mac, rule, tup = methods[kind](minute + SLICE_S, args)
                groups.setdefault(mac, {}).setdefault(rule, []).append(tup)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
            for mac, rules in groups.items():
                fg = ",".join(
                    '{"rule":"%s","flowTuples":[%s]}' % (r, ",".join('"%s"' % t for t in ts)) for r, ts in rules.items()
                )
                held.append(
                    (
                        '{"time":"%s","flowLogVersion":4,"flowLogGUID":"66aa66aa-6666-4ba6-96a6-6aa66aa66aa6",'
                        '"macAddress":"%s","category":"FlowLogFlowEvent","flowLogResourceID":"/SUBSCRIPTIONS/%s/'
                        "RESOURCEGROUPS/NETWORKWATCHERRG/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/"
                        'NETWORKWATCHER_WESTEUROPE/FLOWLOGS/AKS-VNET-FLOWLOG","targetResourceID":"/subscriptions/%s/'
                        'resourceGroups/mc_prod/providers/Microsoft.Network/virtualNetworks/aks-vnet",'
                        '"operationName":"FlowLogFlowEvent","flowRecords":{"flows":[{"aclID":"%s","flowGroups":[%s]}]}}'
                    )
                    % (stamp, mac, AZ_SUB, AZ_SUB, "a1b2c3d4-0000-4000-8000-%012x" % getbits(48), fg)
                )
                records += 1
        if held:
            nbytes += flush()
            files += 1
        os.replace(tmp, path)
        return {
            "format": self.FORMAT,
            "path": os.path.abspath(path),
            "files": files,
            "azure_records": records,
            "records": n,
            "lines": n,
            "bytes": nbytes,
            "expected_rows": n,
            "dates": sorted(dates),
            "counts": dict(self.counts),
        }


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------
WRITERS = {
    "hubble": (HubbleWriter, "hubble_{n}.jsonl"),
    "vpc": (VpcWriter, "vpc_{n}.log"),
    "vpc-v2": (VpcV2Writer, "vpc-v2_{n}.log"),
    "gcp": (GcpWriter, "gcp_{n}.jsonl"),
    "azure": (AzureWriter, "azure_{n}"),
}
ALL_FORMATS = tuple(WRITERS)


def output_path(outdir: str, fmt: str, n: int) -> str:
    return os.path.join(outdir, WRITERS[fmt][1].format(n=n))


def generate(n: int, outdir: str, seed: int = 7, formats=FORMATS) -> dict:
    os.makedirs(outdir, exist_ok=True)
    metas = {}
    for fmt in formats:
        t0 = time.perf_counter()
        cluster = Cluster(seed)  # a fresh, identical population per format
        cls, _ = WRITERS[fmt]
        meta = cls(cluster, seed).write(n, output_path(outdir, fmt, n))
        meta["seed"] = seed
        meta["gen_seconds"] = round(time.perf_counter() - t0, 2)
        meta["population"] = {
            "pods_started": cluster.births,
            "addresses_used": len(cluster.ip_pods),
            "addresses_reused": sum(1 for v in cluster.ip_pods.values() if v > 1),
            "max_pods_per_address": max(cluster.ip_pods.values()),
        }
        with open(meta["path"] + ".meta.json", "w") as f:
            json.dump(meta, f, indent=2)
        metas[fmt] = meta
    return metas


def stats(meta: dict) -> None:
    from collections import Counter

    path = meta["path"]
    n = bad = 0
    if meta["format"] == "hubble":
        try:
            import orjson

            loads = orjson.loads
        except ImportError:  # pragma: no cover
            loads = json.loads
        verdict, typ, l4, node_style, reply_key = Counter(), Counter(), Counter(), Counter(), Counter()
        pods_by_ip: dict[str, set] = {}
        with open(path, "rb") as f:
            for raw in f:
                n += 1
                try:
                    e = loads(raw)
                except Exception:
                    bad += 1
                    continue
                fl = e["flow"]
                verdict[fl["verdict"] + ("/" + fl["drop_reason_desc"] if "drop_reason_desc" in fl else "")] += 1
                typ[fl["Type"] + ("/" + next(k for k in fl["l7"] if k in ("dns", "http")) if "l7" in fl else "")] += 1
                l4[next(iter(fl["l4"]))] += 1
                node_style["cluster/node" if "/" in e["node_name"] else "bare"] += 1
                reply_key["is_reply" if "is_reply" in fl else "reply" if "reply" in fl else "neither"] += 1
                for side, ipk in (("source", "source"), ("destination", "destination")):
                    pn = fl[side].get("pod_name")
                    if pn:
                        pods_by_ip.setdefault(fl["IP"][ipk], set()).add(pn)
        pct = lambda c: ", ".join(f"{k} {100.0 * v / max(n, 1):.2f}%" for k, v in c.most_common())
        print(f"file: {path}\nlines: {n:,}  invalid JSON: {bad}  bytes/line: {os.path.getsize(path) / max(n, 1):,.0f}")
        for label, c in (
            ("verdict", verdict),
            ("Type", typ),
            ("l4", l4),
            ("node_name", node_style),
            ("reply key", reply_key),
        ):
            print(f"{label + ':':<11} {pct(c)}")
        multi = sum(1 for s in pods_by_ip.values() if len(s) > 1)
        print(
            f"pod IPs:    {len(pods_by_ip):,} seen, {multi:,} of them used by more than one pod "
            f"(max {max((len(s) for s in pods_by_ip.values()), default=0)})"
        )
    else:
        action, status, proto, nf = Counter(), Counter(), Counter(), Counter()
        with open(path) as f:
            header = f.readline().split()
            assert header == VPC_HEADER.split(), header
            for line in f:
                n += 1
                t = line.split(" ")
                nf[len(t)] += 1
                if len(t) != 18:
                    bad += 1
                    continue
                action[t[12]] += 1
                status[t[13]] += 1
                proto[t[7]] += 1
        pct = lambda c: ", ".join(f"{k} {100.0 * v / max(n, 1):.2f}%" for k, v in c.most_common())
        print(
            f"file: {path}\nrecords: {n:,} (+ header)  bad field count: {bad}  "
            f"bytes/line: {os.path.getsize(path) / max(n, 1):,.0f}"
        )
        for label, c in (("action", action), ("log-status", status), ("protocol", proto)):
            print(f"{label + ':':<11} {pct(c)}")
    print(f"population: {meta['population']}")
    print(f"counts:     {meta['counts']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", type=int, help="number of flow records per format")
    ap.add_argument("outdir", help="folder for hubble_N.jsonl and vpc_N.log (written via .tmp + rename)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--formats", nargs="+", choices=ALL_FORMATS, default=list(FORMATS))
    ap.add_argument("--stats", action="store_true", help="re-read the files, validate them and print the mix")
    a = ap.parse_args(argv)
    metas = generate(a.n, a.outdir, a.seed, a.formats)
    for fmt, m in metas.items():
        print(
            f"wrote {m['records']:,} {fmt} records, {m['bytes']:,} bytes ({m['bytes'] / max(a.n, 1):,.0f} B/record) "
            f"to {m['path']} in {m['gen_seconds']:.1f} s; expected k8sforensics rows {m['expected_rows']:,}; "
            f"dates {m['dates']}; {m['population']['addresses_reused']} addresses reused by several pods",
            file=sys.stderr,
        )
    if a.stats:
        for m in metas.values():
            if m["format"] in FORMATS:
                stats(m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
