"""The remediation plan of the sample breach against its ground truth: every persistence object
has a removal action, every compromised identity a rotation, the generated NetworkPolicies let
every legitimate flow through and stop every attack flow they can see."""

from __future__ import annotations

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.remediation import Remediation, evaluate


@pytest.fixture(scope="module")
def plan(sample_case: kf.Case) -> Remediation:
    return Remediation(sample_case)


@pytest.fixture(scope="module")
def actions(plan: Remediation) -> pd.DataFrame:
    return plan.actions()


def _truth_flows(case: kf.Case, truth: dict) -> pd.Series:
    shas = {
        i["path"].split("sample_data/", 1)[-1]: i["sha256"] for ing in case.manifest["ingests"] for i in ing["inputs"]
    }
    lines = {
        (shas[e["file"]], e["line"]) for s in truth["steps"] for e in s["evidence"] if e["file"].startswith("flows/")
    }
    f = case.flows()
    return pd.Series([(a, b) in lines for a, b in zip(f["evidence_id"], f["evidence_line"])], index=f.index)


def test_the_plan_runs_in_incident_response_order_and_containment_is_backed(actions: pd.DataFrame) -> None:
    assert actions["priority"].is_monotonic_increasing and list(actions["step"]) == list(range(1, len(actions) + 1))
    assert actions["action_id"].is_unique
    assert list(dict.fromkeys(actions["phase"])) == [
        "preserve evidence",
        "contain",
        "invalidate credentials",
        "eradicate",
        "recover",
        "harden",
        "verify",
    ]
    contain = actions[
        (actions["phase"] == "contain") & (actions["kind"] != "apply")
    ]  # the quarantine file itself has no event
    assert all(len(ids) for ids in contain["event_ids"]) and all(len(f) for f in contain["finding_ids"])


def test_every_persistence_object_has_a_removal_action(actions: pd.DataFrame, sample_truth: dict) -> None:
    text = actions[actions["phase"] == "eradicate"]["action"].str.cat(sep="\n")
    for obj in sample_truth["persistence"]:
        name = f"{obj['namespace']}/{obj['name']}" if obj.get("namespace") else obj["name"]
        assert f"delete the {'binding' if 'Binding' in obj['kind'] else obj['kind'].lower()} {name}" in text, obj


def test_every_compromised_identity_is_rotated_and_every_foothold_isolated(
    actions: pd.DataFrame, sample_truth: dict
) -> None:
    rotate = set(actions.loc[actions["control"] == "credential rotation", "target"])
    isolate = set(actions.loc[actions["action"].str.startswith("isolate pod"), "target"])
    for hop in sample_truth["lateral_path"]:
        if hop["kind"] == "service_account":
            assert f"sa:{hop['id']}" in rotate
        if hop["kind"] == "pod":
            assert f"pod:{hop['id']}" in isolate
    assert "secret:payments/db-credentials" in rotate  # the secret the attacker read
    blocked = set(actions.loc[actions["control"] == "network block", "target"])
    assert {"ip:198.51.100.66", "ip:203.0.113.77", "ip:203.0.113.88"} <= blocked  # entry, C2 and the mining pool
    assert not any(t.startswith("ip:10.") for t in blocked)
    # a pod gone before the inventory dump is still on the list, saying when it ended
    gone = actions[actions["target"] == "pod:kube-system/kube-proxy-x7k2p"].set_index("kind")["action"]
    assert "it ended at 2026-03-10 11:01:00" in gone["isolate"]
    assert (
        "ended at 2026-03-10 11:01:00 UTC, before the dump" in gone["preserve"]
    )  # its live evidence is said to be gone
    # the innocent pod that reused the attacker's IP is left alone
    assert not actions["target"].str.contains("cart-6nrgvm7tk2-dlgzj").any()


def test_redeploy_from_known_good_images_and_rebuild_the_escaped_node(actions: pd.DataFrame) -> None:
    redeploy = actions[actions["control"] == "redeploy"]["action"].str.cat(sep="\n")
    assert "Deployment/web in shop" in redeploy and "registry.corp/shop/web:1.8.2" in redeploy
    assert "evilcorp" not in redeploy and "alpine" not in redeploy
    assert ((actions["target"] == "node:node-2") & (actions["kind"] == "rebuild")).any()


def test_attack_flows_are_the_ground_truths(plan: Remediation, sample_case: kf.Case, sample_truth: dict) -> None:
    truth = _truth_flows(sample_case, sample_truth)
    live = ~plan.flows["is_reply"].fillna(False).astype(bool)
    got = plan.attack_flows()
    assert (got & live).equals(truth.reindex(got.index) & live)


