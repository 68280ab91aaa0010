"""The context tables of a case, derived from everything it holds: the object tables
(pods, rbac, …) from the inventory dumps, and the pod lifetimes (``pods``, ``pod_ips``,
``containers``) folded from the dumps, the audit log, the flows and the runtime events.

Both read a case through the store's public reads only, so an ingest can derive them from
the case as its transaction would leave it, before anything is committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..bodies import UnreadableBodies
from ..frames import to_frame
from ..schema import CONTEXT_TABLES, OBJECTS, PODS
from ..sources._arrow import rows_to_batch
from .inventory import build_context
from .lifetimes import AuditPods, fold_pods

if TYPE_CHECKING:
    from ..case import Case

#: the context tables the pod-lifetime fold writes (the others come from the objects alone)
LIFETIME_TABLES = ("pods", "pod_ips", "containers")


def rebuild_context(case: Case) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """Every context table of ``case``, and what the manifest should record of how they
    were built: the bodies left unread (too large, too deep, not JSON) and the IP conflicts
    the lifetime fold settled."""
    unreadable = UnreadableBodies()
    objects = object_context(case, unreadable=unreadable)
    lifetimes, conflicts = lifetime_context(case, objects=objects, unreadable=unreadable)
    record = {"unreadable_bodies": unreadable.summary(), "ip_conflicts": int(len(conflicts))}
    return {**objects, **lifetimes}, record


def object_context(case: Case, *, unreadable: UnreadableBodies | None = None) -> dict[str, pa.Table]:
    """The context tables built from every Kubernetes object the case holds."""
    parts = case._parts("objects")
    if not parts:
        return {}
    return build_context(
        pq.read_table([str(case.path / p) for p in parts], schema=OBJECTS.arrow_schema), unreadable=unreadable
    )


def lifetime_context(
    case: Case, *, objects: dict[str, pa.Table] | None = None, unreadable: UnreadableBodies | None = None
) -> tuple[dict[str, pa.Table], pd.DataFrame]:
    """``pods``, ``pod_ips`` and ``containers`` folded from every table the case holds
    (``objects``: ``object_context(case)`` when the caller has it already), and the IP
    conflicts the fold settled."""
    # Only what the folding uses, filtered and aggregated in DuckDB: the pod and namespace
    # requests, each bound token's pod once, each (pod, IP) of the flows once with its first
    # time — so the ingest's memory does not grow with the size of the tables.
    pod_requests = (
        # the request body only where the folding reads it: creates, status and binding writes
        "SELECT time, event_id, verb, resource, subresource, object_namespace, object_name, response_code, "
        "CASE WHEN (verb = 'create' AND (subresource IS NULL OR subresource = 'binding')) "
        "OR (subresource = 'status' AND verb IN ('patch', 'update')) THEN request_object END AS request_object, "
        "sa_namespace, token_pod, token_pod_uid, token_node FROM audit "
        "WHERE resource IN ('pods', 'namespaces') AND (response_code IS NULL OR response_code < 400)"
    )
    tokens = case.sql(
        "SELECT min(time) AS time, sa_namespace, token_pod, token_pod_uid, token_node FROM audit "
        "WHERE token_pod IS NOT NULL GROUP BY sa_namespace, token_pod, token_pod_uid, token_node"
    )
    tokens["time"] = pd.to_datetime(tokens["time"], utc=True)
    columns = [
        "time",
        "event_id",
        "verb",
        "resource",
        "subresource",
        "object_namespace",
        "object_name",
        "response_code",
        "request_object",
        "sa_namespace",
        "token_pod",
        "token_pod_uid",
        "token_node",
    ]

    def audit(query: str, *, tokens: pd.DataFrame | None = None) -> Iterator[pd.DataFrame]:
        """The query's rows in time order, 10,000 at a time. Sorting them all at once would
        hold every pod request and its body (1.1 GB at 4M events): they are sorted a time
        range of at most 50,000 rows at a time instead."""
        con = case.connect()
        try:
            for lo, hi in case.time_ranges(f"({query})", every=pd.Timedelta(minutes=1), rows=50_000, con=con):
                reader = con.sql(
                    f"SELECT * FROM ({query}) WHERE time >= $lo AND time < $hi ORDER BY time",
                    params={"lo": lo.to_pydatetime(), "hi": hi.to_pydatetime()},
                ).to_arrow_reader(10_000)
                for batch in reader:
                    yield to_frame(pa.Table.from_batches([batch]))
        finally:
            con.close()
        if tokens is not None:
            yield tokens.reindex(columns=columns)

    flows = case.sql(
        "SELECT min(time) AS time, src_namespace, src_pod, src_ip, NULL AS dst_namespace, NULL AS dst_pod, NULL AS dst_ip FROM flows "
        "WHERE src_pod IS NOT NULL AND src_ip IS NOT NULL GROUP BY src_namespace, src_pod, src_ip UNION ALL "
        "SELECT min(time), NULL, NULL, NULL, dst_namespace, dst_pod, dst_ip FROM flows "
        "WHERE dst_pod IS NOT NULL AND dst_ip IS NOT NULL GROUP BY dst_namespace, dst_pod, dst_ip"
    )
    flows["time"] = pd.to_datetime(flows["time"], utc=True)
    runtime = case.sql(
        "SELECT min(time) AS time, namespace, pod, container_id, any_value(workload) AS workload, "
        "any_value(workload_kind) AS workload_kind, any_value(node) AS node FROM runtime "
        "WHERE pod IS NOT NULL AND container_id IS NOT NULL GROUP BY namespace, pod, container_id"
    )
    runtime["time"] = pd.to_datetime(runtime["time"], utc=True)
    unreadable = UnreadableBodies() if unreadable is None else unreadable  # one for both: one parse
    objects = object_context(case, unreadable=unreadable) if objects is None else objects
    inventory_pods = to_frame(objects["pods"]) if "pods" in objects else to_frame(PODS.arrow_schema.empty_table())
    # the pods the dumps lack are collected in the same pass over the pod requests, each create's
    # body parsed once: a second pass read every pod create's body again (a sixth of the rebuild)
    audit_pods = AuditPods(inventory_pods, case.cluster, unreadable=unreadable)
    pod_ips, containers, conflicts = fold_pods(
        inventory_pods, audit(pod_requests, tokens=tokens), flows, runtime, unreadable=unreadable, audit_pods=audit_pods
    )
    # a bound token names its pod: which account a pod ran as, for pods no dump or create shows
    accounts = case.sql(
        "SELECT DISTINCT sa_namespace, token_pod, sa_name FROM audit WHERE token_pod IS NOT NULL AND sa_name IS NOT NULL"
    )
    token_accounts = {
        (ns, pod): sa for ns, pod, sa in zip(accounts["sa_namespace"], accounts["token_pod"], accounts["sa_name"])
    }
    extra = audit_pods.rows(pod_ips, token_accounts=token_accounts)
    out = {
        "pods": pa.concat_tables(
            [
                pa.Table.from_pandas(inventory_pods, schema=PODS.arrow_schema, preserve_index=False),
                pa.Table.from_batches([rows_to_batch(extra, PODS)]) if extra else PODS.arrow_schema.empty_table(),
            ]
        )
    }
    for name, frame in (("pod_ips", pod_ips), ("containers", containers)):
        table = CONTEXT_TABLES[name]
        frame = frame.assign(cluster=case.cluster)
        out[name] = pa.Table.from_pandas(frame[table.names], schema=table.arrow_schema, preserve_index=False)
    return out, conflicts
