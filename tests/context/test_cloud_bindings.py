"""cloud_bindings: service-account annotations (IRSA, GKE and AKS Workload Identity), EKS Pod
Identity associations and node provider ids → which cloud identity each can act as."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import k8sforensics as kf
from k8sforensics.context.cloud import instance_identity, pod_identity_bindings
from k8sforensics.schema import CLOUD_BINDINGS

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "cloud_context"


def bindings(name: str):
    return kf.read_inventory(FIX / name).cloud_bindings


def test_irsa_role_and_audience() -> None:
    b = bindings("kubectl__eks_irsa_pod_identity_nodes.json")
    assert list(b.columns) == CLOUD_BINDINGS.names
    irsa = b[b.kind == "irsa"].set_index("service_account")
    assert set(irsa.index) == {"uploader", "reporter"}  # 'broken' annotates a number, 'default' nothing
    assert irsa.loc["uploader", "cloud_identity"] == "arn:aws:iam::111122223333:role/shop-uploader"
    assert irsa.loc["uploader", "audience"] == "sts.amazonaws.com"  # the default
    assert irsa.loc["reporter", "audience"] == "reporter.example"  # eks.amazonaws.com/audience
    assert (irsa.provider == "aws").all() and (irsa.namespace == "shop").all() and irsa.node.isna().all()
    assert irsa.loc["uploader", "declared_by"] == "annotation eks.amazonaws.com/role-arn"
    assert irsa.evidence_id.notna().all()


def test_aws_nodes_by_instance_id_fargate_and_missing_provider_bind_nothing() -> None:
    b = bindings("kubectl__eks_irsa_pod_identity_nodes.json")
    nodes = b[b.kind == "node-instance"].set_index("node")
    assert dict(nodes.cloud_identity) == {"node-a": "i-0abc1234def567890", "node-b": "i-0fedcba9876543210"}
    assert (nodes.declared_by == "providerID").all() and nodes.namespace.isna().all()


def test_gke_workload_identity_and_gce_node() -> None:
    b = bindings("kubectl__gke_workload_identity.json").set_index("kind")
    gke = b.loc["gke-workload-identity"]
    assert (gke.provider, gke.namespace, gke.service_account, gke.cloud_identity) == (
        "gcp",
        "analytics",
        "bq-reader",
        "bq-reader@proj-a.iam.gserviceaccount.com",
    )
    node = b.loc["node-instance"]
    assert node.node == "gke-prod-pool-1-abcd"
    assert node.cloud_identity == "projects/proj-a/zones/europe-west1-b/instances/gke-prod-pool-1-abcd"


def test_aks_workload_identity_needs_the_pod_label() -> None:
    b = bindings("kubectl__aks_workload_identity.json")
    aks = b[b.kind == "azure-workload-identity"].set_index("service_account")
    assert aks.loc["vault", "cloud_identity"] == "00000000-1111-2222-3333-444444444444"
    assert aks.loc["vault", "audience"] == "api://AzureADTokenExchange"
    assert aks.loc["vault", "declared_by"] == "annotation azure.workload.identity/client-id"
    # annotated, but no pod labelled azure.workload.identity/use runs as it: said, not dropped
    assert "no pod in the inventory labelled azure.workload.identity/use" in aks.loc["idle", "declared_by"]
    node = b[b.kind == "node-instance"].iloc[0]
    assert node.provider == "azure" and node.cloud_identity.startswith("/subscriptions/00000000-0000-")
    assert node.cloud_identity.endswith("/virtualMachineScaleSets/aks-nodepool1-12345678-vmss/virtualMachines/0")


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        ("aws:///us-east-1a/i-0123456789abcdef0", ("aws", "i-0123456789abcdef0")),
        ("aws:///eu-west-1c/i-12345678", ("aws", "i-12345678")),  # the older 8-hex ids
        ("aws:///us-east-1a/1a2b3c/fargate-ip-10-0-3-4.ec2.internal", None),  # Fargate: no instance
        (
            "gce://p-1/us-central1-a/gke-c-default-pool-1234",
            ("gcp", "projects/p-1/zones/us-central1-a/instances/gke-c-default-pool-1234"),
        ),
        (
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
            ("azure", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1"),
        ),
        ("kind://docker/kind/kind-control-plane", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_instance_identity(provider_id: object, expected: tuple[str, str] | None) -> None:
    assert instance_identity(provider_id) == expected


def test_pod_identity_associations_describe_answers() -> None:
    answers = [
        orjson.loads(line)
        for line in (FIX / "aws_eks__describe_pod_identity_association.jsonl").read_bytes().splitlines()
    ]
    rows = pod_identity_bindings(answers, evidence_id="e" * 64)
    assert [(r["namespace"], r["service_account"], r["cloud_identity"]) for r in rows] == [
        ("ns-a", "sa1", "arn:aws:iam::823571991546:role/eks-pod-s3-read-access-role"),
        ("shop", "exporter", "arn:aws:iam::823571991546:role/exporter-source"),
        ("shop", "exporter", "arn:aws:iam::444455556666:role/exporter-target"),
    ]
    assert {r["kind"] for r in rows} == {"pod-identity"} and {r["cluster"] for r in rows} == {"prod"}
    assert rows[0]["declared_by"].startswith("association arn:aws:eks:us-west-2:823571991546:podidentityassociation/")
    assert rows[2]["declared_by"].endswith("(target role)")
    assert all(set(r) == set(CLOUD_BINDINGS.names) for r in rows)
    # one answer alone, as the CLI prints it
    assert len(pod_identity_bindings(answers[0])) == 1


def test_pod_identity_list_output_names_no_role_so_binds_nothing() -> None:
    listed = orjson.loads((FIX / "aws_eks__list_pod_identity_associations_no_role.json").read_bytes())
    assert pod_identity_bindings(listed) == []
    assert pod_identity_bindings({"unrelated": 1}) == [] and pod_identity_bindings("text") == []
