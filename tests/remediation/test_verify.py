"""`remediate --verify`: each check of the DSL against tiny hand-made snapshots (folders of
List JSON as `k8sforensics collect` writes them), then the sample case half carried out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from k8sforensics.cli import main
from k8sforensics.remediation.verify import (
    NO_CHECK,
    Snapshot,
    SnapshotError,
    evaluate_check,
    read_snapshot,
    verify_actions,
)

AT = "2026-03-11T09:00:00+00:00"


def obj(
    name: str,
    *,
    ns: str | None = None,
    uid: str | None = None,
    created: str = "2026-03-10T10:00:00Z",
    labels: dict | None = None,
    **body: Any,
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "uid": uid or f"uid-{name}", "creationTimestamp": created}
    if ns:
        md["namespace"] = ns
    if labels:
        md["labels"] = labels
    return {"metadata": md, **body}


def collected(folder: Path, **lists: list[dict[str, Any]]) -> Path:
    """A snapshot as the collector writes it: a typed List per kind (items without a kind, as
    the API returns them) and collection.json with the counts."""
    folder.mkdir(parents=True, exist_ok=True)
    for resource, items in lists.items():
        kind = {
            "pods": "Pod",
            "nodes": "Node",
            "serviceaccounts": "ServiceAccount",
            "namespaces": "Namespace",
            "deployments": "Deployment",
            "cronjobs": "CronJob",
            "statefulsets": "StatefulSet",
            "networkpolicies": "NetworkPolicy",
            "clusterrolebindings": "ClusterRoleBinding",
            "secrets": "Secret",
        }[resource]
        (folder / f"{resource}.json").write_text(
            json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "metadata": {}, "items": items})
        )
    (folder / "collection.json").write_text(
        json.dumps({"collected_at": AT, "counts": {k: len(v) for k, v in lists.items()}})
    )
    return folder


def check(
    snapshot: Path | Snapshot, c: dict[str, Any], *, case_dir: Path | None = None, preserved: Path | None = None
) -> tuple[str, str]:
    snap = snapshot if isinstance(snapshot, Snapshot) else read_snapshot(snapshot)
    return evaluate_check(c, snap, case_dir=case_dir or Path("."), preserved_root=preserved)


def ref(resource: str, name: str, ns: str | None = None, **more: Any) -> dict[str, Any]:
    return {"resource": resource, "namespace": ns, "name": name, **more}


# --------------------------------------------------------------------------- absent


def test_absent_is_done_only_when_the_object_is_gone(tmp_path: Path) -> None:
    snap = collected(
        tmp_path, clusterrolebindings=[obj("keep"), obj("backdoor", uid="u2", created="2026-03-11T08:00:00Z")], pods=[]
    )
    assert check(snap, {"expect": "absent", **ref("clusterrolebindings", "attacker-admin", uid="u1")}) == (
        "done",
        "clusterrolebinding attacker-admin is gone",
    )
    verdict, evidence = check(snap, {"expect": "absent", **ref("clusterrolebindings", "keep", uid="uid-keep")})
    assert verdict == "not done" and "still there" in evidence
    assert (
        check(snap, {"expect": "absent", **ref("clusterrolebindings", "keep", uid=None)})[0] == "not done"
    )  # uid unknown
    verdict, evidence = check(snap, {"expect": "absent", **ref("clusterrolebindings", "backdoor", uid="u1")})
    assert verdict == "not done" and "recreated at 2026-03-11T08:00:00Z" in evidence


def test_a_kind_the_snapshot_did_not_collect_is_not_checkable_not_gone(tmp_path: Path) -> None:
    snap = collected(tmp_path, pods=[])
    assert check(snap, {"expect": "absent", **ref("mutatingwebhookconfigurations", "evil", uid="w1")}) == (
        "not checkable",
        "the snapshot holds no mutatingwebhookconfigurations",
    )
    # an empty List of the kind is a collection that found none: gone
    assert check(snap, {"expect": "absent", **ref("pods", "miner", "shop", uid="p1")})[0] == "done"


def test_namespaced_objects_match_their_namespace_and_cluster_scoped_ignore_one(tmp_path: Path) -> None:
    snap = collected(tmp_path, pods=[obj("web-1", ns="shop")], nodes=[obj("node-2")])
    assert check(snap, {"expect": "absent", **ref("pods", "web-1", "other", uid=None)})[0] == "done"
    assert check(snap, {"expect": "absent", **ref("pods", "web-1", "shop", uid="uid-web-1")}) == (
        "not done",
        "pod shop/web-1 still runs (uid uid-web-1)",
    )
    assert check(snap, {"expect": "present", **ref("nodes", "node-2", "ignored")})[0] == "done"


# --------------------------------------------------------------------------- replaced


def test_replaced_is_a_new_uid_or_gone(tmp_path: Path) -> None:
    snap = collected(
        tmp_path,
        serviceaccounts=[
            obj("deployer", ns="ci", uid="new", created="2026-03-11T08:30:00Z"),
            obj("builder", ns="ci", uid="old"),
        ],
    )
    assert check(snap, {"expect": "replaced", **ref("serviceaccounts", "deployer", "ci", uid="old", since=AT)}) == (
        "done",
        "serviceaccount ci/deployer has a new uid (new, created 2026-03-11T08:30:00Z)",
    )
    verdict, evidence = check(
        snap, {"expect": "replaced", **ref("serviceaccounts", "builder", "ci", uid="old", since=AT)}
    )
    assert verdict == "not done" and "still has the uid" in evidence
    assert check(snap, {"expect": "replaced", **ref("serviceaccounts", "gone", "ci", uid="x", since=AT)})[0] == "done"


def test_replaced_without_a_uid_compares_the_creation_time_with_since(tmp_path: Path) -> None:
    snap = collected(tmp_path, serviceaccounts=[obj("deployer", ns="ci", created="2026-03-11T08:30:00Z")])
    assert (
        check(
            snap,
            {"expect": "replaced", **ref("serviceaccounts", "deployer", "ci", uid=None, since="2026-03-11T08:00:00Z")},
        )[0]
        == "done"
    )
    assert (
        check(
            snap,
            {"expect": "replaced", **ref("serviceaccounts", "deployer", "ci", uid=None, since="2026-03-11T09:00:00Z")},
        )[0]
        == "not done"
    )
    assert (
        check(snap, {"expect": "replaced", **ref("serviceaccounts", "deployer", "ci", uid=None, since=None)})[0]
        == "not checkable"
    )


# --------------------------------------------------------------------------- present, label, unschedulable


def test_present_restores(tmp_path: Path) -> None:
    snap = collected(tmp_path, networkpolicies=[obj("default-deny", ns="shop")])
    assert check(snap, {"expect": "present", **ref("networkpolicies", "default-deny", "shop")})[0] == "done"
    assert check(snap, {"expect": "present", **ref("networkpolicies", "allow-dns", "shop")}) == (
        "not done",
        "networkpolicy shop/allow-dns is missing",
    )


def test_label_on_a_quarantined_pod(tmp_path: Path) -> None:
    snap = collected(
        tmp_path,
        pods=[
            obj("web-1", ns="shop", labels={"k8sforensics/quarantine": "true"}),
            obj("web-2", ns="shop", labels={"k8sforensics/quarantine": "false"}),
            obj("web-3", ns="shop"),
        ],
    )
    q = {"expect": "label", "key": "k8sforensics/quarantine", "value": "true"}
    assert check(snap, {**q, **ref("pods", "web-1", "shop")})[0] == "done"
    assert check(snap, {**q, **ref("pods", "web-2", "shop")}) == (
        "not done",
        "pod shop/web-2 lacks the label k8sforensics/quarantine=true (it is false)",
    )
    assert check(snap, {**q, **ref("pods", "web-3", "shop")})[0] == "not done"
    assert check(snap, {**q, **ref("pods", "web-9", "shop")}) == ("done", "pod shop/web-9 is gone")


def test_unschedulable_cordoned_rebuilt_or_gone(tmp_path: Path) -> None:
    snap = collected(
        tmp_path,
        nodes=[
            obj("n1", uid="a", spec={"unschedulable": True}),
            obj("n2", uid="b", spec={}),
            obj("n3", uid="fresh", created="2026-03-11T08:00:00Z"),
        ],
    )
    assert check(snap, {"expect": "unschedulable", "resource": "nodes", "name": "n1", "uid": "a"})[0] == "done"
    assert check(snap, {"expect": "unschedulable", "resource": "nodes", "name": "n2", "uid": "b"}) == (
        "not done",
        "node n2 still takes pods (not cordoned)",
    )
    verdict, evidence = check(snap, {"expect": "unschedulable", "resource": "nodes", "name": "n3", "uid": "old"})
    assert verdict == "done" and "new node" in evidence
    assert check(snap, {"expect": "unschedulable", "name": "n4", "uid": "x"})[0] == "done"  # resource defaults to nodes


# --------------------------------------------------------------------------- pinned


def deployment(name: str, ns: str, *images: str) -> dict[str, Any]:
    return obj(
        name,
        ns=ns,
        spec={"template": {"spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}}},
    )


DIGEST = "@sha256:" + "a" * 64


def test_pinned_needs_digests_and_the_old_pods_gone(tmp_path: Path) -> None:
    snap = collected(
        tmp_path,
        deployments=[
            deployment("web", "shop", "nginx" + DIGEST),
            deployment("api", "shop", "api:1.2", "side" + DIGEST),
        ],
        pods=[obj("web-new", ns="shop"), obj("api-old", ns="shop", uid="p-api")],
    )
    redeploy = {"expect": "pinned", **ref("deployments", "web", "shop"), "pods": [{"name": "web-old", "uid": "p-web"}]}
    assert check(snap, redeploy)[0] == "done"
    verdict, evidence = check(snap, {"expect": "pinned", **ref("deployments", "api", "shop"), "pods": []})
    assert verdict == "not done" and "api:1.2" in evidence and "side@" not in evidence
    verdict, evidence = check(
        snap, {"expect": "pinned", **ref("deployments", "web", "shop"), "pods": [{"name": "api-old", "uid": "p-api"}]}
    )
    assert verdict == "not done" and "the old pod shop/api-old still runs" in evidence
    assert check(snap, {"expect": "pinned", **ref("deployments", "gone", "shop"), "pods": []}) == (
        "not done",
        "deployment shop/gone is missing (not redeployed)",
    )


def test_pinned_a_statefulset_pod_keeps_its_name_so_the_uid_decides(tmp_path: Path) -> None:
    sts = obj("db", ns="shop", spec={"template": {"spec": {"containers": [{"image": "pg" + DIGEST}]}}})
    snap = collected(tmp_path, statefulsets=[sts], pods=[obj("db-0", ns="shop", uid="recreated")])
    assert (
        check(
            snap,
            {"expect": "pinned", **ref("statefulsets", "db", "shop"), "pods": [{"name": "db-0", "uid": "compromised"}]},
        )[0]
        == "done"
    )
    # without the uid, the name is all there is
    assert (
        check(snap, {"expect": "pinned", **ref("statefulsets", "db", "shop"), "pods": [{"name": "db-0", "uid": None}]})[
            0
        ]
        == "not done"
    )


def test_pinned_reads_a_cronjobs_job_template(tmp_path: Path) -> None:
    cj = obj(
        "report",
        ns="ops",
        spec={
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"initContainers": [{"image": "busybox:1"}], "containers": [{"image": "r" + DIGEST}]}
                    }
                }
            }
        },
    )
    snap = collected(tmp_path, cronjobs=[cj], pods=[])
    verdict, evidence = check(snap, {"expect": "pinned", **ref("cronjobs", "report", "ops"), "pods": []})
    assert verdict == "not done" and "busybox:1" in evidence


def test_pinned_without_pods_in_the_snapshot_cannot_say_the_old_pods_are_gone(tmp_path: Path) -> None:
    snap = collected(tmp_path, deployments=[deployment("web", "shop", "nginx" + DIGEST)])
    verdict, evidence = check(
        snap, {"expect": "pinned", **ref("deployments", "web", "shop"), "pods": [{"name": "web-old", "uid": "p"}]}
    )
    assert verdict == "not checkable" and "holds no pods" in evidence


# --------------------------------------------------------------------------- applied


def write_case_file(case: Path, rel: str, text: str) -> None:
    (case / rel).parent.mkdir(parents=True, exist_ok=True)
    (case / rel).write_text(text)


POLICIES = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {pod-security.kubernetes.io/enforce: baseline}
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: restrict-image-registries}
"""


