"""Google Security Command Center findings as alerts.

Shapes: the Pub/Sub notification (``{"notificationConfigName", "finding", "resource"}``), the
``gcloud scc findings list`` / ListFindings result (``{"finding", "resource"}``, arrays) and the
bare ``Finding``. Fields: https://cloud.google.com/security-command-center/docs/reference/rest/v2/organizations.sources.locations.findings
— ``category`` (``Execution: Added Malicious Binary Executed``), ``kubernetes.pods[]`` and
``nodes[]``, ``access.principalEmail``/``callerIp``, ``mitreAttack``, and the older Container
Threat Detection ``sourceProperties`` (``Pod_Namespace``, ``Pod_Name``, ``Container_Name``,
``VM_Instance_Name``). The finding pages' examples wrap it as ``{"findings": {...}}``. No real finding was available to test with: the fixtures follow Google's
documented example findings.

``time`` is ``eventTime`` (``createTime`` when a finding has none: its own time), and
``time_end`` is ``time``: a finding is one event. ``mitreAttack`` is the vendor's own mapping of
this finding; a category prefix that is an ATT&CK tactic's name (``Privilege Escalation: …``)
gives the tactic when it is absent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._alerts import Mapping, service_account, tactic, technique_columns, vendor_time
from ._values import as_list, as_object, json_text, text
from .protocol import BadRecord

NAME = "gcp-scc"
FAMILY = "alerts"
sniff_lines = None  # a JSON format
fast = None  # findings are few: every record is read per record

SEVERITIES = {"CRITICAL": "critical", "HIGH": "high", "MEDIUM": "medium", "LOW": "low"}

# MitreAttack.Technique (the API's enum) → ATT&CK id, as the enum documents each value:
# https://github.com/googleapis/googleapis/blob/master/google/cloud/securitycenter/v2/mitre_attack.proto
ATTACK_TECHNIQUES = {
    "MASQUERADING": "T1036",
    "MATCH_LEGITIMATE_NAME_OR_LOCATION": "T1036.005",
    "BOOT_OR_LOGON_INITIALIZATION_SCRIPTS": "T1037",
    "STARTUP_ITEMS": "T1037.005",
    "NETWORK_SERVICE_DISCOVERY": "T1046",
    "PROCESS_DISCOVERY": "T1057",
    "COMMAND_AND_SCRIPTING_INTERPRETER": "T1059",
    "UNIX_SHELL": "T1059.004",
    "PYTHON": "T1059.006",
    "EXPLOITATION_FOR_PRIVILEGE_ESCALATION": "T1068",
    "PERMISSION_GROUPS_DISCOVERY": "T1069",
    "CLOUD_GROUPS": "T1069.003",
    "INDICATOR_REMOVAL_FILE_DELETION": "T1070.004",
    "APPLICATION_LAYER_PROTOCOL": "T1071",
    "DNS": "T1071.004",
    "SOFTWARE_DEPLOYMENT_TOOLS": "T1072",
    "VALID_ACCOUNTS": "T1078",
    "DEFAULT_ACCOUNTS": "T1078.001",
    "LOCAL_ACCOUNTS": "T1078.003",
    "CLOUD_ACCOUNTS": "T1078.004",
    "PROXY": "T1090",
    "EXTERNAL_PROXY": "T1090.002",
    "MULTI_HOP_PROXY": "T1090.003",
    "ACCOUNT_MANIPULATION": "T1098",
    "ADDITIONAL_CLOUD_CREDENTIALS": "T1098.001",
    "SSH_AUTHORIZED_KEYS": "T1098.004",
    "ADDITIONAL_CONTAINER_CLUSTER_ROLES": "T1098.006",
    "INGRESS_TOOL_TRANSFER": "T1105",
    "NATIVE_API": "T1106",
    "BRUTE_FORCE": "T1110",
    "SHARED_MODULES": "T1129",
    "ACCESS_TOKEN_MANIPULATION": "T1134",
    "TOKEN_IMPERSONATION_OR_THEFT": "T1134.001",
    "EXPLOIT_PUBLIC_FACING_APPLICATION": "T1190",
    "DOMAIN_POLICY_MODIFICATION": "T1484",
    "DATA_DESTRUCTION": "T1485",
    "SERVICE_STOP": "T1489",
    "INHIBIT_SYSTEM_RECOVERY": "T1490",
    "RESOURCE_HIJACKING": "T1496",
    "NETWORK_DENIAL_OF_SERVICE": "T1498",
    "CLOUD_SERVICE_DISCOVERY": "T1526",
    "STEAL_APPLICATION_ACCESS_TOKEN": "T1528",
    "ACCOUNT_ACCESS_REMOVAL": "T1531",
    "STEAL_WEB_SESSION_COOKIE": "T1539",
    "CREATE_OR_MODIFY_SYSTEM_PROCESS": "T1543",
    "EVENT_TRIGGERED_EXECUTION": "T1546",
    "ABUSE_ELEVATION_CONTROL_MECHANISM": "T1548",
    "UNSECURED_CREDENTIALS": "T1552",
    "MODIFY_AUTHENTICATION_PROCESS": "T1556",
    "IMPAIR_DEFENSES": "T1562",
    "DISABLE_OR_MODIFY_TOOLS": "T1562.001",
    "EXFILTRATION_OVER_WEB_SERVICE": "T1567",
    "EXFILTRATION_TO_CLOUD_STORAGE": "T1567.002",
    "DYNAMIC_RESOLUTION": "T1568",
    "LATERAL_TOOL_TRANSFER": "T1570",
    "MODIFY_CLOUD_COMPUTE_INFRASTRUCTURE": "T1578",
    "CREATE_SNAPSHOT": "T1578.001",
    "CLOUD_INFRASTRUCTURE_DISCOVERY": "T1580",
    "OBTAIN_CAPABILITIES": "T1588",
    "ACTIVE_SCANNING": "T1595",
    "SCANNING_IP_BLOCKS": "T1595.001",
    "CONTAINER_ADMINISTRATION_COMMAND": "T1609",
    "DEPLOY_CONTAINER": "T1610",
    "ESCAPE_TO_HOST": "T1611",
    "CONTAINER_AND_RESOURCE_DISCOVERY": "T1613",
    "STEAL_OR_FORGE_AUTHENTICATION_CERTIFICATES": "T1649",
}

# Category → (Threat Matrix id, ATT&CK id, tactic), declared where the category is a Threat
# Matrix technique (https://microsoft.github.io/Threat-Matrix-for-Kubernetes/, which gives the
# ATT&CK id); names as the Event Threat Detection rules page lists them:
# https://cloud.google.com/security-command-center/docs/concepts-event-threat-detection-overview
TECHNIQUES: dict[str, Mapping] = {
    # "created a Pod that contains privileged containers" = Privileged container
    "Privilege Escalation: Launch of privileged Kubernetes container": ("MS-TA9018", "T1610", "Privilege Escalation"),
    # "a new RoleBinding or ClusterRoleBinding object for the cluster-admin role" = Cluster-admin binding
    "Privilege Escalation: Creation of sensitive Kubernetes bindings": (
        "MS-TA9019",
        "T1078.003",
        "Privilege Escalation",
    ),
    # "Secrets or service account tokens were accessed" = List Kubernetes secrets
    "Credential Access: Secrets Accessed In Kubernetes Namespace": ("MS-TA9025", "T1552.007", "Credential Access"),
}

_FINDING_NAME = re.compile(r"(?:organizations|folders|projects)/[^/]+/sources/[^/]+/(?:locations/[^/]+/)?findings/")
_CLUSTER = re.compile(r"^//container\.googleapis\.com/projects/[^/]+/(?:locations|zones)/[^/]+/clusters/([^/]+)")
_PROJECT = re.compile(r"(?:^|/)projects/([^/]+)")
# finding keys wholly held by a column (the rest is kept in extra)
_MAPPED = frozenset({"category", "description", "severity", "eventTime", "canonicalName"})


def sniff(record: Any) -> bool:
    return _finding(record) is not None


def _finding(record: Any) -> dict[str, Any] | None:
    """The finding a record holds (a notification's, a list result's) or is."""
    if not isinstance(record, dict):
        return None
    # the console's JSON view and the per-finding example pages write the key "findings"
    wrapped = record.get("finding", record.get("findings"))
    f = wrapped if isinstance(wrapped, dict) else record
    name = f.get("canonicalName") or f.get("name")
    if isinstance(f.get("category"), str) and isinstance(name, str) and _FINDING_NAME.match(name):
        return f
    return None


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any] | BadRecord]:
    # a bad value is given back as the record's reason, naming the field (not wrapped)
    try:
        yield _row(record)
    except BadRecord as e:
        yield e


def _row(record: dict[str, Any]) -> dict[str, Any]:
    f = _finding(record)
    if f is None:
        raise BadRecord("not a Security Command Center finding (no category and finding name)")
    resource = as_object(record.get("resource")) if f is not record else {}
    k8s = as_object(f.get("kubernetes"))
    pods = [p for p in as_list(k8s.get("pods")) if isinstance(p, dict)]
    pod = pods[0] if pods else {}
    nodes = [n for n in as_list(k8s.get("nodes")) if isinstance(n, dict)]
    legacy = as_object(f.get("sourceProperties"))  # Container Threat Detection's older fields
    access = as_object(f.get("access"))
    mitre = as_object(f.get("mitreAttack"))
    user = access.get("principalEmail")
    category = f["category"]
    resource_name = f.get("resourceName")
    event_time = f.get("eventTime")
    time = vendor_time(event_time if event_time is not None else f.get("createTime"), "time")
    return {
        "time": time,
        "time_end": time,
        "vendor": "google",
        "product": "Security Command Center",
        "alert_id": f.get("canonicalName") or f.get("name"),
        "alert_type": category,
        "title": category,
        "description": f.get("description"),
        "severity": SEVERITIES.get(f.get("severity")) if isinstance(f.get("severity"), str) else None,
        "severity_raw": text(f.get("severity")),
        **technique_columns(
            TECHNIQUES.get(category),
            vendor_tactic=tactic(mitre.get("primaryTactic")) or tactic(category.split(":", 1)[0]),
            vendor_attack=_most_specific(mitre.get("primaryTechniques")),
        ),
        "cluster": _match(_CLUSTER, resource_name)
        or (resource.get("displayName") if resource.get("type") == "google.container.Cluster" else None),
        "namespace": pod.get("ns") or legacy.get("Pod_Namespace"),
        "pod": pod.get("name") or legacy.get("Pod_Name"),
        "container": _container(pod, f) or legacy.get("Container_Name"),
        "labels": _labels(pod.get("labels")),
        # a GKE node's Kubernetes name is its VM instance's name
        "node": nodes[0].get("name") if nodes else legacy.get("VM_Instance_Name"),
        "user": user,
        "service_account": service_account(user),
        "source_ip": access.get("callerIp"),
        "account": _match(_PROJECT, resource_name) or _match(_PROJECT, resource.get("project")),
        "resource": resource_name,
        "extra": json_text(
            {k: v for k, v in f.items() if k not in _MAPPED}
            | ({"resource": resource} if resource else {})
            | (
                {"notificationConfigName": record["notificationConfigName"]}
                if "notificationConfigName" in record
                else {}
            )
        ),
    }


def _most_specific(techniques: Any) -> str | None:
    """The ATT&CK id of the finding's primary technique: the enum lists a sub-technique with its
    parents, so the most specific id (the longest) is the one the finding means."""
    ids = [ATTACK_TECHNIQUES[t] for t in as_list(techniques) if isinstance(t, str) and t in ATTACK_TECHNIQUES]
    return max(ids, key=len) if ids else None


def _container(pod: dict[str, Any], finding: dict[str, Any]) -> str | None:
    # a name only when the finding names one container (which of several acted is not said)
    containers = [
        c for c in as_list(pod.get("containers")) or as_list(finding.get("containers")) if isinstance(c, dict)
    ]
    return containers[0].get("name") if len(containers) == 1 else None


def _labels(value: Any) -> dict[str, Any] | None:
    """A pod's ``[{"name", "value"}]`` labels as a map; anything else is bad input, never dropped."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise BadRecord(f"field labels: value {text(value)!s:.80} is not a list of name/value pairs")
    return {text(p.get("name")): p.get("value") for p in value} or None


def _match(pattern: re.Pattern[str], value: Any) -> str | None:
    m = pattern.search(value) if isinstance(value, str) else None
    return m.group(1) if m else None
