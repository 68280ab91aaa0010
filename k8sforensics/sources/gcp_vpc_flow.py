"""GCP VPC Flow Logs with GKE details.

GCP VPC Flow Logs: Cloud Logging ``LogEntry`` with ``jsonPayload.connection`` (sink JSON
lines or ``gcloud logging read`` arrays), and for GKE the ``src_gke_details`` /
``dest_gke_details`` (cluster, pod, workload, service). int64 counters arrive as strings;
every flow can be reported by both ends (``reporter``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._values import as_list, as_object, json_text, text
from .aws_vpc_flow import PROTOCOLS

NAME = "gcp-vpc-flow"
FAMILY = "flows"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    payload = as_object(record.get("jsonPayload"))
    return isinstance(payload.get("connection"), dict) or "compute.googleapis.com%2Fvpc_flows" in str(
        record.get("logName", "")
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    p = as_object(record.get("jsonPayload"))
    c = as_object(p.get("connection"))
    proto = c.get("protocol")
    row: dict[str, Any] = {
        "time": p.get("start_time") or record.get("timestamp"),
        "time_end": p.get("end_time") or p.get("start_time") or record.get("timestamp"),
        "src_ip": c.get("src_ip"),
        "dst_ip": c.get("dest_ip"),
        "src_port": c.get("src_port"),
        "dst_port": c.get("dest_port"),
        "protocol": PROTOCOLS.get(str(proto), str(proto))
        if isinstance(proto, (str, int)) and not isinstance(proto, bool)
        else proto,
        "verdict": "allowed",  # VPC flow logs record delivered traffic; denials are in firewall logs
        "verdict_raw": None,
        "direction": {"SRC": "egress", "DEST": "ingress"}.get(str(p.get("reporter"))),
        # is_reply stays unknown: a record is the packets of one direction of a 5-tuple
        # ("bytes_sent: from the source to the destination"), a server's answers get their
        # own record with the server as source, and reporter names the VM that logged it,
        # not the one that opened the connection (GCP docs, "About VPC Flow Logs records").
        # The rules judge such flows by their ports (analysis.network.reply_mask).
        "bytes": p.get("bytes_sent"),
        "packets": p.get("packets_sent"),
    }
    for side, key in (("src", "src_gke_details"), ("dst", "dest_gke_details")):
        g = as_object(p.get(key))
        pod = as_object(g.get("pod"))
        work = as_object(pod.get("pod_workload"))
        services = as_list(g.get("service"))
        svc = as_object(services[0]) if services else {}
        row[f"{side}_namespace"] = pod.get("pod_namespace")
        row[f"{side}_pod"] = pod.get("pod_name")
        row[f"{side}_workload"] = work.get("workload_name")
        row[f"{side}_workload_kind"] = work.get("workload_type")
        row[f"{side}_service"] = (
            f"{text(svc.get('service_namespace'))}/{text(svc['service_name'])}" if svc.get("service_name") else None
        )
        cluster = as_object(g.get("cluster")).get("cluster_name")
        if cluster and not row.get("cluster"):
            row["cluster"] = cluster
    row["namespace"], row["pod"], row["workload"], row["workload_kind"] = (
        row["src_namespace"],
        row["src_pod"],
        row["src_workload"],
        row["src_workload_kind"],
    )
    rest = {
        k: v
        for k, v in p.items()
        if k not in ("connection", "start_time", "end_time", "bytes_sent", "packets_sent", "reporter")
    }
    row["extra"] = json_text(rest) if rest else None
    yield row
