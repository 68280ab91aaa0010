#!/usr/bin/env python3
"""The accuracy harness: every analysis held to its truth on many breaches of the scenario
family (``k8sforensics.samples.scenario``), plus the demo breach.

For each scenario it writes the evidence, ingests it into a fresh case and runs detect → kill
chain → lateral-movement graph → patient zero → remediation exactly as a user would; only then
does it read ``truth.json`` to score. Nothing it scores reads the truth.

Scores per scenario
    step recall        a step is found when a finding has one of its techniques, overlaps its window
                       (± SLACK for clock skew between sources) and names one of its entities
    noise              medium+ findings about no attack entity; low findings shown (the analyst's
                       reading load) against the number of steps; findings about benign look-alikes
    patient zero       rank of the truth's patient zero (a pod, or the identity used from outside)
    path edges         observed graph edges among the truth's lateral-movement hops
    attribution        the truth's (address, time) → pod checks, over the case's pod lifetimes
    deleted pods       pods deleted before the inventory dump that the case still knows
    remediation        must-do recall (preserve, rotate, delete, rebuild, block, redeploy, restore)
                       and must-not violations: isolate/redeploy a pod never reached, block a private
                       address, redeploy a system component, a step naming an empty or missing file
                       under remediation/, and every order violation — a pod, node or workload
                       destroyed (deleted, rebuilt, redeployed, drained, its pods deleted by a
                       rotation) before its preserve step, or an isolated pod destroyed with no
                       preserve step at all. Order violations are also counted on their own.
                       An action's verb is the checklist's ``kind`` column (issue 18 contract;
                       revoke counts as rotate, cordon as nothing), else read from its text.

    python benchmarks/accuracy.py                      # 40 scenarios + the demo, 2 processes
    python benchmarks/accuracy.py --n 8 --scale 0.2    # a quick look
    python benchmarks/accuracy.py --only 17            # one scenario, every miss printed
Each miss is printed with the command that rebuilds that scenario alone.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

SLACK = pd.Timedelta(seconds=60)  # the generator skews sources by up to ±4 s; flow logs aggregate per minute
TARGETS = {
    "step_recall": 0.95,
    "patient_zero_rank1": 0.95,
    "path_edges": 0.95,
    "attribution": 1.0,
    "noise_medium": 2.0,
    "low_per_step": 3.0,
    "must_recall": 1.0,
    "must_not": 0,
    "order_violations": 0,
}
KIND_RESOURCE = {
    "cronjob": "cronjobs",
    "daemonset": "daemonsets",
    "deployment": "deployments",
    "statefulset": "statefulsets",
    "job": "jobs",
    "replicaset": "replicasets",
    "pod": "pods",
}
PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


# ---------------------------------------------------------------------------- keys


def step_keys(step: dict[str, Any]) -> set[str]:
    """The names an attack step's entities go by (addresses, identities, ns/pod, objects)."""
    e = step["entities"]
    keys = {
        str(e[k])
        for k in ("source_ip", "destination_ip", "service_account", "node", "node_ip", "user", "secret", "webhook")
        if e.get(k)
    }
    keys |= set(e.get("node_ips", ()))  # traffic translated to its nodes' addresses names only them
    if e.get("pod"):
        keys.add(f"{e.get('namespace')}/{e['pod']}")
    if e.get("workload"):
        kind, _, name = str(e["workload"]).partition("/")
        keys |= {f"{e.get('namespace')}/{name}", name}
    if e.get("service_account"):
        ns, _, name = str(e["service_account"]).partition("/")
        keys.add(f"system:serviceaccount:{ns}:{name}")
    return keys


def finding_keys(f: Any) -> set[str]:
    """The names a finding's entities go by, in the same spellings."""
    keys = {
        str(getattr(f, c))
        for c in ("entity", "source_ip", "destination_ip", "user")
        if isinstance(getattr(f, c), str) and getattr(f, c)
    }
    ns, pod = f.namespace, f.pod
    if isinstance(ns, str) and isinstance(pod, str):
        keys.add(f"{ns}/{pod}")
    for k in list(keys):
        if k.startswith("system:serviceaccount:"):
            keys.add(k.removeprefix("system:serviceaccount:").replace(":", "/", 1))
        if "/" in k:  # "ns/Kind/name" or "ns/name": the object's own name too
            keys.add(k.rsplit("/", 1)[-1])
            parts = k.split("/")
            if len(parts) == 3:
                keys.add(f"{parts[0]}/{parts[2]}")
    return keys