def test_applied_every_object_of_the_file_the_snapshot_can_show(tmp_path: Path) -> None:
    case = tmp_path / "case"
    write_case_file(case, "remediation/policies.yaml", POLICIES)
    applied = {"expect": "applied", "file": "remediation/policies.yaml"}
    good = collected(
        tmp_path / "good",
        networkpolicies=[obj("default-deny", ns="shop")],
        namespaces=[obj("shop", labels={"pod-security.kubernetes.io/enforce": "baseline", "team": "a"})],
    )
    verdict, evidence = check(good, applied, case_dir=case)
    assert verdict == "done" and "of kinds the snapshot does not hold (ClusterPolicy)" in evidence
    unlabelled = collected(
        tmp_path / "unlabelled", networkpolicies=[obj("default-deny", ns="shop")], namespaces=[obj("shop")]
    )
    verdict, evidence = check(unlabelled, applied, case_dir=case)
    assert (
        verdict == "not done"
        and "namespace shop without the label(s) pod-security.kubernetes.io/enforce=baseline" in evidence
    )
    none_held = collected(tmp_path / "pods-only", pods=[])
    assert check(none_held, applied, case_dir=case)[0] == "not checkable"


def test_applied_an_empty_or_missing_or_escaping_file_is_not_checkable(tmp_path: Path) -> None:
    case = tmp_path / "case"
    write_case_file(case, "remediation/empty.yaml", "# nothing to apply\n")
    (tmp_path / "outside.yaml").write_text(POLICIES)
    snap = collected(tmp_path / "snap", networkpolicies=[obj("default-deny", ns="shop")])
    assert check(snap, {"expect": "applied", "file": "remediation/empty.yaml"}, case_dir=case) == (
        "not checkable",
        "remediation/empty.yaml has nothing to apply",
    )
    assert "not in the case" in check(snap, {"expect": "applied", "file": "remediation/none.yaml"}, case_dir=case)[1]
    assert check(snap, {"expect": "applied", "file": "../outside.yaml"}, case_dir=case)[0] == "not checkable"
    assert (
        check(snap, {"expect": "applied", "file": str(tmp_path / "outside.yaml")}, case_dir=case)[0] == "not checkable"
    )
    write_case_file(case, "remediation/np.yaml", POLICIES.split("---")[0])
    assert (
        check(snap, {"expect": "applied", "file": str(case / "remediation" / "np.yaml")}, case_dir=case)[0] == "done"
    )  # absolute, inside


