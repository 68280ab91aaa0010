"""A breach that exploited no pod: a person's credential used from outside, a service-account
token taken from a Secret and used, and a CI rollout that must not look like a sidecar injection."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import BUILTIN_RULES, Evidence
from k8sforensics.detect import audit_rules as ar
from k8sforensics.detect.engine import run_rules
from k8sforensics.detect.reduction import reduced
from tests.event_frames import audit, frame

CI = "system:serviceaccount:ci:ci-deployer"
OUTSIDE = "203.0.113.9"


def run(logic, *rows, **kw) -> pd.DataFrame:
    """The findings of the built-in rule whose logic is ``logic`` (with the rule's metadata)."""
    rule = next(r for r in BUILTIN_RULES if r.logic is logic)
    found, _ = run_rules(Evidence(audit=frame("audit", *rows), **kw), [rule])
    return found


def _quiet_start() -> dict:
    return audit("2026-01-01T08:00:00Z", "system:node:n1", "update", "leases", source_ip="10.0.1.11")


def test_a_kubeconfig_used_from_a_new_outside_address_after_working_from_inside() -> None:
    hits = run(
        ar.credential_from_outside,
        _quiet_start(),
        audit("2026-01-01T08:30:00Z", "alice", "get", "pods", source_ip="10.8.0.4", user_agent="kubectl/v1.30.1"),
        audit("2026-01-01T10:00:00Z", "alice", "list", "secrets", source_ip=OUTSIDE, user_agent="python-requests/2.31"),
        audit("2026-01-01T10:01:00Z", "alice", "get", "secrets", source_ip=OUTSIDE, user_agent="python-requests/2.31"),
        audit("2026-01-01T10:02:00Z", "alice", "get", "pods", source_ip="10.8.0.4", user_agent="kubectl/v1.30.1"),
    )
    assert len(hits) == 1, hits[["time", "summary"]]
    h = hits.iloc[0]
    assert h["source_ip"] == OUTSIDE and h["entity"] == "alice" and h["severity"] == "high"
    assert h["technique_id"] == "MS-TA9003" and h["attack_id"] == "T1078"
    assert "10.8.0.4" in h["summary"] and "a new client" in h["summary"]


def test_a_cloud_identity_is_a_cloud_credential() -> None:
    hits = run(
        ar.credential_from_outside,
        _quiet_start(),
        audit("2026-01-01T10:00:00Z", "dev@example.com", "get", "pods", source_ip=OUTSIDE),
    )
    assert hits["technique_id"].tolist() == ["MS-TA9001"] and hits["attack_id"].tolist() == ["T1078.004"]
    assert hits.loc[0, "severity"] == "medium"  # an identity's first request: nothing known to compare with


def test_the_learning_window_learns_outside_addresses_but_not_a_move_from_inside() -> None:
    hits = run(
        ar.credential_from_outside,
        _quiet_start(),
        audit(
            "2026-01-01T08:10:00Z", "admin", "get", "nodes", source_ip="198.51.100.20"
        ),  # learned: the admin's usual address
        audit("2026-01-01T08:20:00Z", "bob", "get", "pods", source_ip="10.8.0.9"),
        audit(
            "2026-01-01T08:25:00Z", "bob", "get", "pods", source_ip="198.51.100.77"
        ),  # inside, then outside: not learned
        audit("2026-01-01T10:00:00Z", "admin", "get", "nodes", source_ip="198.51.100.20"),
    )
    assert hits["user"].tolist() == ["bob"]


def test_anonymous_nodes_and_service_accounts_are_not_people() -> None:
    hits = run(
        ar.credential_from_outside,
        _quiet_start(),
        audit(
            "2026-01-01T10:00:00Z",
            "system:anonymous",
            "get",
            "pods",
            source_ip=OUTSIDE,
            user_groups=["system:unauthenticated"],
        ),
        audit(
            "2026-01-01T10:00:00Z", "system:node:ip-10-0-1-5", "get", "pods", source_ip="54.212.83.236"
        ),  # EKS node, public subnet
        audit("2026-01-01T10:00:00Z", CI, "get", "pods", source_ip=OUTSIDE),
    )
    assert hits.empty


def test_a_controller_token_from_outside_is_used_elsewhere_but_not_from_inside() -> None:
    ctl = "system:serviceaccount:kube-system:replicaset-controller"
    hits = run(
        ar.token_used_elsewhere,
        audit(
            "2026-01-01T10:00:00Z",
            ctl,
            "create",
            "pods",
            source_ip="10.0.1.11",
            source_pod="web-1",
            source_namespace="shop",
        ),
        audit("2026-01-01T10:05:00Z", ctl, "list", "secrets", source_ip=OUTSIDE),
    )
    assert hits["source_ip"].tolist() == [OUTSIDE]


def _token_theft(read_ip: str = OUTSIDE, use_ip: str = OUTSIDE) -> list[dict]:
    return [
        _quiet_start(),
        audit(
            "2026-01-01T09:00:00Z",
            CI,
            "patch",
            "deployments",
            source_ip="10.0.3.3",
            object_namespace="shop",
            object_name="web",
        ),
        audit(
            "2026-01-01T10:00:00Z",
            "alice",
            "get",
            "secrets",
            source_ip=read_ip,
            object_namespace="ci",
            object_name="ci-deployer-token-x7k2p",
        ),
        audit(
            "2026-01-01T10:20:00Z",
            CI,
            "create",
            "daemonsets",
            source_ip=use_ip,
            object_namespace="kube-system",
            object_name="node-agent",
        ),
        audit("2026-01-01T10:21:00Z", CI, "get", "pods", source_ip=use_ip),
    ]


def test_a_token_read_from_a_secret_and_then_used_from_the_readers_address() -> None:
    hits = run(ar.token_secret_used, *_token_theft())
    assert len(hits) == 1
    h = hits.iloc[0]
    assert h["entity"] == "ci/ci-deployer" and h["user"] == "alice" and h["severity"] == "critical"
    assert h["time"] == pd.Timestamp("2026-01-01T10:00:00Z") and len(h["event_ids"]) == 2  # the read and the first use
    assert "create daemonsets" in h["summary"]


def test_a_token_read_and_used_from_outside_but_elsewhere_is_high() -> None:
    hits = run(ar.token_secret_used, *_token_theft(read_ip="10.8.0.4", use_ip="198.51.100.5"))
    assert hits["severity"].tolist() == ["high"] and "from outside" in hits.loc[0, "summary"]


def test_no_link_without_a_read_or_when_the_account_keeps_acting_from_its_own_place() -> None:
    rows = _token_theft(read_ip="10.8.0.4", use_ip="10.0.3.3")  # the CI runner's own inside address: not the reader's
    assert run(ar.token_secret_used, *rows).empty
    assert run(ar.token_secret_used, *[r for r in _token_theft() if r["resource"] != "secrets"]).empty


def test_the_service_account_context_names_a_token_secret_of_any_name() -> None:
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            "alice",
            "get",
            "secrets",
            source_ip=OUTSIDE,
            object_namespace="ci",
            object_name="deploy-creds",
        ),
        audit("2026-01-01T10:05:00Z", CI, "get", "pods", source_ip=OUTSIDE),
    ]
    assert run(ar.token_secret_used, *rows).empty
    sas = pd.DataFrame({"namespace": ["ci"], "name": ["ci-deployer"], "secrets": [["deploy-creds"]]})
    hits = run(ar.token_secret_used, *rows, context={"service_accounts": sas})
    assert hits["entity"].tolist() == ["ci/ci-deployer"]