def techniques_of(f: Any) -> set[str]:
    out = set()
    for c in ("technique_id", "attack_id"):
        v = getattr(f, c)
        if isinstance(v, str) and v:
            out |= {v, v.split(".")[0]}
    return out


# ---------------------------------------------------------------------------- remediation rows


def action_kind(action: str) -> str:
    """What a checklist row does, from its verb (for checklists without a ``kind`` column)."""
    a = action.lower()
    for verb, kind in (
        ("preserve", "preserve"),
        ("checkpoint", "preserve"),
        ("snapshot", "preserve"),
        ("isolate", "isolate"),
        ("quarantine", "isolate"),
        ("rotate", "rotate"),
        ("revoke", "rotate"),
        ("block", "block"),
        ("rebuild", "rebuild"),
        ("drain", "rebuild"),
        ("redeploy", "redeploy"),
        ("roll back", "redeploy"),
        ("restore", "restore"),
        ("reinstall", "restore"),
        ("delete", "delete"),
        ("remove", "delete"),
    ):
        if a.startswith(verb) or f" {verb} " in a[:40]:
            return kind
    return "other"


def normal_target(target: str) -> str:
    """One spelling per object: workload ids with the plural lower-case resource."""
    if target.startswith("workload:"):
        parts = target[9:].split("/")
        if len(parts) == 3:
            ns, kind, name = parts
            return f"workload:{ns}/{KIND_RESOURCE.get(kind.lower(), kind.lower())}/{name}"
    return target


def is_private(target: str) -> bool:
    if not target.startswith("ip:"):
        return False
    try:
        addr = ipaddress.ip_address(target[3:])
    except ValueError:
        return False
    return any(addr in n for n in PRIVATE if n.version == addr.version)


# ---------------------------------------------------------------------------- remediation checks

#: the contract's kinds as the truth's verbs: a revoked credential is a rotated one; a cordon
#: alone contains nothing the truth asks for (issue 18 contract, remediation.actions.ACTION_COLUMNS)
KIND_FOR_TRUTH = {"revoke": "rotate", "cordon": "cordon"}
#: kinds whose action destroys its own target (and what runs in it: a node's or a workload's pods)
DESTROYING = frozenset({"delete", "rebuild", "redeploy"})
_RESOURCES = {
    "po": "pods",
    "pod": "pods",
    "pods": "pods",
    "no": "nodes",
    "node": "nodes",
    "nodes": "nodes",
    "deploy": "deployments",
    "deployment": "deployments",
    "deployments": "deployments",
    "ds": "daemonsets",
    "daemonset": "daemonsets",
    "daemonsets": "daemonsets",
    "sts": "statefulsets",
    "statefulset": "statefulsets",
    "statefulsets": "statefulsets",
    "rs": "replicasets",
    "replicaset": "replicasets",
    "replicasets": "replicasets",
    "job": "jobs",
    "jobs": "jobs",
    "cj": "cronjobs",
    "cronjob": "cronjobs",
    "cronjobs": "cronjobs",
}
_WORKLOAD_KIND = {
    "deployments": "Deployment",
    "daemonsets": "DaemonSet",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
}  # the plural resource → the pods context's workload_kind
# kubectl flags that take a value as the next argument (kubectl reference: https://kubernetes.io/docs/reference/kubectl/)
_VALUE_FLAGS = frozenset(
    {
        "-n",
        "--namespace",
        "-l",
        "--selector",
        "--field-selector",
        "-o",
        "--output",
        "-f",
        "--filename",
        "--context",
        "--cluster",
        "--user",
        "--kubeconfig",
        "--timeout",
        "--grace-period",
        "-c",
        "--container",
        "--type",
        "-p",
        "--patch",
    }
)


