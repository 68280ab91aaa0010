"""Platform writers: a scenario's platform-neutral records (``records.Emitted``) written as the
evidence each platform really produces, with the lines that hold each attack step.

- ``eks``: the API-server audit log from CloudWatch Logs — ``filter-log-events`` pages for the
  recent part, and for the older part the S3 objects a CloudWatch Logs subscription delivers
  through Amazon Data Firehose (gzipped, one ``DATA_MESSAGE`` per line); VPC flow logs (v5
  custom format, S3 delivery with its header line) per node ENI.
- ``gke``: Cloud Audit Logs and VPC flow log ``LogEntry`` lines as a Cloud Logging sink writes
  them to Cloud Storage (hourly ``..._S0.json`` files).
- ``aks``: ``kube-audit`` diagnostic records archived to a storage account (``PT1H.json`` per
  hour, one record per line) and NSG flow logs version 2 (``PT1H.json`` per NSG, NIC and hour).
- ``self-managed``: the log backend's JSON lines, rotated once (lumberjack, ``--audit-log-compress``).

Any platform with a CNI flow log also gets Hubble exporter files or Calico flow logs, one per
node. Runtime records are written as given (sensors write the same format everywhere).

What each network log can see follows how the traffic really flows: traffic between two pods
on one node never reaches the VPC; a pod address translated to its node's (``Flow.snat``) is
the node's address on the wire; a connection refused by the cloud firewall (a source outside
the cluster) never reaches a node, so only the VPC log has it; one refused by a NetworkPolicy
(a source inside the cluster; enforced at the destination pod) crossed the VPC as accepted
packets that got no answer.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import Emitted, Endpoint, Flow, Written

PLATFORMS = ("eks", "gke", "aks", "self-managed")
TRAPS = frozenset({"truncated-export", "duplicated-export"})
CNIS = ("hubble", "calico")

# identifiers of the (fictitious) accounts the evidence comes from: the documentation ranges
AWS_ACCOUNT = "111122223333"
AWS_REGION = "eu-west-1"
GCP_PROJECT = "prod-forensics-demo"
GCP_REGION = "europe-west1"
AZURE_SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
AZURE_RESOURCE_GROUP = "rg-prod"
UTC = dt.UTC


# --------------------------------------------------------------------------- output


@dataclass
class _File:
    """One evidence file being written: its lines (the decompressed text) and which line
    holds which step."""

    lines: list[str] = field(default_factory=list)
    steps: list[tuple[str, int]] = field(default_factory=list)  # (step, 1-based line)
    gz: bool = False
    truncated: bool = False  # the last line was cut short: no newline after it

    def add(self, line: str, steps: Iterable[str | None] = ()) -> int:
        self.lines.append(line)
        n = len(self.lines)
        self.steps.extend((s, n) for s in dict.fromkeys(steps) if s)
        return n


class _Out:
    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.malformed: list[dict[str, Any]] = []

    def file(self, name: str, *, gz: bool = False) -> _File:
        f = self.files.get(name)
        if f is None:
            f = self.files[name] = _File(gz=gz)
        return f

    def write(self, root: Path) -> Written:
        written = Written(malformed=list(self.malformed))
        for name in sorted(self.files):
            f = self.files[name]
            if not f.lines:
                continue
            text = "\n".join(f.lines) + ("" if f.truncated else "\n")
            data = text.encode("utf-8")
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            # mtime=0: the same inputs give the same bytes
            path.write_bytes(gzip.compress(data, mtime=0) if f.gz else data)
            written.files[name] = len(f.lines)
            written.evidence.extend((step, name, line) for step, line in f.steps)
        return written


def _json(value: Any) -> str:
    """One compact JSON line; key order as built (it is the order the producer writes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _digest(*parts: Any) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def _iso(t: dt.datetime, digits: int = 6) -> str:
    t = _utc(t)
    frac = f"{t.microsecond:06d}" + "000"
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac[:digits] if digits else "") + "Z"


def _ms(t: dt.datetime) -> int:
    return int(round(_utc(t).timestamp() * 1000))


def _sec(t: dt.datetime) -> int:
    return int(_utc(t).timestamp())


