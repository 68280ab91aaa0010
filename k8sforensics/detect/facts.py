"""Facts about events that detection and the lateral-movement graph both rely on: who is the
control plane, which requests the API server allowed, what a request's body says, which processes
are shells, which paths hold service-account tokens, which host paths hand over a node. One
definition each, public."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..bodies import UnreadableBodies
from .engine import Evidence

# ---------------------------------------------------------------------- who is the control plane

CONTROLLER_SUFFIXES = ("-controller", "-controller-manager")
CONTROL_PLANE_USERS = frozenset(
    {
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:apiserver",
        "system:kube-proxy",
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "system:serviceaccount:kube-system:persistent-volume-binder",
        "system:serviceaccount:kube-system:resourcequota-controller",
    }
)
# the managed platforms' own agents: EKS ``eks:*``, AKS ``aksService``, GKE's robot and service agents
PLATFORM_USERS = re.compile(
    r"^(eks:.*|aksService|masterclient|nodeclient|system:addon-manager|system:kube-.*|"
    r".*container-engine-robot.*\.iam\.gserviceaccount\.com|.*@gcp-sa-[a-z-]+\.iam\.gserviceaccount\.com)$"
)


def is_system(user: pd.Series) -> pd.Series:
    """Control-plane identities: nodes, kube-system controllers, the controller manager, the platforms' agents."""
    u = user.fillna("").astype(str)
    ks = u.str.startswith("system:serviceaccount:kube-system:")
    return (
        u.str.startswith("system:node:")
        | u.isin(CONTROL_PLANE_USERS)
        | u.str.match(PLATFORM_USERS)
        | (ks & (u.str.endswith(CONTROLLER_SUFFIXES[0]) | u.str.endswith(CONTROLLER_SUFFIXES[1])))
    )


def system_requests(ev: Evidence) -> pd.Series:
    """``is_system`` over the evidence's audit users, computed once per evidence."""
    return ev.memo("audit.system", lambda: is_system(ev.audit["user"]))


# ---------------------------------------------------------------------- what the API server allowed


def allowed(a: pd.DataFrame) -> pd.Series:
    """The API server let the request through (a 403 or a forbid is only an attempt)."""
    decision = a["decision"].fillna("")
    code = a["response_code"].astype("Int64")
    return (decision == "allow") | ((decision == "") & (code < 400).fillna(False))


def allowed_requests(ev: Evidence) -> pd.Series:
    """``allowed`` over the evidence's audit rows, computed once per evidence."""
    return ev.memo("audit.allowed", lambda: allowed(ev.audit))


# ---------------------------------------------------------------------- what a request's body says

# a Secret of this type holds a service account's long-lived token (the token controller fills it in)
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"


def parsed_bodies(
    a: pd.DataFrame, mask: pd.Series, column: str = "request_object", *, unreadable: UnreadableBodies | None = None
) -> pd.Series:
    """Parsed bodies of the rows in ``mask``; None where absent or unreadable (recorded in ``unreadable``)."""
    bodies = UnreadableBodies() if unreadable is None else unreadable
    m = np.asarray(mask, dtype=bool)
    texts = a.loc[m, column].to_numpy(dtype=object)  # the one column of the chosen rows, not every column
    ids = a.loc[m, "event_id"].to_numpy(dtype=object) if "event_id" in a.columns else [None] * len(texts)
    # too large, too deep or not JSON: bodies.parse_body leaves it unread and records it by event id;
    # the values set in one step (a cell set each costs more than the parse on 100k bodies)
    parsed = np.empty(len(texts), dtype=object)  # filled one by one: a list body must stay one cell
    for k, (text, event_id) in enumerate(zip(texts, ids)):
        parsed[k] = bodies.parse(text, where=f"detection:{column}", event_id=event_id)
    values = np.full(len(a), None, dtype=object)
    values[m] = parsed
    return pd.Series(values, index=a.index, dtype=object)


