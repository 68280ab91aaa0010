"""The preservation block: per reached pod a checkpoint, its logs and its object; per held node
its memory and a disk snapshot by cloud; the attacker's objects; what is already gone; the
collector once more. Every command runs through bash against stub kubectl/aws/gcloud/az/
k8sforensics executables that record their argv: each receives exactly the argv intended, and
every file a check expects is there afterwards."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from k8sforensics.remediation.commands import pipe, save, tolerate
from k8sforensics.remediation.preserve import preservation_actions

EVIL = "p;touch${IFS}/tmp/x"
CASE = "cases/breach-1"
AWS_NODE = ("ip-10-0-1-5.ec2.internal", "aws:///us-east-1a/i-0123456789abcdef0")
GCE_NODE = ("gke-pool-1-abc", "gce://shop-prod-42/europe-west4-b/gke-pool-1-abc")
AZURE_VM = (
    "aks-vm-1",
    "azure:///subscriptions/12345678-1234-1234-1234-123456789abc/resourceGroups/rg-prod/providers/"
    "Microsoft.Compute/virtualMachines/vm-1",
)
AZURE_VMSS = (
    "aks-nodepool1-0",
    "azure:///subscriptions/12345678-1234-1234-1234-123456789abc/resourcegroups/mc_rg_cl_westeurope/"
    "providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-123-vmss/virtualMachines/3",
)

# A stub per tool: appends its argv to argv.jsonl and prints what the real tool would, enough for the chain to go on.
STUB = r"""#!/usr/bin/env python3
import json, os, sys
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
open(os.environ["ARGV_LOG"], "a").write(json.dumps([tool, *args]) + "\n")
if os.environ.get("STUB_FAIL") == tool:
    sys.exit("error: not found")
if tool == "kubectl":
    if "--previous" in args:
        sys.exit('previous terminated container "app" in pod "web-1" not found')
    if args[:2] == ["create", "--raw"]:
        print(json.dumps({"items": ["/var/lib/kubelet/checkpoints/checkpoint-web-1_shop-app-2024-05-10T10:00:00Z.tar"]}))
    elif "logs" in args:
        print("2024-05-10T10:00:00.000000000Z started")
    else:
        print(json.dumps({"kind": "Pod", "metadata": {"name": "web-1"}}))
elif tool == "aws":
    if "describe-instances" in args:
        print("vol-0a\tvol-0b")
    else:
        print(json.dumps({"SnapshotId": "snap-1", "VolumeId": args[-1]}))
elif tool == "gcloud":
    if "describe" in args:
        print("disk-boot\ndisk-data")
    elif "list" in args:
        print(json.dumps([{"name": "snap-1"}]))
elif tool == "az":
    if "show" in args:
        print("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/osdisk-1")
    else:
        print(json.dumps({"id": "snapshot-1"}))