def row_kinds(actions: pd.DataFrame) -> list[str]:
    """Each row's verb: the ``kind`` column when the checklist has one, else from its text."""
    if "kind" in actions.columns:
        return [
            KIND_FOR_TRUTH.get(str(k), str(k)) if isinstance(k, str) and k else action_kind(str(a))
            for k, a in zip(actions["kind"], actions["action"])
        ]
    return [action_kind(str(a)) for a in actions["action"]]


def row_steps(actions: pd.DataFrame) -> list[float]:
    """The order a responder carries the rows out in: the ``step`` column, else row order."""
    if "step" in actions.columns:
        steps = pd.to_numeric(actions["step"], errors="coerce")
        if steps.notna().all():
            return [float(x) for x in steps]
    return [float(i + 1) for i in range(len(actions))]


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    try:
        return {str(k): str(v) for k, v in value}
    except (TypeError, ValueError):
        return {}


def _selected(pods: pd.DataFrame, *, labels: str | None, fields: str | None) -> pd.DataFrame:
    """The pods an equality-based label selector and a field selector pick (kubectl's
    ``-l`` / ``--field-selector``: ``k=v``, ``k==v``, ``k!=v``, comma-separated)."""
    keep = pd.Series(True, index=pods.index)
    field_columns = {
        "spec.serviceAccountName": "service_account",
        "spec.nodeName": "node",
        "metadata.name": "name",
        "metadata.namespace": "namespace",
        "status.phase": "phase",
    }
    for text, is_field in ((labels, False), (fields, True)):
        for term in (text or "").split(","):
            m = re.fullmatch(r"\s*([^!=\s]+)\s*(!=|==|=)\s*(\S*)\s*", term)
            if not term.strip():
                continue
            if m is None:  # a set-based or existence selector: not read here, so nothing is known to be picked
                return pods.iloc[0:0]
            key, op, value = m.groups()
            if is_field:
                column = field_columns.get(key)
                got = pods[column].astype(str) if column in pods.columns else pd.Series("", index=pods.index)
            else:
                got = (
                    pods["labels"].map(lambda v, k=key: _labels(v).get(k))
                    if "labels" in pods.columns
                    else pd.Series(None, index=pods.index)
                )
            keep &= (got != value) if op == "!=" else (got == value)
    return pods[keep]


def _running(pods: pd.DataFrame) -> pd.DataFrame:
    """The pods not already gone (nothing destroys those again)."""
    return pods[pods["deleted"].isna()] if "deleted" in pods.columns else pods


def _pod_targets(pods: pd.DataFrame) -> set[str]:
    return {f"pod:{ns}/{n}" for ns, n in zip(pods["namespace"], pods["name"])}


def _pods_of(target: str, pods: pd.DataFrame) -> set[str]:
    """The running pods a node or workload target holds (a workload's through its owner chain)."""
    if pods.empty:
        return set()
    if target.startswith("node:"):
        return _pod_targets(pods[pods["node"] == target[5:]])
    if target.startswith("workload:"):
        parts = target[9:].split("/")
        if len(parts) == 3 and parts[1] in _WORKLOAD_KIND:
            ns, resource, name = parts
            return _pod_targets(
                pods[
                    (pods["namespace"] == ns)
                    & (pods["workload"] == name)
                    & (pods["workload_kind"] == _WORKLOAD_KIND[resource])
                ]
            )
    return set()