# --------------------------------------------------------------------------- file, manual


def test_file_preserved_under_the_preserved_root(tmp_path: Path) -> None:
    root = tmp_path / "ir"
    (root / "preserved" / "pods").mkdir(parents=True)
    (root / "preserved" / "pods" / "web-1.json").write_text("{}")
    (root / "preserved" / "pods" / "web-2.log").write_text("")
    snap = collected(tmp_path / "snap", pods=[])
    assert check(snap, {"expect": "file", "path": "preserved/pods/web-1.json"}, preserved=root)[0] == "done"
    assert check(snap, {"expect": "file", "path": "preserved/pods/web-2.log"}, preserved=root) == (
        "not done",
        "preserved/pods/web-2.log is empty",
    )
    assert check(snap, {"expect": "file", "path": "preserved/nodes/n1.snapshot"}, preserved=root)[0] == "not done"
    assert check(snap, {"expect": "file", "path": "../../etc/passwd"}, preserved=root)[0] == "not checkable"
    assert check(snap, {"expect": "file", "path": "/etc/passwd"}, preserved=root)[0] == "not checkable"


def test_manual_says_why(tmp_path: Path) -> None:
    snap = collected(tmp_path, pods=[])
    assert check(snap, {"expect": "manual", "why": "a firewall rule is not in the cluster"}) == (
        "not checkable",
        "check by hand: a firewall rule is not in the cluster",
    )