def dicts_in(obj: Any, key: str) -> list[dict[str, Any]]:
    """The objects in the list ``obj[key]``: a body of another shape gives none (and no error)."""
    items = obj.get(key) if isinstance(obj, dict) else None
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def subject_users(obj: Any) -> list[str]:
    """The user names a binding's subjects authenticate as (``system:serviceaccount:ns:name`` for an account)."""
    out = []
    for s in dicts_in(obj, "subjects"):
        if s.get("kind") == "ServiceAccount":
            out.append(f"system:serviceaccount:{s.get('namespace')}:{s.get('name')}")
        else:
            out.append(str(s.get("name")))
    return out


# ---------------------------------------------------------------------- what ran in a container

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "busybox", "fish", "tcsh", "csh"})


def basename(path: pd.Series) -> pd.Series:
    """The last part of each path (``/bin/sh`` → ``sh``); '' where there is none."""
    return path.fillna("").astype(str).str.rsplit("/", n=1).str[-1]


def command_lines(r: pd.DataFrame) -> pd.Series:
    """Each runtime event's command line: ``cmdline``, else the process and its arguments."""
    return r["cmdline"].fillna(r["process"].fillna("") + " " + r["args"].fillna(""))


def execs_in(r: pd.DataFrame) -> pd.DataFrame:
    """Process executions inside containers of runtime rows ``r``, with their ``command``."""
    m = (r["event_type"] == "exec") & (r["container_id"].notna() | r["pod"].notna())
    return r[m].assign(command=command_lines)


def container_execs(ev: Evidence) -> pd.DataFrame:
    """``execs_in`` over the evidence's runtime events, computed once per evidence (host processes carry no container)."""
    return ev.memo("runtime.execs", lambda: execs_in(ev.runtime))


# ---------------------------------------------------------------------- paths that matter

SA_TOKEN_PATHS = re.compile(
    r"/var/run/secrets/(?:kubernetes\.io/serviceaccount|eks\.amazonaws\.com|azure|tokens)|"
    r"/run/secrets/kubernetes\.io|kubernetes\.io~projected/.*/token"
)
# the kubelet's static-pod folder: a manifest there runs as a pod no controller or admission sees
# (kubernetes.io/docs/tasks/configure-pod-container/static-pod/)
STATIC_MANIFEST = re.compile(r"/etc/kubernetes/manifests/")
# a command that writes there (a redirection, cp/mv/tee/install/dd, a download to a file)
STATIC_MANIFEST_WRITE = re.compile(
    r"(?:>|\b(?:cp|mv|tee|install|dd|ln)\b|\b(?:curl|wget)\b.*\s-[oO]\s*)[^|;&]*/etc/kubernetes/manifests/"
)

# hostPath mounts that hand over the node (KubeHound's EXPLOIT_HOST_*, CE_VAR_LOG_SYMLINK edges; runtime sockets)
SENSITIVE_HOST_PATHS = {
    "/",
    "/etc",
    "/root",
    "/home",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/run",
    "/run",
    "/usr",
    "/lib",
    "/bin",
    "/sbin",
}
SENSITIVE_HOST_PREFIXES = (
    "/root/",
    "/proc/",
    "/dev/",
    "/home/",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd",
    "/run/containerd",
    "/var/run/crio",
    "/run/crio",
    "/etc/kubernetes",
    "/etc/systemd",
    "/etc/cron",
    "/etc/ssh",
    "/etc/shadow",
    "/etc/sudoers",
    "/lib/modules",
)


def is_sensitive_host_path(path: str) -> bool:
    """A hostPath that hands over the node (system folders, runtime state or socket, credentials), not a public certificate."""
    p = path.rstrip("/") or "/"
    if p.endswith((".crt", "ca.pem")):  # a public certificate hands over nothing
        return False
    return p in SENSITIVE_HOST_PATHS or p.startswith(SENSITIVE_HOST_PREFIXES) or p.endswith(".sock")