def command_destroys(command: str, pods: pd.DataFrame) -> set[str]:
    """What a checklist command destroys, as targets: pods it deletes (by name, selector or
    field selector), nodes it deletes, pods a drain evicts, workloads it deletes and the pods a
    delete or rollout of a workload replaces. Server-side and client dry runs destroy nothing."""
    out: set[str] = set()
    pods = _running(pods)
    for part in re.split(r"&&|\|\||[;|\n]", command or ""):
        try:
            argv = shlex.split(part)
        except ValueError:
            continue
        if (
            not argv
            or argv[0] != "kubectl"
            or any(a.startswith("--dry-run") and a not in ("--dry-run=none",) for a in argv)
        ):
            continue
        ns, labels, fields, everything, all_ns, positional = "default", None, None, False, False, []
        args = iter(argv[1:])
        for a in args:
            flag, eq, value = a.partition("=")
            if a.startswith("-") and flag in _VALUE_FLAGS:
                value = value if eq else next(args, "")
                if flag in ("-n", "--namespace"):
                    ns = value
                elif flag in ("-l", "--selector"):
                    labels = value
                elif flag == "--field-selector":
                    fields = value
            elif a in ("--all",):
                everything = True
            elif a in ("-A", "--all-namespaces"):
                all_ns = True
            elif not a.startswith("-"):
                positional.append(a)
        if not positional:
            continue
        verb, rest = positional[0], positional[1:]
        scope = pods if all_ns or pods.empty else pods[pods["namespace"] == ns]
        if verb == "drain":
            ignore_ds = "--ignore-daemonsets" in argv
            for node in rest:
                on = pods[pods["node"] == node] if not pods.empty else pods
                # drain evicts neither mirror pods (static pods) nor, with --ignore-daemonsets, DaemonSet pods
                if not on.empty:
                    on = on[(on["owner_kind"] != "Node") & ~((on["workload_kind"] == "DaemonSet") & ignore_ds)]
                out |= _pod_targets(on)
            continue
        if verb == "rollout" and rest and rest[0] in ("restart", "undo"):
            rest, verb = rest[1:], "replace-pods"
        elif verb != "delete":
            continue
        objects: list[tuple[str, str | None]] = []
        if rest and "/" in rest[0]:
            objects = [
                (_RESOURCES.get(r.partition("/")[0].lower(), r.partition("/")[0].lower()), r.partition("/")[2])
                for r in rest
            ]
        elif rest:
            resource = _RESOURCES.get(rest[0].lower(), rest[0].lower())
            objects = [(resource, n) for n in rest[1:]] or (
                [(resource, None)] if labels or fields or everything else []
            )
        for resource, name in objects:
            if resource == "pods":
                if name is not None:
                    out.add(f"pod:{ns}/{name}")
                elif not pods.empty:
                    out |= _pod_targets(_selected(scope, labels=labels, fields=fields))
            elif resource == "nodes" and name is not None:
                if verb == "delete":
                    out.add(f"node:{name}")
                out |= _pods_of(f"node:{name}", pods)
            elif resource in _WORKLOAD_KIND and name is not None:
                target = f"workload:{ns}/{resource}/{name}"
                if verb == "delete":
                    out.add(target)
                out |= _pods_of(target, pods)
    return out


def order_violations(actions: pd.DataFrame, *, pods: pd.DataFrame | None = None) -> list[str]:
    """Preserve before destroy (issue 18 item 1). A target destroyed — by a delete, rebuild or
    redeploy of it, of the node or workload that holds it, or by a command (a rotation that
    deletes its pods, a drain) — must have every preserve row of it earlier in the checklist;
    an isolated pod must not be destroyed unless some preserve row for it exists at all.
    ``pods``: the cluster's pods (the case's ``pods`` context), to know what a node, a
    workload or a selector holds; the pods already gone are left out."""
    pods = _running(
        pods
        if pods is not None
        else pd.DataFrame(columns=["namespace", "name", "node", "workload", "workload_kind", "owner_kind"])
    )
    kinds, steps = row_kinds(actions), row_steps(actions)
    targets = [normal_target(str(t)) for t in actions["target"]]
    commands = [
        str(c) if isinstance(c, str) else ""
        for c in (actions["command"] if "command" in actions.columns else [""] * len(actions))
    ]
    preserved: dict[str, list[float]] = {}
    isolated: set[str] = set()
    destroyed: dict[str, tuple[float, str]] = {}  # target → (first step destroying it, by what)
    for kind, step, target, cmd in zip(kinds, steps, targets, commands):
        if kind == "preserve":
            preserved.setdefault(target, []).append(step)
            continue
        if kind == "isolate":
            isolated.add(target)
        hit = command_destroys(cmd, pods)
        if kind in DESTROYING:
            hit |= {target} | _pods_of(target, pods)
        for t in hit:
            if t not in destroyed or step < destroyed[t][0]:
                destroyed[t] = (step, f"{kind} {target}")
    out = []
    for target, (step, by) in sorted(destroyed.items(), key=lambda kv: (kv[1][0], kv[0])):
        if target in preserved and max(preserved[target]) > step:
            out.append(
                f"destroyed before preserved: {target} (by {by} at step {step:g}; preserved at step {max(preserved[target]):g})"
            )
        elif target not in preserved and target in isolated:
            out.append(
                f"destroyed before preserved: {target} (isolated, then destroyed by {by} at step {step:g}; never preserved)"
            )
    return out


