"""A synthetic cluster that scenario parts act in: nodes and addresses laid out the way a
platform lays them out, system components and applications placed on nodes by the seed, and
the emitters every part uses — audit events, flows, runtime events, truth steps — so that
each part writes its evidence and its ground truth from the same call."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from .records import Emitted, Endpoint, Flow

T0 = dt.datetime(2026, 5, 12, 6, 0, 0, tzinfo=dt.UTC)
END = dt.timedelta(hours=6)
DUMP_AT = dt.timedelta(hours=5, minutes=55)
KUBECTL = "kubectl/v1.30.2 (linux/amd64) kubernetes/9e0b3b6"
CONTROLLER_UA = "kube-controller-manager/v1.30.4 (linux/amd64) kubernetes/9e0b3b6/system:serviceaccount:kube-system"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True)
class Layout:
    """How a platform names nodes and hands out node, pod, service and VPC addresses."""

    cluster: str
    node_names: tuple[str, ...]
    node_ips: tuple[str, ...]
    pod_prefixes: tuple[str, ...]  # per node: pods get <prefix><n>
    control_plane_ip: str  # where controllers' and the scheduler's requests come from
    lb_ip: str  # the load balancer's private address in the VPC
    endpoint_ips: tuple[str, ...]  # VPC endpoints (registry, object storage)
    cni: str | None
    cni_daemonset: str
    lb_controller: tuple[str, str]  # (namespace, deployment)


def layout(platform: str, rng: random.Random) -> Layout:
    n = rng.choice((3, 3, 4, 5))
    if platform == "eks":  # VPC CNI: pods take addresses from the node's subnet
        ips = tuple(f"10.0.{1 + i % 3}.{20 + 17 * i}" for i in range(n))
        names = tuple(f"ip-{ip.replace('.', '-')}.eu-west-1.compute.internal" for ip in ips)
        prefixes = tuple(f"10.0.{1 + i % 3}." for i in range(n))  # pods from .100 up, after the nodes (World.next_ip)
        return Layout(
            f"prod-eks-{rng.randrange(10, 99)}",
            names,
            ips,
            prefixes,
            "10.0.0.41",
            "10.0.0.137",
            ("10.0.0.201", "10.0.0.202"),
            rng.choice((None, "hubble")),
            "aws-node",
            ("kube-system", "aws-load-balancer-controller"),
        )
    if platform == "gke":
        pool = hashlib.sha256(str(rng.random()).encode()).hexdigest()[:8]
        ips = tuple(f"10.128.0.{10 + i}" for i in range(n))
        names = tuple(f"gke-prod-default-pool-{pool}-{c}" for c in ("a1bc", "d2ef", "g3hj", "k4lm", "n5pq")[:n])
        return Layout(
            "prod-gke",
            names,
            ips,
            tuple(f"10.52.{i}." for i in range(n)),
            "172.16.0.2",
            "10.128.0.250",
            ("10.128.0.251",),
            None,
            "netd",
            ("ingress-nginx", "ingress-nginx-controller"),
        )
    if platform == "aks":
        ips = tuple(f"10.224.0.{4 + i}" for i in range(n))
        names = tuple(f"aks-nodepool1-{rng.randrange(10**7, 10**8)}-vmss{i:06d}" for i in range(n))
        return Layout(
            "prod-aks",
            names,
            ips,
            tuple(f"10.244.{i}." for i in range(n)),
            "10.224.0.250",
            "10.224.0.240",
            ("10.224.0.245",),
            rng.choice((None, "calico")),
            "calico-node",
            ("ingress-nginx", "ingress-nginx-controller"),
        )
    ips = tuple(f"192.168.10.{11 + i}" for i in range(n))
    return Layout(
        "prod-dc1",
        tuple(f"worker-{i + 1}" for i in range(n)),
        ips,
        tuple(f"10.42.{i}." for i in range(n)),
        "192.168.10.2",
        "192.168.10.200",
        (),
        rng.choice(("hubble", "calico")),
        "cilium",
        ("metallb-system", "controller"),
    )


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    host_ip: str
    ip: str
    sa: str
    image: str
    owner: tuple[str, str] | None  # (kind, name) of the controller
    labels: dict[str, str]
    created: dt.datetime
    deleted: dt.datetime | None = None
    container_id: str = ""
    privileged: bool = False
    host_paths: tuple[str, ...] = ()
    host_pid: bool = False
    host_network: bool = False
    capabilities: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    priority_class: str | None = None

    @property
    def container(self) -> str:
        return self.name.split("-")[0]

    @property
    def workload(self) -> tuple[str, str] | None:
        """(kind, name) as a person names it: a ReplicaSet's pods belong to its Deployment."""
        if self.owner is None:
            return None
        if self.owner[0] == "ReplicaSet":
            return ("Deployment", self.owner[1].rsplit("-", 1)[0])
        return self.owner

    def endpoint(self) -> Endpoint:
        return Endpoint(
            self.namespace, self.name, tuple(sorted(self.labels.items())), self.workload, self.node, self.host_network
        )

    def spec(self) -> dict[str, Any]:
        sc: dict[str, Any] = {}
        if self.privileged:
            sc["privileged"] = True
        if self.capabilities:
            sc["capabilities"] = {"add": list(self.capabilities)}
        container: dict[str, Any] = {
            "name": self.container,
            "image": self.image,
            **({"securityContext": sc} if sc else {}),
        }
        spec: dict[str, Any] = {"nodeName": self.node, "serviceAccountName": self.sa, "containers": [container]}
        if self.host_pid:
            spec["hostPID"] = True
        if self.host_network:
            spec["hostNetwork"] = True
        if self.priority_class:
            spec["priorityClassName"] = self.priority_class
        if self.host_paths:
            spec["volumes"] = [{"name": f"host-{i}", "hostPath": {"path": p}} for i, p in enumerate(self.host_paths)]
            container["volumeMounts"] = [
                {"name": f"host-{i}", "mountPath": f"/host{p.rstrip('/')}"} for i, p in enumerate(self.host_paths)
            ]
        return spec

    def object(self) -> dict[str, Any]:
        md: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "labels": self.labels,
            "creationTimestamp": iso(self.created, 0),
            **({"annotations": self.annotations} if self.annotations else {}),
        }
        if self.owner:
            group = {"Job": "batch/v1", "Node": "v1"}.get(self.owner[0], "apps/v1")
            md["ownerReferences"] = [
                {
                    "apiVersion": group,
                    "kind": self.owner[0],
                    "name": self.owner[1],
                    "uid": stable_uuid(f"{self.namespace}/{self.owner[1]}"),
                    "controller": True,
                }
            ]
        status = {
            "phase": "Running",
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "hostIP": self.host_ip,
            "startTime": iso(self.created + dt.timedelta(seconds=2), 0),
            "containerStatuses": [
                {
                    "name": self.container,
                    "image": self.image,
                    "ready": True,
                    "containerID": f"containerd://{self.container_id}",
                }
            ],
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": self.spec(), "status": status}


@dataclass
class Actor:
    """Who the attacker acts as right now: an identity, the address its requests come from, the
    pod they run code in (if any) and the token's pod-binding claims (``user.extra``)."""

    user: str
    source_ip: str
    pod: Pod | None = None
    extra: dict[str, list[str]] | None = None
    groups: tuple[str, ...] = ("system:authenticated",)
    user_agent: str = KUBECTL

    @property
    def sa(self) -> str | None:
        """``ns/name`` when the identity is a service account."""
        if self.user.startswith("system:serviceaccount:"):
            return self.user.removeprefix("system:serviceaccount:").replace(":", "/", 1)
        return None


def stable_uuid(seed: str) -> str:
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


def iso(t: dt.datetime, digits: int = 6) -> str:
    s = t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        s += f".{t.microsecond:06d}"[: digits + 1]
    return s + "Z"


def nanos(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


class World:
    """The cluster, its clock and everything emitted into it; parts call its methods."""

    def __init__(self, *, seed: int, platform: str, scale: float, shape: str) -> None:
        self.rng = random.Random(f"{shape}/{platform}/{seed}")
        self.seed, self.platform, self.scale, self.shape = seed, platform, scale, shape
        self.layout = layout(platform, self.rng)
        self.nodes = dict(zip(self.layout.node_names, self.layout.node_ips))
        # EKS pods share their node's subnet: number them above the nodes (30 per node is plenty)
        first = 100 if platform == "eks" else 10
        self.next_ip = {
            n: first + 30 * (i // 3 if platform == "eks" else 0) for i, n in enumerate(self.layout.node_names)
        }
        self.emitted = Emitted()
        self.pods: list[Pod] = []
        self.objects: list[dict[str, Any]] = []  # RBAC, services, secrets, workloads for the inventory dump
        self.runtime = self.rng.choice(("tetragon", "falco", "both"))
        # clock skew of each source against the API server, seconds (what real collectors show)
        self.skew = {
            "runtime": dt.timedelta(seconds=self.rng.uniform(-4, 4)),
            "flows": dt.timedelta(seconds=self.rng.uniform(-4, 4)),
        }
        self.truth: dict[str, Any] = {
            "steps": [],
            "ip_attribution": [],
            "container_ids": [],
            "malformed": [],
            "lookalikes": [],
            "attack_entities": [],
            "remediation": {"must": [], "must_not": []},
            "reached": [],
            "exposed": [],
        }

    # ------------------------------------------------------------------ naming and time
    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))

    def at(self, minutes: float) -> dt.datetime:
        return T0 + dt.timedelta(minutes=minutes)

    def node(self, index: int) -> str:
        return self.layout.node_names[index % len(self.layout.node_names)]

    def external_ip(self) -> str:
        """An Internet address from the documentation ranges (RFC 5737), unique per call."""
        while True:
            ip = f"{self.rng.choice(('198.51.100', '203.0.113'))}.{self.rng.randrange(2, 254)}"
            if ip not in self.truth.setdefault("_used_ips", set()):
                self.truth["_used_ips"].add(ip)
                return ip

    # ------------------------------------------------------------------ pods
    def pod(
        self,
        namespace: str,
        workload: str,
        kind: str,
        node: str,
        sa: str,
        image: str,
        created: dt.datetime,
        *,
        labels: dict[str, str] | None = None,
        name: str | None = None,
        ip: str | None = None,
        audit: bool = True,
        **kw: Any,
    ) -> Pod:
        owner: tuple[str, str] | None
        if kind == "Deployment":
            h = self.stable_hash(f"{namespace}/{workload}/{image}")
            owner, name = ("ReplicaSet", f"{workload}-{h}"), name or f"{workload}-{h}-{self.suffix()}"
            labels = {**(labels or {"app": workload}), "pod-template-hash": h}
        elif kind in ("DaemonSet", "Job"):
            owner, name = (kind, workload), name or f"{workload}-{self.suffix()}"
            labels = labels or ({"job-name": workload} if kind == "Job" else {"app": workload})
        elif kind == "StatefulSet":
            owner, name = (kind, workload), name or f"{workload}-0"
            labels = labels or {"app": workload}
        elif kind == "Node":  # a static pod's mirror: named after its node
            owner, name = ("Node", node), name or f"{workload}-{node}"
            labels = labels or {"component": workload}
        else:
            owner, name, labels = None, name or workload, labels or {"run": workload}
        host_ip = self.nodes[node]
        if ip is None:
            ip = (
                host_ip
                if kw.get("host_network")
                else self.layout.pod_prefixes[self.layout.node_names.index(node)] + str(self.next_ip[node])
            )
            if not kw.get("host_network"):
                self.next_ip[node] += 1
        p = Pod(
            namespace,
            name,
            stable_uuid(f"{self.seed}/{namespace}/{name}/{created}"),
            node,
            host_ip,
            ip,
            sa,
            image,
            owner,
            labels,
            created,
            container_id=self.hex(64),
            **kw,
        )
        self.pods.append(p)
        if audit:
            self.audit_pod_start(p)
        return p

    def stable_hash(self, text: str) -> str:
        digest = hashlib.sha256(f"{self.seed}/{text}".encode()).hexdigest()
        return "".join("bcdfghjklmnpqrstvwxz2456789"[int(c, 16)] for c in digest[:10])

    def live(self, t: dt.datetime, namespace: str | None = None, prefix: str = "") -> list[Pod]:
        return [
            p
            for p in self.pods
            if p.created <= t
            and (p.deleted is None or p.deleted > t)
            and (namespace is None or p.namespace == namespace)
            and p.name.startswith(prefix)
        ]

    # ------------------------------------------------------------------ audit
    def audit(
        self,
        t: dt.datetime,
        user: str,
        verb: str,
        uri: str,
        *,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        group: str = "",
        code: int = 200,
        source_ip: str | None = None,
        ua: str = CONTROLLER_UA,
        request: Any = None,
        response: Any = None,
        extra: dict[str, list[str]] | None = None,
        step: str | None = None,
        groups: tuple[str, ...] | list[str] | None = None,
        level: str | None = None,
        impersonated: str | None = None,
        stages: tuple[str, ...] = ("ResponseComplete",),
    ) -> None:
        aid = stable_uuid(f"{self.seed}/{t.isoformat()}/{uri}/{self.rng.random()}")
        ref: dict[str, Any] = {}
        if resource:
            ref = {
                "resource": resource,
                "apiVersion": "v1",
                **({"namespace": namespace} if namespace else {}),
                **({"name": name} if name else {}),
                **({"subresource": subresource} if subresource else {}),
                **({"apiGroup": group} if group else {}),
            }
        decision = "allow" if code < 400 else "forbid"
        for k, stage in enumerate(stages):
            ev: dict[str, Any] = {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": level or ("Request" if request is not None else "Metadata"),
                "auditID": aid,
                "stage": stage,
                "requestURI": uri,
                "verb": verb,
                "user": {
                    "username": user,
                    "groups": list(groups or ["system:authenticated"]),
                    **({"extra": extra} if extra else {}),
                },
                **(
                    {
                        "impersonatedUser": {
                            "username": impersonated,
                            "groups": ["system:masters", "system:authenticated"],
                        }
                    }
                    if impersonated
                    else {}
                ),
                "sourceIPs": [source_ip or self.layout.control_plane_ip],
                "userAgent": ua,
                **({"objectRef": ref} if ref else {}),
                "requestReceivedTimestamp": iso(t),
                "stageTimestamp": iso(t + dt.timedelta(milliseconds=3 + 400 * k)),
            }
            if stage != "RequestReceived":
                ev["responseStatus"] = {
                    "metadata": {},
                    "code": code,
                    **({"reason": "Forbidden", "status": "Failure"} if code == 403 else {}),
                }
                ev["annotations"] = {
                    "authorization.k8s.io/decision": decision,
                    "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding" if decision == "allow" else "",
                }
            if request is not None:
                ev["requestObject"] = request
            if response is not None and stage == "ResponseComplete":
                ev["responseObject"] = response
            self.emitted.audit.append((t + dt.timedelta(microseconds=k), ev, step if stage == stages[-1] else None))

    def act(self, actor: Actor, t: dt.datetime, verb: str, uri: str, **kw: Any) -> None:
        """An API request made by the attacker as ``actor``."""
        self.audit(
            t,
            actor.user,
            verb,
            uri,
            source_ip=actor.source_ip,
            ua=actor.user_agent,
            extra=actor.extra,
            groups=actor.groups,
            **kw,
        )

    def audit_pod_start(
        self,
        p: Pod,
        *,
        creator: str | None = None,
        source_ip: str | None = None,
        step: str | None = None,
        extra: dict[str, list[str]] | None = None,
        ua: str = CONTROLLER_UA,
    ) -> None:
        if p.created <= T0:
            return
        uri = f"/api/v1/namespaces/{p.namespace}/pods"
        if creator is None:
            creator = {
                "ReplicaSet": "system:serviceaccount:kube-system:replicaset-controller",
                "Job": "system:serviceaccount:kube-system:job-controller",
                "DaemonSet": "system:serviceaccount:kube-system:daemon-set-controller",
                "StatefulSet": "system:serviceaccount:kube-system:statefulset-controller",
                "Node": f"system:node:{p.node}",
            }.get(p.owner[0] if p.owner else "", "system:admin")
        obj = p.object()
        obj["status"] = {"phase": "Pending"}
        self.audit(
            p.created,
            creator,
            "create",
            uri,
            resource="pods",
            namespace=p.namespace,
            name=p.name,
            code=201,
            request=obj,
            level="RequestResponse",
            source_ip=source_ip or (p.host_ip if creator.startswith("system:node:") else None),
            step=step,
            extra=extra,
            ua=ua if creator.startswith("system:serviceaccount:kube-system") or step is None else KUBECTL,
            groups=["system:nodes", "system:authenticated"] if creator.startswith("system:node:") else None,
        )
        status = {
            "status": {
                "podIP": p.ip,
                "podIPs": [{"ip": p.ip}],
                "hostIP": p.host_ip,
                "containerStatuses": [{"name": p.container, "containerID": f"containerd://{p.container_id}"}],
            }
        }
        self.audit(
            p.created + dt.timedelta(seconds=3),
            f"system:node:{p.node}",
            "patch",
            f"{uri}/{p.name}/status",
            resource="pods",
            namespace=p.namespace,
            name=p.name,
            subresource="status",
            request=status,
            source_ip=p.host_ip,
            ua="kubelet/v1.30.4",
            groups=["system:nodes", "system:authenticated"],
        )

    def delete_pod(
        self,
        p: Pod,
        t: dt.datetime,
        *,
        user: str = "system:serviceaccount:kube-system:replicaset-controller",
        actor: Actor | None = None,
        step: str | None = None,
    ) -> None:
        p.deleted = t
        uri = f"/api/v1/namespaces/{p.namespace}/pods/{p.name}"
        if actor is not None:
            self.act(actor, t, "delete", uri, resource="pods", namespace=p.namespace, name=p.name, step=step)
        else:
            self.audit(t, user, "delete", uri, resource="pods", namespace=p.namespace, name=p.name, step=step)

    def token_extra(self, p: Pod) -> dict[str, list[str]]:
        """The claims a bound service-account token of ``p`` carries into the audit log."""
        return {
            "authentication.kubernetes.io/pod-name": [p.name],
            "authentication.kubernetes.io/pod-uid": [p.uid],
            "authentication.kubernetes.io/node-name": [p.node],
            "authentication.kubernetes.io/credential-id": [f"JTI={self.hex(32)}"],
        }

    def pod_actor(self, p: Pod, *, source_ip: str | None = None) -> Actor:
        """Acting with ``p``'s service-account token (from its own address unless given)."""
        return Actor(
            f"system:serviceaccount:{p.namespace}:{p.sa}",
            source_ip or p.ip,
            p,
            self.token_extra(p),
            groups=("system:serviceaccounts", f"system:serviceaccounts:{p.namespace}", "system:authenticated"),
        )

    # ------------------------------------------------------------------ network
    def flow(
        self,
        t: dt.datetime,
        src: Pod | str,
        dst: Pod | str,
        dport: int,
        *,
        protocol: str = "TCP",
        action: str = "ACCEPT",
        step: str | None = None,
        dns: str | None = None,
        sport: int | None = None,
        size: int | None = None,
    ) -> None:
        def side(x: Pod | str) -> tuple[str, Endpoint | None, str | None]:
            if isinstance(x, Pod):
                return x.ip, x.endpoint(), x.host_ip
            return x, None, None

        s_ip, s_ep, s_host = side(src)
        d_ip, d_ep, d_host = side(dst)
        outside = isinstance(dst, str) and not self.internal(dst)
        n = size or self.rng.randrange(800, 9000)
        self.emitted.flows.append(
            Flow(
                t + self.skew["flows"],
                s_ip,
                d_ip,
                sport or self.rng.randrange(32768, 60999),
                dport,
                protocol,
                action,
                packets=max(1, n // 900),
                bytes=n,
                reply_packets=max(1, n // 700),
                reply_bytes=n * 3 if action == "ACCEPT" else 0,
                src=s_ep,
                dst=d_ep,
                src_host=s_host,
                dst_host=d_host,
                snat=outside and isinstance(src, Pod) and not src.host_network,
                dns_query=dns,
                step=step,
            )
        )

    @property
    def flows_name_pods(self) -> bool:
        """Whether a flow log names the pods of a connection: a CNI's (Hubble, Calico), or GKE's
        VPC flow logs (their ``*_gke_details``); AWS and Azure flow logs carry addresses only."""
        return self.layout.cni is not None or self.platform == "gke"

    def internal(self, ip: str) -> bool:
        return ip.startswith(("10.", "192.168.", "172.16."))

    # ------------------------------------------------------------------ runtime
    def process(
        self,
        t: dt.datetime,
        p: Pod,
        binary: str,
        args: str,
        *,
        parent: str = "/bin/sh",
        step: str | None = None,
        falco: tuple[str, str, str] | None = None,
        fields: dict[str, Any] | None = None,
        pod_metadata: bool = True,
    ) -> None:
        """A process started in ``p``: a Tetragon exec event, and when the rule set has an alert
        for it (``falco`` = rule, priority, text) a Falco alert."""
        t = t + self.skew["runtime"]
        if self.runtime in ("tetragon", "both"):
            exec_id = hashlib.sha256(f"{self.seed}{t}{binary}{args}{p.name}".encode()).hexdigest()[:24]
            proc: dict[str, Any] = {
                "exec_id": exec_id,
                "pid": self.rng.randrange(1000, 60000),
                "uid": 0,
                "cwd": "/",
                "binary": binary,
                "arguments": args,
                "flags": "execve clone",
                "start_time": nanos(t),
                "auid": 4294967295,
                "parent_exec_id": exec_id[::-1],
            }
            proc["docker"] = p.container_id[:31]  # Tetragon's container id field: kept when the pod is not resolved
            if pod_metadata:
                wl = p.workload
                proc["pod"] = {
                    "namespace": p.namespace,
                    "name": p.name,
                    "container": {
                        "id": f"containerd://{p.container_id}",
                        "name": p.container,
                        "image": {"id": p.image, "name": p.image},
                        "pid": 1,
                    },
                    "pod_labels": p.labels,
                    **({"workload": wl[1], "workload_kind": wl[0]} if wl else {}),
                }
            ev = {
                "process_exec": {
                    "process": proc,
                    "parent": {"exec_id": exec_id[::-1], "binary": parent, "pid": proc["pid"] - 1},
                },
                "node_name": p.node,
                "time": nanos(t),
                "cluster_name": self.layout.cluster,
            }
            self.emitted.runtime.setdefault("runtime/tetragon-events.jsonl", []).append((t, ev, step))
        if falco and self.runtime in ("falco", "both"):
            rule, priority, text = falco
            out = {
                "container.id": p.container_id[:12],
                "k8s.ns.name": p.namespace if pod_metadata else "<NA>",
                "k8s.pod.name": p.name if pod_metadata else "<NA>",
                "proc.cmdline": f"{binary.rsplit('/', 1)[-1]} {args}",
                "proc.exepath": binary,
                "proc.pname": parent.rsplit("/", 1)[-1],
                "container.image.repository": p.image.rsplit(":", 1)[0],
                **(fields or {}),
            }
            ev = {
                "hostname": p.node,
                "output": f"{t.strftime('%H:%M:%S')}.{t.microsecond:06d}000: {priority} {text}",
                "priority": priority,
                "rule": rule,
                "source": "syscall",
                "tags": ["container"],
                "time": nanos(t),
                "output_fields": {"evt.time": int(t.timestamp()) * 10**9 + t.microsecond * 1000, **out},
            }
            self.emitted.runtime.setdefault("runtime/falco-alerts.jsonl", []).append((t, ev, step))

    # ------------------------------------------------------------------ truth
    def step(
        self,
        sid: str,
        name: str,
        *,
        phase: str,
        tactic: str,
        techniques: tuple[str, ...],
        start: dt.datetime,
        end: dt.datetime,
        **entities: Any,
    ) -> str:
        """A truth step; ``techniques`` are the Threat Matrix and ATT&CK ids that name it (a
        finding with any of them, about one of its entities, in its window, finds it)."""
        sid = self.unique_step(sid)
        self.truth["steps"].append(
            {
                "id": sid,
                "name": name,
                "kill_chain_phase": phase,
                "tactic": tactic,
                "techniques": list(techniques),
                "technique_id": next((x for x in techniques if x.startswith("MS-")), None),
                "attack_id": next((x for x in techniques if x.startswith("T")), None),
                "start": iso(start),
                "end": iso(end),
                "entities": {k: v for k, v in entities.items() if v is not None},
                "evidence": [],
            }
        )
        return sid

    def unique_step(self, sid: str) -> str:
        ids = {s["id"] for s in self.truth["steps"]}
        k, out = 2, sid
        while out in ids:
            out, k = f"{sid}-{k}", k + 1
        return out

    def must(self, do: str, target: str, why: str) -> None:
        """Remediation must ``do`` this to ``target``: once per (do, target), the first reason kept."""
        if not any(m["do"] == do and m["target"] == target for m in self.truth["remediation"]["must"]):
            self.truth["remediation"]["must"].append({"do": do, "target": target, "why": why})

    def attack_entity(self, *keys: str) -> None:
        for k in keys:
            if k not in self.truth["attack_entities"]:
                self.truth["attack_entities"].append(k)

    def reached(self, p: Pod, how: str) -> None:
        """A pod the attacker ran code in or created (``how``): isolating it is right."""
        self.truth["reached"].append({"pod": f"{p.namespace}/{p.name}", "how": how})
        self.attack_entity(f"{p.namespace}/{p.name}")

    def lookalike(self, kind: str, *keys: str) -> None:
        self.truth["lookalikes"].append({"kind": kind, "entities": sorted(set(keys))})
