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

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.type) for c in self.columns],
            metadata={b"k8sforensics.table": self.name.encode(), b"k8sforensics.schema_version": SCHEMA_VERSION.encode()},
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
    ("evidence_line", pa.int64(), "1-based record number in the evidence file (for JSON lines: the line, blank lines not counted)"),
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
        ("token_pod", STR, "pod the service-account token was bound to (user.extra authentication.kubernetes.io/pod-name)"),
        ("token_pod_uid", STR, "uid of that pod (user.extra .../pod-uid)"),
        ("token_node", STR, "node of the credential (user.extra .../node-name)"),
        ("credential_id", STR, "credential id (user.extra .../credential-id: JTI=... for SA tokens, X509SHA256=... for certs)"),
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

TABLES: dict[str, Table] = {t.name: t for t in (AUDIT, RUNTIME, FLOWS, QUARANTINE)}
EVENT_TABLES = ("audit", "runtime", "flows")
