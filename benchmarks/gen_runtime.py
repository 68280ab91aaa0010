#!/usr/bin/env python3
"""Deterministic generator of synthetic runtime-security events: Falco JSON alerts and Tetragon
JSON events.

Usage:
    python benchmarks/gen_runtime.py N OUTDIR [--seed 11] [--formats falco tetragon]

Writes, for one simulated cluster (8 nodes, ~40 pods of 12 workloads), N events per format:

``OUTDIR/falco_N.jsonl``  Falco's ``json_output`` alerts (one per line, as falcosidekick or
    ``falco -o json_output=true`` write them): ``hostname``, ``output`` (the rule's message with
    its ``HH:MM:SS.nanoseconds`` prefix), ``priority``, ``rule``, ``source`` ``syscall``,
    ``tags``, ``time`` (RFC3339 with nanoseconds) and ``output_fields`` (container.*, k8s.*,
    proc.*, user.*, fd.* for network/file rules, ``evt.time`` in ns). Rules from Falco's default
    ruleset, weighted the way a noisy cluster fires them (a few Notice rules most of the time,
    rare Critical ones). ~1.1 KB/line.
``OUTDIR/tetragon_N.jsonl``  Tetragon's JSON export: ``process_exec`` (~45 %), ``process_exit``
    (~45 %, with status or signal) and ``process_kprobe`` (~10 %: tcp_connect with a sock_arg,
    security_file_permission with a file_arg) events, each with ``process`` (exec_id =
    base64("node:ktime:pid"), pid, uid, cwd, binary, arguments, flags, start_time, auid, pod
    with container, image, labels, workload), ``parent``, ``node_name`` and ``time``.
    ~1.7 KB/line.

Times are spread over 30 hours from 2026-03-14T06:30Z. As in gen_audit.py, a few hundred event
templates are built once and turned into ``%``-format strings; each line only fills in times,
pids and exec ids. The same seed and N give byte-identical files; ``OUTDIR/<file>.meta.json``
holds the counts the benchmark needs.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import re
import sys
import time

START = dt.datetime(2026, 3, 14, 6, 30, tzinfo=dt.UTC)
SPAN_NS = 30 * 3600 * 1_000_000_000
FORMATS = ("falco", "tetragon")
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
PH_RE = re.compile(r"@@(T|HMS|EVT|PID|PPID|XID|PXID|ST|PST)@@")
PH_INDEX = {"T": 0, "HMS": 1, "EVT": 2, "PID": 3, "PPID": 4, "XID": 5, "PXID": 6, "ST": 7, "PST": 8}
BLOCK = 4096

# ns, workload, kind, image, main binary and arguments
WORKLOADS = [
    ("web", "frontend", "Deployment", "ghcr.io/example/frontend:2024.11.2", "/usr/sbin/nginx", "-g daemon off;"),
    ("web", "checkout", "Deployment", "ghcr.io/example/checkout:5.2.0", "/usr/local/bin/node", "/app/server.js"),
    ("payments", "payments-api", "Deployment", "ghcr.io/example/payments-api:3.4.1", "/app/payments-api", "serve"),
    ("payments", "ledger", "StatefulSet", "docker.io/library/postgres:16.2", "/usr/lib/postgresql/16/bin/postgres", ""),
    ("data", "etl-runner", "CronJob", "ghcr.io/example/etl-runner:0.18.3", "/usr/bin/python3", "/app/etl.py --full"),
    (
        "ci",
        "gitlab-runner",
        "Deployment",
        "registry.gitlab.com/gitlab-org/gitlab-runner:v16.11.0",
        "/usr/bin/dumb-init",
        "/entrypoint run",
    ),
    (
        "monitoring",
        "prometheus-k8s",
        "StatefulSet",
        "quay.io/prometheus/prometheus:v2.51.2",
        "/bin/prometheus",
        "--config.file=/etc/prometheus/prometheus.yml",
    ),
    (
        "kube-system",
        "coredns",
        "Deployment",
        "registry.k8s.io/coredns/coredns:v1.11.1",
        "/coredns",
        "-conf /etc/coredns/Corefile",
    ),
    (
        "logging",
        "fluent-bit",
        "DaemonSet",
        "cr.fluentbit.io/fluent/fluent-bit:3.0.4",
        "/fluent-bit/bin/fluent-bit",
        "-c /fluent-bit/etc/fluent-bit.conf",
    ),
    (
        "ingress-nginx",
        "ingress-nginx-controller",
        "Deployment",
        "registry.k8s.io/ingress-nginx/controller:v1.10.1",
        "/nginx-ingress-controller",
        "--election-id=ingress-nginx-leader",
    ),
    (
        "argocd",
        "argocd-repo-server",
        "Deployment",
        "quay.io/argoproj/argocd:v2.10.9",
        "/usr/local/bin/argocd-repo-server",
        "",
    ),
    ("default", "debug", "Pod", "docker.io/library/alpine:3.19", "/bin/sh", "-c sleep infinity"),
]
# child processes seen in containers: (binary, arguments)
CHILDREN = [
    ("/bin/sh", "-c /healthz.sh"),
    ("/usr/bin/curl", "-s http://localhost:8080/healthz"),
    ("/bin/cat", "/etc/resolv.conf"),
    ("/usr/bin/python3", "-c import socket; socket.gethostbyname('api.example.com')"),
    ("/bin/bash", "-i"),
    ("/usr/bin/wget", "-q -O- http://169.254.169.254/latest/meta-data/"),
    ("/bin/ls", "-la /var/run/secrets/kubernetes.io/serviceaccount"),
    ("/usr/bin/apt-get", "install -y nmap"),
    ("/usr/bin/git", "fetch --depth 1 origin main"),
    ("/bin/date", ""),
]
# Falco default ruleset: rule, priority, tags, weight, kind (exec | file | net)
FALCO_RULES = [
    ("Terminal shell in container", "Notice", ["container", "shell", "mitre_execution", "T1059"], 30, "exec"),
    (
        "Contact K8S API Server From Container",
        "Notice",
        ["network", "k8s", "container", "mitre_discovery", "T1565"],
        22,
        "net",
    ),
    ("Read sensitive file untrusted", "Warning", ["filesystem", "mitre_credential_access", "T1555"], 12, "file"),
    (
        "Redirect STDOUT/STDIN to Network Connection in Container",
        "Notice",
        ["network", "process", "mitre_execution", "T1059"],
        8,
        "net",
    ),
    (
        "Launch Package Management Process in Container",
        "Error",
        ["process", "software_mgmt", "mitre_persistence", "T1505"],
        8,
        "exec",
    ),
    ("Clear Log Activities", "Warning", ["filesystem", "mitre_defense_evasion", "T1070"], 6, "file"),
    ("Write below etc", "Error", ["filesystem", "mitre_persistence", "T1098"], 6, "file"),
    (
        "Unexpected outbound connection destination",
        "Notice",
        ["network", "container", "mitre_command_and_control", "TA0011"],
        5,
        "net",
    ),
    (
        "Drop and execute new binary in container",
        "Critical",
        ["container", "process", "mitre_persistence", "TA0003", "PCI_DSS_11.5.1"],
        2,
        "exec",
    ),
    (
        "Contact EC2 Instance Metadata Service From Container",
        "Notice",
        ["network", "aws", "container", "mitre_discovery", "T1565"],
        1,
        "net",
    ),
]


def compile_template(s: str):
    parts = PH_RE.split(s.replace("%", "%%"))
    return "%s".join(parts[0::2]) + "\n", tuple(PH_INDEX[p] for p in parts[1::2])


class Cluster:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.nodes = [f"ip-10-0-{16 * (i % 3) + i}-{20 + 7 * i}.eu-west-1.compute.internal" for i in range(8)]
        self.pods = []
        for ns, wl, kind, image, binary, args in WORKLOADS:
            rs = self.name(10)
            for k in range(rng.randint(2, 5) if kind != "Pod" else 1):
                if kind == "StatefulSet":
                    name = f"{wl}-{k}"
                elif kind == "Pod":
                    name = wl
                elif kind == "CronJob":
                    name = f"{wl}-2935{rng.randint(100, 999)}-{self.name(5)}"
                elif kind == "DaemonSet":
                    name = f"{wl}-{self.name(5)}"
                else:
                    name = f"{wl}-{rs}-{self.name(5)}"
                self.pods.append(
                    {
                        "ns": ns,
                        "name": name,
                        "workload": wl,
                        "kind": kind,
                        "image": image,
                        "digest": "sha256:%064x" % rng.getrandbits(256),
                        "cid": "%064x" % rng.getrandbits(256),
                        "node": rng.choice(self.nodes),
                        "binary": binary,
                        "args": args,
                        "ip": f"10.0.{rng.randint(0, 47)}.{rng.randint(4, 250)}",
                        "labels": {"app": wl, "pod-template-hash": rs} if kind == "Deployment" else {"app": wl},
                    }
                )

    def name(self, n: int) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(n))


def dumps(o) -> str:
    return json.dumps(o, separators=(",", ":"))


# ---------------------------------------------------------------------------------- Falco
def falco_template(c: Cluster) -> str:
    r = c.rng
    rule, prio, tags, _, kind = FALCO_RULES[falco_template.table[r.getrandbits(12)]]
    p = r.choice(c.pods)
    child, cargs = r.choice(CHILDREN)
    repo, tag = p["image"].rsplit(":", 1)
    cmdline = f"{os.path.basename(child)} {cargs}".strip()
    f = {
        "container.id": p["cid"][:12],
        "container.image.repository": repo,
        "container.image.tag": tag,
        "container.name": p["workload"],
        "evt.time": "@@EVT@@",
        "evt.type": {"exec": "execve", "file": "openat", "net": "connect"}[kind],
        "k8s.ns.name": p["ns"],
        "k8s.pod.name": p["name"],
        "proc.cmdline": cmdline,
        "proc.exepath": child,
        "proc.name": os.path.basename(child),
        "proc.pid": "@@PID@@",
        "proc.pname": os.path.basename(p["binary"]),
        "proc.ppid": "@@PPID@@",
        "proc.tty": 34816 if "shell" in tags else 0,
        "user.loginuid": -1,
        "user.name": "root",
        "user.uid": 0,
    }
    detail = f"shell={os.path.basename(child)} parent={f['proc.pname']} cmdline={cmdline} terminal={f['proc.tty']}"
    if kind == "file":
        path = r.choice(
            [
                "/etc/shadow",
                "/etc/passwd",
                "/var/log/nginx/access.log",
                "/etc/ld.so.preload",
                "/root/.ssh/authorized_keys",
            ]
        )
        f.update({"fd.name": path, "evt.arg.flags": "O_RDONLY" if "Read" in rule else "O_WRONLY|O_TRUNC"})
        detail = f"file={path} command={cmdline} parent={f['proc.pname']}"
    elif kind == "net":
        sip = r.choice(["10.96.0.1", "169.254.169.254", "203.0.113.45", "198.51.100.23"])
        sport = 443 if sip != "169.254.169.254" else 80
        cport = r.randint(32768, 60999)
        f.update(
            {
                "fd.name": f"{p['ip']}:{cport}->{sip}:{sport}",
                "fd.cip": p["ip"],
                "fd.cport": cport,
                "fd.sip": sip,
                "fd.sport": sport,
                "fd.l4proto": "tcp",
            }
        )
        detail = f"connection={f['fd.name']} command={cmdline}"
    out = (
        f"@@HMS@@: {prio} {rule} ({detail} user=root user_loginuid=-1 k8s.ns={p['ns']} "
        f"k8s.pod={p['name']} container={p['cid'][:12]} image={p['image']})"
    )
    ev = {
        "hostname": p["node"],
        "output": out,
        "output_fields": f,
        "priority": prio,
        "rule": rule,
        "source": "syscall",
        "tags": sorted(tags),
        "time": "@@T@@",
    }
    return dumps(ev).replace('"@@EVT@@"', "@@EVT@@").replace('"@@PID@@"', "@@PID@@").replace('"@@PPID@@"', "@@PPID@@")


# ------------------------------------------------------------------------------- Tetragon
def tetragon_template(c: Cluster) -> str:
    r = c.rng
    p = r.choice(c.pods)
    child, cargs = r.choice(CHILDREN)
    pod = {
        "namespace": p["ns"],
        "name": p["name"],
        "container": {
            "id": f"containerd://{p['cid']}",
            "name": p["workload"],
            "image": {"id": f"{p['image'].rsplit(':', 1)[0]}@{p['digest']}", "name": p["image"]},
            "start_time": "2026-03-14T05:12:44Z",
            "pid": r.randint(1, 40),
        },
        "pod_labels": p["labels"],
        "workload": p["workload"],
        "workload_kind": p["kind"],
    }
    proc = {
        "exec_id": "@@XID@@",
        "pid": "@@PID@@",
        "uid": r.choice([0, 0, 1000, 65534]),
        "cwd": r.choice(["/", "/app/", "/root/", "/tmp/"]),
        "binary": child,
        "arguments": cargs,
        "flags": "execve clone",
        "start_time": "@@ST@@",
        "auid": 4294967295,
        "pod": pod,
        "docker": p["cid"][:31],
        "parent_exec_id": "@@PXID@@",
        "tid": "@@PID@@",
    }
    parent = {
        "exec_id": "@@PXID@@",
        "pid": "@@PPID@@",
        "uid": proc["uid"],
        "cwd": "/",
        "binary": p["binary"],
        "arguments": p["args"],
        "flags": "execve rootcwd clone",
        "start_time": "@@PST@@",
        "auid": 4294967295,
        "pod": pod,
        "docker": p["cid"][:31],
        "tid": "@@PPID@@",
    }
    x = r.random()
    if x < 0.45:
        ev = {"process_exec": {"process": proc, "parent": parent}}
    elif x < 0.9:
        body = {"process": proc, "parent": parent, "time": "@@T@@"}
        if r.random() < 0.9:
            body["status"] = r.choice([0, 0, 0, 1, 2, 127])
        else:
            body["signal"] = r.choice(["SIGKILL", "SIGTERM"])
        ev = {"process_exit": body}
    elif x < 0.96:
        ev = {
            "process_kprobe": {
                "process": proc,
                "parent": parent,
                "function_name": "tcp_connect",
                "args": [
                    {
                        "sock_arg": {
                            "family": "AF_INET",
                            "type": "SOCK_STREAM",
                            "protocol": "IPPROTO_TCP",
                            "saddr": p["ip"],
                            "daddr": r.choice(["10.96.0.1", "169.254.169.254", "203.0.113.45"]),
                            "sport": r.randint(32768, 60999),
                            "dport": r.choice([443, 80, 6443, 5432]),
                        }
                    }
                ],
                "action": "KPROBE_ACTION_POST",
                "policy_name": "connect",
            }
        }
    else:
        ev = {
            "process_kprobe": {
                "process": proc,
                "parent": parent,
                "function_name": "security_file_permission",
                "args": [
                    {
                        "file_arg": {
                            "path": r.choice(["/etc/shadow", "/etc/kubernetes/admin.conf", "/etc/passwd"]),
                            "permission": "-rw-r-----",
                        }
                    },
                    {"int_arg": 4},
                ],
                "action": "KPROBE_ACTION_POST",
                "policy_name": "file-monitoring",
            }
        }
    ev["node_name"] = p["node"]
    ev["time"] = "@@T@@"
    s = dumps(ev)
    for ph in ("PID", "PPID"):
        s = s.replace(f'"@@{ph}@@"', f"@@{ph}@@")
    return s


def weighted(weights: list[float]) -> list[int]:
    total, table, acc = sum(weights), [], 0.0
    for i, w in enumerate(weights):
        acc += w / total * 4096
        table.extend([i] * (round(acc) - len(table)))
    return table + [len(weights) - 1] * (4096 - len(table))


falco_template.table = weighted([x[3] for x in FALCO_RULES])


def output_path(outdir: str, fmt: str, n: int) -> str:
    return os.path.join(outdir, f"{fmt}_{n}.jsonl")


def write(fmt: str, n: int, path: str, seed: int) -> dict:
    rng = random.Random(seed * 31 + FORMATS.index(fmt))
    c = Cluster(rng)
    make = falco_template if fmt == "falco" else tetragon_template
    templates = [compile_template(make(c)) for _ in range(400)]
    getbits = rng.getrandbits
    start_ns = int(START.timestamp()) * 1_000_000_000
    step = SPAN_NS / max(n, 1)
    prefix: dict[int, tuple[str, str]] = {}
    b64 = base64.b64encode
    nbytes = 0
    dates = set()
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
        block: list[str] = []
        for i in range(n):
            t = start_ns + int((i + 0.5) * step) + getbits(20)
            sec, ns = divmod(t, 1_000_000_000)
            p = prefix.get(sec // 60)
            if p is None:
                d = dt.datetime.fromtimestamp(sec // 60 * 60, dt.UTC)
                p = prefix[sec // 60] = (d.strftime("%Y-%m-%dT%H:%M:"), d.strftime("%H:%M:"))
                dates.add(d.date().isoformat())
            ss = sec % 60
            pid, ppid = 1000 + getbits(22), 100 + getbits(14)
            ktime = t - start_ns + 10**12
            st = t - getbits(30)
            vals = (
                "%s%02d.%09dZ" % (p[0], ss, ns),
                "%s%02d.%09d" % (p[1], ss, ns),
                str(t),
                str(pid),
                str(ppid),
                b64(b"node:%d:%d" % (ktime, pid)).decode(),
                b64(b"node:%d:%d" % (ktime - 10**9, ppid)).decode(),
                "%s%02d.%09dZ" % (p[0], (st // 1_000_000_000) % 60, st % 1_000_000_000),
                "%s00.000000000Z" % p[0],
            )
            fmt_s, order = templates[getbits(16) % len(templates)]
            block.append(fmt_s % tuple([vals[k] for k in order]))
            if len(block) >= BLOCK:
                chunk = "".join(block)
                nbytes += len(chunk)
                f.write(chunk)
                block.clear()
        chunk = "".join(block)
        nbytes += len(chunk)
        f.write(chunk)
    os.replace(tmp, path)
    return {
        "format": fmt,
        "path": os.path.abspath(path),
        "lines": n,
        "records": n,
        "bytes": nbytes,
        "expected_rows": n,
        "seed": seed,
        "dates": sorted(dates),
    }


def generate(n: int, outdir: str, seed: int = 11, formats=FORMATS) -> dict:
    os.makedirs(outdir, exist_ok=True)
    metas = {}
    for fmt in formats:
        t0 = time.perf_counter()
        meta = write(fmt, n, output_path(outdir, fmt, n), seed)
        meta["gen_seconds"] = round(time.perf_counter() - t0, 2)
        with open(meta["path"] + ".meta.json", "w") as f:
            json.dump(meta, f, indent=2)
        metas[fmt] = meta
    return metas


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="events per format")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    a = ap.parse_args(argv)
    for fmt, m in generate(a.n, a.outdir, a.seed, a.formats).items():
        print(
            f"wrote {m['records']:,} {fmt} events, {m['bytes']:,} bytes ({m['bytes'] / max(a.n, 1):,.0f} B/event) "
            f"to {m['path']} in {m['gen_seconds']:.1f} s; dates {m['dates']}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
