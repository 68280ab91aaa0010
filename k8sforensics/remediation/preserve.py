"""Preserve before you destroy: the first block of the remediation plan collects what
containment and recovery will erase — container memory and logs, the objects about to be
deleted, the nodes' memory and disks — and says which evidence is already gone.

Rows run in the order of volatility (RFC 3227, section 2.1): memory first (container
checkpoints, node memory), then what dies with a pod (its logs, its object), then the attacker's
objects, then disks, and last the collector once more with everything ingested into the case so
each file enters the manifest with its sha256 (chain of custody).

Every name that reaches a command or a path is validated (``commands.valid_name``); cloud
provider ids are parsed with strict patterns — an id that does not parse gets the procedure in
words, never a half-filled command.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .. import node_ids
from ..frames import clock
from .commands import (
    chain,
    command,
    kubectl,
    pipe,
    save,
    suspicious,
    tolerate,
    valid_name,
)

CONTROL = "evidence preservation"
_ROOT_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_RESOURCE = re.compile(r"[a-z][a-z0-9]*(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")  # plural resource, optionally .group
_NAME_KIND = {
    "roles": "role",
    "rolebindings": "rolebinding",
    "clusterroles": "clusterrole",
    "clusterrolebindings": "clusterrolebinding",
}

# spec.providerID as the cloud controller managers write it.
# AWS (cloud-provider-aws): aws:///<availability-zone>/<instance-id>; instance ids are i- and 8 or 17 hex
# (Amazon EC2 docs: "Resource IDs"). The region is the zone without its letter suffix (us-east-1a → us-east-1,
# local zones us-west-2-lax-1a → us-west-2).
_AWS = re.compile(
    r"aws:///(?P<zone>(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)(?:-[a-z]+-\d+)?[a-z])/(?P<instance>i-[0-9a-f]{8}(?:[0-9a-f]{9})?)"
)
# GCE (cloud-provider-gcp): gce://<project>/<zone>/<instance>; project ids 6-30 of [a-z0-9-] (domain-scoped
# "example.com:proj" too), zones like europe-west4-b, instance names RFC 1035 labels (Google Cloud docs:
# "Creating and managing projects", "Naming resources").
_GCE = re.compile(
    r"gce://(?P<project>(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"/(?P<zone>[a-z]+-[a-z]+\d+-[a-z])/(?P<instance>[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)"
)
# Azure (cloud-provider-azure): azure:///subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Compute/
# virtualMachines/<vm> or .../virtualMachineScaleSets/<vmss>/virtualMachines/<instance-id> (AKS node pools);
# AKS writes some segments in lower case. Resource groups: 1-90 of letters, digits, _ . ( ) -, not ending in a
# period (Azure docs: "Naming rules and restrictions for Azure resources").
_AZURE = re.compile(
    r"azure:///subscriptions/(?P<subscription>[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"
    r"/resourceGroups/(?P<group>[-\w.()]{0,89}[-\w()])/providers/Microsoft\.Compute/"
    r"(?:virtualMachineScaleSets/(?P<vmss>[A-Za-z0-9][-\w.]{0,62})/virtualMachines/(?P<index>\d{1,10})"
    r"|virtualMachines/(?P<vm>[A-Za-z0-9][-\w.]{0,62}))",
    re.IGNORECASE | re.ASCII,
)

_CHECKPOINT_REFS = "Kubernetes docs: Kubelet Checkpoint API; KEP-2008 Forensic Container Checkpointing; RFC 3227"
_MEMORY_REFS = "RFC 3227 (order of volatility); NIST SP 800-86; AVML (github.com/microsoft/avml); LiME (github.com/504ensicsLabs/LiME)"


def preservation_actions(
    *,
    pods: pd.DataFrame,
    ended: Mapping[str, Any],
    nodes: pd.DataFrame,
    objects: Sequence[Mapping[str, Any]],
    case_path: str,
    root: str = "preserved",
) -> list[dict[str, Any]]:
    """The preservation rows of the plan, in the order a responder runs them (RFC 3227).

    ``pods``: rows of the ``pods`` context table for the reached pods still running at the dump
    (an optional ``reason`` column says why a pod is preserved, default "the attacker reached it");
    ``ended``: ``pod:ns/name`` (or ``node:name``) → the time it ended (or a mapping with ``ended``
    and optionally ``node``) for reached objects already gone; ``nodes``: rows of the ``nodes``
    table for the nodes the attacker held; ``objects``: the attacker's objects about to be
    deleted (``resource``, ``namespace``, ``name``, ``target``). Artifact paths are relative to
    where the commands run, under ``root``."""
    root = _check_root(root)
    running = _pods(pods)
    held = _nodes(nodes)
    rows: list[dict[str, Any]] = []
    for p in running:
        rows += _checkpoint_rows(p, root)
    first = next((r for r in rows if r.get("command")), None)
    if first is not None:
        first["action"] += CHECKPOINT_PREREQUISITES
    for n in held:
        rows.append(_memory_row(n, root))
    for p in running:
        rows += _log_rows(p, root)
    for p in running:
        rows.append(_pod_object_row(p, root))
    covered = {("pods", p["namespace"], p["name"]) for p in running}
    seen: set[tuple[str, str, str]] = set()
    for o in objects:
        key = (str(o.get("resource") or ""), str(o.get("namespace") or ""), str(o.get("name") or ""))
        if key not in covered and key not in seen:
            seen.add(key)
            rows.append(_object_row(o, root))
    for n in held:
        rows.append(_disk_row(n, root, case_path))
    for target in sorted(ended):
        rows.append(_ended_row(target, ended[target]))
    rows.append(_collect_row(root, case_path))
    return rows


def _check_root(root: str) -> str:
    """``root`` is a relative path of plain segments: every artifact path stays under it."""
    parts = root.strip("/").split("/") if isinstance(root, str) else []
    if not parts or root.startswith("/") or not all(_ROOT_SEGMENT.fullmatch(p) and p not in (".", "..") for p in parts):
        raise ValueError(f"root must be a relative path of plain folder names, not {root!r}")
    return "/".join(parts)


def _row(
    action: str, target: str, *, why: str, check: dict[str, Any], references: str, command: str = "", artifact: str = ""
) -> dict[str, Any]:
    return {
        "kind": "preserve",
        "action": action,
        "target": target,
        "control": CONTROL,
        "why": why,
        "command": command,
        "artifact": artifact,
        "check": check,
        "references": references,
        "event_ids": [],
    }


def _file(path: str) -> dict[str, Any]:
    return {"expect": "file", "path": path}


def _manual(why: str) -> dict[str, Any]:
    return {"expect": "manual", "why": why}


def _strings(value: Any) -> list[str]:
    """A list column's value (list, numpy array or missing) as a list of strings."""
    if isinstance(value, str):
        return [value] if value else []
    if value is None or pd.api.types.is_scalar(value):
        return []
    return [str(v) for v in value if v is not None and str(v)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _pods(pods: pd.DataFrame) -> list[dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in pods.to_dict("records") if len(pods) else []:
        ns, name = _text(r.get("namespace")) or "", _text(r.get("name")) or ""
        if (ns, name) not in out:
            out[(ns, name)] = {
                "namespace": ns,
                "name": name,
                "node": _text(r.get("node")),
                "containers": _strings(r.get("containers")),
                "ok": valid_name(ns, kind="namespace") and valid_name(name),
                "reason": _text(r.get("reason")) or "the attacker reached it",
            }
    return [out[k] for k in sorted(out)]


def _nodes(nodes: pd.DataFrame) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in nodes.to_dict("records") if len(nodes) else []:
        name = _text(r.get("name")) or ""
        if name not in out:
            out[name] = {"name": name, "provider_id": _text(r.get("provider_id")) or "", "ok": valid_name(name)}
    return [out[k] for k in sorted(out)]


def _container_ok(name: str) -> bool:
    # container names are RFC 1123 labels, the same rule as namespace names
    return valid_name(name, kind="namespace")


def _pod_dir(p: Mapping[str, Any], root: str) -> str:
    return f"{root}/pods/{p['namespace']}/{p['name']}"


def _checkpoint_rows(p: Mapping[str, Any], root: str) -> list[dict[str, Any]]:
    """One container checkpoint per container, through the API server's node proxy to the kubelet
    checkpoint API (``POST /checkpoint/{namespace}/{pod}/{container}``; Kubernetes docs: Kubelet
    Checkpoint API). ``kubectl create --raw PATH -f FILE`` POSTs FILE's content to PATH with the
    kubeconfig's credentials and writes the response to stdout (kubectl create reference: --raw;
    kubernetes/kubernetes#54245; kubectl's pkg/rawhttp); the kubelet reads no body, so /dev/null.
    Through the node proxy the caller needs create on nodes/proxy; the API server's own kubelet
    client identity does the rest."""
    target = node_ids.pod(p["namespace"], p["name"])
    why = f"{p['reason']}; containment deletes or restarts it, and its memory (processes, keys, tooling) goes with it"
    if not p["ok"]:
        return [
            _row(
                f"Checkpoint the containers of pod {p['namespace']}/{p['name']}"
                + suspicious([p["namespace"], p["name"]]),
                target,
                why=why,
                check=_manual("no valid name to checkpoint by"),
                references=_CHECKPOINT_REFS,
            )
        ]
    node = p["node"]
    rows = []
    for c in p["containers"]:
        base = _pod_dir(p, root)
        response, archive = f"{base}/checkpoint-{c}.json", f"{base}/checkpoint-{c}.tar"
        what = f"Checkpoint container {c} of pod {p['namespace']}/{p['name']}"
        if not _container_ok(c):
            rows.append(
                _row(
                    what + suspicious([c]),
                    target,
                    why=why,
                    check=_manual("no valid container name"),
                    references=_CHECKPOINT_REFS,
                )
            )
            continue
        if not node or not valid_name(node):
            rows.append(
                _row(
                    what
                    + (
                        suspicious([node])
                        if node
                        else " — the pod's node is not known: find it (kubectl get pod -o wide) "
                        "and checkpoint through the kubelet checkpoint API by hand"
                    ),
                    target,
                    why=why,
                    check=_manual("the node is not known"),
                    references=_CHECKPOINT_REFS,
                )
            )
            continue
        path = f"/api/v1/nodes/{node}/proxy/checkpoint/{p['namespace']}/{p['name']}/{c}"
        cmd = chain(
            command("mkdir", "-p", base), save(command("kubectl", "create", "--raw", path, "-f", "/dev/null"), response)
        )
        where = (
            f"The kubelet writes the archive on the node as /var/lib/kubelet/checkpoints/checkpoint-{p['name']}_{p['namespace']}-{c}"
            f"-<timestamp>.tar (its path is in the saved response, {response}); copy it off the node to {archive} and keep it sealed: "
            f"it holds the container's secrets in clear."
        )
        rows.append(
            _row(
                f"{what} (on node {node}) before anything else touches it. {where}",
                target,
                why=why,
                command=cmd,
                artifact=archive,
                check={"all": [_file(response), _file(archive)]},
                references=_CHECKPOINT_REFS,
            )
        )
    return rows


# said once, on the first checkpoint step of a plan, rather than on every container's
CHECKPOINT_PREREQUISITES = (
    " A checkpoint holds every memory page of the container, which keeps running (it is frozen briefly). Prerequisites: Kubernetes "
    "≥ 1.30 (ContainerCheckpoint feature gate, on by default from 1.30), a runtime that implements CRI checkpointing (CRI-O ≥ 1.25 "
    "with enable_criu_support, containerd ≥ 2.0) with CRIU on the node, and RBAC create on nodes/proxy (a powerful grant: use the "
    "break-glass identity). Copy archives off the node with scp or your node-access tooling. A 404 means the feature or the container "
    "is missing (a finished init container cannot be checkpointed), a 500 that the runtime does not support it; a container with much "
    "memory may need ?timeout=<seconds> on the path. The other checkpoint steps below work the same way."
)


def _log_rows(p: Mapping[str, Any], root: str) -> list[dict[str, Any]]:
    """Current and previous logs per container, with the runtime's timestamps. The previous
    instance's log exists only if the container restarted: its failure is tolerated and its
    partial file removed, so the chain goes on (kubectl logs reference: --previous)."""
    target = node_ids.pod(p["namespace"], p["name"])
    why = f"{p['reason']}; the kubelet deletes a container's logs with the pod"
    refs = "Kubernetes docs: kubectl logs, Logging Architecture; RFC 3227"
    if not p["ok"]:
        return [
            _row(
                f"Save the container logs of pod {p['namespace']}/{p['name']}"
                + suspicious([p["namespace"], p["name"]]),
                target,
                why=why,
                check=_manual("no valid name to read logs by"),
                references=refs,
            )
        ]
    rows = []
    base = _pod_dir(p, root)
    for c in p["containers"]:
        what = f"Save the logs of container {c} of pod {p['namespace']}/{p['name']}"
        if not _container_ok(c):
            rows.append(
                _row(what + suspicious([c]), target, why=why, check=_manual("no valid container name"), references=refs)
            )
            continue
        current, previous = f"{base}/{c}.log", f"{base}/{c}.previous.log"
        cmd = chain(
            command("mkdir", "-p", base),
            save(kubectl("logs", p["name"], "-c", c, "--timestamps", namespace=p["namespace"]), current),
            tolerate(
                save(
                    kubectl("logs", p["name"], "-c", c, "--timestamps", "--previous", namespace=p["namespace"]),
                    previous,
                ),
                otherwise=command("rm", "-f", f"{previous}.partial"),
            ),
        )
        rows.append(
            _row(
                f"{what}, the current instance's to {current} and the previous instance's to {previous} — the previous one exists only if "
                f"the container restarted: when kubectl says no previous terminated container was found, no file is written and the "
                f"command goes on.",
                target,
                why=why,
                command=cmd,
                artifact=current,
                check=_file(current),
                references=refs,
            )
        )
    return rows


def _pod_object_row(p: Mapping[str, Any], root: str) -> dict[str, Any]:
    target = node_ids.pod(p["namespace"], p["name"])
    why = f"{p['reason']}; its spec and status (node, image digests, container ids, restarts) go when it is deleted"
    refs = "Kubernetes docs: kubectl get; RFC 3227"
    if not p["ok"]:
        return _row(
            f"Save pod {p['namespace']}/{p['name']} as JSON" + suspicious([p["namespace"], p["name"]]),
            target,
            why=why,
            check=_manual("no valid name to get the pod by"),
            references=refs,
        )
    path = f"{_pod_dir(p, root)}/pod.json"
    cmd = chain(
        command("mkdir", "-p", _pod_dir(p, root)),
        save(kubectl("get", "pod", p["name"], "-o", "json", namespace=p["namespace"]), path),
    )
    return _row(
        f"Save pod {p['namespace']}/{p['name']} as JSON to {path}",
        target,
        why=why,
        command=cmd,
        artifact=path,
        check=_file(path),
        references=refs,
    )


def _object_row(o: Mapping[str, Any], root: str) -> dict[str, Any]:
    resource, ns, name = o.get("resource"), o.get("namespace") or None, o.get("name")
    target = str(o.get("target") or f"{resource}:{(ns + '/') if ns else ''}{name}")
    shown = f"{resource} {(str(ns) + '/') if ns else ''}{name}"
    why = "eradication deletes it; its full spec (who made it, when, what it ran) is evidence"
    refs = "Kubernetes docs: kubectl get; RFC 3227"
    ok = (
        isinstance(resource, str)
        and bool(_RESOURCE.fullmatch(resource))
        and valid_name(name, kind=_NAME_KIND.get(resource, "object"))
        and (ns is None or valid_name(ns, kind="namespace"))
    )
    if not ok:
        return _row(
            f"Save {shown} as JSON" + suspicious([v for v in (resource, ns, name) if v is not None]),
            target,
            why=why,
            check=_manual("no valid name to get the object by"),
            references=refs,
        )
    folder = f"{root}/objects/{resource}" + (f"/{ns}" if ns else "")
    path = f"{folder}/{name}.json"
    cmd = chain(command("mkdir", "-p", folder), save(kubectl("get", resource, name, "-o", "json", namespace=ns), path))
    note = " It holds the Secret's data: keep the file sealed." if resource.split(".")[0] == "secrets" else ""
    return _row(
        f"Save {shown} as JSON to {path} before it is deleted.{note}",
        target,
        why=why,
        command=cmd,
        artifact=path,
        check=_file(path),
        references=refs,
    )


def _memory_row(n: Mapping[str, Any], root: str) -> dict[str, Any]:
    target = node_ids.node(n["name"])
    why = "the attacker held it; its memory is lost at the reboot, drain or rebuild that recovery brings"
    if not n["ok"]:
        return _row(
            f"Capture the memory of node {n['name']}" + suspicious([n["name"]]),
            target,
            why=why,
            check=_manual("no valid node name"),
            references=_MEMORY_REFS,
        )
    path = f"{root}/nodes/{n['name']}/memory.lime"
    return _row(
        f"Capture the memory of node {n['name']} first, before its disk snapshot and before cordon or drain: memory is volatile and a "
        f"disk snapshot does not hold it (running processes, injected code, keys, the attacker's tooling). If AVML or LiME can be run "
        f"on the node (SSH, SSM Run Command, or your node-access tooling), write the image to external storage — AVML: "
        f'`avml --compress memory.lime`, LiME: `insmod lime.ko "path=memory.lime format=lime"` — then copy it to {path} and '
        f"record its sha256. Without such tooling, say so in the case notes and go on with the disk snapshot.",
        target,
        why=why,
        artifact=path,
        check=_file(path),
        references=_MEMORY_REFS,
    )


def _label(value: str, *, size: int = 63) -> str:
    """A value as GCE labels and snapshot names take it: lower case letters, digits, - and _."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:size].strip("-") or "case"


def _case_name(case_path: str) -> str:
    return os.path.basename(os.path.normpath(case_path)) or "case"


def _disk_row(n: Mapping[str, Any], root: str, case_path: str) -> dict[str, Any]:
    """A snapshot of the node's disks, by the cloud spec.providerID names; any other node (kind,
    bare metal, an id that does not parse) gets the procedure in words."""
    target = node_ids.node(n["name"])
    why = "the attacker held it; recovery rebuilds it, which destroys its disk (files dropped, persistence, runtime and kubelet logs)"
    if not n["ok"]:
        return _row(
            f"Snapshot the disks of node {n['name']}" + suspicious([n["name"]]),
            target,
            why=why,
            check=_manual("no valid node name"),
            references="NIST SP 800-86",
        )
    pid, case = n["provider_id"], _case_name(case_path)
    folder = f"{root}/nodes/{n['name']}"
    after = " Run it after the memory capture (memory is volatile, the disk is not) and before the node is drained or terminated."
    if m := _AWS.fullmatch(pid):
        # AWS docs: "Create Amazon EBS snapshots" (aws ec2 create-snapshot, tag-specifications) and
        # "describe-instances" (BlockDeviceMappings[].Ebs.VolumeId): one snapshot per attached volume.
        region, instance = m["region"], m["instance"]
        path = f"{folder}/ebs-snapshots.json"
        tags = json.dumps(
            [
                {
                    "ResourceType": "snapshot",
                    "Tags": [
                        {"Key": "k8sforensics-case", "Value": case},
                        {"Key": "k8sforensics-node", "Value": n["name"]},
                    ],
                }
            ]
        )
        cmd = chain(
            command("mkdir", "-p", folder),
            save(
                pipe(
                    command(
                        "aws",
                        "ec2",
                        "describe-instances",
                        "--region",
                        region,
                        "--instance-ids",
                        instance,
                        "--query",
                        "Reservations[].Instances[].BlockDeviceMappings[].Ebs.VolumeId",
                        "--output",
                        "text",
                    ),
                    command(
                        "xargs",
                        "-r",
                        "-n",
                        "1",
                        "aws",
                        "ec2",
                        "create-snapshot",
                        "--region",
                        region,
                        "--description",
                        f"k8sforensics case {case}: node {n['name']} ({instance}) before remediation"[:255],
                        "--tag-specifications",
                        tags,
                        "--volume-id",
                    ),
                ),
                path,
            ),
        )
        return _row(
            f"Snapshot every EBS volume of node {n['name']} (EC2 instance {instance}, {region}), tagged with the case; the "
            f"snapshot descriptions go to {path}. A snapshot is crash-consistent, and volumes with DeleteOnTermination are "
            f"lost when the instance is terminated." + after,
            target,
            why=why,
            command=cmd,
            artifact=path,
            check=_file(path),
            references="AWS docs: Create Amazon EBS snapshots (ec2 create-snapshot); ec2 describe-instances; NIST SP 800-86",
        )
    if m := _GCE.fullmatch(pid):
        # Google Cloud docs: "Create and manage disk snapshots" (gcloud compute disks snapshot, several disks
        # at once, --labels) and "gcloud compute instances describe" (disks[].source).
        project, zone, instance = m["project"], m["zone"], m["instance"]
        path = f"{folder}/gce-snapshots.json"
        labels = f"k8sforensics_case={_label(case)},k8sforensics_node={_label(n['name'])}"
        cmd = chain(
            command("mkdir", "-p", folder),
            pipe(
                command(
                    "gcloud",
                    "compute",
                    "instances",
                    "describe",
                    instance,
                    "--project",
                    project,
                    "--zone",
                    zone,
                    "--flatten",
                    "disks",
                    "--format",
                    "value(disks.source.basename())",
                ),
                command(
                    "xargs",
                    "-r",
                    "gcloud",
                    "compute",
                    "disks",
                    "snapshot",
                    "--project",
                    project,
                    "--zone",
                    zone,
                    "--description",
                    f"k8sforensics case {case}: node {n['name']} ({instance}) before remediation",
                    "--labels",
                    labels,
                ),
            ),
            save(
                command(
                    "gcloud",
                    "compute",
                    "snapshots",
                    "list",
                    "--project",
                    project,
                    "--filter",
                    f"labels.k8sforensics_node={_label(n['name'])} AND labels.k8sforensics_case={_label(case)}",
                    "--format",
                    "json",
                ),
                path,
            ),
        )
        return _row(
            f"Snapshot every disk of node {n['name']} (GCE instance {instance}, project {project}, zone {zone}), labelled "
            f"with the case; the list of its snapshots goes to {path}. A snapshot is crash-consistent." + after,
            target,
            why=why,
            command=cmd,
            artifact=path,
            check=_file(path),
            references="Google Cloud docs: Create and manage disk snapshots (gcloud compute disks snapshot); NIST SP 800-86",
        )
    if m := _AZURE.fullmatch(pid):
        # Azure docs: "Create a snapshot of a virtual hard disk" (az snapshot create --source <disk id>),
        # "az vm show" / "az vmss show --instance-id" (storageProfile.osDisk.managedDisk.id).
        sub, group = m["subscription"], m["group"]
        path = f"{folder}/azure-snapshot.json"
        if m["vmss"]:
            vm = f"{m['vmss']}_{m['index']}"
            show = command(
                "az",
                "vmss",
                "show",
                "--subscription",
                sub,
                "--resource-group",
                group,
                "--name",
                m["vmss"],
                "--instance-id",
                m["index"],
                "--query",
                "storageProfile.osDisk.managedDisk.id",
                "--output",
                "tsv",
            )
            what = f"scale set {m['vmss']} instance {m['index']}"
        else:
            vm = m["vm"]
            show = command(
                "az",
                "vm",
                "show",
                "--subscription",
                sub,
                "--resource-group",
                group,
                "--name",
                vm,
                "--query",
                "storageProfile.osDisk.managedDisk.id",
                "--output",
                "tsv",
            )
            what = f"VM {vm}"
        # snapshot names: 1-80 of letters, digits, _ . - (Azure naming rules, Microsoft.Compute/snapshots)
        name = (
            re.sub(r"[^A-Za-z0-9_.-]", "-", f"{case}-{vm}-osdisk")[-80:].lstrip("_.-").rstrip(".-")
            or "k8sforensics-osdisk"
        )
        cmd = chain(
            command("mkdir", "-p", folder),
            save(
                pipe(
                    show,
                    command(
                        "xargs",
                        "-r",
                        "-n",
                        "1",
                        "az",
                        "snapshot",
                        "create",
                        "--subscription",
                        sub,
                        "--resource-group",
                        group,
                        "--name",
                        name,
                        "--tags",
                        f"k8sforensics-case={case}",
                        f"k8sforensics-node={n['name']}",
                        "--source",
                    ),
                ),
                path,
            ),
        )
        return _row(
            f"Snapshot the OS disk of node {n['name']} (Azure {what}, resource group {group}) as {name}, tagged with the case; "
            f"the snapshot's description goes to {path}. An ephemeral OS disk (the AKS default where the VM size allows it) "
            f"has no managed disk to snapshot: then the lookup returns nothing and the disk must be imaged from inside the "
            f"node; data disks (storageProfile.dataDisks) are snapshotted the same way." + after,
            target,
            why=why,
            command=cmd,
            artifact=path,
            check=_file(path),
            references="Azure docs: Create a snapshot of a virtual hard disk (az snapshot create); az vm show; az vmss show; "
            "NIST SP 800-86",
        )
    shown = f"provider id {pid!r}" if pid else "no provider id"
    return _row(
        f"Image the disk of node {n['name']} ({shown}: no cloud snapshot applies, or the id does not parse): after the memory capture, "
        f"take the disk image from outside the running system where possible — a hypervisor or storage snapshot, or boot the machine "
        f"from forensic media and image the root and data devices (dd or dc3dd to external storage) — record the image's sha256, and "
        f"copy it to {folder}/. For a kind node (a container), `docker export` of the node container and `docker cp` of "
        f"/var/log and /var/lib/kubelet are the nearest equivalent.",
        target,
        why=why,
        check=_manual("the disk image is taken outside the cluster"),
        references="NIST SP 800-86; RFC 3227",
    )


def _when(value: Any) -> str:
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        return "at an unknown time"
    if pd.isna(t):
        return "at an unknown time"
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return f"at {clock(t)} UTC"


def _ended_row(target: str, value: Any) -> dict[str, Any]:
    """A reached pod or node already gone at the dump: its evidence is gone from the cluster;
    say when it ended and where copies may survive."""
    info = value if isinstance(value, Mapping) else {"ended": value}
    when = _when(info.get("ended", info.get("time")))
    parsed = node_ids.parse(target)
    kind, rest = parsed.kind, parsed.label
    refs = "Kubernetes docs: Logging Architecture (log rotation, /var/log/pods); RFC 3227"
    if kind == "node":
        flagged = "" if valid_name(rest) else suspicious([rest])
        return _row(
            f"Node {rest} ended {when}, before the dump: its memory, disk and local logs are gone from the cluster{flagged}. What may "
            f"survive: the instance's disks if the cloud kept them (a stopped instance, volumes without delete-on-termination, "
            f"earlier snapshots), the cloud's audit trail (CloudTrail, Cloud Audit Logs, Azure Activity Log) and whatever the log "
            f"pipeline shipped off the node. Record that its evidence is missing.",
            target,
            why=f"the attacker held it and it was gone {when}",
            check=_manual("evidence already gone; recorded only"),
            references=refs,
        )
    ns, name = parsed.namespace or "", parsed.name
    flagged = "" if valid_name(ns, kind="namespace") and valid_name(name) else suspicious([ns, name])
    node = _text(info.get("node"))
    on_node = (
        (f"on node {node}" + ("" if valid_name(node) else suspicious([node]))) if node else "on the node it ran on"
    )
    return _row(
        f"Pod {rest} ended {when}, before the dump: its containers, memory and logs are gone from the cluster{flagged}. What may "
        f"survive: the container runtime's logs {on_node}, if the node is still there and the kubelet has not cleaned them up "
        f"(/var/log/pods/{ns}_{name}_<uid>/ and the runtime's journal) — copy them before the node is drained or rebuilt; the "
        f"cluster's log pipeline and the API server audit log. Record that its live evidence is missing.",
        target,
        why=f"the attacker reached it and it was gone {when}",
        check=_manual("evidence already gone; recorded only"),
        references=refs,
    )


def _collect_row(root: str, case_path: str) -> dict[str, Any]:
    """The collector once more, a sha256 of every preserved file, and all of it into the case:
    the ingest records each file it reads with its sha256 in the case manifest."""
    inventory, sums = f"{root}/inventory", f"{root}/SHA256SUMS"
    cmd = chain(
        command("k8sforensics", "collect", "--out", inventory),
        save(command("find", root, "-type", "f", "!", "-name", "SHA256SUMS*", "-exec", "sha256sum", "{}", "+"), sums),
        command("k8sforensics", "ingest", root, "--case", case_path),
    )
    return _row(
        f"Run the collector once more into {inventory} (the cluster as it stands before containment), write the sha256 of every "
        f"preserved file to {sums} (sha256sum; `shasum -a 256` where it is missing), and ingest {root} into the case {case_path} so each file enters the manifest with its sha256 "
        f"(chain of custody); `k8sforensics verify {case_path}` confirms the case afterwards. Files no reader parses (archives, "
        f"memory images) are listed by the ingest as not evidence, with their sha256; {sums} is a second record beside them.",
        "cluster",
        why="chain of custody: what was preserved, when, and its hash",
        command=cmd,
        artifact=sums,
        check={
            "all": [
                _file(f"{inventory}/collection.json"),
                _file(sums),
                _manual("the ingest into the case is confirmed with k8sforensics verify"),
            ]
        },
        references="RFC 3227 (chain of custody); NIST SP 800-86",
    )