def _parse(ts: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(ts, str):
        try:
            return _utc(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")))
        except ValueError:
            return default
    return default


# --------------------------------------------------------------------------- entry point


def write_evidence(
    emitted: Emitted,
    root: Path,
    *,
    platform: str,
    cluster: str,
    nodes: dict[str, str],
    cni: str | None,
    traps: frozenset[str],
    rng: random.Random,
) -> Written:
    """Write every record of `emitted` under `root` in `platform`'s formats; return what was written."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    if cni not in (None, *CNIS):
        raise ValueError(f"unknown CNI flow log {cni!r}; known: {', '.join(CNIS)} or None")
    if not traps <= TRAPS:
        raise ValueError(f"unknown traps {sorted(traps - TRAPS)}; known: {sorted(TRAPS)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = _Out()
    audit = _sorted(emitted.audit)
    flows = sorted(emitted.flows, key=lambda f: _utc(f.time))  # stable: emission order among equal times
    net = _Network(nodes, cluster)
    for f in flows:
        net.learn(f)
    if platform == "eks":
        _eks_audit(audit, out, cluster=cluster, traps=traps, rng=rng)
        _vpc_aws(flows, out, net=net, rng=rng)
    elif platform == "gke":
        _gke_audit(audit, out, cluster=cluster, traps=traps, rng=rng)
        _vpc_gcp(flows, out, net=net)
    elif platform == "aks":
        _aks_audit(audit, out, cluster=cluster, traps=traps, rng=rng)
        _nsg_azure(flows, out, net=net)
    else:
        _self_managed_audit(audit, out, traps=traps, rng=rng)
    if cni == "hubble":
        _hubble(flows, out, net=net, cloud_firewall=platform != "self-managed", rng=rng)
    elif cni == "calico":
        _calico(flows, out, net=net, cloud_firewall=platform != "self-managed")
    for name, records in sorted(emitted.runtime.items()):
        f = out.file(name, gz=name.endswith(".gz"))
        for _, record, step in _sorted(records):
            f.add(_json(record), [step])
    return out.write(root)


def _sorted(records: list[tuple[dt.datetime, Any, str | None]]) -> list[tuple[dt.datetime, Any, str | None]]:
    return [r for _, r in sorted(enumerate(records), key=lambda ir: (_utc(ir[1][0]), ir[0]))]


# --------------------------------------------------------------------------- audit: shared


@dataclass
class _Unit:
    """One audit record as a platform delivers it: the Event, its time, the steps it shows."""

    time: dt.datetime
    event: dict[str, Any]
    steps: list[str]

    @property
    def audit_id(self) -> Any:
        return self.event.get("auditID")


def _units(audit: list[tuple[dt.datetime, dict[str, Any], str | None]]) -> list[_Unit]:
    return [_Unit(_utc(t), ev, [s] if s else []) for t, ev, s in audit]


def _hour(t: dt.datetime) -> dt.datetime:
    return _utc(t).replace(minute=0, second=0, microsecond=0)


def _span(n: int, rng: random.Random, *, avoid: set[int] | frozenset[int] = frozenset()) -> range:
    """A short run of consecutive indexes in ``range(n)`` that avoids ``avoid``."""
    if n == 0:
        return range(0)
    size = min(n, rng.randint(2, 6))
    starts = [s for s in range(n - size + 1) if not avoid & set(range(s, s + size))]
    if not starts:
        size = 1
        starts = [s for s in range(n) if s not in avoid]
    if not starts:
        return range(0)
    s = rng.choice(starts)
    return range(s, s + size)


def _truncate(f: _File, name: str, out: _Out, rng: random.Random, *, reason: str) -> None:
    """Cut the last line of ``f`` short, as an interrupted download leaves it, and say so."""
    last = f.lines[-1]
    cut = max(1, int(len(last) * rng.uniform(0.3, 0.8)))
    f.lines[-1] = last[:cut]
    f.truncated = True
    n = len(f.lines)
    f.steps = [(s, ln) for s, ln in f.steps if ln != n]  # the record no longer says anything
    out.malformed.append({"file": name, "line": n, "reason": reason})


# --------------------------------------------------------------------------- audit: self-managed


def _self_managed_audit(
    audit: list[tuple[dt.datetime, dict[str, Any], str | None]], out: _Out, *, traps: frozenset[str], rng: random.Random
) -> None:
    """The log backend (``--audit-log-path``): JSON lines. kube-apiserver rotates it with
    lumberjack: the older part is renamed ``<name>-<UTC time>.log`` and, with
    ``--audit-log-compress``, gzipped (https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/#log-backend)."""
    units = _units(audit)
    if not units:
        return
    cut = max(1, len(units) * 2 // 5) if len(units) > 1 else 1
    older, current = units[:cut], units[cut:]
    rotated_at = current[0].time if current else older[-1].time + dt.timedelta(seconds=1)
    rotated = f"audit/kube-apiserver-audit-{rotated_at.strftime('%Y-%m-%dT%H-%M-%S')}.{rotated_at.microsecond // 1000:03d}.log.gz"
    live = "audit/kube-apiserver-audit.log"
    parts = [(rotated, older, True), (live, current, False)]
    truncated: tuple[str, int] | None = None
    if "truncated-export" in traps:
        # the rotated file, copied off the node when the copy was interrupted
        truncated = (rotated, len(older) - 1)
    dup_after: dict[str, list[_Unit]] = {}
    if "duplicated-export" in traps:
        # The collection copied the live log while it rotated: the first lines of the current
        # file repeat the last lines of the rotated one (same auditID, same stage).
        keep = older[:-1] if truncated else older
        dup_after[live] = keep[len(keep) - min(len(keep), rng.randint(2, 6)) :]
    for name, part, gz in parts:
        if not part and name not in dup_after:
            continue
        f = out.file(name, gz=gz)
        for u in dup_after.get(name, []):
            f.add(_json(u.event), u.steps)
        for u in part:
            f.add(_json(u.event), u.steps)
    if truncated:
        _truncate(
            out.files[rotated],
            rotated,
            out,
            rng,
            reason="truncated JSON record (the copy of the rotated log was interrupted)",
        )


# --------------------------------------------------------------------------- audit: EKS


def _eks_audit(
    audit: list[tuple[dt.datetime, dict[str, Any], str | None]],
    out: _Out,
    *,
    cluster: str,
    traps: frozenset[str],
    rng: random.Random,
) -> None:
    """EKS control-plane audit logs go to CloudWatch Logs, log group ``/aws/eks/<cluster>/cluster``,
    streams ``kube-apiserver-audit-<hash>`` (one per API server instance)
    (https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html). The older part
    is read from S3, where a subscription filter delivered it through Firehose with CloudWatch
    Logs decompression and a newline after each record
    (https://docs.aws.amazon.com/firehose/latest/dev/writing-with-cloudwatch-logs.html); the
    recent part from ``aws logs filter-log-events`` pages (one pretty-printed JSON document per
    file, as the CLI prints it)."""
    units = _units(audit)
    if not units:
        return
    group = f"/aws/eks/{cluster}/cluster"
    streams = [f"kube-apiserver-audit-{_digest(cluster, k)[:32]}" for k in range(2)]
    stream_of = {id(u): streams[rng.randrange(len(streams))] for u in units}
    cut = len(units) // 2 if len(units) > 1 else 1
    archived, recent = units[:cut], units[cut:]

    # -- S3 (Firehose): one object per buffer interval (15 minutes), one DATA_MESSAGE per line
    windows: dict[dt.datetime, list[_Unit]] = defaultdict(list)
    for u in archived:
        windows[u.time.replace(minute=u.time.minute // 15 * 15, second=0, microsecond=0)].append(u)
    s3_files: list[tuple[str, list[list[_Unit]]]] = []
    for w in sorted(windows):
        messages: list[list[_Unit]] = []
        for u in windows[w]:
            # a subscription batches consecutive events of one stream
            if (
                messages
                and stream_of[id(messages[-1][-1])] == stream_of[id(u)]
                and len(messages[-1]) < rng.randint(1, 12)
            ):
                messages[-1].append(u)
            else:
                messages.append([u])
        key = (
            f"audit/s3/eks-audit-archive/{w:%Y/%m/%d/%H}/eks-audit-to-s3-1-{w:%Y-%m-%d-%H-%M-%S}-"
            f"{uuid.UUID(_digest(cluster, w.isoformat())[:32])}.gz"
        )
        s3_files.append((key, messages))
    truncated_unit: _Unit | None = None
    if "truncated-export" in traps and s3_files:
        key, messages = s3_files[rng.randrange(len(s3_files))]
        last = messages[-1]
        if len(last) > 1:  # the last record of the object is a message of one event
            messages[-1:] = [last[:-1], last[-1:]]
        truncated_unit = messages[-1][0]
        truncated_key = key
    for key, messages in s3_files:
        f = out.file(key, gz=True)
        for m in messages:
            msg = {
                "messageType": "DATA_MESSAGE",
                "owner": AWS_ACCOUNT,
                "logGroup": group,
                "logStream": stream_of[id(m[0])],
                "subscriptionFilters": ["eks-audit-to-s3"],
                "logEvents": [{"id": _event_id(u), "timestamp": _ms(u.time), "message": _json(u.event)} for u in m],
            }
            f.add(_json(msg), [s for u in m for s in u.steps])
    if truncated_unit is not None:
        _truncate(
            out.files[truncated_key],
            truncated_key,
            out,
            rng,
            reason="truncated JSON record (the S3 object download was interrupted)",
        )

    # -- CloudWatch Logs: filter-log-events pages per hour
    pages: list[tuple[str, list[_Unit]]] = []
    by_hour: dict[dt.datetime, list[_Unit]] = defaultdict(list)
    for u in recent:
        by_hour[_hour(u.time)].append(u)
    for h in sorted(by_hour):
        hour_units = by_hour[h]
        k = 0
        page = 1
        while k < len(hour_units):
            size = rng.randint(40, 120)
            pages.append(
                (f"audit/cloudwatch/{cluster}-audit-{h:%Y%m%dT%H}00Z-page{page:02d}.json", hour_units[k : k + size])
            )
            k += size
            page += 1
    if "duplicated-export" in traps:
        # a second export whose window overlapped the first: the same events again
        src = [u for u in (recent or archived) if u is not truncated_unit]
        span = _span(len(src), rng)
        if span:
            dup = [src[i] for i in span]
            pages.append((f"audit/cloudwatch/{cluster}-audit-{dup[0].time:%Y%m%dT%H%M%S}Z-rerun-page01.json", dup))
    for name, page_units in pages:
        doc = {
            "events": [
                {
                    "logStreamName": stream_of[id(u)],
                    "timestamp": _ms(u.time),
                    "message": _json(u.event),
                    "ingestionTime": _ms(u.time) + 600 + int(_digest(u.audit_id, u.event.get("stage"))[:4], 16) % 2400,
                    "eventId": _event_id(u),
                }
                for u in page_units
            ],
            "searchedLogStreams": [{"logStreamName": s, "searchedCompletely": True} for s in streams],
        }
        text = json.dumps(doc, indent=4, ensure_ascii=False)
        f = out.file(name)
        for line in text.split("\n"):
            f.add(line)
        # the loader numbers documents: every event of this page is record 1
        f.steps.extend((s, 1) for s in dict.fromkeys(s for u in page_units for s in u.steps))


def _event_id(u: _Unit) -> str:
    # CloudWatch event ids are 56-digit strings; the same event keeps its id when read twice
    return str(int(_digest(u.audit_id, u.event.get("stage"), u.time.isoformat()), 16))[:56].rjust(56, "0")


# --------------------------------------------------------------------------- audit: GKE


_GKE_READS = frozenset({"get", "list", "watch"})
# HTTP status → google.rpc.Code (https://cloud.google.com/apis/design/errors#handling_errors)
_HTTP_TO_RPC = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 6,
    412: 9,
    422: 3,
    429: 8,
    499: 1,
    500: 13,
    501: 12,
    503: 14,
    504: 4,
}
_RPC_NAMES = {
    1: "CANCELLED",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
_STAGE_RANK = {"RequestReceived": 1, "ResponseStarted": 2, "ResponseComplete": 3, "Panic": 3}


def _gke_audit(
    audit: list[tuple[dt.datetime, dict[str, Any], str | None]],
    out: _Out,
    *,
    cluster: str,
    traps: frozenset[str],
    rng: random.Random,
) -> None:
    """GKE writes one Cloud Audit Logs entry per request: ``insertId`` and ``operation.id`` are
    the audit ID, ``operation.first``/``last`` always true
    (https://cloud.google.com/kubernetes-engine/docs/how-to/audit-logging), so the stages of a
    request become one entry (the most final one; the steps of every stage go with it).
    Writes go to ``cloudaudit.googleapis.com/activity``, reads to ``.../data_access``; a Cloud
    Logging sink writes them to Cloud Storage as hourly JSON-lines files
    (https://cloud.google.com/logging/docs/export/storage#gcs-organization)."""
    best: dict[Any, _Unit] = {}
    order: list[Any] = []
    for u in _units(audit):
        key = u.audit_id if u.audit_id is not None else id(u)
        if key not in best:
            best[key] = u
            order.append(key)
            continue
        kept = best[key]
        steps = list(dict.fromkeys(kept.steps + u.steps))
        if _STAGE_RANK.get(u.event.get("stage"), 0) > _STAGE_RANK.get(kept.event.get("stage"), 0):
            kept = u
        best[key] = _Unit(kept.time, kept.event, steps)
    units = sorted((best[k] for k in order), key=lambda u: u.time)
    files: dict[str, list[_Unit]] = defaultdict(list)
    for u in units:
        log = "data_access" if u.event.get("verb") in _GKE_READS else "activity"
        h = _hour(u.time)
        files[f"audit/gcs/cloudaudit.googleapis.com/{log}/{h:%Y/%m/%d}/{h:%H}:00:00_{h:%H}:59:59_S0.json"].append(u)
    names = sorted(files)
    truncated: tuple[str, _Unit] | None = None
    if "truncated-export" in traps and names:
        name = names[rng.randrange(len(names))]
        truncated = (name, files[name][-1])
    if "duplicated-export" in traps and names:
        # Cloud Logging's sink delivered part of an hour again, in a second shard of that hour
        name = names[rng.randrange(len(names))]
        src = files[name]
        avoid = {len(src) - 1} if truncated and truncated[0] == name else set()
        files[name.replace("_S0.json", "_S1.json")] = [src[i] for i in _span(len(src), rng, avoid=avoid)]
    for name in sorted(files):
        f = out.file(name)
        for u in files[name]:
            f.add(_json(_gke_entry(u, cluster=cluster, log=name.split("/")[3])), u.steps)
    if truncated:
        _truncate(
            out.files[truncated[0]],
            truncated[0],
            out,
            rng,
            reason="truncated JSON record (the Cloud Storage object download was interrupted)",
        )


def _gke_entry(u: _Unit, *, cluster: str, log: str) -> dict[str, Any]:
    ev = u.event
    ref = ev.get("objectRef") or {}
    verb = ev.get("verb") or "get"
    group = ref.get("apiGroup") or ""
    version = ref.get("apiVersion") or "v1"
    user = ev.get("user") or {}
    status = ev.get("responseStatus") or {}
    code = status.get("code")
    if ref.get("resource"):
        path = [group or "core", version]
        if ref.get("namespace"):
            path += ["namespaces", ref["namespace"]]
        path.append(ref["resource"])
        if ref.get("name"):
            path.append(ref["name"])
        if ref.get("subresource"):
            path.append(ref["subresource"])
        resource_name = "/".join(path)
        method = ".".join(
            [
                "io.k8s",
                _gke_group(group),
                version,
                ref["resource"],
                *([ref["subresource"]] if ref.get("subresource") else []),
                verb,
            ]
        )
    else:  # a non-resource URL (/healthz, /version)
        resource_name = str(ev.get("requestURI") or "/").split("?", 1)[0].lstrip("/")
        method = f"io.k8s.{verb}"
    pp: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": user["username"]} if user.get("username") else {},
        "authorizationInfo": [
            {
                "granted": (ev.get("annotations") or {}).get("authorization.k8s.io/decision", "allow") == "allow",
                "permission": method,
                "resource": resource_name,
            }
        ],
        "methodName": method,
        "requestMetadata": {
            k: v
            for k, v in (
                ("callerIp", (ev.get("sourceIPs") or [None])[0]),
                ("callerSuppliedUserAgent", ev.get("userAgent")),
            )
            if v
        },
        "resourceName": resource_name,
        "serviceName": "k8s.io",
        "status": {},
    }
    if ev.get("requestObject") is not None:
        pp["request"] = {"@type": _gke_type(ev["requestObject"], verb), **ev["requestObject"]}
    if isinstance(code, int) and code >= 400:
        rpc = _HTTP_TO_RPC.get(code, 2)
        message = status.get("message") or f"{status.get('reason') or _RPC_NAMES.get(rpc, 'UNKNOWN')}"
        pp["status"] = {"code": rpc, "message": message}
        pp["response"] = {
            "@type": "core.k8s.io/v1.Status",
            "apiVersion": "v1",
            "kind": "Status",
            "code": code,
            "status": "Failure",
            "reason": status.get("reason") or "",
            "message": message,
        }
    elif ev.get("responseObject") is not None:
        pp["response"] = {"@type": _gke_type(ev["responseObject"], verb), **ev["responseObject"]}
    entry: dict[str, Any] = {
        "insertId": u.audit_id,
        "labels": dict(sorted((ev.get("annotations") or {}).items())),
        "logName": f"projects/{GCP_PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
        "operation": {"first": True, "id": u.audit_id, "last": True, "producer": "k8s.io"},
        "protoPayload": pp,
        "receiveTimestamp": _iso(_parse(ev.get("stageTimestamp"), u.time) + dt.timedelta(milliseconds=850), 9),
        "resource": {
            "labels": {"cluster_name": cluster, "location": GCP_REGION, "project_id": GCP_PROJECT},
            "type": "k8s_cluster",
        },
        "severity": "NOTICE" if log == "activity" else "INFO",
        "timestamp": _iso(_parse(ev.get("requestReceivedTimestamp"), u.time)),
    }
    if not entry["labels"]:
        del entry["labels"]
    return entry


def _gke_group(group: str) -> str:
    """The API group as GKE's method names spell it: ``core``, ``apps``, and a ``*.k8s.io``
    group reversed without the suffix (``rbac.authorization.k8s.io`` → ``authorization.rbac``)."""
    if not group:
        return "core"
    if group.endswith(".k8s.io"):
        return ".".join(reversed(group.removesuffix(".k8s.io").split(".")))
    return group


def _gke_type(obj: Any, verb: str) -> str:
    if isinstance(obj, dict) and obj.get("kind") and obj.get("apiVersion"):
        api = str(obj["apiVersion"])
        group, _, version = api.rpartition("/")
        group = group or "core"
        if not group.endswith("k8s.io") and "." not in group:
            group += ".k8s.io"
        return f"{group}/{version}.{obj['kind']}"
    return "k8s.io/Patch" if verb == "patch" else "k8s.io/Object"


# --------------------------------------------------------------------------- audit: AKS


def _aks_audit(
    audit: list[tuple[dt.datetime, dict[str, Any], str | None]],
    out: _Out,
    *,
    cluster: str,
    traps: frozenset[str],
    rng: random.Random,
) -> None:
    """AKS ``kube-audit`` diagnostic records archived to a storage account: one ``PT1H.json``
    per hour under the upper-case resource id, one record per line
    (https://learn.microsoft.com/azure/azure-monitor/essentials/resource-logs#send-to-azure-storage,
    https://learn.microsoft.com/azure/aks/monitor-aks-reference). ``properties.log`` is the
    audit Event as a JSON string."""
    units = _units(audit)
    resource_id = (
        f"/SUBSCRIPTIONS/{AZURE_SUBSCRIPTION}/RESOURCEGROUPS/{AZURE_RESOURCE_GROUP}/PROVIDERS/"
        f"MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/{cluster}"
    ).upper()
    ccp = _digest("ccp", cluster)[:24]
    pods = [f"kube-apiserver-{_digest(cluster, 'rs')[:10]}-{_digest(cluster, k)[:5]}" for k in range(2)]
    files: dict[str, list[_Unit]] = defaultdict(list)
    for u in units:
        h = _hour(u.time)
        files[
            f"audit/insights-logs-kube-audit/resourceId={resource_id}/y={h:%Y}/m={h:%m}/d={h:%d}/h={h:%H}/m=00/PT1H.json"
        ].append(u)
    names = sorted(files)
    truncated: str | None = None
    if "truncated-export" in traps and names:
        truncated = names[rng.randrange(len(names))]
    if "duplicated-export" in traps and names:
        # Azure Monitor delivers at least once: a run of records appended to the blob again
        name = names[rng.randrange(len(names))]
        src = files[name]
        avoid = {len(src) - 1} if name == truncated else set()
        again = [src[i] for i in _span(len(src), rng, avoid=avoid)]
        if name == truncated:  # the truncated record stays the blob's last
            src[-1:-1] = again
        else:
            src.extend(again)
    for name in names:
        f = out.file(name)
        for u in files[name]:
            record = {
                "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
                "category": "kube-audit",
                "ccpNamespace": ccp,
                "resourceId": resource_id,
                "properties": {
                    "log": _json(u.event) + "\n",
                    "stream": "stdout",
                    "pod": pods[int(_digest(u.audit_id)[:2], 16) % len(pods)],
                },
                "time": _iso(_parse(u.event.get("stageTimestamp"), u.time), 7),
                "Cloud": "AzureCloud",
                "Environment": "prod",
            }
            f.add(_json(record), u.steps)
    if truncated:
        _truncate(
            out.files[truncated],
            truncated,
            out,
            rng,
            reason="truncated JSON record (the blob download was interrupted)",
        )


# --------------------------------------------------------------------------- networks


@dataclass
class _Side:
    """One end of a connection as the network sees it."""

    ip: str  # the address in the packets inside the cluster (the pod's)
    host: str | None  # the VPC interface address it leaves/arrives through, None outside the VPC
    endpoint: Endpoint | None
    node: str | None  # the node name, when it is on one

    @property
    def pod(self) -> bool:
        return self.endpoint is not None and not self.endpoint.host_network


class _Network:
    def __init__(self, nodes: dict[str, str], cluster: str) -> None:
        self.cluster = cluster
        self.nodes = dict(nodes)
        self.node_of = {addr: name for name, addr in nodes.items()}
        self.hosts: set[str] = set(nodes.values())

    def learn(self, f: Flow) -> None:
        for h in (f.src_host, f.dst_host):
            if h:
                self.hosts.add(h)

    def side(self, f: Flow, src: bool) -> _Side:
        ip, host, ep = (f.src_ip, f.src_host, f.src) if src else (f.dst_ip, f.dst_host, f.dst)
        if host is None and ip in self.hosts:
            host = ip  # a node (or another VM in the VPC) talking from its own address
        node = ep.node if ep is not None else self.node_of.get(host or "")
        return _Side(ip, host, ep, node)


def _link_local(ip: str) -> bool:
    # AWS does not log traffic to the instance metadata service, the Amazon DNS server or time
    # sync (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-limitations.html); GCP
    # likewise for the metadata server: none of it crosses the VPC fabric.
    try:
        return ipaddress.ip_address(ip).is_link_local
    except ValueError:
        return False


@dataclass
class _Leg:
    """The packets of one direction of a connection: what a flow log reports per interface."""

    src: str  # addresses on the wire (after any SNAT)
    dst: str
    sport: int
    dport: int
    packets: int
    bytes: int
    reply: bool


def _legs(f: Flow, s: _Side, d: _Side, *, answered: bool) -> list[_Leg]:
    """The forward leg and, when the connection was answered, the reply leg, with the
    addresses on the wire: a SNATed source shows its node's address (the reply comes back to
    it)."""
    wire_src = s.host if f.snat and s.host else s.ip
    legs = [_Leg(wire_src, d.ip, f.sport, f.dport, f.packets, f.bytes, False)]
    if answered and f.reply_packets > 0:
        legs.append(_Leg(d.ip, wire_src, f.dport, f.sport, f.reply_packets, f.reply_bytes, True))
    return legs


def _refused_by_cloud_firewall(f: Flow, net: _Network, s: _Side) -> bool:
    """A refusal of traffic from outside the cluster is the cloud firewall's (security group,
    NSG, VPC firewall rule); one between cluster members is a NetworkPolicy's, enforced on the
    destination node after the packets crossed the VPC (NetworkPolicy:
    https://kubernetes.io/docs/concepts/services-networking/network-policies/)."""
    return f.action == "REJECT" and s.endpoint is None and s.ip not in net.hosts and s.host is None


# --------------------------------------------------------------------------- AWS VPC flow logs


AWS_FIELDS = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "flow-direction",
    "traffic-path",
]
_IANA = {"TCP": 6, "UDP": 17, "ICMP": 1, "SCTP": 132}


def _vpc_aws(flows: list[Flow], out: _Out, *, net: _Network, rng: random.Random) -> None:
    """VPC flow logs (custom v5 format) delivered to S3: gzipped text, a header line, one record
    per interface, direction and aggregation interval
    (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html). For an interface
    that carries a pod's secondary address, ``srcaddr`` (egress) / ``dstaddr`` (ingress) is the
    interface's primary address and ``pkt-srcaddr``/``pkt-dstaddr`` the pod's. ``tcp-flags``
    is the OR of the flags seen in the interval: SYN (2) and FIN (1) on the initiator's leg,
    SYN-ACK (18) and FIN on the responder's (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-logs-fields)."""
    vpc = f"vpc-{_digest(net.cluster, 'vpc')[:17]}"
    flow_log = f"fl-{_digest(net.cluster, 'fl')[:17]}"
    rows: list[tuple[int, int, str, str | None]] = []  # (start, order, line, step)
    order = 0
    for f in flows:
        s, d = net.side(f, True), net.side(f, False)
        if s.host and d.host and s.host == d.host:
            continue  # one node: the packets never leave it
        if _link_local(f.dst_ip) or _link_local(f.src_ip):
            continue
        proto = _IANA.get(f.protocol.upper(), 6)
        start = _sec(f.time)
        window_end = start // 60 * 60 + 60 + 5  # one-minute aggregation, written a few seconds after
        closed = rng.random() < 0.75  # the connection ended inside the interval: FIN seen too
        if _refused_by_cloud_firewall(f, net, s):
            if d.host:  # a security group refuses at the destination interface: only its ingress record
                rows.append(
                    (
                        start,
                        order,
                        _aws_line(
                            net,
                            vpc,
                            d.host,
                            s.ip,
                            d.host,
                            f.sport,
                            f.dport,
                            proto,
                            f.packets,
                            f.bytes,
                            start,
                            window_end,
                            "REJECT",
                            2 if proto == 6 else 0,
                            s.ip,
                            d.ip,
                            "ingress",
                        ),
                        f.step,
                    )
                )
                order += 1
            continue
        answered = f.action == "ACCEPT"
        for leg in _legs(f, s, d, answered=answered):
            flags = 0
            if proto == 6:
                flags = (18 if leg.reply else 2) | (1 if closed and answered else 0)
            # the sender's interface logs the leg as egress, the receiver's as ingress
            sender, receiver = (s, d) if not leg.reply else (d, s)
            for side, direction in ((sender, "egress"), (receiver, "ingress")):
                if not side.host:
                    continue
                if direction == "egress":
                    srcaddr, dstaddr = side.host, leg.dst  # the interface's primary address
                else:
                    srcaddr, dstaddr = leg.src, side.host
                pkt_src, pkt_dst = leg.src, leg.dst  # the packet's own addresses
                path = ("1" if net.hosts & {leg.dst} or not _public(leg.dst) else "8") if direction == "egress" else "-"
                rows.append(
                    (
                        start,
                        order,
                        _aws_line(
                            net,
                            vpc,
                            side.host,
                            srcaddr,
                            dstaddr,
                            leg.sport,
                            leg.dport,
                            proto,
                            leg.packets,
                            leg.bytes,
                            start,
                            window_end,
                            "ACCEPT",
                            flags,
                            pkt_src,
                            pkt_dst,
                            direction,
                            path,
                        ),
                        f.step,
                    )
                )
                order += 1
    if not rows:
        return
    rows.sort(key=lambda r: (r[0], r[1]))
    by_hour: dict[int, list[tuple[int, int, str, str | None]]] = defaultdict(list)
    for r in rows:
        by_hour[r[0] // 3600 * 3600].append(r)
    for h, hour_rows in sorted(by_hour.items()):
        t = dt.datetime.fromtimestamp(h, UTC)
        name = (
            f"flows/vpc/AWSLogs/{AWS_ACCOUNT}/vpcflowlogs/{AWS_REGION}/{t:%Y/%m/%d}/"
            f"{AWS_ACCOUNT}_vpcflowlogs_{AWS_REGION}_{flow_log}_{t:%Y%m%dT%H%M}Z_{_digest(flow_log, h)[:8]}.log.gz"
        )
        fl = out.file(name, gz=True)
        fl.add(" ".join(AWS_FIELDS))
        for _, _, line, step in hour_rows:
            fl.add(line, [step])


def _public(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def _aws_line(
    net: _Network,
    vpc: str,
    iface_host: str,
    srcaddr: str,
    dstaddr: str,
    sport: int,
    dport: int,
    proto: int,
    packets: int,
    nbytes: int,
    start: int,
    end: int,
    action: str,
    flags: int,
    pkt_src: str,
    pkt_dst: str,
    direction: str,
    path: str = "-",
) -> str:
    key = _digest(net.cluster, iface_host)
    values = {
        "version": "5",
        "account-id": AWS_ACCOUNT,
        "interface-id": f"eni-{key[:17]}",
        "srcaddr": srcaddr,
        "dstaddr": dstaddr,
        "srcport": str(sport),
        "dstport": str(dport),
        "protocol": str(proto),
        "packets": str(packets),
        "bytes": str(nbytes),
        "start": str(start),
        "end": str(end),
        "action": action,
        "log-status": "OK",
        "vpc-id": vpc,
        "subnet-id": f"subnet-{_digest(net.cluster, 'subnet', int(key[17], 16) % 3)[:17]}",
        "instance-id": f"i-{key[20:37]}",
        "tcp-flags": str(flags),
        "type": "IPv4",
        "pkt-srcaddr": pkt_src,
        "pkt-dstaddr": pkt_dst,
        "region": AWS_REGION,
        "az-id": f"euw1-az{int(key[17], 16) % 3 + 1}",
        "flow-direction": direction,
        "traffic-path": path,
    }
    return " ".join(values[k] for k in AWS_FIELDS)


# --------------------------------------------------------------------------- GCP VPC flow logs


def _vpc_gcp(flows: list[Flow], out: _Out, *, net: _Network) -> None:
    """VPC Flow Logs as a Cloud Logging sink writes them (hourly JSON lines): one record per
    direction of a connection and per reporting VM — ``reporter`` SRC (the sender's VM) and DEST
    (the receiver's), both when both ends are VMs of the VPC; the reply direction has its own
    records with the addresses swapped. GKE annotates pods (``*_gke_details``)
    (https://cloud.google.com/vpc/docs/flow-logs#record_format). Refused connections are not
    in VPC flow logs (Firewall Rules Logging has them), and traffic inside one node is not
    either (without intranode visibility)."""
    zone = f"{GCP_REGION}-b"
    files: dict[str, list[tuple[dt.datetime, int, dict[str, Any], str | None]]] = defaultdict(list)
    order = 0
    for f in flows:
        s, d = net.side(f, True), net.side(f, False)
        if (s.host and d.host and s.host == d.host) or _link_local(f.dst_ip) or _link_local(f.src_ip):
            continue
        if _refused_by_cloud_firewall(f, net, s):
            continue
        start = _utc(f.time)
        for leg in _legs(f, s, d, answered=f.action == "ACCEPT"):
            sender, receiver = (s, d) if not leg.reply else (d, s)
            t0 = start + dt.timedelta(milliseconds=2 if leg.reply else 0)
            for reporter, side in (("SRC", sender), ("DEST", receiver)):
                if not side.host:
                    continue
                payload: dict[str, Any] = {
                    "bytes_sent": str(leg.bytes),
                    "connection": {
                        "dest_ip": leg.dst,
                        "dest_port": leg.dport,
                        "protocol": _IANA.get(f.protocol.upper(), 6),
                        "src_ip": leg.src,
                        "src_port": leg.sport,
                    },
                }
                for key, end, wire_ip in (("src", sender, leg.src), ("dest", receiver, leg.dst)):
                    if end.host:
                        if end.node or end.host in net.hosts:
                            payload[f"{key}_instance"] = {
                                "project_id": GCP_PROJECT,
                                "region": GCP_REGION,
                                "vm_name": end.node or f"vm-{end.host.replace('.', '-')}",
                                "zone": zone,
                            }
                        payload[f"{key}_vpc"] = {
                            "project_id": GCP_PROJECT,
                            "subnetwork_name": f"{net.cluster}-nodes",
                            "vpc_name": "prod-vpc",
                        }
                        gke = _gke_details(end, net.cluster, wire_ip)
                        if gke:
                            payload[f"{key}_gke_details"] = gke
                payload["end_time"] = _iso(t0 + dt.timedelta(seconds=5), 9)
                payload["packets_sent"] = str(leg.packets)
                payload["reporter"] = reporter
                if f.protocol.upper() == "TCP":
                    payload["rtt_msec"] = str(1 + int(_digest(f.src_ip, f.sport)[:2], 16) % 9)
                payload["start_time"] = _iso(t0, 9)
                entry = {
                    "insertId": _digest(f.src_ip, f.sport, f.dst_ip, f.dport, start.isoformat(), reporter, leg.reply)[
                        :20
                    ],
                    "jsonPayload": payload,
                    "logName": f"projects/{GCP_PROJECT}/logs/compute.googleapis.com%2Fvpc_flows",
                    "receiveTimestamp": _iso(t0 + dt.timedelta(seconds=12), 9),
                    "resource": {
                        "labels": {
                            "location": zone,
                            "project_id": GCP_PROJECT,
                            "subnetwork_id": str(int(_digest(net.cluster)[:12], 16)),
                            "subnetwork_name": f"{net.cluster}-nodes",
                        },
                        "type": "gce_subnetwork",
                    },
                    "timestamp": _iso(t0 + dt.timedelta(seconds=5), 9),
                }
                h = _hour(t0)
                name = f"flows/gcs/compute.googleapis.com/vpc_flows/{h:%Y/%m/%d}/{h:%H}:00:00_{h:%H}:59:59_S0.json"
                files[name].append((t0, order, entry, f.step))
                order += 1
    for name in sorted(files):
        fl = out.file(name)
        for _, _, entry, step in sorted(files[name], key=lambda r: (r[0], r[1])):
            fl.add(_json(entry), [step])


def _gke_details(end: _Side, cluster: str, wire_ip: str) -> dict[str, Any] | None:
    details: dict[str, Any] = {"cluster": {"cluster_location": GCP_REGION, "cluster_name": cluster}}
    if not end.node:
        return None
    ep = end.endpoint
    if ep is not None and not ep.host_network and wire_ip == end.ip:  # SNATed: the pod is not visible
        pod: dict[str, Any] = {"pod_name": ep.pod, "pod_namespace": ep.namespace}
        if ep.workload:
            pod["pod_workload"] = {"workload_name": ep.workload[1], "workload_type": ep.workload[0].upper()}
        details["pod"] = pod
    return details


# --------------------------------------------------------------------------- Azure NSG flow logs


def _nsg_azure(flows: list[Flow], out: _Out, *, net: _Network) -> None:
    """NSG flow logs version 2: per NSG, NIC (``macAddress=`` in the blob path) and hour one
    ``PT1H.json`` = ``{"records": [...]}``, a record per minute with flow tuples per rule
    (https://learn.microsoft.com/azure/network-watcher/nsg-flow-logs-overview#log-format).
    A tuple describes the connection from its initiator, ``I``/``O`` relative to the NIC; v2
    adds the state (``B`` begin, ``E`` end, with both directions' counters) — replies have no
    tuple of their own. With Azure CNI pods hold VNet addresses, so the tuples name them."""
    nsg = f"AKS-AGENTPOOL-{int(_digest(net.cluster, 'nsg')[:8], 16) % 10**8:08d}-NSG"
    resource = (
        f"/SUBSCRIPTIONS/{AZURE_SUBSCRIPTION}/RESOURCEGROUPS/MC_{AZURE_RESOURCE_GROUP}_{net.cluster}_WESTEUROPE/PROVIDERS/"
        f"MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/{nsg}"
    ).upper()
    # (mac, minute) → rule → tuples, with the steps of the tuples
    minutes: dict[tuple[str, int], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    steps: dict[tuple[str, int], list[str]] = defaultdict(list)
    for f in flows:
        s, d = net.side(f, True), net.side(f, False)
        if (s.host and d.host and s.host == d.host) or _link_local(f.dst_ip) or _link_local(f.src_ip):
            continue
        proto = "U" if f.protocol.upper() == "UDP" else "T"
        t = _sec(f.time)
        wire_src = s.host if f.snat and s.host else s.ip
        tail = f"{wire_src},{d.ip},{f.sport},{f.dport},{proto}"
        refused = _refused_by_cloud_firewall(f, net, s)
        answered = f.action == "ACCEPT"
        ends = [] if refused else [(s, "O")]
        ends.append((d, "I"))
        for side, direction in ends:
            if not side.host:
                continue
            mac = _mac(net.cluster, side.host)
            other = d if direction == "O" else s
            if refused:
                rule, decision = "DefaultRule_DenyAllInBound", "D"
            elif direction == "O":
                rule, decision = (
                    ("DefaultRule_AllowVnetOutBound" if other.host else "DefaultRule_AllowInternetOutBound"),
                    "A",
                )
            else:
                rule, decision = (
                    ("DefaultRule_AllowVnetInBound" if other.host else f"UserRule_k8s-{proto}-{f.dport}-Internet"),
                    "A",
                )
            tuples = [(t, f"{t},{tail},{direction},{decision},B,,,,")]
            if not refused:
                back_p, back_b = (f.reply_packets, f.reply_bytes) if answered else (0, 0)
                end_t = t + 1 + int(_digest(tail, t)[:2], 16) % 20
                tuples.append(
                    (end_t, f"{end_t},{tail},{direction},{decision},E,{f.packets},{f.bytes},{back_p},{back_b}")
                )
            for when, text in tuples:
                key = (mac, when // 60 * 60)
                minutes[key][rule].append(text)
                if f.step:
                    steps[(mac, when // 3600 * 3600)].append(f.step)
    blobs: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for mac, minute in sorted(minutes):
        rules = minutes[(mac, minute)]
        blobs[(mac, minute // 3600 * 3600)].append(
            {
                "time": _iso(dt.datetime.fromtimestamp(minute + 60, UTC), 7),
                "systemId": str(uuid.UUID(_digest(resource)[:32])),
                "macAddress": mac,
                "category": "NetworkSecurityGroupFlowEvent",
                "resourceId": resource,
                "operationName": "NetworkSecurityGroupFlowEvents",
                "properties": {
                    "Version": 2,
                    "flows": [{"rule": r, "flows": [{"mac": mac, "flowTuples": rules[r]}]} for r in sorted(rules)],
                },
            }
        )
    for (mac, hour), records in sorted(blobs.items()):
        h = dt.datetime.fromtimestamp(hour, UTC)
        name = (
            f"flows/insights-logs-networksecuritygroupflowevent/resourceId={resource}/y={h:%Y}/m={h:%m}/d={h:%d}/h={h:%H}/m=00/"
            f"macAddress={mac}/PT1H.json"
        )
        # one JSON document: the loader numbers it record 1, every tuple in it is on that line
        out.file(name).add(_json({"records": records}), steps.get((mac, hour), []))


def _mac(cluster: str, host: str) -> str:
    return ("000D3A" + _digest(cluster, "mac", host)[:6]).upper()


# --------------------------------------------------------------------------- Hubble


_FLAGS = {False: {"SYN": True}, True: {"SYN": True, "ACK": True}}


def _hubble(flows: list[Flow], out: _Out, *, net: _Network, cloud_firewall: bool, rng: random.Random) -> None:
    """Hubble exporter files, one per node (``{"flow": ..., "node_name", "time"}`` lines,
    https://docs.cilium.io/en/stable/observability/hubble/configuration/export/). Cilium sees a
    connection where a pod it manages sends or receives: at the source pod's node as EGRESS,
    at the destination pod's as INGRESS, the reply as ``is_reply: true``; DNS through Cilium's
    DNS proxy adds L7 request/response flows at the client's node. A refusal by a
    NetworkPolicy is a DROPPED flow (POLICY_DENIED) at the destination."""
    files: dict[str, list[tuple[dt.datetime, int, dict[str, Any], str | None]]] = defaultdict(list)
    order = 0

    def emit(node: str, t: dt.datetime, flow: dict[str, Any], step: str | None) -> None:
        nonlocal order
        node_name = f"{net.cluster}/{node}"
        flow = {
            "time": _iso(t, 9),
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            **flow,
            "node_name": node_name,
        }
        files[f"flows/hubble/{node}/events.log"].append(
            (t, order, {"flow": flow, "node_name": node_name, "time": _iso(t, 9)}, step)
        )
        order += 1

    for f in flows:
        s, d = net.side(f, True), net.side(f, False)
        if cloud_firewall and _refused_by_cloud_firewall(f, net, s):
            continue  # the cloud firewall refused it before any node saw it
        t = _utc(f.time)
        l4key = "UDP" if f.protocol.upper() == "UDP" else "TCP"
        answered = f.action == "ACCEPT"
        for leg in _legs(f, s, d, answered=True):
            if leg.reply and not answered:
                continue
            sender, receiver = (s, d) if not leg.reply else (d, s)
            for observer, direction, point in (
                (s, "EGRESS", "TO_STACK" if not leg.reply else "TO_ENDPOINT"),
                (d, "INGRESS", "TO_ENDPOINT" if not leg.reply else "TO_STACK"),
            ):
                if not observer.pod or not observer.node:
                    continue
                dropped = not answered and observer is d and not leg.reply
                ports: dict[str, Any] = {"source_port": leg.sport, "destination_port": leg.dport}
                if l4key == "TCP":
                    ports["flags"] = _FLAGS[leg.reply]
                src_ip, dst_ip, snd, rcv = leg.src, leg.dst, sender, receiver
                if f.snat and s.host:
                    # Cilium sees the source pod's own address on its node; the other end sees
                    # the node's address the pod was translated to
                    translated = _Side(s.host, s.host, None, s.node)
                    if observer is s:
                        src_ip, dst_ip = (s.ip, dst_ip) if not leg.reply else (src_ip, s.ip)
                    elif not leg.reply:
                        snd = translated
                    else:
                        rcv = translated
                flow: dict[str, Any] = {
                    "verdict": "DROPPED" if dropped else "FORWARDED",
                    "IP": {"source": src_ip, "destination": dst_ip, "ipVersion": "IPv4"},
                    "l4": {l4key: ports},
                    "source": _hubble_endpoint(snd, observer, net),
                    "destination": _hubble_endpoint(rcv, observer, net),
                    "Type": "L3_L4",
                    "event_type": {"type": 1, "sub_type": 133} if dropped else {"type": 4},
                    "traffic_direction": direction,
                    "is_reply": leg.reply,
                }
                if dropped:
                    flow["drop_reason"] = 133
                    flow["drop_reason_desc"] = "POLICY_DENIED"
                else:
                    flow["trace_observation_point"] = point
                delay = dt.timedelta(microseconds=(300 if observer is d else 0) + (1500 if leg.reply else 0))
                emit(observer.node, t + delay, flow, f.step)
        if f.dns_query and s.pod and s.node and answered:
            for k, kind in enumerate(("REQUEST", "RESPONSE")):
                reply = kind == "RESPONSE"
                dns: dict[str, Any] = {
                    "query": f.dns_query if f.dns_query.endswith(".") else f.dns_query + ".",
                    "qtypes": ["A"],
                }
                if reply:
                    dns.update({"rcode": 0, "rrtypes": ["A"], "observation_source": "proxy"})
                emit(
                    s.node,
                    t + dt.timedelta(microseconds=100 + 900 * k),
                    {
                        "verdict": "FORWARDED",
                        "IP": {
                            "source": d.ip if reply else s.ip,
                            "destination": s.ip if reply else d.ip,
                            "ipVersion": "IPv4",
                        },
                        "l4": {
                            "UDP": {
                                "source_port": f.dport if reply else f.sport,
                                "destination_port": f.sport if reply else f.dport,
                            }
                        },
                        "source": _hubble_endpoint(d if reply else s, s, net),
                        "destination": _hubble_endpoint(s if reply else d, s, net),
                        "Type": "L7",
                        "event_type": {"type": 129},
                        "traffic_direction": "EGRESS",
                        "is_reply": reply,
                        "l7": {
                            "type": kind,
                            "latency_ns": "0" if not reply else str(800000 + int(_digest(f.dns_query)[:4], 16)),
                            "dns": dns,
                        },
                    },
                    f.step,
                )
    for name in sorted(files):
        fl = out.file(name)
        for _, _, rec, step in sorted(files[name], key=lambda r: (r[0], r[1])):
            fl.add(_json(rec), [step])


def _hubble_endpoint(end: _Side, observer: _Side, net: _Network) -> dict[str, Any]:
    ep = end.endpoint
    if ep is not None and not ep.host_network:
        labels = [f"k8s:{k}={v}" for k, v in ep.labels] + [f"k8s:io.kubernetes.pod.namespace={ep.namespace}"]
        h = _digest(ep.namespace, ep.pod)
        out: dict[str, Any] = {
            "ID": int(h[:4], 16) % 4000 + 1,
            "identity": 1000 + int(_digest(*sorted(labels))[:4], 16) % 60000,
            "namespace": ep.namespace,
            "labels": labels,
            "pod_name": ep.pod,
        }
        if ep.workload:
            out["workloads"] = [{"name": ep.workload[1], "kind": ep.workload[0]}]
        return out
    if end.node is not None or end.ip in net.hosts:
        # a node's own address (or a hostNetwork pod): Cilium's reserved host identities
        local = end.node is not None and end.node == observer.node
        return (
            {"identity": 1, "labels": ["reserved:host"]}
            if local
            else {"identity": 6, "labels": ["reserved:remote-node"]}
        )
    return {"identity": 2, "labels": ["reserved:world"]}


# --------------------------------------------------------------------------- Calico


def _calico(flows: list[Flow], out: _Out, *, net: _Network, cloud_firewall: bool) -> None:
    """Calico Enterprise flow logs (``/var/log/calico/flowlogs/flows.log`` on each node), here
    with ``flowLogsFileAggregationKindForAllowed: 0`` (per-pod, with addresses and ports) and
    the default five-minute flush interval
    (https://docs.tigera.io/calico-enterprise/latest/observability/elastic/flow/datatypes).
    Each end whose pod Calico manages reports the connection once (``reporter`` src or dst),
    with both directions' bytes; a NetworkPolicy refusal is ``action: deny`` at the destination."""
    files: dict[str, list[tuple[int, int, dict[str, Any], str | None]]] = defaultdict(list)
    order = 0
    for f in flows:
        s, d = net.side(f, True), net.side(f, False)
        if cloud_firewall and _refused_by_cloud_firewall(f, net, s):
            continue
        t = _sec(f.time)
        start = t // 300 * 300
        answered = f.action == "ACCEPT"
        for reporter, side in (("src", s), ("dst", d)):
            if not side.pod or not side.node:
                continue
            denied = not answered and reporter == "dst"
            wire_src = s.host if f.snat and s.host and reporter == "dst" else s.ip
            sent_p, sent_b = f.packets, f.bytes
            back_p, back_b = (f.reply_packets, f.reply_bytes) if answered else (0, 0)
            rec: dict[str, Any] = {"start_time": start, "end_time": start + 300}
            rec.update(_calico_end("source", s, wire_src, f.sport, net))
            rec.update(_calico_end("dest", d, d.ip, f.dport, net))
            ns = side.endpoint.namespace if side.endpoint else "-"
            policy = (
                f"0|default|{ns}/knp.default.default-deny|deny|-1"
                if denied
                else f"0|__PROFILE__|__PROFILE__.kns.{ns}|allow|0"
            )
            rec.update(
                {
                    "dest_service_namespace": "-",
                    "dest_service_name": "-",
                    "dest_service_port": "-",
                    "dest_service_port_num": None,
                    "dest_domains": None,
                    "proto": f.protocol.lower(),
                    "action": "deny" if denied else "allow",
                    "reporter": reporter,
                    "policies": {"all_policies": [policy], "enforced_policies": [policy], "pending_policies": [policy]},
                    "bytes_in": back_b if reporter == "src" else sent_b,
                    "bytes_out": sent_b if reporter == "src" else back_b,
                    "num_flows": 1,
                    "num_flows_started": 1,
                    "num_flows_completed": 1 if answered else 0,
                    "packets_in": back_p if reporter == "src" else sent_p,
                    "packets_out": sent_p if reporter == "src" else back_p,
                    "http_requests_allowed_in": 0,
                    "http_requests_denied_in": 0,
                    "process_name": "-",
                    "process_id": "-",
                    "process_args": "-",
                    "original_source_ips": None,
                    "num_original_source_ips": 0,
                    "host": side.node,
                }
            )
            files[f"flows/calico/{side.node}/flows.log"].append((start + 300, order, rec, f.step))
            order += 1
    for name in sorted(files):
        fl = out.file(name)
        for _, _, rec, step in sorted(files[name], key=lambda r: (r[0], r[1])):
            fl.add(_json(rec), [step])


def _calico_end(prefix: str, end: _Side, ip: str, port: int, net: _Network) -> dict[str, Any]:
    ep = end.endpoint
    if ep is not None and not ep.host_network and ip == end.ip:
        base = ep.pod.rsplit("-", 1)[0] + "-*" if ep.workload else ep.pod
        return {
            f"{prefix}_ip": ip,
            f"{prefix}_name": ep.pod,
            f"{prefix}_name_aggr": base,
            f"{prefix}_namespace": ep.namespace,
            f"{prefix}_port": port,
            f"{prefix}_type": "wep",
            f"{prefix}_labels": {"labels": [f"{k}={v}" for k, v in ep.labels]},
        }
    # a node or an address outside the cluster: a network ("pub"lic or "pvt" private) endpoint
    return {
        f"{prefix}_ip": ip,
        f"{prefix}_name": "-",
        f"{prefix}_name_aggr": "pub" if _public(ip) else "pvt",
        f"{prefix}_namespace": "-",
        f"{prefix}_port": port,
        f"{prefix}_type": "net",
        f"{prefix}_labels": None,
    }


__all__ = ["PLATFORMS", "write_evidence"]
