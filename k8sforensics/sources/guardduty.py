"""Amazon GuardDuty findings as alerts.

The shapes responders get them in: ``aws guardduty get-findings`` output (``{"Findings": [...]}``,
PascalCase keys), the EventBridge event (``{"detail-type": "GuardDuty Finding", "detail": {...}}``)
and the bare finding of an S3 export or a SIEM (camelCase), one per line or in arrays. Types read:
EKS audit-log findings (``*:Kubernetes/*``), Runtime Monitoring (``*:Runtime/*``) and EC2
findings about a Kubernetes node (its cluster from the instance's tags). Finding format:
https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-format.html

``time`` is ``service.eventFirstSeen`` (``createdAt`` when a finding has none: the finding's own
time, never a reader's), ``time_end`` ``eventLastSeen``. An EC2 instance id goes to ``resource``,
never to ``node`` (a node is named by its Kubernetes name, which a finding does not give).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._alerts import Mapping, key, path, service_account, tactic, technique_columns, vendor_time
from ._values import as_list, json_text, text
from .protocol import BadRecord, NotAnEvent

NAME = "guardduty"
FAMILY = "alerts"
sniff_lines = None  # a JSON format
fast = None  # findings are few: every record is read per record

# GuardDuty's numeric severity → level, "Severity levels of GuardDuty findings":
# https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-severity.html
# Low 1.0-3.9, Medium 4.0-6.9, High 7.0-8.9, Critical 9.0-10.0; 0 is reserved (left unmapped).
SEVERITY_BOUNDS = ((4.0, "low"), (7.0, "medium"), (9.0, "high"), (10.0, "critical"))

# The threat purposes the finding-format page says are based on MITRE ATT&CK tactics
# (CredentialAccess, DefenseEvasion, Discovery, Exfiltration, Impact, InitialAccess, Persistence,
# PrivilegeEscalation) and Execution, which carries the tactic's own name. The others (Backdoor,
# Behavior, CryptoCurrency, PenTest, Policy, Recon, Stealth, Trojan, UnauthorizedAccess) are not
# tactics: their findings get a tactic only from the table below.
ATTACK_PURPOSES = frozenset(
    {
        "CredentialAccess",
        "DefenseEvasion",
        "Discovery",
        "Execution",
        "Exfiltration",
        "Impact",
        "InitialAccess",
        "Persistence",
        "PrivilegeEscalation",
    }
)

# Finding type → (Threat Matrix id, ATT&CK id, tactic). GuardDuty publishes no per-type technique,
# so an entry is declared only where the type's documented meaning is a Threat Matrix technique
# (https://microsoft.github.io/Threat-Matrix-for-Kubernetes/), whose page gives the ATT&CK id;
# the tactic is the threat purpose's, or the technique's for a purpose that is no tactic (Policy,
# CryptoCurrency). Types: https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-types-active.html
TECHNIQUES: dict[str, Mapping] = {
    # "privileged container launched" = Privileged container (MS-TA9018, T1610)
    "PrivilegeEscalation:Kubernetes/PrivilegedContainer": ("MS-TA9018", "T1610", "Privilege Escalation"),
    "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer": (
        "MS-TA9018",
        "T1610",
        "Privilege Escalation",
    ),
    # container with a sensitive host path mounted = Writable hostPath mount (MS-TA9013, T1611)
    "Persistence:Kubernetes/ContainerWithSensitiveMount": ("MS-TA9013", "T1611", "Persistence"),
    "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount": (
        "MS-TA9013",
        "T1611",
        "Persistence",
    ),
    "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory": ("MS-TA9013", "T1611", "Privilege Escalation"),
    # exec into a pod = Exec into container (MS-TA9006, T1609)
    "Execution:Kubernetes/ExecInKubeSystemPod": ("MS-TA9006", "T1609", "Execution"),
    "Execution:Kubernetes/AnomalousBehavior.ExecInPod": ("MS-TA9006", "T1609", "Execution"),
    # a workload launched = New container (MS-TA9008, T1610)
    "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed": ("MS-TA9008", "T1610", "Execution"),
    # secrets read = List Kubernetes secrets (MS-TA9025, T1552.007)
    "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed": ("MS-TA9025", "T1552.007", "Credential Access"),
    # dashboard exposed = Exposed sensitive interfaces (MS-TA9005, T1133)
    "Policy:Kubernetes/ExposedDashboard": ("MS-TA9005", "T1133", "Initial Access"),
    "Policy:Kubernetes/KubeflowDashboardExposed": ("MS-TA9005", "T1133", "Initial Access"),
    # admin rights bound to the default service account = Cluster-admin binding (MS-TA9019, T1078.003)
    "Policy:Kubernetes/AdminAccessToDefaultServiceAccount": ("MS-TA9019", "T1078.003", "Privilege Escalation"),
    # mining = Resource hijacking (MS-TA9039, T1496)
    "Impact:Runtime/CryptoMinerExecuted": ("MS-TA9039", "T1496", "Impact"),
    "CryptoCurrency:Runtime/BitcoinTool.B": ("MS-TA9039", "T1496", "Impact"),
    "CryptoCurrency:Runtime/BitcoinTool.B!DNS": ("MS-TA9039", "T1496", "Impact"),
}

# workload types GuardDuty writes (the API resource, lower-case plural) → kind
_KINDS = {
    "deployments": "Deployment",
    "replicasets": "ReplicaSet",
    "daemonsets": "DaemonSet",
    "statefulsets": "StatefulSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
    "replicationcontrollers": "ReplicationController",
}
# where a finding's action keeps the remote address
_ACTIONS = ("kubernetesApiCallAction", "networkConnectionAction", "awsApiCallAction", "dnsRequestAction")
# finding keys wholly held by a column (the rest of the finding is kept in extra)
_MAPPED = frozenset({"id", "type", "title", "description", "severity", "accountId"})


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    if isinstance(record.get("Findings"), list):
        return any(_is_finding(f) for f in record["Findings"])
    if record.get("detail-type") == "GuardDuty Finding":
        return isinstance(record.get("detail"), dict)
    return _is_finding(record)


def _is_finding(value: Any) -> bool:
    """A GuardDuty finding: a type like ``Purpose:Resource/Family`` and a ``service`` block that
    names GuardDuty (CloudTrail records and audit events have neither)."""
    if not isinstance(value, dict):
        return False
    kind, service = key(value, "type"), key(value, "service")
    return (
        isinstance(kind, str)
        and ":" in kind
        and "/" in kind
        and isinstance(service, dict)
        and (key(service, "serviceName") == "guardduty" or ":guardduty:" in str(key(value, "arn") or ""))
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any] | BadRecord]:
    if isinstance(record.get("Findings"), list):
        findings = record["Findings"]
        if not findings:
            raise NotAnEvent("GuardDuty get-findings page with no findings")
        for k, f in enumerate(findings):
            # one bad finding of a page is quarantined alone; the page's others are rows
            try:
                yield _row(f) if _is_finding(f) else BadRecord(f"Findings[{k}] is not a GuardDuty finding")
            except (BadRecord, ValueError, TypeError, AttributeError) as e:
                yield BadRecord(f"Findings[{k}]: {e}")
        return
    if record.get("detail-type") == "GuardDuty Finding":
        detail = record.get("detail")
        if not _is_finding(detail):
            raise BadRecord("EventBridge detail is not a GuardDuty finding")
        record = detail
    # a bad value is given back as the record's reason, naming the field (not wrapped)
    try:
        yield _row(record)
    except BadRecord as e:
        yield e


def _row(f: dict[str, Any]) -> dict[str, Any]:
    resource, service = key(f, "resource") or {}, key(f, "service") or {}
    kind = key(f, "type")
    workload = path(resource, "kubernetesDetails", "kubernetesWorkloadDetails") or {}
    workload_type = key(workload, "type") if isinstance(key(workload, "type"), str) else None
    user = path(resource, "kubernetesDetails", "kubernetesUserDetails", "username")
    instance = key(resource, "instanceDetails") or {}
    purpose = kind.split(":", 1)[0]
    first_seen = key(service, "eventFirstSeen")
    return {
        "time": vendor_time(first_seen if first_seen is not None else key(f, "createdAt"), "time"),
        "time_end": vendor_time(key(service, "eventLastSeen"), "time_end"),
        "vendor": "aws",
        "product": "GuardDuty",
        "alert_id": key(f, "id"),
        "alert_type": kind,
        "title": key(f, "title"),
        "description": key(f, "description"),
        "severity": severity(key(f, "severity")),
        "severity_raw": text(key(f, "severity")),
        **technique_columns(
            TECHNIQUES.get(kind),
            vendor_tactic=tactic(purpose) if purpose in ATTACK_PURPOSES else None,
            vendor_attack=None,
        ),
        "cluster": path(resource, "eksClusterDetails", "name") or _tagged_cluster(key(instance, "tags")),
        "namespace": key(workload, "namespace"),
        "pod": key(workload, "name") if workload_type == "pods" else None,
        "workload_kind": _KINDS.get(workload_type, workload_type) if workload_type != "pods" else None,
        "workload": key(workload, "name") if workload_type not in (None, "pods") else None,
        "container": _container(workload, resource),
        "node": None,  # an instance id is not a node name (it is in resource)
        "user": user,
        "service_account": service_account(user),
        "source_ip": _remote_ip(key(service, "action") or {}),
        "destination_ip": _local_ip(key(service, "action") or {}),
        "account": key(f, "accountId"),
        "resource": path(resource, "eksClusterDetails", "arn") or key(instance, "instanceId"),
        "count": key(service, "count"),
        "extra": json_text({k: v for k, v in f.items() if k[:1].lower() + k[1:] not in _MAPPED}),
    }


def severity(value: Any) -> str | None:
    """GuardDuty's numeric severity as a level (see ``SEVERITY_BOUNDS``); None outside 1-10 or
    not a number (``severity_raw`` keeps it as written)."""
    if isinstance(value, bool):
        return None
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    if not 1.0 <= n <= 10.0:
        return None
    return next(level for bound, level in SEVERITY_BOUNDS if n < bound or bound == 10.0)


def _tagged_cluster(tags: Any) -> str | None:
    """The cluster an EC2 instance belongs to, from the tags Kubernetes installers put on nodes:
    ``eks:cluster-name`` (EKS managed node groups), ``KubernetesCluster`` (kops, legacy cloud
    provider), ``kubernetes.io/cluster/<name>`` (the AWS cloud provider's ownership tag)."""
    pairs = {key(t, "key"): key(t, "value") for t in as_list(tags) if isinstance(t, dict)}
    for name in ("eks:cluster-name", "aws:eks:cluster-name", "KubernetesCluster"):
        if isinstance(pairs.get(name), str) and pairs[name]:
            return pairs[name]
    owned = [
        k.removeprefix("kubernetes.io/cluster/")
        for k in pairs
        if isinstance(k, str) and k.startswith("kubernetes.io/cluster/")
    ]
    return owned[0] if len(owned) == 1 and owned[0] else None


def _container(workload: dict[str, Any], resource: dict[str, Any]) -> str | None:
    # Runtime findings name the container; an audit-log finding lists the pod spec's containers:
    # a name only when there is one (which of several acted is not said)
    runtime = path(resource, "containerDetails", "name")
    if isinstance(runtime, str) and runtime:
        return runtime
    containers = [c for c in as_list(key(workload, "containers")) if isinstance(c, dict)]
    return key(containers[0], "name") if len(containers) == 1 else None


def _remote_ip(action: dict[str, Any]) -> str | None:
    for name in _ACTIONS:
        details = path(action, name, "remoteIpDetails")
        ip = key(details, "ipAddressV4") or key(details, "ipAddressV6")
        if ip:
            return ip
    probes = as_list(path(action, "portProbeAction", "portProbeDetails"))
    details = path(probes[0], "remoteIpDetails") if probes else None
    return key(details, "ipAddressV4") or key(details, "ipAddressV6")


def _local_ip(action: dict[str, Any]) -> str | None:
    details = path(action, "networkConnectionAction", "localIpDetails")
    return key(details, "ipAddressV4") or key(details, "ipAddressV6")
