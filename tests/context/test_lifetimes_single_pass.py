"""The rebuild's single pass over the pod requests (``fold_pods(..., audit_pods=AuditPods)``,
each create's body parsed once) against the two passes it replaced (``fold_pods`` then
``pods_from_all_sources``), and the IP-conflict step against the row-by-row reference it
replaced, over generated pod create / delete / IP events."""

from __future__ import annotations

import json

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sforensics.bodies import UnreadableBodies
from k8sforensics.context.lifetimes import AuditPods, _intervals, _Pod, fold_pods, pods_from_all_sources

T = pd.Timestamp("2026-03-10T08:00:00Z")
NAMES = ["web-0", "web-1", "db-0"]
IPS = ["10.244.1.5", "10.244.1.6", "10.244.2.7"]


def _body(kind: str, draw: st.DrawFn, name: str, ip: str) -> str | None:
    if kind == "create":
        md: dict = {"name": name}
        if draw(st.booleans()):
            md["uid"] = f"uid-{name}-{draw(st.integers(0, 2))}"
        if draw(st.booleans()):
            md["ownerReferences"] = [{"kind": "StatefulSet", "name": "web", "controller": True}]
        spec = {"nodeName": draw(st.sampled_from(["node-1", "node-2"])), "hostNetwork": draw(st.booleans())}
        return json.dumps({"metadata": md, "spec": spec})
    if kind == "status":
        return json.dumps({"status": {"podIP": ip, "containerStatuses": [{"containerID": f"containerd://{ip}"}]}})
    if kind == "binding":
        return json.dumps({"target": {"name": "node-3"}})
    return None


@st.composite
def audits(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for i in range(draw(st.integers(0, 40))):
        kind = draw(
            st.sampled_from(["create", "create", "status", "status", "delete", "evict", "binding", "get", "ns"])
        )
        ns = draw(st.sampled_from(["shop", "ops", ""]))
        name = draw(st.sampled_from(NAMES))
        body = _body(kind, draw, name, draw(st.sampled_from(IPS)))
        if body is not None and draw(st.integers(0, 9)) == 0:
            body = draw(st.sampled_from(["{not json", "[1, 2]", "[" * 150 + "]" * 150]))  # left unread
        verb, sub, resource = {
            "create": ("create", None, "pods"),
            "status": ("patch", "status", "pods"),
            "delete": ("delete", None, "pods"),
            "evict": ("create", "eviction", "pods"),
            "binding": ("create", "binding", "pods"),
            "get": ("get", None, "pods"),
            "ns": ("delete", None, "namespaces"),
        }[kind]
        rows.append(
            {
                "time": T + pd.Timedelta(seconds=draw(st.integers(0, 600))),
                "event_id": f"e{i}",
                "verb": verb,
                "resource": resource,
                "subresource": sub,
                "object_namespace": None if resource == "namespaces" else ns,
                "object_name": "shop" if resource == "namespaces" else name,
                "response_code": draw(st.sampled_from([200, 201, 403])),
                "request_object": body,
                "sa_namespace": None,
                "token_pod": None,
                "token_pod_uid": None,
                "token_node": None,
            }
        )
    return pd.DataFrame(rows).sort_values("time", kind="stable").reset_index(drop=True) if rows else pd.DataFrame()


def _inventory(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "namespace": "shop",
                "name": n,
                "uid": f"uid-{n}-0",
                "node": "node-1",
                "created": T,
                "started": T,
                "host_network": False,
                "workload_kind": None,
                "workload": None,
                "ips": [IPS[0]],
                "container_ids": None,
                "deleted": None,
            }
            for n in names
        ],
        columns=[
            "namespace",
            "name",
            "uid",
            "node",
            "created",
            "started",
            "host_network",
            "workload_kind",
            "workload",
            "ips",
            "container_ids",
            "deleted",
        ],
    )


@settings(max_examples=300, deadline=None)
@given(audits(), st.lists(st.sampled_from(NAMES), unique=True, max_size=2), st.integers(1, 3))
def test_one_pass_gives_what_two_passes_gave(audit: pd.DataFrame, dumped: list[str], chunks: int) -> None:
    pods = _inventory(dumped)
    parts = [audit.iloc[len(audit) * k // chunks : len(audit) * (k + 1) // chunks] for k in range(chunks)]

    two = UnreadableBodies()
    pod_ips, containers, conflicts = fold_pods(pods, iter(parts), unreadable=two)
    rows = pods_from_all_sources(
        pods, iter(parts), pod_ips, "c", unreadable=two, token_accounts={("ops", "db-0"): "sa"}
    )

    one = UnreadableBodies()
    collect = AuditPods(pods, "c", unreadable=one)
    pod_ips1, containers1, conflicts1 = fold_pods(pods, iter(parts), unreadable=one, audit_pods=collect)
    rows1 = collect.rows(pod_ips1, token_accounts={("ops", "db-0"): "sa"})

    pd.testing.assert_frame_equal(pod_ips1, pod_ips)
    pd.testing.assert_frame_equal(containers1, containers)
    pd.testing.assert_frame_equal(conflicts1, conflicts)
    assert rows1 == rows
    assert one.summary() == two.summary()  # the same bodies left unread, in the same order


def _reference_conflicts(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The conflict step as it was written first: row by row with .iloc."""
    df = df.copy()
    conflicts = []
    for i in range(len(df) - 1):
        a, b = df.iloc[i], df.iloc[i + 1]
        if a.ip != b.ip:
            continue
        if pd.isna(a.end) or a.end > b.start:
            conflicts.append(
                {
                    "ip": a.ip,
                    "pod": f"{a.namespace}/{a.pod}",
                    "next_pod": f"{b.namespace}/{b.pod}",
                    "end_was": a.end,
                    "end_set": b.start,
                }
            )
            df.at[i, "end"] = b.start
    return df, pd.DataFrame(conflicts, columns=["ip", "pod", "next_pod", "end_was", "end_set"])


@st.composite
def pod_sets(draw: st.DrawFn) -> list[_Pod]:
    pods = []
    for i in range(draw(st.integers(0, 12))):
        created = T + pd.Timedelta(minutes=5 * draw(st.integers(0, 6)))  # coarse: ends meet starts
        p = _Pod(draw(st.sampled_from(["shop", "ops"])), f"p{i}", uid=f"u{i}", created=created)
        if draw(st.booleans()):
            p.deleted = created + pd.Timedelta(minutes=draw(st.sampled_from([0, 5, 10, 30])))
        p.host_network = draw(st.integers(0, 5)) == 0
        for ip in draw(st.lists(st.sampled_from(IPS), unique=True, max_size=2)):
            p.see_ip(ip, created + pd.Timedelta(seconds=draw(st.sampled_from([-5, 0, 0, 30]))), "audit")
        pods.append(p)
    return pods


@settings(max_examples=300, deadline=None)
@given(pod_sets())
def test_conflicts_as_the_row_by_row_reference(pods: list[_Pod]) -> None:
    got, conflicts = _intervals(pods)
    if got.empty:
        assert conflicts.empty
        return
    # the frame before the conflict step: the same rows, ends as each pod's deletion
    before = got.copy()
    by_pod = {(p.namespace, p.name): p.deleted for p in pods}
    before["end"] = [by_pod[(ns, name)] for ns, name in zip(before.namespace, before.pod)]
    want, want_conflicts = _reference_conflicts(before)
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(conflicts, want_conflicts)
