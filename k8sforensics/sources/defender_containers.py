"""Microsoft Defender for Cloud alerts (Defender for Containers: ``K8S_*`` control-plane and
``K8S.NODE_*`` node alerts) as alerts.

Two shapes: the continuous-export / Event Hub record (PascalCase ``AlertType``, ``Entities`` whose
objects point at each other with ``$id``/``$ref``, ``ExtendedProperties`` whose values may be JSON
held in strings, ``ResourceIdentifiers``), and the ARM ``Microsoft.Security/alerts`` resource —
its ``properties`` (camelCase), whole or alone (``az security alert list``). Alert reference:
https://learn.microsoft.com/azure/defender-for-cloud/alerts-containers

``time`` is ``StartTimeUtc`` (``TimeGenerated`` when an alert has none: the alert's own time),
``time_end`` ``EndTimeUtc``. ``Intent`` is the vendor's tactic list: its first ATT&CK tactic is
the tactic (``Exploitation``, ``Probing`` and ``PreAttack`` are Defender's own, not ATT&CK's);
``Techniques``, when an alert carries them, are the vendor's ATT&CK ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._alerts import Mapping, attack_id, first_tactic, key, service_account, technique_columns, vendor_time
from ._json import loads
from ._values import as_list, json_text, text
from .protocol import BadRecord

NAME = "defender-containers"
FAMILY = "alerts"
sniff_lines = None  # a JSON format
fast = None  # alerts are few: every record is read per record

# Defender's severities → the table's levels; Informational is the lowest of Defender's scale
# and has no level of its own here (severity_raw keeps it)
SEVERITIES = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}

# Alert type → (Threat Matrix id, ATT&CK id, tactic). The tactic is the first the alert reference
# lists for the type ("MITRE tactics", alerts-containers page above); the Threat Matrix id is
# declared only where the documented alert is that technique (its page on
# https://microsoft.github.io/Threat-Matrix-for-Kubernetes/ gives the ATT&CK id); None elsewhere.
TECHNIQUES: dict[str, Mapping] = {
    "K8S_PrivilegedContainer": ("MS-TA9018", "T1610", "Privilege Escalation"),
    "K8S.NODE_PrivilegedContainerArtifacts": ("MS-TA9018", "T1610", "Privilege Escalation"),
    "K8S_SensitiveMount": ("MS-TA9013", "T1611", "Privilege Escalation"),
    "K8S_AdmissionController": ("MS-TA9015", "T1546", "Credential Access"),
    "K8S_ClusterAdminBinding": ("MS-TA9019", "T1078.003", "Persistence"),
    "K8S_ExposedDashboard": ("MS-TA9005", "T1133", "Initial Access"),
    "K8S_ExposedKubeflow": ("MS-TA9005", "T1133", "Initial Access"),
    "K8S_ExposedService": ("MS-TA9005", "T1133", "Initial Access"),
    "K8S_DeleteEvents": ("MS-TA9022", "T1070", "Defense Evasion"),
    "K8S_CoreDnsModification": ("MS-TA9035", "T1557", "Lateral Movement"),
    "K8S_MaliciousContainerImage": ("MS-TA9039", "T1496", "Execution"),
    "K8S.NODE_DigitalCurrencyMining": ("MS-TA9039", "T1496", "Execution"),
    "K8S.NODE_CryptoCoinMinerArtifacts": ("MS-TA9039", "T1496", "Execution"),
    "K8S.NODE_CryptoCoinMinerExecution": ("MS-TA9039", "T1496", "Execution"),
    "K8S.NODE_ContainerSSH": ("MS-TA9010", None, "Execution"),  # the technique names no ATT&CK id
    "K8S.NODE_ImdsCall": ("MS-TA9028", "T1552.005", "Credential Access"),
    # tactic only: no Threat Matrix technique is the alert
    "K8S.NODE_SuspectDownloadArtifacts": (None, None, "Persistence"),
    "K8S.NODE_SuspectDownload": (None, None, "Privilege Escalation"),
    "K8S_KubeSystemContainer": (None, None, "Persistence"),
    "K8S_HighPrivilegesRole": (None, None, "Persistence"),
    "K8S_ServiceAccountRareOperation": (None, None, "Lateral Movement"),
    "K8S_TI_Proxy": (None, None, "Execution"),
    "K8S.NODE_KubernetesAPI": (None, None, "Lateral Movement"),
    "K8S.NODE_KubeConfigAccess": (None, None, "Credential Access"),
    "K8S.NODE_NamespaceCreation": (None, None, "Privilege Escalation"),
    "K8S.NODE_HistoryFileCleared": (None, None, "Defense Evasion"),
    "K8S.NODE_SystemLogRemoval": (None, None, "Defense Evasion"),
    "K8S.NODE_ReverseShell": (None, None, "Exfiltration"),
}

_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)
_MANAGED_CLUSTER = re.compile(r"/providers/Microsoft\.ContainerService/managedClusters/([^/]+)", re.IGNORECASE)
# alert keys wholly held by a column (the rest is kept in extra)
_MAPPED = frozenset(
    {"alertType", "systemAlertId", "alertDisplayName", "description", "severity", "startTimeUtc", "endTimeUtc"}
)


def sniff(record: Any) -> bool:
    alert = _alert(record)
    return alert is not None


def _alert(record: Any) -> dict[str, Any] | None:
    """The alert's properties: the record itself, or an ARM resource's ``properties``."""
    if not isinstance(record, dict):
        return None
    props = record.get("properties")
    candidate = props if isinstance(props, dict) and "alertType" in props else record
    kind = key(candidate, "alertType")
    if not (isinstance(kind, str) and kind):
        return None
    # a Defender for Cloud alert also names itself: its system id, display name or portal link
    if key(candidate, "systemAlertId") is None and key(candidate, "alertDisplayName") is None:
        return None
    return candidate


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any] | BadRecord]:
    # a bad value is given back as the record's reason, naming the field (not wrapped)
    try:
        yield _row(record)
    except BadRecord as e:
        yield e


def _row(record: dict[str, Any]) -> dict[str, Any]:
    a = _alert(record)
    if a is None:
        raise BadRecord("not a Defender for Cloud alert (no alertType)")
    kind = key(a, "alertType")
    entities, by_id = _entities(_json_value(key(a, "entities"), "Entities"))
    props = _json_value(key(a, "extendedProperties"), "ExtendedProperties")
    props = props if isinstance(props, dict) else {}
    named = {_words(k): v for k, v in props.items() if isinstance(v, str)}
    resource_id = key(a, "azureResourceId") or _resource_identifier(key(a, "resourceIdentifiers"))
    cluster = _entity(entities, "k8s-cluster")
    namespace = _entity(entities, "k8s-namespace")
    pod = _entity(entities, "k8s-pod")
    account_entity = _entity(entities, "k8s-serviceaccount") or _entity(entities, "account")
    sa = _sa(account_entity, by_id)
    # a service account in the Kubernetes spelling, so it meets the audit log's user column
    user = f"system:serviceaccount:{sa.replace('/', ':', 1)}" if sa else _name(account_entity)
    ip = _entity(entities, "ip")
    techniques = [t for t in map(attack_id, as_list(key(a, "techniques"))) if t]
    start = key(a, "startTimeUtc")
    return {
        "time": vendor_time(
            start if start is not None else key(a, "timeGenerated") or key(a, "timeGeneratedUtc"), "time"
        ),
        "time_end": vendor_time(key(a, "endTimeUtc"), "time_end"),
        "vendor": "microsoft",
        "product": key(a, "productName") or "Microsoft Defender for Cloud",
        "alert_id": key(a, "systemAlertId") or key(record, "name"),
        "alert_type": kind,
        "title": key(a, "alertDisplayName"),
        "description": key(a, "description"),
        "severity": SEVERITIES.get(str(key(a, "severity")).lower()),
        "severity_raw": text(key(a, "severity")),
        **technique_columns(
            TECHNIQUES.get(kind),
            vendor_tactic=first_tactic(key(a, "intent")),
            vendor_attack=techniques[0] if techniques else None,
        ),
        "cluster": _cluster(cluster, by_id) or _match(_MANAGED_CLUSTER, resource_id),
        "namespace": _name(namespace) or _name(_ref(pod, "namespace", by_id)) or named.get("namespace"),
        "pod": _name(pod) or named.get("podname"),
        "container": _name(_entity(entities, "container")) or named.get("containername"),
        "node": key(_entity(entities, "host"), "hostName") or named.get("nodename"),
        "user": user,
        "service_account": sa or service_account(user),
        "source_ip": key(ip, "address"),
        "account": _match(_SUBSCRIPTION, resource_id) or named.get("effectivesubscriptionid"),
        "resource": resource_id,
        "extra": json_text({k: v for k, v in a.items() if k[:1].lower() + k[1:] not in _MAPPED}),
    }


def _json_value(value: Any, field: str) -> Any:
    # SIEM copies (Sentinel's SecurityAlert) hold Entities and ExtendedProperties as JSON text
    if not isinstance(value, str):
        return value
    try:
        return loads(value)
    except ValueError as e:
        raise BadRecord(f"field {field}: not valid JSON ({e})") from e


def _entities(value: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every entity object, nested ones included (``$ref`` stubs left out), and the objects by
    their ``$id`` (Defender writes an object once and refers to it by ``$ref`` after)."""
    found: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}

    def walk(v: Any, depth: int) -> None:
        if depth > 20:  # entity graphs are shallow; a deeper one is not walked further
            return
        if isinstance(v, dict):
            if isinstance(v.get("$id"), str):
                by_id[v["$id"]] = v
            if "$ref" not in v:
                found.append(v)
            for child in v.values():
                walk(child, depth + 1)
        elif isinstance(v, list):
            for child in v:
                walk(child, depth + 1)

    walk(value, 0)
    return found, by_id