def _empty(path: Path) -> bool:
    """A file with nothing to act on: absent, blank, or YAML with no document but comments."""
    if not path.is_file():
        return True
    text = path.read_text(errors="replace")
    if not text.strip():
        return True
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return not any(doc is not None for doc in yaml.safe_load_all(text))
        except yaml.YAMLError:
            return False  # something is there; whether it applies is the manifest tests' question
    return False


def _named_files(command: str) -> set[str]:
    """The files a command's ``-f`` / ``--filename`` arguments name."""
    out: set[str] = set()
    for part in re.split(r"&&|\|\||[;|\n]", command or ""):
        try:
            argv = shlex.split(part)
        except ValueError:
            continue
        for a, b in zip(argv, [*argv[1:], ""]):
            if a in ("-f", "--filename") and b:
                out.add(b)
            elif a.startswith("--filename="):
                out.add(a.partition("=")[2])
    return out


def empty_artifacts(actions: pd.DataFrame, *, case_dir: Path) -> list[str]:
    """Rows that name a generated file in the case's ``remediation/`` folder — as their artifact
    or a command's ``-f``; relative to the case, where the commands run, or absolute — that is
    missing or empty (issue 18 item 5: no step refers to an empty file). Files the responder's
    commands write elsewhere (``preserved/``) are not there yet and not looked at."""
    out = []
    folder = (case_dir / "remediation").resolve()
    kinds, steps = row_kinds(actions), row_steps(actions)
    artifacts = actions["artifact"] if "artifact" in actions.columns else pd.Series("", index=actions.index)
    commands = actions["command"] if "command" in actions.columns else pd.Series("", index=actions.index)
    for kind, step, target, artifact, cmd in zip(kinds, steps, actions["target"], artifacts, commands):
        named = ({artifact} if isinstance(artifact, str) and artifact else set()) | (
            _named_files(cmd) if isinstance(cmd, str) else set()
        )
        for name in sorted(named):
            path = (Path(name) if Path(name).is_absolute() else case_dir / name).resolve()
            if path.is_relative_to(folder) and _empty(path):
                out.append(f"step {step:g} ({kind} {target}) refers to an empty or missing file: {name}")
    return out


def score_remediation(
    actions: pd.DataFrame, truth: dict[str, Any], *, pods: pd.DataFrame | None = None, case_dir: Path | None = None
) -> dict[str, Any]:
    """The checklist against the truth's must and must-not, preserve-before-destroy order and the
    files it names: ``must``, ``must_hit``, ``must_not`` (every violation, order ones included),
    ``order_violations`` and ``misses`` (one line each)."""
    kinds = row_kinds(actions)
    done = set(zip(kinds, (normal_target(str(t)) for t in actions["target"])))
    misses: list[str] = []
    must = truth.get("remediation", {}).get("must", [])
    must_hit = 0
    for m in must:
        ok = (m["do"], normal_target(m["target"])) in done
        must_hit += ok
        if not ok:
            misses.append(f"remediation must {m['do']} {m['target']} ({m['why']}): missing")
    forbidden = {
        (m["do"], normal_target(m["target"]))
        for m in truth.get("remediation", {}).get("must_not", [])
        if m["target"] != "private"
    }
    violations = [
        f"{kind} {target}"
        for kind, target in sorted(done)
        if (kind, target) in forbidden or (kind == "block" and is_private(target))
    ]
    order = order_violations(actions, pods=pods)
    files = empty_artifacts(actions, case_dir=case_dir) if case_dir is not None else []
    misses += [f"remediation must-not: {v}" for v in [*violations, *order, *files]]
    return {
        "must": len(must),
        "must_hit": must_hit,
        "must_not": len(violations) + len(order) + len(files),
        "order_violations": len(order),
        "misses": misses,
    }