# --------------------------------------------------------------------------- all / any


GONE = {"expect": "absent", **ref("pods", "x", "shop", uid="u")}
STILL = {"expect": "absent", **ref("pods", "web-1", "shop", uid="uid-web-1")}
HAND = {"expect": "manual", "why": "IdP"}


@pytest.mark.parametrize(
    ("c", "verdict"),
    [
        ({"all": [GONE, GONE]}, "done"),
        ({"all": [GONE, HAND]}, "not checkable"),
        ({"all": [GONE, HAND, STILL]}, "not done"),
        ({"any": [STILL, GONE]}, "done"),
        ({"any": [HAND, STILL]}, "not done"),
        ({"any": [HAND, HAND]}, "not checkable"),
        ({"all": [{"any": [STILL, GONE]}, GONE]}, "done"),
        ({"all": []}, "not checkable"),
        ({"expect": "teleport"}, "not checkable"),
        ({"expect": "absent", "resource": "pods"}, "not checkable"),  # malformed: no name
    ],
)
def test_composites(tmp_path: Path, c: dict[str, Any], verdict: str) -> None:
    snap = collected(tmp_path, pods=[obj("web-1", ns="shop")])
    assert check(snap, c)[0] == verdict


def test_a_check_nested_beyond_any_checklist_is_refused(tmp_path: Path) -> None:
    snap = collected(tmp_path, pods=[])
    deep: dict[str, Any] = GONE
    for _ in range(100):
        deep = {"all": [deep]}
    assert check(snap, deep)[0] == "not checkable"