def _ref(entity: Any, name: str, by_id: dict[str, dict[str, Any]]) -> Any:
    """``entity[name]``, following a ``$ref`` to the object it names."""
    v = key(entity, name)
    if isinstance(v, dict) and isinstance(v.get("$ref"), str):
        return by_id.get(v["$ref"])
    return v


def _entity(entities: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((e for e in entities if str(key(e, "type")).lower() == kind), None)


def _name(entity: Any) -> str | None:
    v = key(entity, "name")
    return v if isinstance(v, str) and v else None


def _cluster(entity: Any, by_id: dict[str, dict[str, Any]]) -> str | None:
    # a K8s-cluster entity names its cluster through the Azure resource it points at
    resource = _ref(entity, "cloudResource", by_id)
    return _name(entity) or key(resource, "resourceName")


def _sa(entity: Any, by_id: dict[str, dict[str, Any]]) -> str | None:
    if str(key(entity, "type")).lower() != "k8s-serviceaccount":
        return None
    ns, name = _name(_ref(entity, "namespace", by_id)), _name(entity)
    return f"{ns}/{name}" if ns and name else None


def _resource_identifier(value: Any) -> str | None:
    return next((key(r, "azureResourceId") for r in as_list(value) if key(r, "azureResourceId")), None)


def _match(pattern: re.Pattern[str], value: Any) -> str | None:
    m = pattern.search(value) if isinstance(value, str) else None
    return m.group(1) if m else None


def _words(name: str) -> str:
    """An extended property's name compared without case, spaces or punctuation."""
    return re.sub(r"[^a-z]", "", name.lower())