# ---------------------------------------------------------------------------- one scenario


def write(index: int | str, root: Path, scale: float) -> tuple[Path, dict[str, Any], str]:
    """The scenario's evidence under root; its truth; the command that rebuilds it."""
    from k8sforensics.samples import write_sample_evidence

    if index == "demo":
        truth_path = write_sample_evidence(root, seed=0, scale=scale)
        truth = json.loads(truth_path.read_text())
        for s in truth["steps"]:
            s.setdefault("techniques", [x for x in (s.get("technique_id"), s.get("attack_id")) if x])
        pz = truth["patient_zero"]
        truth["patient_zero"] = {
            "kind": "pod",
            "entity": f"{pz['namespace']}/{pz['pod']}",
            "came_from": truth["steps"][0]["entities"]["source_ip"],
        }
        truth["path_edges"] = [
            [
                a["kind"] + ":" + a["id"] if a["kind"] != "service_account" else "sa:" + a["id"],
                b["kind"] + ":" + b["id"] if b["kind"] != "service_account" else "sa:" + b["id"],
            ]
            for a, b in zip(truth["lateral_path"], truth["lateral_path"][1:])
        ]
        return root, truth, "python -c 'from k8sforensics.samples import write_sample_evidence as w; w(\"demo\")'"
    from k8sforensics.samples.scenario import family, write_scenario

    shape, platform, seed = next(family(1, start=int(index)))
    truth = json.loads(write_scenario(root, shape=shape, platform=platform, seed=seed, scale=scale).read_text())
    cmd = f"python benchmarks/accuracy.py --only {index} --scale {scale} --keep /tmp/scenario-{index}"
    return root, truth, cmd