# --------------------------------------------------------------------------- verify_actions


def rows(*checks: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": range(1, len(checks) + 1),
            "phase": "eradicate",
            "action": [f"a{i}" for i in range(len(checks))],
            "check": list(checks),
        }
    )


def test_verify_actions_takes_dicts_json_text_and_none(tmp_path: Path) -> None:
    snap = collected(tmp_path / "snap", pods=[obj("web-1", ns="shop")])
    actions = rows(GONE, json.dumps(STILL), None, float("nan"), "", "{not json")
    out = verify_actions(actions, tmp_path / "snap", case_dir=tmp_path)
    assert list(out["verdict"]) == [
        "done",
        "not done",
        "not checkable",
        "not checkable",
        "not checkable",
        "not checkable",
    ]
    assert out["evidence"][2] == NO_CHECK and out["evidence"][5] == "the check is not readable JSON"
    assert set(out["checked_at"]) == {AT} and list(actions.columns) == [
        "step",
        "phase",
        "action",
        "check",
    ]  # the input is not changed
    without = verify_actions(actions.drop(columns="check"), read_snapshot(snap), case_dir=tmp_path)
    assert set(without["verdict"]) == {"not checkable"} and set(without["evidence"]) == {NO_CHECK}


# --------------------------------------------------------------------------- reading snapshots


def test_kubectl_dumps_json_and_yaml_lists_and_single_objects(tmp_path: Path) -> None:
    (tmp_path / "all.json").write_text(
        json.dumps(
            {
                "kind": "List",
                "items": [
                    {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop", "uid": "p1"}},
                    {"kind": "ClusterRoleBinding", "metadata": {"name": "crb", "uid": "b1"}},
                ],
            }
        )
    )
    (tmp_path / "hooks.yml").write_text(
        "kind: MutatingWebhookConfiguration\nmetadata: {name: hook, uid: w1}\n---\n"
        "kind: CertificateSigningRequest\nmetadata: {name: csr-1, uid: c1}\n"
    )
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "networkpolicies.yaml").write_text(
        "kind: List\nitems: []\n"
    )  # `kubectl get netpol -o yaml` that found none
    snap = read_snapshot(tmp_path)
    assert {
        "pods",
        "clusterrolebindings",
        "mutatingwebhookconfigurations",
        "certificatesigningrequests",
        "networkpolicies",
    } <= snap.collected
    assert check(snap, {"expect": "absent", **ref("mutatingwebhookconfigurations", "hook", uid="w1")})[0] == "not done"
    # an empty list says nothing of which namespaces were asked: the absence proves nothing
    assert check(snap, {"expect": "absent", **ref("networkpolicies", "x", "shop", uid=None)})[0] == "not checkable"
    assert check(snap, {"expect": "absent", **ref("nodes", "n1", uid=None)})[0] == "not checkable"
    assert snap.collected_at is None and not snap.warnings