def test_a_list_of_secrets_links_only_to_a_use_from_the_readers_own_address() -> None:
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            "system:serviceaccount:shop:web",
            "list",
            "secrets",
            source_ip="10.244.1.10",
            object_namespace="ci",
            sa_namespace="shop",
            sa_name="web",
        ),
        audit("2026-01-01T10:03:00Z", CI, "get", "pods", source_ip=OUTSIDE),
        audit(
            "2026-01-01T10:04:00Z",
            CI,
            "create",
            "pods",
            source_ip="10.244.1.10",
            object_namespace="ci",
            object_name="x",
        ),
    ]
    hits = run(ar.token_secret_used, *rows)
    assert len(hits) == 1 and hits.loc[0, "source_ip"] == "10.244.1.10" and hits.loc[0, "severity"] == "critical"


def test_credential_and_token_findings_do_not_depend_on_the_chunks() -> None:
    rows = [
        *_token_theft(),
        audit("2026-01-01T08:30:00Z", "alice", "get", "pods", source_ip="10.8.0.4"),
        audit("2026-01-01T09:58:00Z", "alice", "get", "namespaces", source_ip=OUTSIDE),
    ]
    table = frame("audit", *rows)
    whole, _ = run_rules(Evidence(audit=table), BUILTIN_RULES)
    ev = Evidence(audit=table, chunk_rows=5)
    assert len(list(ev.audit_chunks())) > 3
    chunked, _ = run_rules(reduced(ev), BUILTIN_RULES)
    assert {"k8s-token-secret-used", "k8s-credential-from-outside"} <= set(whole["rule_id"])
    cols = ["finding_id", "rule_id", "time", "entity", "severity", "summary", "event_ids"]
    pd.testing.assert_frame_equal(chunked[cols].reset_index(drop=True), whole[cols].reset_index(drop=True))