def run_one(index: int | str, *, scale: float, workdir: str | None = None) -> dict[str, Any]:
    import k8sforensics as kf
    from k8sforensics.context.attribution import attribute_ip

    root = Path(workdir or tempfile.mkdtemp(prefix=f"k8sf-acc-{index}-"))
    evidence = root / "evidence"
    t0 = time.perf_counter()
    _, truth, cmd = write(index, evidence, scale)
    case = kf.Case.create(root / "case", cluster=truth.get("cluster", "prod"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kf.ingest(case, [str(p) for p in sorted(evidence.iterdir()) if p.name != "truth.json"], progress=False)
        findings = kf.detect(case)
        timeline = kf.kill_chain(case)
        graph = kf.lateral_movement(case)
        ranked = kf.patient_zero(case)
        # the checklist as a responder gets it, with the files it names written next to it
        written = kf.write_remediation(case, findings=findings, graph=graph)
        actions = pd.read_csv(written["checklist.csv"], keep_default_na=False, dtype=str)
    seconds = time.perf_counter() - t0
    # ---- only now the truth is read
    misses: list[str] = []
    f = findings
    rows = list(f.itertuples(index=False))
    fkeys = [finding_keys(r) for r in rows]
    ftech = [techniques_of(r) for r in rows]
    times = list(f["time"])
    ends = [e if pd.notna(e) else t for t, e in zip(f["time"], f["time_end"])]
    found = 0
    matched: set[int] = set()
    for s in truth["steps"]:
        keys, techs = step_keys(s), set(s["techniques"]) | {t.split(".")[0] for t in s["techniques"]}
        lo, hi = pd.Timestamp(s["start"]) - SLACK, pd.Timestamp(s["end"]) + SLACK
        # a finding whose span (first to last evidence event) overlaps the step's window
        hits = [
            i for i in range(len(rows)) if ftech[i] & techs and times[i] <= hi and ends[i] >= lo and fkeys[i] & keys
        ]
        matched.update(hits)
        if hits:
            found += 1
        else:
            near = [
                f"{rows[i].rule_id}@{rows[i].entity}" for i in range(len(rows)) if times[i] <= hi and ends[i] >= lo
            ][:4]
            misses.append(
                f"step {s['id']} ({'/'.join(s['techniques'][:3])}, {sorted(keys)[:3]}) not found; in its window: {near}"
            )
    attack = (
        set(truth.get("attack_entities", []))
        | {k for s in truth["steps"] for k in step_keys(s)}
        | {r["pod"] for r in truth.get("reached", [])}
    )
    attack |= {
        a.removeprefix("system:serviceaccount:").replace(":", "/", 1)
        for a in list(attack)
        if a.startswith("system:serviceaccount:")
    }
    # the pods of an attacker's workload (a CronJob's jobs, a DaemonSet's pods) are attack entities too
    made_by = tuple(
        f"{s['entities'].get('namespace')}/{str(s['entities']['workload']).partition('/')[2]}-"
        for s in truth["steps"]
        if s["entities"].get("workload")
    )
    noise_medium, low_shown, about_lookalike = [], 0, 0
    lookalikes = [set(x["entities"]) for x in truth.get("lookalikes", [])]
    for i, r in enumerate(rows):
        about_attack = i in matched or bool(fkeys[i] & attack) or any(k.startswith(made_by) for k in fkeys[i])
        if r.severity == "low":
            low_shown += 1
        if not about_attack:
            if r.severity in ("medium", "high", "critical"):
                noise_medium.append(f"{r.rule_id}@{r.entity}")
            if any(fkeys[i] & la for la in lookalikes):
                about_lookalike += 1
    # patient zero
    pz = truth.get("patient_zero") or {}
    want = _spellings(pz.get("entity", ""))
    rank = None
    for r in ranked.itertuples(index=False):
        if _spellings(str(r.entity)) & want:
            rank = int(r.rank)
            break
    if rank != 1:
        misses.append(f"patient zero {pz.get('entity')} ranked {rank}; first: {ranked['entity'].head(3).tolist()}")
    # path edges
    observed = {(u, v) for u, v, d in graph.edges(data=True) if d.get("observed")}
    edges = [tuple(e) for e in truth.get("path_edges", [])]
    got_edges = [e for e in edges if e in observed]
    for e in edges:
        if e not in observed:
            misses.append(f"path edge {e[0]} → {e[1]} not observed")
    # attribution
    pod_ips, nodes = case.context("pod_ips"), case.context("nodes")
    attrib_ok = 0
    for a in truth.get("ip_attribution", []):
        got = attribute_ip(pod_ips, nodes, a["ip"], a["time"])
        ok = (
            (got is None or got.get("kind") != "pod")
            if a["pod"] is None
            else (got is not None and got.get("pod") == a["pod"])
        )
        attrib_ok += ok
        if not ok:
            misses.append(f"attribution {a['ip']}@{a['time']}: {got and got.get('pod')} instead of {a['pod']}")
    pods = case.context("pods")
    known = set(pods["namespace"] + "/" + pods["name"]) | set(
        pod_ips["namespace"].astype(str) + "/" + pod_ips["pod"].astype(str)
    )
    deleted = truth.get("deleted_before_dump", [])
    rebuilt = [p for p in deleted if p in known]
    # remediation
    rem = score_remediation(actions, truth, pods=pods, case_dir=case.path)
    misses += rem["misses"]
    if workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "index": index,
        "entry": truth.get("shape", {}).get("entry", "demo"),
        "platform": truth.get("platform", "self-managed"),
        "shape": truth.get("shape"),
        "steps": len(truth["steps"]),
        "steps_found": found,
        "findings": len(rows),
        "noise_medium": len(noise_medium),
        "noise_examples": noise_medium[:8],
        "low_shown": low_shown,
        "lookalike_findings": about_lookalike,
        "pz_rank": rank,
        "path_edges": len(edges),
        "path_edges_found": len(got_edges),
        "attribution": len(truth.get("ip_attribution", [])),
        "attribution_ok": attrib_ok,
        "deleted": len(deleted),
        "deleted_known": len(rebuilt),
        "must": rem["must"],
        "must_hit": rem["must_hit"],
        "must_not": rem["must_not"],
        "order_violations": rem["order_violations"],
        "timeline_rows": len(timeline),
        "seconds": round(seconds, 1),
        "misses": misses,
        "repro": cmd,
    }


def _spellings(entity: str) -> set[str]:
    """An entity's names: ``user:x`` / ``x``; ``sa:ns/n`` / ``ns/n`` / ``system:serviceaccount:ns:n``."""
    e = entity.removeprefix("user:").removeprefix("pod:")
    out = {entity, e}
    if e.startswith("sa:"):
        e = e[3:]
        out.add(e)
    if e.startswith("system:serviceaccount:"):
        out.add(e.removeprefix("system:serviceaccount:").replace(":", "/", 1))
    elif "/" in e and e.count("/") == 1:
        ns, name = e.split("/")
        out.add(f"system:serviceaccount:{ns}:{name}")
    return out


# ---------------------------------------------------------------------------- the table


def summarise(results: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(results)
    groups = [("all", df)] + [(str(k), g) for k, g in df.groupby("entry", sort=True)]
    rows = []
    for name, g in groups:
        rows.append(
            {
                "shape": name,
                "scenarios": len(g),
                "step recall": g["steps_found"].sum() / max(1, g["steps"].sum()),
                "pz rank 1": (g["pz_rank"] == 1).mean(),
                "path edges": g["path_edges_found"].sum() / max(1, g["path_edges"].sum()),
                "attribution": g["attribution_ok"].sum() / max(1, g["attribution"].sum()),
                "deleted pods known": g["deleted_known"].sum() / max(1, g["deleted"].sum()),
                "medium+ noise / scenario": g["noise_medium"].mean(),
                "low shown / step": g["low_shown"].sum() / max(1, g["steps"].sum()),
                "look-alike findings / scenario": g["lookalike_findings"].mean(),
                "must-do recall": g["must_hit"].sum() / max(1, g["must"].sum()),
                "must-not violations": int(g["must_not"].sum()),
                "order violations": int(g["order_violations"].sum()),
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.itertuples(index=False):
        out.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(out)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="scenarios of the family (indices 0..n-1)")
    ap.add_argument(
        "--scale", type=float, default=0.3, help="background noise (1.0: the demo's six hours at full rate)"
    )
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--only", help="comma-separated indices (or 'demo'): run these and print every miss")
    ap.add_argument("--no-demo", action="store_true")
    ap.add_argument("--keep", help="with --only: keep the evidence and case here")
    ap.add_argument("--out", default="benchmarks/results/accuracy.json")
    args = ap.parse_args(list(argv) if argv is not None else None)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    indices: list[int | str] = (
        [x if x == "demo" else int(x) for x in args.only.split(",")]
        if args.only
        else [*range(args.n), *([] if args.no_demo else ["demo"])]
    )
    t0 = time.perf_counter()
    if args.keep and len(indices) == 1:
        results = [run_one(indices[0], scale=args.scale, workdir=args.keep)]
    elif args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_run, [(i, args.scale) for i in indices]))
    else:
        results = [_run((i, args.scale)) for i in indices]
    for r in results:
        for m in r["misses"]:
            print(f"[{r['index']} {r['entry']} {r['platform']}] {m}\n    repro: {r['repro']}")
    table = summarise(results)
    print(markdown(table))
    print(f"{len(results)} scenarios in {time.perf_counter() - t0:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "table": table.to_dict("records")}, indent=1, default=str) + "\n")
    return 0


def _run(arg: tuple[int | str, float]) -> dict[str, Any]:
    index, scale = arg
    try:
        return run_one(index, scale=scale)
    except Exception as exc:  # a crash is a result too: the scenario, and what broke
        import traceback

        return {
            "index": index,
            "entry": "crashed",
            "platform": "",
            "shape": None,
            "steps": 1,
            "steps_found": 0,
            "findings": 0,
            "noise_medium": 0,
            "noise_examples": [],
            "low_shown": 0,
            "lookalike_findings": 0,
            "pz_rank": None,
            "path_edges": 0,
            "path_edges_found": 0,
            "attribution": 0,
            "attribution_ok": 0,
            "deleted": 0,
            "deleted_known": 0,
            "must": 1,
            "must_hit": 0,
            "must_not": 0,
            "order_violations": 0,
            "timeline_rows": 0,
            "seconds": 0,
            "misses": [f"crashed: {exc!r}\n{traceback.format_exc()[-1500:]}"],
            "repro": f"python benchmarks/accuracy.py --only {index}",
        }


if __name__ == "__main__":
    raise SystemExit(main())