def test_a_file_that_does_not_parse_is_a_warning_and_what_it_held_is_not_checkable(tmp_path: Path) -> None:
    collected(tmp_path, pods=[obj("web-1", ns="shop")], clusterrolebindings=[])
    (tmp_path / "clusterrolebindings.json").write_text(
        '{"kind": "ClusterRoleBindingList", "items": ['
    )  # cut off mid-write
    snap = read_snapshot(tmp_path)
    assert len(snap.warnings) == 1 and snap.warnings[0].startswith("clusterrolebindings.json: does not parse")
    verdict, evidence = check(snap, {"expect": "absent", **ref("clusterrolebindings", "backdoor", uid="b")})
    assert verdict == "not checkable" and "did not parse" in evidence
    assert check(snap, {"expect": "absent", **ref("pods", "miner", "shop", uid="m")})[0] == "done"
    out = verify_actions(rows(GONE), snap, case_dir=tmp_path)
    assert out.attrs["warnings"] == snap.warnings


def test_a_broken_file_of_unknown_content_makes_every_absence_uncertain(tmp_path: Path) -> None:
    collected(tmp_path, pods=[obj("web-1", ns="shop")])
    (tmp_path / "extra.yaml").write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    (tmp_path / "bomb.json").write_text("[" * 100_000 + "]" * 100_000)
    snap = read_snapshot(tmp_path)
    assert len(snap.warnings) == 2
    assert check(snap, {"expect": "absent", **ref("pods", "miner", "shop", uid="m")})[0] == "not checkable"
    assert check(snap, {"expect": "present", **ref("pods", "web-1", "shop")})[0] == "done"  # what is seen is still seen


def test_no_snapshot_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no such snapshot"):
        read_snapshot(tmp_path / "missing")