# ---------------------------------------------------------------------- a rollout is not a sidecar

TEMPLATE = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.corp/app:1"}]}}}}


def _patch(time: str, body, user: str = CI, **kw) -> dict:
    return audit(
        time,
        user,
        "patch",
        "deployments",
        api_group="apps",
        object_namespace="shop",
        object_name="web",
        request_object=body,
        **kw,
    )


def test_a_ci_rollout_new_image_and_restart_annotation_is_not_a_sidecar() -> None:
    restart = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T10:00:00Z"}}}
        }
    }
    image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.corp/app:2"}]}}}}
    rows = [
        audit(
            "2026-01-01T09:00:00Z",
            CI,
            "create",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="web",
            request_object=TEMPLATE,
        ),
        _patch("2026-01-01T10:00:00Z", restart),
        _patch("2026-01-01T10:05:00Z", image),
        _patch("2026-01-01T10:06:00Z", None),
    ]  # Metadata level: no body
    assert run(ar.sidecar_injection, *rows).empty


def test_a_rollout_of_a_workload_known_only_from_the_inventory_is_not_a_sidecar_but_a_new_container_is() -> None:
    pods = pd.DataFrame(
        {
            "namespace": ["shop"],
            "name": ["web-1"],
            "workload_kind": ["Deployment"],
            "workload": ["web"],
            "containers": [["app"]],
        }
    )
    image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.corp/app:2"}]}}}}
    grown = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "app"}, {"name": "proxy", "image": "evil.example/p:1"}]}}
        }
    }
    hits = run(
        ar.sidecar_injection,
        _patch("2026-01-01T10:00:00Z", image),
        _patch("2026-01-01T10:05:00Z", grown, user="mallory"),
        context={"pods": pods},
    )
    assert hits["user"].tolist() == ["mallory"] and "proxy" in hits.loc[0, "summary"]


def test_an_unknown_workload_patched_without_history_is_not_judged_but_a_json_patch_add_is() -> None:
    add = [{"op": "add", "path": "/spec/template/spec/initContainers/-", "value": {"name": "grab", "image": "busybox"}}]
    hits = run(
        ar.sidecar_injection,
        _patch("2026-01-01T10:00:00Z", TEMPLATE),
        _patch("2026-01-01T10:01:00Z", add, user="mallory"),
    )
    assert hits["user"].tolist() == ["mallory"] and "grab" in hits.loc[0, "summary"]