elif tool == "k8sforensics" and args[0] == "collect":
    out = args[args.index("--out") + 1]
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "collection.json"), "w").write("{}")
"""
STUBBED = ("kubectl", "aws", "gcloud", "az", "k8sforensics")


def run(commands: list[str], tmp_path: Path, **env: str) -> tuple[list[list[str]], list[int]]:
    """Each command through bash in ``tmp_path`` with the stubs first on PATH: the argv the stubs got, and the exit codes."""
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for tool in STUBBED:
            (bin_dir / tool).write_text(STUB)
            (bin_dir / tool).chmod(0o755)
    log = tmp_path / "argv.jsonl"
    log.unlink(missing_ok=True)
    codes = []
    for c in commands:
        assert subprocess.run(["bash", "-n", "-c", c], capture_output=True).returncode == 0, c
        done = subprocess.run(
            ["bash", "-c", c],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "ARGV_LOG": str(log), **env},
        )
        codes.append(done.returncode)
    return ([json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []), codes


def pods(*rows: tuple[str, str, str | None, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"namespace": ns, "name": n, "node": node, "containers": cs, "uid": "u-" + n} for ns, n, node, cs in rows],
        columns=["namespace", "name", "uid", "node", "containers"],
    )


def nodes(*rows: tuple[str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"name": n, "provider_id": pid, "uid": "u-" + n} for n, pid in rows], columns=["name", "uid", "provider_id"]
    )


def plan(
    *,
    pod_rows: pd.DataFrame | None = None,
    node_rows: pd.DataFrame | None = None,
    ended: dict[str, Any] | None = None,
    objects: list[dict[str, Any]] | None = None,
    root: str = "preserved",
) -> list[dict[str, Any]]:
    return preservation_actions(
        pods=pod_rows if pod_rows is not None else pods(),
        ended=ended or {},
        nodes=node_rows if node_rows is not None else nodes(),
        objects=objects or [],
        case_path=CASE,
        root=root,
    )


def paths_in(check: dict[str, Any] | None) -> list[str]:
    if not check:
        return []
    if "all" in check or "any" in check:
        return [p for part in check.get("all", check.get("any")) for p in paths_in(part)]
    return [check["path"]] if check["expect"] == "file" else []


def test_helpers_compose_as_bash_reads_them(tmp_path: Path) -> None:
    cmd = tolerate(save(pipe("printf 'a b'", "tr ' ' _"), "out.txt"), otherwise="rm -f out.txt.partial")
    assert (
        cmd
        == "{ printf 'a b' | tr ' ' _ > out.txt.partial && mv -f out.txt.partial out.txt || rm -f out.txt.partial; }"
    )
    assert subprocess.run(["bash", "-c", cmd], cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.txt").read_text() == "a_b" and not (tmp_path / "out.txt.partial").exists()
    assert save("x", "a b/c") == "x > 'a b/c.partial' && mv -f 'a b/c.partial' 'a b/c'"


def test_running_pod_checkpoint_logs_and_object_each_get_exactly_their_argv(tmp_path: Path) -> None:
    rows = plan(pod_rows=pods(("shop", "web-1", "node-a", ["app"])))
    commands = [r["command"] for r in rows if r["command"]]
    argv, codes = run(commands, tmp_path)
    assert codes == [0] * len(commands)
    assert argv == [
        ["kubectl", "create", "--raw", "/api/v1/nodes/node-a/proxy/checkpoint/shop/web-1/app", "-f", "/dev/null"],
        ["kubectl", "-n", "shop", "logs", "web-1", "-c", "app", "--timestamps"],
        ["kubectl", "-n", "shop", "logs", "web-1", "-c", "app", "--timestamps", "--previous"],
        ["kubectl", "-n", "shop", "get", "pod", "web-1", "-o", "json"],
        ["k8sforensics", "collect", "--out", "preserved/inventory"],
        ["k8sforensics", "ingest", "preserved", "--case", CASE],
    ]
    base = tmp_path / "preserved/pods/shop/web-1"
    # no previous instance: kubectl failed, the chain went on, and neither a file nor a partial one is left behind
    assert not (base / "app.previous.log").exists() and not list(tmp_path.rglob("*.partial"))
    assert json.loads((base / "checkpoint-app.json").read_text())["items"][0].startswith(
        "/var/lib/kubelet/checkpoints/"
    )
    sums = (tmp_path / "preserved/SHA256SUMS").read_text()
    assert (
        "preserved/pods/shop/web-1/app.log" in sums
        and "preserved/inventory/collection.json" in sums
        and "SHA256SUMS" not in sums
    )
    # every file a check expects is there, but the checkpoint archive, which is copied off the node by hand
    expected = [p for r in rows for p in paths_in(r["check"])]
    assert [p for p in expected if not (tmp_path / p).is_file()] == ["preserved/pods/shop/web-1/checkpoint-app.tar"]
    checkpoint = rows[0]
    for needed in (
        "1.30",
        "ContainerCheckpoint",
        "CRI-O",
        "containerd ≥ 2.0",
        "nodes/proxy",
        "/var/lib/kubelet/checkpoints/",
    ):
        assert needed in checkpoint["action"], needed


def test_a_failed_rerun_never_truncates_the_copy_taken_before(tmp_path: Path) -> None:
    row = next(
        r for r in plan(pod_rows=pods(("shop", "web-1", "node-a", ["app"]))) if r["artifact"].endswith("pod.json")
    )
    run([row["command"]], tmp_path)
    first = (tmp_path / row["artifact"]).read_text()
    _, codes = run([row["command"]], tmp_path, STUB_FAIL="kubectl")  # the pod is gone by now
    assert codes == [1] and (tmp_path / row["artifact"]).read_text() == first


@pytest.mark.parametrize(
    "node, calls, artifact",
    [
        (
            AWS_NODE,
            [
                [
                    "aws",
                    "ec2",
                    "describe-instances",
                    "--region",
                    "us-east-1",
                    "--instance-ids",
                    "i-0123456789abcdef0",
                    "--query",
                    "Reservations[].Instances[].BlockDeviceMappings[].Ebs.VolumeId",
                    "--output",
                    "text",
                ],
                *[
                    [
                        "aws",
                        "ec2",
                        "create-snapshot",
                        "--region",
                        "us-east-1",
                        "--description",
                        "k8sforensics case breach-1: node ip-10-0-1-5.ec2.internal (i-0123456789abcdef0) before remediation",
                        "--tag-specifications",
                        json.dumps(
                            [
                                {
                                    "ResourceType": "snapshot",
                                    "Tags": [
                                        {"Key": "k8sforensics-case", "Value": "breach-1"},
                                        {"Key": "k8sforensics-node", "Value": AWS_NODE[0]},
                                    ],
                                }
                            ]
                        ),
                        "--volume-id",
                        vol,
                    ]
                    for vol in ("vol-0a", "vol-0b")
                ],
            ],
            "ebs-snapshots.json",
        ),
        (
            GCE_NODE,
            [
                [
                    "gcloud",
                    "compute",
                    "instances",
                    "describe",
                    "gke-pool-1-abc",
                    "--project",
                    "shop-prod-42",
                    "--zone",
                    "europe-west4-b",
                    "--flatten",
                    "disks",
                    "--format",
                    "value(disks.source.basename())",
                ],
                [
                    "gcloud",
                    "compute",
                    "disks",
                    "snapshot",
                    "--project",
                    "shop-prod-42",
                    "--zone",
                    "europe-west4-b",
                    "--description",
                    "k8sforensics case breach-1: node gke-pool-1-abc (gke-pool-1-abc) before remediation",
                    "--labels",
                    "k8sforensics_case=breach-1,k8sforensics_node=gke-pool-1-abc",
                    "disk-boot",
                    "disk-data",
                ],
                [
                    "gcloud",
                    "compute",
                    "snapshots",
                    "list",
                    "--project",
                    "shop-prod-42",
                    "--filter",
                    "labels.k8sforensics_node=gke-pool-1-abc AND labels.k8sforensics_case=breach-1",
                    "--format",
                    "json",
                ],
            ],
            "gce-snapshots.json",
        ),
        (
            AZURE_VM,
            [
                [
                    "az",
                    "vm",
                    "show",
                    "--subscription",
                    "12345678-1234-1234-1234-123456789abc",
                    "--resource-group",
                    "rg-prod",
                    "--name",
                    "vm-1",
                    "--query",
                    "storageProfile.osDisk.managedDisk.id",
                    "--output",
                    "tsv",
                ],
                [
                    "az",
                    "snapshot",
                    "create",
                    "--subscription",
                    "12345678-1234-1234-1234-123456789abc",
                    "--resource-group",
                    "rg-prod",
                    "--name",
                    "breach-1-vm-1-osdisk",
                    "--tags",
                    "k8sforensics-case=breach-1",
                    "k8sforensics-node=aks-vm-1",
                    "--source",
                    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/osdisk-1",
                ],
            ],
            "azure-snapshot.json",
        ),
        (
            AZURE_VMSS,
            [
                [
                    "az",
                    "vmss",
                    "show",
                    "--subscription",
                    "12345678-1234-1234-1234-123456789abc",
                    "--resource-group",
                    "mc_rg_cl_westeurope",
                    "--name",
                    "aks-nodepool1-123-vmss",
                    "--instance-id",
                    "3",
                    "--query",
                    "storageProfile.osDisk.managedDisk.id",
                    "--output",
                    "tsv",
                ],
                [
                    "az",
                    "snapshot",
                    "create",
                    "--subscription",
                    "12345678-1234-1234-1234-123456789abc",
                    "--resource-group",
                    "mc_rg_cl_westeurope",
                    "--name",
                    "breach-1-aks-nodepool1-123-vmss_3-osdisk",
                    "--tags",
                    "k8sforensics-case=breach-1",
                    "k8sforensics-node=aks-nodepool1-0",
                    "--source",
                    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/osdisk-1",
                ],
            ],
            "azure-snapshot.json",
        ),
    ],
)
def test_node_disk_snapshot_per_cloud_runs_as_its_argv(
    node: tuple[str, str], calls: list[list[str]], artifact: str, tmp_path: Path
) -> None:
    rows = [r for r in plan(node_rows=nodes(node)) if r["target"] == f"node:{node[0]}"]
    memory, disk = rows
    # memory first: it is volatile and no snapshot holds it
    assert "memory is volatile" in memory["action"] and not memory["command"]
    assert memory["check"] == {"expect": "file", "path": f"preserved/nodes/{node[0]}/memory.lime"}
    assert disk["artifact"] == f"preserved/nodes/{node[0]}/{artifact}" and disk["check"] == {
        "expect": "file",
        "path": disk["artifact"],
    }
    assert "after the memory capture" in disk["action"]
    argv, codes = run([disk["command"]], tmp_path)
    assert codes == [0] and argv == calls
    assert (tmp_path / disk["artifact"]).stat().st_size > 0


@pytest.mark.parametrize(
    "provider_id",
    [
        "kind://docker/kind/kind-worker",  # kind: a container, no cloud disk
        "",  # bare metal: no provider id
        "aws:///us-east-1a/i-0123;touch /tmp/x",  # forged instance id
        "aws:///us-east-1a/i-0123456789abcdef0/extra",  # one segment too many
        "gce://shop-prod-42/europe-west4-b",  # the instance is missing
        "azure:///subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
        "azure:///subscriptions/12345678-1234-1234-1234-123456789abc/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/$(id)",
        "openstack:///3c5e1a7b-0d9f-4c36-9a0e-1f2b3c4d5e6f",  # a cloud without a snapshot command here
    ],
)
def test_a_provider_id_that_does_not_parse_gets_the_procedure_in_words(provider_id: str) -> None:
    disk = [r for r in plan(node_rows=nodes(("node-1", provider_id))) if r["target"] == "node:node-1"][-1]
    assert disk["command"] == "" and disk["check"]["expect"] == "manual"
    assert "memory capture" in disk["action"] and "image" in disk["action"]


def test_ended_pods_say_their_evidence_is_gone_with_the_time_to_the_second_in_utc() -> None:
    rows = plan(
        ended={
            "pod:shop/web-0": "2024-05-10T12:03:07.9+02:00",
            "pod:shop/job-1": {"ended": pd.Timestamp("2024-05-10 09:00:00"), "node": "node-b"},
            "node:node-c": None,
        }
    )
    by_target = {r["target"]: r for r in rows}
    web = by_target["pod:shop/web-0"]
    assert "ended at 2024-05-10 10:03:07 UTC" in web["action"] and "gone from the cluster" in web["action"]
    assert "/var/log/pods/shop_web-0_<uid>/" in web["action"] and "log pipeline" in web["action"]
    assert web["command"] == "" and web["check"]["expect"] == "manual"
    assert (
        "on node node-b" in by_target["pod:shop/job-1"]["action"]
        and "09:00:00 UTC" in by_target["pod:shop/job-1"]["action"]
    )
    assert "at an unknown time" in by_target["node:node-c"]["action"]


def test_attacker_objects_are_saved_by_resource_and_namespace(tmp_path: Path) -> None:
    objects = [
        {
            "resource": "clusterrolebindings",
            "namespace": None,
            "name": "system:evil",
            "target": "clusterrolebinding:system:evil",
        },
        {"resource": "cronjobs", "namespace": "shop", "name": "miner", "target": "workload:shop/cronjobs/miner"},
        {"resource": "secrets", "namespace": "shop", "name": "stolen", "target": "secret:shop/stolen"},
        {"resource": "pods", "namespace": "shop", "name": "web-1", "target": "pod:shop/web-1"},
    ]  # saved by its pod row already
    rows = [
        r for r in plan(pod_rows=pods(("shop", "web-1", "node-a", [])), objects=objects) if "/objects/" in r["artifact"]
    ]
    assert [r["artifact"] for r in rows] == [
        "preserved/objects/clusterrolebindings/system:evil.json",
        "preserved/objects/cronjobs/shop/miner.json",
        "preserved/objects/secrets/shop/stolen.json",
    ]
    assert [r["target"] for r in rows] == [o["target"] for o in objects[:3]]
    assert "sealed" in rows[2]["action"]
    argv, codes = run([r["command"] for r in rows], tmp_path)
    assert codes == [0, 0, 0] and argv == [
        ["kubectl", "get", "clusterrolebindings", "system:evil", "-o", "json"],
        ["kubectl", "-n", "shop", "get", "cronjobs", "miner", "-o", "json"],
        ["kubectl", "-n", "shop", "get", "secrets", "stolen", "-o", "json"],
    ]
    assert all((tmp_path / r["artifact"]).is_file() for r in rows)


def test_a_forged_name_never_reaches_a_command(tmp_path: Path) -> None:
    Path("/tmp/x").unlink(missing_ok=True)
    rows = plan(
        pod_rows=pods(
            ("shop", EVIL, "node-a", ["app"]),
            ("shop", "web-1", "node-a", [EVIL, "app"]),
            (EVIL, "web-2", "node-a", ["app"]),
            ("shop", "web-3", EVIL, ["app"]),
        ),
        node_rows=nodes((EVIL, AWS_NODE[1]), ("node-b", f"aws:///us-east-1a/{EVIL}")),
        objects=[
            {"resource": "cronjobs", "namespace": "shop", "name": EVIL, "target": f"workload:shop/cronjobs/{EVIL}"},
            {"resource": EVIL, "namespace": None, "name": "x", "target": "x"},
        ],
        ended={f"pod:shop/{EVIL}": "2024-05-10T10:00:00Z"},
    )
    commands = [r["command"] for r in rows if r["command"]]
    assert not any("touch" in c or "IFS" in c for c in commands)
    assert not any("touch" in p for r in rows for p in [r["artifact"], *paths_in(r["check"])])
    flagged = {r["target"] for r in rows if "SUSPICIOUS EVIDENCE" in r["action"]}
    assert {
        f"pod:shop/{EVIL}",
        "pod:shop/web-1",
        f"pod:{EVIL}/web-2",
        "pod:shop/web-3",
        f"node:{EVIL}",
        f"workload:shop/cronjobs/{EVIL}",
        "x",
    } <= flagged
    # the valid ones keep their commands: web-1's app container, web-3's logs and object (its node is forged: no checkpoint)
    assert any("web-1 -c app" in c for c in commands) and any("get pod web-3" in c for c in commands)
    assert not any("proxy/checkpoint/shop/web-3" in c for c in commands)
    run(commands, tmp_path)
    assert not Path("/tmp/x").exists()


def test_every_command_parses_and_every_path_stays_under_the_root() -> None:
    rows = plan(
        pod_rows=pods(
            ("shop", "web-1", "node-a", ["app", "istio-proxy"]), ("kube-system", "coredns-1", None, ["coredns"])
        ),
        node_rows=nodes(AWS_NODE, GCE_NODE, AZURE_VM, AZURE_VMSS, ("kind-worker", "kind://docker/kind/kind-worker")),
        objects=[
            {
                "resource": "daemonsets",
                "namespace": "kube-system",
                "name": "x",
                "target": "workload:kube-system/daemonsets/x",
            }
        ],
        ended={"pod:shop/web-0": "2024-05-10T10:00:00Z"},
        root="evidence/ir-7",
    )
    assert {r["kind"] for r in rows} == {"preserve"} and {r["control"] for r in rows} == {"evidence preservation"}
    assert all(
        set(r)
        == {"kind", "action", "target", "control", "why", "command", "artifact", "check", "references", "event_ids"}
        for r in rows
    )
    assert rows[-1]["target"] == "cluster" and "ingest evidence/ir-7 --case cases/breach-1" in rows[-1]["command"]
    for r in rows:
        if r["command"]:
            assert subprocess.run(["bash", "-n", "-c", r["command"]], capture_output=True).returncode == 0, r["command"]
        for p in [r["artifact"], *paths_in(r["check"])] if r["artifact"] else paths_in(r["check"]):
            assert p.startswith("evidence/ir-7/") and ".." not in p.split("/"), p
        assert r["check"] and (r["check"].get("expect") or r["check"].get("all"))
        if not r["command"] and r["target"].startswith("pod:"):
            assert r["check"]["expect"] == "manual"
    # the pod whose node is unknown: logs and object, but no checkpoint command
    assert not any("coredns-1" in r["command"] and "checkpoint" in r["command"] for r in rows)
    # every redirection target in a command is one of the row's paths or its partial copy
    for r in rows:
        words = shlex.split(r["command"].replace("{", "").replace("}", "").replace(";", "")) if r["command"] else []
        for i, w in enumerate(words):
            if w == ">":
                assert words[i + 1].startswith("evidence/ir-7/") and words[i + 1].endswith(".partial")


@pytest.mark.parametrize("root", ["/abs", "../up", "a/../b", "", "a b", "$(id)"])
def test_root_must_be_a_plain_relative_folder(root: str) -> None:
    with pytest.raises(ValueError):
        plan(root=root)


def test_the_verifier_reads_each_check_after_the_commands_ran(tmp_path: Path) -> None:
    from k8sforensics.remediation.verify import Snapshot, evaluate_check

    rows = plan(
        pod_rows=pods(("shop", "web-1", "node-a", ["app"])), node_rows=nodes(AWS_NODE), ended={"pod:shop/web-0": None}
    )
    run([r["command"] for r in rows if r["command"]], tmp_path)

    def verdicts() -> list[str]:
        return [
            evaluate_check(r["check"], Snapshot(path=tmp_path), case_dir=tmp_path / "case", preserved_root=tmp_path)[0]
            for r in rows
        ]

    kinds = ["checkpoint", "memory", "logs", "pod", "disk", "ended", "collect"]
    assert dict(zip(kinds, verdicts())) == {
        "checkpoint": "not done",
        "memory": "not done",
        "logs": "done",
        "pod": "done",
        "disk": "done",
        "ended": "not checkable",
        "collect": "not checkable",
    }
    (tmp_path / rows[0]["artifact"]).write_bytes(b"tar")  # the archive copied off the node
    (tmp_path / rows[1]["artifact"]).write_bytes(b"lime")  # the memory image
    assert verdicts()[:2] == ["done", "done"]


def test_the_sample_checklist_preserves_first_and_each_command_runs_to_its_files(
    sample_case: Any, tmp_path: Path
) -> None:
    import k8sforensics as kf

    actions = kf.remediation(sample_case)
    preserve = actions[actions["kind"] == "preserve"]
    assert len(preserve) >= 5 and list(preserve.index) == list(range(len(preserve)))  # the first block
    argv, codes = run([c for c in preserve["command"] if c], tmp_path)
    assert set(codes) == {0} and {a[0] for a in argv} <= set(STUBBED)
    missing = [p for check in preserve["check"] for p in paths_in(check) if not (tmp_path / p).is_file()]
    assert all(p.endswith((".tar", "memory.lime")) for p in missing), missing  # copied off the node by hand


def test_the_checkpoint_prerequisites_are_said_once_on_the_first_checkpoint() -> None:
    rows = plan(pod_rows=pods(("shop", "web-1", "node-a", ["app", "sidecar"]), ("shop", "web-2", "node-b", ["app"])))
    checkpoints = [r for r in rows if "checkpoint" in r["command"]]
    assert len(checkpoints) == 3
    assert "Prerequisites: Kubernetes ≥ 1.30" in checkpoints[0]["action"]
    assert not any("Prerequisites" in r["action"] for r in checkpoints[1:])
    assert all(
        "/var/lib/kubelet/checkpoints/" in r["action"] for r in checkpoints
    )  # where each archive lands stays per step
