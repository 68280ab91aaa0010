"""Pod Security Standards: which level (privileged, baseline, restricted) each pod spec meets,
by the checks of the Kubernetes Pod Security Standards (``latest``), and so the strictest
``pod-security.kubernetes.io/enforce`` level each namespace can take today without rejecting
the pods it runs — with the pods that block the next level, and why."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..bodies import NOT_OBJECT, UnreadableBodies, parse_body

LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ENFORCE = "pod-security.kubernetes.io/enforce"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(c.get("name")), c)
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]


def violations(pod: dict[str, Any]) -> dict[str, list[str]]:
    """What keeps a pod (a Pod object, or just its spec) from each level:
    ``{"baseline": [...], "restricted": [...]}`` (restricted includes baseline's)."""
    spec = _d(pod.get("spec")) if "spec" in pod else pod
    annotations = _d(_d(pod.get("metadata")).get("annotations"))
    psc = _d(spec.get("securityContext"))
    containers = _containers(spec)
    base: list[str] = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            base.append(f"{key}: true")
    if _d(psc.get("windowsOptions")).get("hostProcess") is True:
        base.append("hostProcess")
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and "hostPath" in v:
            base.append(f"hostPath volume {v.get('name')} ({_d(v['hostPath']).get('path')})")
    for sysctl in psc.get("sysctls") or []:
        if _d(sysctl).get("name") not in SAFE_SYSCTLS:
            base.append(f"sysctl {_d(sysctl).get('name')}")
    contexts = [("pod", psc)] + [(n, _d(c.get("securityContext"))) for n, c in containers]
    for where, sc in contexts:
        if _d(sc.get("seccompProfile")).get("type") == "Unconfined":
            base.append(f"{where}: seccompProfile Unconfined")
        se = _d(sc.get("seLinuxOptions"))
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            base.append(f"{where}: seLinuxOptions {se}")
        apparmor = _d(sc.get("appArmorProfile")).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            base.append(f"{where}: appArmorProfile {apparmor}")
    for key, value in annotations.items():
        if str(key).startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or str(value).startswith("localhost/")
        ):
            base.append(f"AppArmor annotation {value}")
    for name, c in containers:
        sc = _d(c.get("securityContext"))
        if sc.get("privileged") is True:
            base.append(f"{name}: privileged")
        if _d(sc.get("windowsOptions")).get("hostProcess") is True:
            base.append(f"{name}: hostProcess")
        added = {str(x).upper().removeprefix("CAP_") for x in _d(sc.get("capabilities")).get("add") or []}
        if added - BASELINE_CAPABILITIES:
            base.append(f"{name}: adds {', '.join(sorted(added - BASELINE_CAPABILITIES))}")
        if sc.get("procMount") not in (None, "Default"):
            base.append(f"{name}: procMount {sc.get('procMount')}")
        for port in c.get("ports") or []:
            if _d(port).get("hostPort"):
                base.append(f"{name}: hostPort {_d(port).get('hostPort')}")
    restricted = list(base)
    for v in spec.get("volumes") or []:
        kinds = set(_d(v)) - {"name"}
        if kinds and not kinds <= RESTRICTED_VOLUMES and "hostPath" not in kinds:
            restricted.append(f"volume {_d(v).get('name')} of type {', '.join(sorted(kinds))}")
    pod_non_root = psc.get("runAsNonRoot") is True
    pod_seccomp = _d(psc.get("seccompProfile")).get("type") in ("RuntimeDefault", "Localhost")
    if psc.get("runAsUser") == 0:
        restricted.append("pod: runAsUser 0")
    for name, c in containers:
        sc = _d(c.get("securityContext"))
        if sc.get("allowPrivilegeEscalation") is not False:
            restricted.append(f"{name}: allowPrivilegeEscalation not false")
        if not (sc.get("runAsNonRoot") is True or (pod_non_root and sc.get("runAsNonRoot") is not False)):
            restricted.append(f"{name}: runAsNonRoot not true")
        if sc.get("runAsUser") == 0:
            restricted.append(f"{name}: runAsUser 0")
        if not (
            _d(sc.get("seccompProfile")).get("type") in ("RuntimeDefault", "Localhost")
            or (pod_seccomp and "seccompProfile" not in sc)
        ):
            restricted.append(f"{name}: seccompProfile not RuntimeDefault or Localhost")
        caps = _d(sc.get("capabilities"))
        if "ALL" not in {str(x).upper() for x in caps.get("drop") or []}:
            restricted.append(f"{name}: capabilities do not drop ALL")
        extra = {str(x).upper().removeprefix("CAP_") for x in caps.get("add") or []} - {"NET_BIND_SERVICE"}
        if extra:
            restricted.append(f"{name}: adds {', '.join(sorted(extra))}")
    return {"baseline": base, "restricted": list(dict.fromkeys(restricted))}


