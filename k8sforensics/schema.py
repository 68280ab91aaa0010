"""Every canonical table, declared once: column name, Arrow type, meaning.

Loaders, the case store, enrichment and analyses all take their columns from here, so a
table's shape is defined in exactly one place. ``SCHEMA_VERSION`` is written into every
Parquet file's metadata and into the case manifest; bump it when a column changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1"

TIME = pa.timestamp("ns", tz="UTC")
STR = pa.string()
STR_LIST = pa.list_(pa.string())
LABELS = pa.map_(pa.string(), pa.string())
BOOL = pa.bool_()


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    meaning: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    meaning: str
    time_required: bool = True  # event tables: a row without a time is bad input

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.type) for c in self.columns],
            metadata={
                b"k8sforensics.table": self.name.encode(),
                b"k8sforensics.schema_version": SCHEMA_VERSION.encode(),
            },
        )

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


def _cols(*specs: tuple[str, pa.DataType, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


# Shared by the three event tables (audit, runtime, flows). Context columns that the source
# does not carry stay null here and are filled by enrichment.
CORE = _cols(
    ("time", TIME, "when the event happened (UTC); for audit, when the API server received the request"),
    ("event_id", STR, "stable id '<evidence_id[:16]>:<evidence_line>[.<k>]' that findings point at"),
    ("source", STR, "format name of the input (k8s-audit, gke-audit, aks-audit, ...)"),
    ("cluster", STR, "cluster name from the wrapper, the --cluster flag, or the case default"),
    ("namespace", STR, "namespace of the object or workload the event is about"),
    ("pod", STR, "pod the event is about"),
    ("container", STR, "container name"),
    ("node", STR, "node name"),
    ("workload_kind", STR, "kind of the owning workload (Deployment, DaemonSet, CronJob, ...)"),
    ("workload", STR, "name of the owning workload"),
    ("labels", LABELS, "labels of the pod the event is about (from the source, else filled by enrichment)"),
    ("service_account", STR, "service account (namespace/name) of the pod or actor"),
    ("evidence_id", STR, "sha256 of the evidence file (hex)"),
    (
        "evidence_line",
        pa.int64(),
        "1-based record number in the evidence file (for JSON lines: the line, blank lines not counted)",
    ),
)

AUDIT = Table(
    "audit",
    CORE
    + _cols(
        ("audit_id", STR, "auditID; one row per request, stages merged"),
        ("stage", STR, "stage of the kept event: ResponseComplete/Panic > ResponseStarted > RequestReceived"),
        ("stages", STR_LIST, "every stage seen for this auditID, in stage order"),
        ("stage_time", TIME, "stageTimestamp of the kept stage (end of an exec session, for instance)"),
        ("level", STR, "audit level: Metadata, Request, RequestResponse"),
        ("verb", STR, "Kubernetes verb (get list watch create update patch delete deletecollection ...)"),
        ("request_uri", STR, "raw request path and query"),
        ("user", STR, "authenticated user name"),
        ("user_uid", STR, "authenticated user uid"),
        ("user_groups", STR_LIST, "authenticated user groups"),
        ("user_extra", pa.map_(pa.string(), STR_LIST), "user.extra (values are lists)"),
        ("sa_namespace", STR, "namespace parsed from system:serviceaccount:<ns>:<name>"),
        ("sa_name", STR, "service-account name parsed from system:serviceaccount:<ns>:<name>"),
        (
            "token_pod",
            STR,
            "pod the service-account token was bound to (user.extra authentication.kubernetes.io/pod-name)",
        ),
        ("token_pod_uid", STR, "uid of that pod (user.extra .../pod-uid)"),
        ("token_node", STR, "node of the credential (user.extra .../node-name)"),
        (
            "credential_id",
            STR,
            "credential id (user.extra .../credential-id: JTI=... for SA tokens, X509SHA256=... for certs)",
        ),
        ("impersonated_user", STR, "impersonatedUser.username (kubectl --as)"),
        ("impersonated_groups", STR_LIST, "impersonatedUser.groups"),
        ("source_ip", STR, "sourceIPs[0], the client"),
        ("source_ips", STR_LIST, "all sourceIPs (later ones are proxies)"),
        ("user_agent", STR, "userAgent"),
        ("resource", STR, "objectRef.resource"),
        ("subresource", STR, "objectRef.subresource (exec, attach, status, token, ...)"),
        ("object_namespace", STR, "objectRef.namespace"),
        ("object_name", STR, "objectRef.name"),
        ("api_group", STR, "objectRef.apiGroup ('' for core)"),
        ("api_version", STR, "objectRef.apiVersion"),
        ("response_code", pa.int32(), "responseStatus.code (HTTP)"),
        ("response_reason", STR, "responseStatus.reason"),
        ("decision", STR, "authorization.k8s.io/decision annotation (allow/forbid)"),
        ("authz_reason", STR, "authorization.k8s.io/reason annotation (names the granting binding)"),
        ("annotations", LABELS, "all audit annotations"),
        ("request_object", STR, "requestObject as JSON text, credentials redacted"),
        ("response_object", STR, "responseObject as JSON text, credentials redacted"),
        ("exec_command", STR, "command of an exec/attach request, decoded from request_uri and joined by spaces"),
    ),
    "Kubernetes API-server audit events, one row per request.",
)

RUNTIME = Table(
    "runtime",
    CORE
    + _cols(
        ("event_type", STR, "exec | exit | alert | file | network | syscall | lsm | ..."),
        ("rule", STR, "detection rule that fired (Falco rule, Tetragon policy, Tracee signature)"),
        ("priority", STR, "severity as the source gives it, capitalised (Emergency ... Debug)"),
        ("output", STR, "the source's human-readable message"),
        ("process", STR, "binary path of the process"),
        ("args", STR, "arguments (one string, as the source gives them)"),
        ("cmdline", STR, "command line"),
        ("pid", pa.int64(), "process id (host view where the source has both)"),
        ("ppid", pa.int64(), "parent process id"),
        ("parent_process", STR, "parent binary path or name"),
        ("parent_cmdline", STR, "parent command line"),
        ("exec_id", STR, "process-tree key (Tetragon exec_id)"),
        ("parent_exec_id", STR, "parent's exec_id"),
        ("uid", pa.int64(), "user id"),
        ("user_name", STR, "user name (for Falco k8s_audit alerts, the Kubernetes user)"),
        ("cwd", STR, "working directory"),
        ("tty", pa.int64(), "terminal (non-zero when interactive)"),
        ("container_id", STR, "64-hex lowercase when known, else the 12-hex short id"),
        ("container_image", STR, "image reference"),
        ("file_path", STR, "file the event touched"),
        ("src_ip", STR, "source address of a network event"),
        ("src_port", pa.int32(), "source port"),
        ("dst_ip", STR, "destination address"),
        ("dst_port", pa.int32(), "destination port"),
        ("protocol", STR, "tcp, udp, icmp, ..."),
        ("tags", STR_LIST, "rule tags (MITRE ids, categories)"),
        ("extra", STR, "JSON of every source field not mapped to a column"),
    ),
    "Process, file and network activity seen inside containers and on nodes.",
)


def _endpoint(side: str, who: str) -> tuple[Column, ...]:
    return _cols(
        (f"{side}_namespace", STR, f"namespace of the {who} pod"),
        (f"{side}_pod", STR, f"{who} pod"),
        (f"{side}_workload_kind", STR, f"kind of the {who} workload"),
        (f"{side}_workload", STR, f"{who} workload"),
        (f"{side}_labels", LABELS, f"labels of the {who} pod"),
        (f"{side}_service", STR, f"service (namespace/name) the {who} address belongs to"),
        (f"{side}_node", STR, f"node of the {who}"),
    )


FLOWS = Table(
    "flows",
    CORE
    + _cols(
        ("time_end", TIME, "end of the aggregation window (VPC/Calico/NSG); equals time for single packets"),
        ("src_ip", STR, "source address (the packet's original address where the log has both)"),
        ("src_port", pa.int32(), "source port"),
        ("dst_ip", STR, "destination address"),
        ("dst_port", pa.int32(), "destination port"),
        ("protocol", STR, "tcp, udp, icmp, icmpv6, sctp, or the IANA number as text"),
        ("verdict", STR, "allowed | denied | error | audit | unknown"),
        ("verdict_raw", STR, "the verdict as the source wrote it (FORWARDED, REJECT, D, deny, ...)"),
        ("drop_reason", STR, "why a flow was dropped (POLICY_DENIED, ...)"),
        ("direction", STR, "ingress | egress, as seen by the reporting endpoint"),
        ("is_reply", pa.bool_(), "true for the reply direction; null when the source does not say"),
        ("bytes", pa.int64(), "bytes in the window (both directions where the source counts both)"),
        ("packets", pa.int64(), "packets in the window"),
    )
    + _endpoint("src", "source")
    + _endpoint("dst", "destination")
    + _cols(
        ("dst_names", STR_LIST, "DNS names of the destination (Hubble destination_names, Calico dest_domains)"),
        ("l7_type", STR, "dns | http | kafka | ... for L7 records"),
        ("dns_query", STR, "DNS query name"),
        ("http_method", STR, "HTTP method"),
        ("http_url", STR, "HTTP URL"),
        ("http_status", pa.int32(), "HTTP status code"),
        ("extra", STR, "JSON of every source field not mapped to a column"),
    ),
    "Network flows between pods, nodes and the outside; the core namespace/pod columns are the source side's.",
)

CLOUD = Table(
    "cloud",
    CORE
    + _cols(
        ("provider", STR, "aws | gcp | azure"),
        ("account", STR, "AWS account id, GCP project id, Azure subscription id the call was made in"),
        ("region", STR, "AWS region, GCP location, Azure location"),
        ("service", STR, "the service called: eventSource (s3.amazonaws.com), serviceName (storage.googleapis.com)"),
        ("action", STR, "the API call: eventName (GetObject), methodName, operationName"),
        ("principal", STR, "who called: an ARN, a service-account or user email, a UPN or object id"),
        ("principal_type", STR, "IAMUser, AssumedRole, WebIdentityUser, AWSService, Root, serviceAccount, user, ..."),
        ("principal_id", STR, "the provider's stable id of the caller (principalId, uniqueId, oid)"),
        ("session_name", STR, "the session's name (AssumedRole session, i-... for an instance role)"),
        ("session_issuer", STR, "the role or identity the session was issued from (sessionIssuer.arn, first delegate)"),
        ("session_created", TIME, "when the session was issued (sessionContext.attributes.creationDate)"),
        ("access_key_id", STR, "the access key the call was signed with (an identifier, not the secret)"),
        (
            "issued_key_id",
            STR,
            "the access key id a credential-issuing call returned (AssumeRole*, GetSessionToken, CreateAccessKey)",
        ),
        ("delegation_chain", STR_LIST, "identities the call was delegated through (GCP delegation info, role chains)"),
        ("web_identity", STR, "the OIDC subject of a web-identity call (system:serviceaccount:<ns>:<sa> for IRSA)"),
        ("identity_provider", STR, "the OIDC provider or workload identity pool that vouched for the caller"),
        ("source_ip", STR, "address the call came from (an address, or the provider's name for its own network)"),
        ("user_agent", STR, "the caller's user agent"),
        ("resource", STR, "the main resource acted on (ARN, resourceName, resource id)"),
        ("resources", STR_LIST, "every resource the record names"),
        ("outcome", STR, "success | failure"),
        ("error_code", STR, "errorCode, status code name"),
        ("error_message", STR, "errorMessage, status message"),
        ("read_only", BOOL, "the call only reads (readOnly, a Get/List/Describe)"),
        ("request_id", STR, "the provider's request id"),
        ("cloud_event_id", STR, "the provider's event id (eventID, insertId)"),
        ("k8s_user", STR, "the Kubernetes identity the record carries (IRSA subject, Pod Identity tags, GKE KSA)"),
        ("request_parameters", STR, "request parameters as JSON text, credentials redacted"),
        ("response_elements", STR, "response elements as JSON text, credentials redacted (issued session secrets)"),
        ("extra", STR, "JSON of every source field not mapped to a column"),
    ),
    "Cloud control-plane calls (CloudTrail, GCP Cloud Audit Logs, Azure Activity), joined to the pod or node that "
    "made them where the session, address and time say so.",
)

ALERTS = Table(
    "alerts",
    CORE
    + _cols(
        ("time_end", TIME, "last time the vendor saw the activity (equals time for one event)"),
        ("vendor", STR, "aws | microsoft | google | ..."),
        ("product", STR, "GuardDuty, Defender for Containers, Security Command Center, ..."),
        ("alert_id", STR, "the vendor's id of the alert"),
        ("alert_type", STR, "the vendor's type (PrivilegeEscalation:Kubernetes/PrivilegedContainer, K8S_...)"),
        ("title", STR, "the vendor's title"),
        ("description", STR, "the vendor's description"),
        ("severity", STR, "low, medium, high or critical (the vendor's scale mapped)"),
        ("severity_raw", STR, "the vendor's severity as written"),
        ("technique_id", STR, "Microsoft Threat Matrix for Kubernetes technique, MS-TA90xx (null: none fits)"),
        ("attack_id", STR, "MITRE ATT&CK technique, Txxxx[.xxx]"),
        ("tactic", STR, "tactic (Threat Matrix / ATT&CK name)"),
        ("kill_chain_phase", STR, "Lockheed Martin kill-chain phase"),
        ("user", STR, "the Kubernetes or cloud identity the alert names"),
        ("source_ip", STR, "the remote address the alert names"),
        ("destination_ip", STR, "the address the activity went to"),
        ("account", STR, "cloud account, project or subscription"),
        ("resource", STR, "the cloud resource the alert is about (cluster ARN, instance, ...)"),
        ("count", pa.int64(), "how many times the vendor saw it"),
        ("extra", STR, "JSON of every source field not mapped to a column"),
    ),
    "Vendor findings (GuardDuty, Defender for Containers, Security Command Center) as alerts: anchors on the "
    "timeline beside the toolkit's own findings.",
)

OBJECTS = Table(
    "objects",
    _cols(
        ("time", TIME, "creationTimestamp of the object (null when the dump omits it)"),
        ("event_id", STR, "stable id '<evidence_id[:16]>:<evidence_line>[.<k>]'"),
        ("source", STR, "format name (kubectl, live-api)"),
        ("cluster", STR, "cluster name"),
        ("kind", STR, "object kind (given, or inferred from the list kind or the object's shape)"),
        ("api_version", STR, "apiVersion"),
        ("namespace", STR, "metadata.namespace"),
        ("name", STR, "metadata.name"),
        ("uid", STR, "metadata.uid"),
        ("labels", LABELS, "metadata.labels"),
        ("owner_kind", STR, "kind of the controlling owner reference"),
        ("owner_name", STR, "name of the controlling owner"),
        ("owner_uid", STR, "uid of the controlling owner"),
        ("deleted", TIME, "metadata.deletionTimestamp"),
        ("object", STR, "the object as JSON: managedFields dropped; Secrets keep metadata only"),
        ("evidence_id", STR, "sha256 of the evidence file"),
        ("evidence_line", pa.int64(), "1-based record number in the evidence file"),
    ),
    "Kubernetes objects from kubectl dumps or the live API: the raw material of the context tables.",
    time_required=False,
)

# --------------------------------------------------------------------------- context tables
# Built from the objects table (and, with enrichment, from what the events reveal).

JSON = STR  # a column holding JSON text


def _context(name: str, meaning: str, *specs: tuple[str, pa.DataType, str]) -> Table:
    return Table(name, _cols(("cluster", STR, "cluster name"), *specs), meaning, time_required=False)


PODS = _context(
    "pods",
    "One row per pod seen in an inventory.",
    ("namespace", STR, "namespace"),
    ("name", STR, "pod name"),
    ("uid", STR, "pod uid"),
    ("node", STR, "spec.nodeName"),
    ("ips", STR_LIST, "status.podIPs (or podIP)"),
    ("host_ip", STR, "status.hostIP"),
    ("phase", STR, "status.phase"),
    ("created", TIME, "metadata.creationTimestamp"),
    ("started", TIME, "status.startTime"),
    ("deleted", TIME, "metadata.deletionTimestamp (pods being deleted at dump time)"),
    ("labels", LABELS, "pod labels"),
    ("owner_kind", STR, "kind of the controlling owner"),
    ("owner_name", STR, "name of the controlling owner"),
    ("workload_kind", STR, "top of the owner chain: Deployment, StatefulSet, DaemonSet, CronJob, Job, ..."),
    ("workload", STR, "name of that workload"),
    ("service_account", STR, "spec.serviceAccountName"),
    ("automount_token", BOOL, "spec.automountServiceAccountToken (null: the default, mounted)"),
    ("containers", STR_LIST, "container names (init containers included)"),
    ("images", STR_LIST, "container images"),
    ("container_ids", STR_LIST, "status.containerStatuses[].containerID, 64-hex without the runtime prefix"),
    ("privileged", BOOL, "a container runs privileged"),
    ("host_network", BOOL, "spec.hostNetwork"),
    ("host_pid", BOOL, "spec.hostPID"),
    ("host_ipc", BOOL, "spec.hostIPC"),
    ("host_paths", STR_LIST, "hostPath volume paths"),
    ("capabilities_added", STR_LIST, "capabilities any container adds"),
    ("evidence_id", STR, "evidence the pod came from"),
)
NAMESPACES = _context(
    "namespaces",
    "One row per namespace.",
    ("name", STR, "namespace"),
    ("uid", STR, "uid"),
    ("created", TIME, "creationTimestamp"),
    ("phase", STR, "status.phase"),
    ("labels", LABELS, "labels (pod-security.kubernetes.io/* among them)"),
)
SERVICES = _context(
    "services",
    "One row per service.",
    ("namespace", STR, "namespace"),
    ("name", STR, "service"),
    ("uid", STR, "uid"),
    ("type", STR, "ClusterIP, NodePort, LoadBalancer, ..."),
    ("cluster_ips", STR_LIST, "spec.clusterIPs"),
    ("external_ips", STR_LIST, "spec.externalIPs and load-balancer ingress IPs"),
    ("ports", JSON, "spec.ports as JSON"),
    ("selector", LABELS, "spec.selector"),
    ("created", TIME, "creationTimestamp"),
)
ENDPOINTS = _context(
    "endpoints",
    "One row per endpoint address (EndpointSlices and legacy Endpoints).",
    ("namespace", STR, "namespace"),
    ("service", STR, "service name"),
    ("address", STR, "endpoint IP"),
    ("ready", BOOL, "conditions.ready"),
    ("node", STR, "nodeName"),
    ("target_kind", STR, "targetRef.kind"),
    ("target_name", STR, "targetRef.name"),
    ("target_uid", STR, "targetRef.uid"),
    ("ports", JSON, "ports as JSON"),
)
NODES = _context(
    "nodes",
    "One row per node.",
    ("name", STR, "node"),
    ("uid", STR, "uid"),
    ("internal_ips", STR_LIST, "InternalIP addresses"),
    ("external_ips", STR_LIST, "ExternalIP addresses"),
    ("pod_cidrs", STR_LIST, "spec.podCIDRs"),
    ("provider_id", STR, "spec.providerID"),
    ("kubelet_version", STR, "nodeInfo.kubeletVersion"),
    ("os_image", STR, "nodeInfo.osImage"),
    ("container_runtime", STR, "nodeInfo.containerRuntimeVersion"),
    ("labels", LABELS, "labels"),
    ("created", TIME, "creationTimestamp"),
)
SERVICE_ACCOUNTS = _context(
    "service_accounts",
    "One row per service account.",
    ("namespace", STR, "namespace"),
    ("name", STR, "service account"),
    ("uid", STR, "uid"),
    ("automount_token", BOOL, "automountServiceAccountToken"),
    ("secrets", STR_LIST, "referenced secrets"),
    ("created", TIME, "creationTimestamp"),
)
RBAC = _context(
    "rbac",
    "Bindings flattened: one row per binding × subject × rule of the bound role.",
    ("binding_kind", STR, "RoleBinding or ClusterRoleBinding"),
    ("binding_namespace", STR, "namespace of a RoleBinding"),
    ("binding", STR, "binding name"),
    ("subject_kind", STR, "User, Group or ServiceAccount"),
    ("subject_namespace", STR, "namespace of a ServiceAccount subject"),
    ("subject", STR, "subject name"),
    ("role_kind", STR, "Role or ClusterRole"),
    ("role", STR, "role name"),
    ("role_found", BOOL, "the role is in the inventory (else its rules are unknown)"),
    ("api_groups", STR_LIST, "rule apiGroups"),
    ("resources", STR_LIST, "rule resources"),
    ("verbs", STR_LIST, "rule verbs"),
    ("resource_names", STR_LIST, "rule resourceNames"),
    ("non_resource_urls", STR_LIST, "rule nonResourceURLs"),
)
NETWORK_POLICIES = _context(
    "network_policies",
    "One row per NetworkPolicy.",
    ("namespace", STR, "namespace"),
    ("name", STR, "policy"),
    ("pod_selector", JSON, "spec.podSelector as JSON"),
    ("policy_types", STR_LIST, "Ingress/Egress"),
    ("ingress", JSON, "spec.ingress as JSON"),
    ("egress", JSON, "spec.egress as JSON"),
)
WORKLOADS = _context(
    "workloads",
    "Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs and CronJobs.",
    ("kind", STR, "kind"),
    ("namespace", STR, "namespace"),
    ("name", STR, "name"),
    ("uid", STR, "uid"),
    ("owner_kind", STR, "controlling owner kind"),
    ("owner_name", STR, "controlling owner name"),
    ("replicas", pa.int64(), "spec.replicas"),
    ("service_account", STR, "pod template service account"),
    ("images", STR_LIST, "pod template images"),
    ("privileged", BOOL, "the pod template runs a privileged container"),
    ("labels", LABELS, "labels"),
    ("created", TIME, "creationTimestamp"),
)
POD_IPS = _context(
    "pod_ips",
    "Which pod held which IP, when: [start, end), open end while alive; intervals of one IP never overlap.",
    ("ip", STR, "pod IP"),
    ("start", TIME, "first moment the pod is known to hold the IP"),
    ("end", TIME, "deletion, or when the next pod took the IP (null: still alive)"),
    ("namespace", STR, "namespace"),
    ("pod", STR, "pod"),
    ("pod_uid", STR, "pod uid"),
    ("workload_kind", STR, "workload kind"),
    ("workload", STR, "workload"),
    ("node", STR, "node"),
    ("evidence", STR, "sources that showed it: audit, inventory, hubble"),
    ("confidence", STR, "high (audit or inventory) or medium (flows only)"),
)
CONTAINERS = _context(
    "containers",
    "Which pod ran which container (64-hex ids; a 12-hex short id matches by prefix).",
    ("container_id", STR, "container id"),
    ("namespace", STR, "namespace"),
    ("pod", STR, "pod"),
    ("pod_uid", STR, "pod uid"),
    ("workload_kind", STR, "workload kind"),
    ("workload", STR, "workload"),
    ("node", STR, "node"),
    ("first_seen", TIME, "first seen"),
)
CLOUD_BINDINGS = _context(
    "cloud_bindings",
    "Which cloud identity a Kubernetes identity or node can act as: one row per binding.",
    ("kind", STR, "irsa | pod-identity | gke-workload-identity | azure-workload-identity | node-instance"),
    ("provider", STR, "aws | gcp | azure"),
    ("namespace", STR, "namespace of the service account (null for a node)"),
    ("service_account", STR, "service account name (null for a node)"),
    ("node", STR, "node name, for a node's instance identity"),
    ("cloud_identity", STR, "role ARN, Google service-account email, Azure client id, or instance id"),
    ("audience", STR, "token audience the binding expects, when known"),
    ("declared_by", STR, "where the binding comes from: annotation, association, providerID, ..."),
    ("evidence_id", STR, "evidence the binding came from"),
)
CONTEXT_TABLES = {
    t.name: t
    for t in (
        PODS,
        NAMESPACES,
        SERVICES,
        ENDPOINTS,
        NODES,
        SERVICE_ACCOUNTS,
        RBAC,
        NETWORK_POLICIES,
        WORKLOADS,
        POD_IPS,
        CONTAINERS,
        CLOUD_BINDINGS,
    )
}

QUARANTINE = Table(
    "quarantine",
    _cols(
        ("evidence_id", STR, "sha256 of the evidence file"),
        ("evidence_line", pa.int64(), "1-based record number of the bad record (0 when the file as a whole failed)"),
        ("path", STR, "path of the evidence file as given"),
        ("source", STR, "format or family the record was read as"),
        ("reason", STR, "why the record could not become a row"),
        ("excerpt", STR, "the first bytes of the record, for a human to look at"),
    ),
    "Input records that did not become rows, and why.",
)

FINDINGS = Table(
    "findings",
    _cols(
        ("time", TIME, "first evidence event of the finding"),
        ("time_end", TIME, "last evidence event of the finding (same as time for one event)"),
        ("finding_id", STR, "stable id: hash of the rule and its evidence event ids"),
        ("rule_id", STR, "rule that fired"),
        ("title", STR, "rule title"),
        ("severity", STR, "low, medium, high or critical"),
        ("technique_id", STR, "Microsoft Threat Matrix for Kubernetes technique, MS-TA90xx (null: none fits)"),
        ("attack_id", STR, "MITRE ATT&CK technique, Txxxx[.xxx]"),
        ("tactic", STR, "tactic (Threat Matrix / ATT&CK name)"),
        ("kill_chain_phase", STR, "Lockheed Martin kill-chain phase, Reconnaissance ... Actions on Objectives"),
        ("entity_type", STR, "what the finding is about: pod, workload, user, service_account, ip, node"),
        ("entity", STR, "that entity: namespace/pod, an identity, an IP, a node"),
        ("namespace", STR, "namespace of the entity or of the object acted on"),
        ("pod", STR, "pod of the entity or of the object acted on"),
        ("user", STR, "identity that acted (Kubernetes user or service account), when known"),
        ("source_ip", STR, "address the action came from, when known"),
        ("destination_ip", STR, "address the action went to, when known"),
        ("source_table", STR, "table the evidence is in: audit, runtime, flows (comma-separated when several)"),
        ("event_ids", STR_LIST, "event_id of every evidence row (capped at 1000; event_count has the total)"),
        ("event_count", pa.int64(), "number of evidence rows"),
        ("summary", STR, "one sentence for a report; contains evidence strings, escape before rendering as HTML"),
        ("rule_source", STR, "builtin, sigma:<rule id>, or falco:<rule name>"),
    ),
    "One row per detection: a rule that fired, what it is about, and the events that show it.",
    time_required=False,
)

TABLES: dict[str, Table] = {t.name: t for t in (AUDIT, RUNTIME, FLOWS, CLOUD, ALERTS, OBJECTS, QUARANTINE)}
EVENT_TABLES = ("audit", "runtime", "flows")
