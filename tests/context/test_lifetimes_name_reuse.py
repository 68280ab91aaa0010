"""A pod name used twice: a StatefulSet's pod deleted and created again under the same name is
another pod (new uid, new IP) — each IP is attributed to the incarnation that held it."""

from __future__ import annotations

import pandas as pd

from k8sforensics.context import attribute_frame, fold_pods

from .test_lifetimes import audit_rows, lifecycle, ts


def _inventory(name: str, uid: str, ip: str, created: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "namespace": "data",
                "name": name,
                "uid": uid,
                "node": "node-2",
                "created": ts(created),
                "started": ts(created),
                "host_network": False,
                "workload_kind": "StatefulSet",
                "workload": "postgres",
                "ips": [ip],
                "container_ids": None,
                "deleted": None,
            }
        ]
    )


def test_a_recreated_statefulset_pod_is_a_second_incarnation() -> None:
    first = [
        (
            e[0],
            e[1],
            e[2],
            e[3],
            e[4],
            {**e[5], "metadata": {**e[5]["metadata"], "uid": "uid-a"}} if e[1] == "create" else e[5],
        )
        for e in lifecycle("data", "postgres-0", "10.244.1.14", 0, 60)
    ]
    second = [
        (
            e[0],
            e[1],
            e[2],
            e[3],
            e[4],
            {**e[5], "metadata": {**e[5]["metadata"], "uid": "uid-b"}} if e[1] == "create" else e[5],
        )
        for e in lifecycle("data", "postgres-0", "10.244.2.20", 60.7, None)
    ]
    # the dump (after both) shows only the second; the audit log has both
    pod_ips, _, conflicts = fold_pods(
        _inventory("postgres-0", "uid-b", "10.244.2.20", 60.7), audit=audit_rows(first + second)
    )
    rows = pod_ips.sort_values("start").to_dict("records")
    assert [(r["ip"], r["pod_uid"]) for r in rows] == [("10.244.1.14", "uid-a"), ("10.244.2.20", "uid-b")]
    assert rows[0]["end"] == ts(60) and pd.isna(rows[1]["end"])
    assert conflicts.empty
    flows = pd.DataFrame({"ip": ["10.244.1.14", "10.244.2.20", "10.244.1.14"], "time": [ts(30), ts(90), ts(90)]})
    got = attribute_frame(flows, pod_ips, None, ip="ip")
    assert list(got.pod_uid.fillna("-")) == ["uid-a", "uid-b", "-"]


def test_a_delete_before_the_dumped_pod_was_created_ends_an_earlier_unknown_incarnation() -> None:
    # created before the evidence began (no create in the audit log), deleted, then created again
    audit = audit_rows(
        [
            (10, "patch", "data", "postgres-0", "status", {"status": {"podIP": "10.244.1.14"}}),
            (20, "delete", "data", "postgres-0", None, None),
        ]
        + lifecycle("data", "postgres-0", "10.244.2.20", 20.7, None)
    )
    pod_ips, _, _ = fold_pods(_inventory("postgres-0", "uid-postgres-0", "10.244.2.20", 20.7), audit=audit)
    held = {r["ip"]: (r["start"], r["end"]) for r in pod_ips.to_dict("records")}
    assert held["10.244.1.14"][1] == ts(20)  # the earlier incarnation ends at the delete
    assert pd.isna(held["10.244.2.20"][1])  # the dumped one is alive: the delete was not its


def test_a_pod_seen_only_being_deleted_is_still_a_pod_of_the_case() -> None:
    from k8sforensics.context.lifetimes import POD_IPS_COLUMNS, pods_from_all_sources

    audit = audit_rows([(20, "delete", "logging", "fluent-bit-x7k2p", None, None)])
    rows = pods_from_all_sources(
        pd.DataFrame(columns=["namespace", "name"]), iter([audit]), pd.DataFrame(columns=POD_IPS_COLUMNS), "c"
    )
    assert [(r["namespace"], r["name"], r["deleted"]) for r in rows] == [("logging", "fluent-bit-x7k2p", ts(20))]