def level(pod: dict[str, Any]) -> str:
    """The strictest Pod Security level the pod meets."""
    return _level(violations(pod))


def namespace_levels(
    objects: pd.DataFrame, namespaces: pd.DataFrame | None = None, *, unreadable: UnreadableBodies | None = None
) -> pd.DataFrame:
    """Per namespace with pods in the inventory (``objects`` rows of kind Pod, the last version of
    each): ``namespace, level`` (the strictest every pod meets), ``enforced`` (its current label),
    ``pods``, ``blockers`` (``pod: reason`` for each pod that keeps it from the next level).
    A pod whose object is unread (too large, too deep, not JSON: recorded in ``unreadable`` and
    logged) meets no level: nothing is enforced that could reject it unseen."""
    bodies = UnreadableBodies() if unreadable is None else unreadable
    before = bodies.snapshot()
    pods = objects[objects["kind"] == "Pod"]
    pods = (
        pods.sort_values("time", kind="stable").drop_duplicates(["namespace", "name"], keep="last")
        if "time" in pods.columns
        else pods
    )
    labels = {}
    if namespaces is not None and len(namespaces):
        labels = {
            n: (dict(lbl) if lbl is not None and not isinstance(lbl, float) else {})
            for n, lbl in zip(namespaces["name"], namespaces["labels"])
        }
    rows = []
    for ns, g in pods.groupby("namespace"):
        found = [(name, _object_violations(text, bodies, f"{ns}/{name}")) for name, text in zip(g["name"], g["object"])]
        worst = min((LEVELS.index(_level(v)) for _, v in found), default=2)
        nxt = LEVELS[worst + 1] if worst < 2 else None
        blockers = [f"{name}: {'; '.join(v[nxt])}" for name, v in found if nxt and v[nxt]]
        rows.append(
            {
                "namespace": ns,
                "level": LEVELS[worst],
                "enforced": labels.get(ns, {}).get(ENFORCE),
                "pods": len(found),
                "next_level": nxt,
                "blockers": blockers,
            }
        )
    bodies.warn("pod security levels", before)
    return pd.DataFrame(rows, columns=["namespace", "level", "enforced", "pods", "next_level", "blockers"])


def _object_violations(text: Any, bodies: UnreadableBodies, ref: str) -> dict[str, list[str]]:
    """``violations`` of a Pod object's JSON; a pod that cannot be read blocks every level."""
    pod, reason = parse_body(text, max_bytes=bodies.max_bytes, max_depth=bodies.max_depth)
    if isinstance(pod, dict):
        return violations(pod)
    if pod is not None:
        reason = NOT_OBJECT
    if reason is not None:
        bodies.add(reason, where="pod security", event_id=ref)
    why = f"object unreadable ({reason or 'absent'})"
    return {"baseline": [why], "restricted": [why]}


def _level(v: dict[str, list[str]]) -> str:
    return "restricted" if not v["restricted"] else "baseline" if not v["baseline"] else "privileged"


def namespace_objects(levels: pd.DataFrame) -> list[dict[str, Any]]:
    """Namespace objects labelled to enforce each namespace's level (and to warn and audit at the
    next stricter one), for ``kubectl apply``."""
    out = []
    for r in levels.itertuples(index=False):
        labels = {ENFORCE: r.level, f"{ENFORCE}-version": "latest"}
        if isinstance(r.next_level, str):  # None comes back from the frame as NaN
            labels.update(
                {"pod-security.kubernetes.io/warn": r.next_level, "pod-security.kubernetes.io/audit": r.next_level}
            )
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": r.namespace, "labels": labels}})
    return out