def test_a_partial_kubectl_dump_says_what_an_absence_rests_on(tmp_path: Path) -> None:
    (tmp_path / "pods.json").write_text(
        json.dumps({"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "a", "namespace": "shop"}}]})
    )
    verdict, evidence = check(tmp_path, {"expect": "absent", **ref("pods", "miner", "kube-system", uid="m")})
    assert (
        verdict == "not checkable" and "holds no pods in namespace kube-system at all" in evidence
    )  # absence is never taken for done


def test_forged_names_are_shown_not_interpreted(tmp_path: Path) -> None:
    evil = "x\x1b]0;pwned\x07"
    snap = collected(tmp_path, pods=[obj(evil, ns="shop")])
    verdict, evidence = check(snap, {"expect": "absent", **ref("pods", evil, "shop", uid=None)})
    assert verdict == "not done" and "\x1b" not in evidence and "\\x1b" in evidence


# --------------------------------------------------------------------------- the command line


def test_cli_writes_the_verification_and_exits_1_when_something_is_not_done(
    sample_case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from k8sforensics.remediation import Remediation

    forged = "evil|`name`<b>"
    actions = rows({"expect": "absent", **ref("pods", "web-1", "shop", uid="uid-web-1")}, GONE, HAND)
    actions["action"] = [f"delete pod shop/{forged}", "delete pod shop/x", "revoke at the IdP"]
    monkeypatch.setattr(Remediation, "actions", lambda self: actions)
    snap = collected(tmp_path / "snap", pods=[obj("web-1", ns="shop")])
    out = tmp_path / "out"
    code = main(["remediate", str(sample_case.path), "--verify", str(snap), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "1 done, 1 not done, 1 not checkable" in printed and "not done: 1. delete pod shop/evil" in printed
    table = pd.read_csv(out / "verification.csv")
    assert list(table["verdict"]) == ["done" if i else "not done" for i in range(2)] + ["not checkable"]
    assert json.loads(table["check"][0])["expect"] == "absent"
    md = (out / "verification.md").read_text()
    assert "| step | phase | action | verdict | evidence |" in md
    assert "evil\\|\\`name\\`\\<b\\>" in md and "<b>" not in md
    monkeypatch.setattr(Remediation, "actions", lambda self: actions.iloc[1:])
    assert main(["remediate", str(sample_case.path), "--verify", str(snap), "--out", str(out)]) == 0
    assert main(["remediate", str(sample_case.path), "--verify", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


# --------------------------------------------------------------------------- the sample case, half carried out


FIXED_AT = "2026-12-01T00:00:00Z"  # after any evidence of the sample
PINNED = "registry.example/app@sha256:" + "0" * 64


def _key(resource: str, ns: Any, name: Any) -> tuple[str, str | None, str]:
    from k8sforensics.remediation.verify import CLUSTER_SCOPED

    return resource, None if resource in CLUSTER_SCOPED or not ns else ns, name


def _file_objects(case_dir: Path, rel: str) -> list[dict[str, Any]]:
    import yaml

    path = case_dir / rel
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)] if path.is_file() else []


def touched(c: Any, case_dir: Path) -> set[tuple[Any, ...]]:
    """The objects and files a check looks at: actions sharing one are carried out together."""
    from k8sforensics.remediation.verify import resource_of

    if not isinstance(c, dict) or c.get("expect") == "manual":
        return set()
    if "all" in c or "any" in c:
        return set().union(*(touched(p, case_dir) for p in c.get("all", c.get("any"))))
    if c["expect"] == "file":
        return {("file", c["path"])}
    if c["expect"] == "applied":
        return {("file", c["file"])} | {
            _key(resource_of(o["kind"]), o["metadata"].get("namespace") or "default", o["metadata"]["name"])
            for o in _file_objects(case_dir, c["file"])
        }
    out = {_key(c.get("resource", "nodes"), c.get("namespace"), c["name"])}
    return out | {_key("pods", c.get("namespace"), p["name"]) for p in c.get("pods") or []}


def carry_out(c: Any, world: dict[str, dict[tuple, dict]], *, case_dir: Path, preserved: Path) -> None:
    """Do in the cluster (``world``: resource → key → object) what a check looks for, the way a
    responder would: delete, recreate with a new uid, label, cordon, redeploy pinned, apply."""
    from k8sforensics.remediation.verify import resource_of

    if not isinstance(c, dict) or c.get("expect") == "manual":
        return
    if "all" in c or "any" in c:
        parts = c.get("all") or [next(p for p in c["any"] if touched(p, case_dir))]
        for p in parts:
            carry_out(p, world, case_dir=case_dir, preserved=preserved)
        return
    expect = c["expect"]
    if expect == "file":
        path = preserved / c["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("preserved\n")
        return
    if expect == "applied":
        for o in _file_objects(case_dir, c["file"]):
            resource = resource_of(o["kind"])
            if resource in world:  # a kind the collector does not list stays unseen
                k = _key(resource, o["metadata"].get("namespace") or "default", o["metadata"]["name"])
                held = world[resource].setdefault(
                    k, {"kind": o["kind"], "metadata": {"name": k[2], "namespace": k[1], "uid": f"new-{k[2]}"}}
                )
                held["metadata"].setdefault("labels", {}).update(o["metadata"].get("labels") or {})
        return
    resource = c.get("resource", "nodes")
    k = _key(resource, c.get("namespace"), c["name"])
    held = world[resource].get(k)
    if expect == "absent":
        world[resource].pop(k, None)
    elif expect == "replaced" and held is not None:
        world[resource][k] = {
            **held,
            "metadata": {
                **held["metadata"],
                "uid": f"new-{held['metadata'].get('uid')}",
                "creationTimestamp": FIXED_AT,
            },
        }
    elif expect == "present" and held is None:
        world[resource][k] = {
            "metadata": {"name": k[2], "namespace": k[1], "uid": f"new-{k[2]}", "creationTimestamp": FIXED_AT}
        }
    elif expect == "label" and held is not None:
        held["metadata"].setdefault("labels", {})[c["key"]] = c["value"]
    elif expect == "unschedulable" and held is not None:
        held.setdefault("spec", {})["unschedulable"] = True
    elif expect == "pinned":
        pod_spec = {"containers": [{"name": "app", "image": PINNED}]}
        template = (
            {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}
            if resource == "cronjobs"
            else {"template": {"spec": pod_spec}}
        )
        world[resource][k] = {
            **(held or {"metadata": {"name": k[2], "namespace": k[1], "uid": f"new-{k[2]}"}}),
            "spec": template,
        }
        for p in c.get("pods") or []:
            world["pods"] = {
                pk: o
                for pk, o in world["pods"].items()
                if not (
                    o["metadata"].get("uid") == p.get("uid")
                    or (not p.get("uid") and pk == _key("pods", k[1], p["name"]))
                )
            }


def write_world(world: dict[str, dict[tuple, dict]], folder: Path) -> Path:
    lists = {resource: list(objects.values()) for resource, objects in world.items()}
    folder.mkdir(parents=True)
    for resource, items in lists.items():
        (folder / f"{resource}.json").write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": items}))
    (folder / "collection.json").write_text(
        json.dumps({"collected_at": FIXED_AT, "counts": {r: len(i) for r, i in lists.items()}})
    )
    return folder


def inventory_world(case: Any) -> dict[str, dict[tuple, dict]]:
    """The case's own inventory objects (the latest of each), per resource the collector lists."""
    from k8sforensics.context.collect import KINDS
    from k8sforensics.remediation.verify import resource_of

    world: dict[str, dict[tuple, dict]] = {name: {} for name, _, _ in KINDS}
    for r in case.objects().sort_values("time", kind="stable").itertuples(index=False):
        o = json.loads(r.object)
        resource = resource_of(r.kind)
        if resource in world:
            o["kind"] = r.kind
            world[resource][_key(resource, o["metadata"].get("namespace"), o["metadata"]["name"])] = o
    return world


def together(keys: dict[int, set[tuple]]) -> list[list[int]]:
    """The actions in groups that share no object or file with another group, in step order."""
    groups: list[tuple[set[tuple], list[int]]] = []
    for i, ks in keys.items():
        joined = [g for g in groups if g[0] & ks]
        merged = (set(ks).union(*(g[0] for g in joined)), sorted([i, *(j for g in joined for j in g[1])]))
        groups = [g for g in groups if not any(g is h for h in joined)] + [merged]
    return sorted((g[1] for g in groups), key=lambda g: g[0])


def test_the_sample_case_half_carried_out(sample_case: Any, tmp_path: Path) -> None:
    import shutil

    import k8sforensics as kf
    from k8sforensics.remediation import Remediation

    shutil.copytree(sample_case.path, tmp_path / "case")  # the session's case is not changed
    case = kf.Case.open(tmp_path / "case")
    plan = Remediation(case)
    plan.write()
    actions = plan.actions()
    assert "check" in actions.columns
    preserved = tmp_path / "ir"
    preserved.mkdir()
    world = inventory_world(case)
    before = verify_actions(
        actions, write_world(world, tmp_path / "before"), case_dir=case.path, preserved_root=preserved
    )
    manual = [i for i, c in actions["check"].items() if not touched(c, case.path) and c is not None]
    assert (before.loc[manual, "verdict"] == "not checkable").all()
    todo = list(before.index[before["verdict"] == "not done"])
    # actions looking at one object (isolate a pod, then redeploy its workload) are carried out together
    groups = together({i: touched(actions.at[i, "check"], case.path) for i in todo})
    do = [i for g in groups[::2] for i in g]
    leave = [i for g in groups[1::2] for i in g]
    assert len(do) >= 3 and len(leave) >= 3, (len(do), len(leave))
    for i in do:
        carry_out(actions.at[i, "check"], world, case_dir=case.path, preserved=preserved)
    after = verify_actions(
        actions, write_world(world, tmp_path / "after"), case_dir=case.path, preserved_root=preserved
    )
    report = after[["step", "kind", "target", "verdict", "evidence"]]
    assert (after.loc[do, "verdict"] == "done").all(), report.loc[do].to_string()
    assert (after.loc[leave, "verdict"] == "not done").all(), report.loc[leave].to_string()
    assert (after.loc[manual, "verdict"] == "not checkable").all()
    untouched = before.index.difference(do).difference(leave)
    assert (after.loc[untouched, "verdict"] == before.loc[untouched, "verdict"]).all()
    assert set(after["checked_at"]) == {FIXED_AT}
    # checklist.csv carries the checks as JSON text: read back, it verifies the same
    from_csv = verify_actions(
        pd.read_csv(case.path / "remediation" / "checklist.csv"),
        tmp_path / "after",
        case_dir=case.path,
        preserved_root=preserved,
    )
    assert list(from_csv["verdict"]) == list(after["verdict"])
    # the same from the command line, as a responder runs it (from the folder the preservation ran in)
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "k8sforensics", "remediate", str(case.path), "--verify", str(tmp_path / "after")],
        cwd=preserved,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1, run.stderr
    assert f"{len(do) + (before['verdict'] == 'done').sum()} done, {len(leave)} not done" in run.stdout
    written = pd.read_csv(case.path / "remediation" / "verification.csv")
    assert list(written["verdict"]) == list(after["verdict"]) and list(written["evidence"]) == list(after["evidence"])
    md = (case.path / "remediation" / "verification.md").read_text()
    assert md.count("| not done |") == len(leave)