def test_network_policies_allow_the_legitimate_flows_and_stop_the_attack(
    plan: Remediation, sample_case: kf.Case, sample_truth: dict
) -> None:
    f = plan.flows
    truth = _truth_flows(sample_case, sample_truth).reindex(f.index)
    live = ~f["is_reply"].fillna(False).astype(bool) & (f["verdict"].fillna("allowed") == "allowed")
    policies = plan.network_policies()
    verdict = evaluate(policies, f, plan.labels, stale_addresses=plan.last_holders())
    legit = live & ~truth
    assert legit.sum() > 1000 and verdict[legit].all()
    # a flow to a node's address is no pod's to police; nor is one in kube-system, which gets no default deny
    # (it would take DNS and the pod network down): the attacker's pods there are deleted, their addresses blocked
    system = f["src_namespace"].eq("kube-system") | f["dst_namespace"].eq("kube-system")
    policed = live & truth & (f["src_pod"].notna() | f["dst_pod"].notna()) & ~system
    assert policed.sum() >= 3 and not verdict[policed].any()
    # the exploit came to the web pod's public port: allowed for everyone else
    web = next(p for p in policies if p["metadata"]["name"] == "k8sforensics-allow-web")
    assert web["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
    assert {p["metadata"]["namespace"] for p in policies if p["metadata"]["name"] == "k8sforensics-default-deny"} == {
        "monitoring",
        "payments",
        "shop",
    }
    dns = [p for p in policies if p["metadata"]["name"] == "k8sforensics-allow-dns-and-api"]
    assert {p["metadata"]["namespace"] for p in dns} == {"monitoring", "payments", "shop"}  # beside every default deny
    assert {(q["protocol"], q["port"]) for q in dns[0]["spec"]["egress"][0]["ports"]} == {("UDP", 53), ("TCP", 53)}


def test_unused_binding_that_let_the_attacker_exec_is_flagged(actions: pd.DataFrame) -> None:
    removals = actions[actions["action"].str.startswith("remove ")]["action"].str.cat(sep="\n")
    assert "RoleBinding web-debug" in removals


def test_artifacts_are_written_and_parse_back(sample_case: kf.Case, tmp_path) -> None:
    import yaml

    written = kf.write_remediation(sample_case, out=tmp_path)
    kinds = {}
    for name, path in written.items():
        if name.endswith(".yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    kinds.setdefault(doc["kind"], 0)
                    kinds[doc["kind"]] += 1
    # kube-system is never labelled: its CNI and kube-proxy pods need privileged
    assert (
        kinds["NetworkPolicy"] >= 9
        and kinds["Namespace"] == 3
        and kinds["ConstraintTemplate"] == 4
        and kinds["ClusterPolicy"] == 4
    )
    checklist = pd.read_csv(written["checklist.csv"])
    assert len(checklist) == len(kf.remediation(sample_case))


def test_pod_security_levels_of_the_sample(plan: Remediation) -> None:
    """The sample's pods set no securityContext: every namespace meets baseline, none restricted,
    and each names the settings restricted would need."""
    levels = plan.pod_security().set_index("namespace")
    assert levels["level"].to_dict() == {
        "kube-system": "baseline",
        "monitoring": "baseline",
        "payments": "baseline",
        "shop": "baseline",
    }
    blockers = " ".join(b for bs in levels["blockers"] for b in bs)
    assert (
        "runAsNonRoot not true" in blockers
        and "allowPrivilegeEscalation not false" in blockers
        and "drop ALL" in blockers
    )


def test_policies_and_roles_from_the_case_read_in_chunks_equal_those_from_whole_tables(
    plan: Remediation, sample_case: kf.Case
) -> None:
    from k8sforensics.remediation.network_policy import network_policies

    whole = network_policies(plan.flows, plan.labels, attack=plan.attack_flows(), **plan.policy_options())
    small = Remediation(sample_case, findings=plan.findings, graph=plan.graph, chunk_rows=25)
    assert len(list(sample_case.chunks("flows", rows=25))) > 3
    assert small.network_policies() == whole
    traffic = small.traffic()
    assert traffic["flows"].sum() == len(plan.flows)  # every flow counted once
    assert (
        traffic.loc[traffic["attack"], "flows"].sum() == plan.attack_flows().sum()
    )  # the attack mask carried across chunks
    roles, unused = small.rbac()  # the permissions used, collected from the audit log a chunk at a time
    assert roles == plan.rbac()[0] and unused.equals(plan.rbac()[1])


def test_roles_cover_what_an_identity_did_in_every_chunk_of_the_audit_log(tmp_path) -> None:
    import orjson

    lines = []
    for i, (resource, verb) in enumerate(
        [("pods", "list"), ("configmaps", "get"), ("services", "list"), ("endpoints", "get")]
    ):
        t = f"2026-03-10T10:{i * 7:02d}:00.000000Z"  # seven minutes apart: four five-minute windows
        lines.append(
            orjson.dumps(
                {
                    "kind": "Event",
                    "apiVersion": "audit.k8s.io/v1",
                    "level": "Metadata",
                    "auditID": f"id-{i}",
                    "stage": "ResponseComplete",
                    "requestURI": f"/api/v1/namespaces/app/{resource}",
                    "verb": verb,
                    "user": {"username": "alice", "groups": ["system:authenticated"]},
                    "sourceIPs": ["10.0.0.9"],
                    "objectRef": {"resource": resource, "namespace": "app", "apiVersion": "v1"},
                    "responseStatus": {"code": 200},
                    "requestReceivedTimestamp": t,
                    "stageTimestamp": t,
                    "annotations": {"authorization.k8s.io/decision": "allow"},
                }
            )
        )
    (tmp_path / "audit.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, tmp_path / "audit.jsonl", progress=False)
    plan = Remediation(case, chunk_rows=5)  # an audit chunk: one row, or one window
    assert len(list(case.chunks("audit", rows=1))) == 4
    roles, _ = plan.rbac()
    rules = [r for obj in roles if obj["kind"] in ("Role", "ClusterRole") for r in obj["rules"]]
    assert {res for r in rules for res in r["resources"]} == {"pods", "configmaps", "services", "endpoints"}
