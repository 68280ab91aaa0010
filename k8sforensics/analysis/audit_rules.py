"""Built-in rules over the audit table (and the context rules that join it with others).

Each rule follows the Threat Matrix technique it names and avoids the usual rule bugs: matches need an allowed
decision (a 403 is an attempt, reported by the probing rule), exec is create *or* get,
fields are the ones real events carry (``objectRef.apiGroup``, nested ``capabilities.add``),
and every stage of a request is already folded into one row by the loader.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ..bodies import UnreadableBodies
from .network import cluster_networks, external_mask
from .possible import is_sensitive_host_path
from .rules import (
    Evidence,
    Rule,
    hits_from_rows,
    pod_entity,
    service_accounts,
    set_where,
)

CONTROLLER_SUFFIXES = ("-controller", "-controller-manager")
CONTROL_PLANE_USERS = frozenset({
    "system:kube-controller-manager", "system:kube-scheduler", "system:apiserver", "system:kube-proxy",
    "system:serviceaccount:kube-system:generic-garbage-collector", "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    "system:serviceaccount:kube-system:persistent-volume-binder", "system:serviceaccount:kube-system:resourcequota-controller",
})
WORKLOAD_RESOURCES = frozenset({"pods", "deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicationcontrollers"})
WRITE_VERBS = frozenset({"create", "update", "patch"})
DANGEROUS_CAPS = frozenset({"SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "NET_ADMIN", "BPF", "DAC_READ_SEARCH", "SYS_RAWIO", "ALL"})
SA_TOKEN_PATHS = re.compile(r"/var/run/secrets/(?:kubernetes\.io/serviceaccount|eks\.amazonaws\.com|azure|tokens)|"
                            r"/run/secrets/kubernetes\.io|kubernetes\.io~projected/.*/token")
BAD_EXEC = re.compile(r"/dev/tcp/|/dev/udp/|\bnc\b.*\s-e\s|\bncat\b.*\s-e\s|\bmkfifo\b|\bsocat\b.*exec|bash\s+-i\b|"
                      r"\b(?:curl|wget)\b.*https?://|169\.254\.169\.254|metadata\.google\.internal|/\.aws/|azure\.json|base64\s+-d")
HEALTH_URIS = re.compile(r"^/(?:healthz|livez|readyz|version|metrics|openid/v1/jwks|\.well-known/openid-configuration)\b")
PRIVILEGED_USERS = re.compile(r"^(?:system:admin|kubernetes-admin|cluster-admin|system:node:.*|system:serviceaccount:kube-system:.*|system:kube-.*)$")


def _items(v: Any) -> list[Any]:
    """A list cell (a list, an array, or missing) as a list."""
    return [] if v is None or isinstance(v, float) else list(v)


PLATFORM_USERS = re.compile(r"^(eks:.*|aksService|masterclient|nodeclient|system:addon-manager|system:kube-.*|"
                            r".*container-engine-robot.*\.iam\.gserviceaccount\.com|.*@gcp-sa-[a-z-]+\.iam\.gserviceaccount\.com)$")


def is_system(user: pd.Series) -> pd.Series:
    """Control-plane identities: nodes, kube-system controllers, the controller manager, and
    the managed platforms' own agents (EKS ``eks:*``, AKS ``aksService``, GKE's robot)."""
    u = user.fillna("").astype(str)
    ks = u.str.startswith("system:serviceaccount:kube-system:")
    return (u.str.startswith("system:node:") | u.isin(CONTROL_PLANE_USERS) | u.str.match(PLATFORM_USERS)
            | (ks & (u.str.endswith(CONTROLLER_SUFFIXES[0]) | u.str.endswith(CONTROLLER_SUFFIXES[1]))))


def allowed(a: pd.DataFrame) -> pd.Series:
    """The API server let the request through (a 403 or a forbid is only an attempt)."""
    decision = a["decision"].fillna("")
    code = a["response_code"].astype("Int64")
    return (decision == "allow") | ((decision == "") & (code < 400).fillna(False))


def _allowed(ev: Evidence) -> pd.Series:
    return ev.memo("audit.allowed", lambda: allowed(ev.audit))


def _system(ev: Evidence) -> pd.Series:
    return ev.memo("audit.system", lambda: is_system(ev.audit["user"]))


def _bodies(a: pd.DataFrame, mask: pd.Series, column: str = "request_object", *, unreadable: UnreadableBodies | None = None) -> pd.Series:
    """Parsed request (or response) bodies of the rows in ``mask``; None where absent, or too
    large, too deep or not JSON (``bodies.parse_body``: recorded in ``unreadable``, by event id)."""
    out = pd.Series(None, index=a.index, dtype=object)
    bodies = UnreadableBodies() if unreadable is None else unreadable
    rows = a.loc[mask]
    ids = rows["event_id"] if "event_id" in rows.columns else pd.Series(None, index=rows.index, dtype=object)
    for i, text, event_id in zip(rows.index, rows[column], ids):
        value = bodies.parse(text, where=f"detection:{column}", event_id=event_id)
        if value is not None:
            out.at[i] = value
    return out


def pod_spec(obj: Any) -> dict[str, Any] | None:
    """The pod spec of a Pod, a workload's template or a CronJob's job template."""
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if "jobTemplate" in spec:
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    if "template" in spec:
        spec = ((spec.get("template") or {}).get("spec") or {})
    return spec if isinstance(spec, dict) else None


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out += [c for c in spec.get(key) or [] if isinstance(c, dict)]
    return out


def _workload_writes(ev: Evidence) -> tuple[pd.DataFrame, pd.Series]:
    """Allowed create/update/patch of pods and workloads by people and pod identities, with
    their pod specs. Controllers and platform agents are left out: the pods a controller makes
    come from a template whose own write is the finding (and is in the case when it happened
    inside the evidence window)."""
    return ev.memo("audit.workload_writes", lambda: _parse_workload_writes(ev))


def _parse_workload_writes(ev: Evidence) -> tuple[pd.DataFrame, pd.Series]:
    a = ev.audit
    m = a["verb"].isin(WRITE_VERBS) & a["resource"].isin(WORKLOAD_RESOURCES) & a["subresource"].isna() & _allowed(ev) & ~_system(ev)
    bodies = _bodies(a, m, unreadable=ev.unreadable)
    specs = bodies.map(pod_spec)
    keep = m & specs.notna()
    rows = a[keep]
    # a pod created with generateName has no name in the request URI: take it from the body
    named = bodies[keep].map(lambda o: ((o or {}).get("metadata") or {}).get("name") or (((o or {}).get("metadata") or {}).get("generateName") or "") + "*")
    rows = rows.assign(object_name=rows["object_name"].where(rows["object_name"].notna() & (rows["object_name"] != ""), named))
    return rows, specs[keep]


def _object_ref(rows: pd.DataFrame) -> pd.Series:
    ns = rows["object_namespace"].fillna("")
    name = rows["object_name"].fillna("")
    return rows["resource"].fillna("") + "/" + (ns + "/").where(ns != "", "") + name


def _hits_by_object(rows: pd.DataFrame, summary: Any, *, gap: Any = None, **kw: Any) -> pd.DataFrame:
    """Hits about an object the actor wrote (a pod, a binding): the entity is the object."""
    if rows.empty:
        return pd.DataFrame()
    pods = rows["resource"] == "pods"
    entity = pod_entity(rows["object_namespace"], rows["object_name"]).where(pods, _object_ref(rows))
    return hits_from_rows(rows, entity_type=kw.pop("entity_type", "pod" if bool(pods.all()) else "object"), entity=entity,
                          namespace=rows["object_namespace"], pod=rows["object_name"].where(pods, None), user=rows["user"],
                          source_ip=rows["source_ip"], summary=summary, table="audit", gap=gap, **kw)


def _hits_by_actor(rows: pd.DataFrame, summary: Any, *, gap: Any = None, **kw: Any) -> pd.DataFrame:
    """Hits about who acted: the entity is the identity."""
    if rows.empty:
        return pd.DataFrame()
    sa = rows["sa_name"].notna()
    entity = (rows["sa_namespace"].astype(str) + "/" + rows["sa_name"].astype(str)).where(sa, rows["user"])
    return hits_from_rows(rows, entity_type=kw.pop("entity_type", "service_account" if bool(sa.all()) else "user"), entity=entity,
                          namespace=rows["object_namespace"], user=rows["user"], source_ip=rows["source_ip"],
                          summary=summary, table="audit", gap=gap, **kw)


# ---------------------------------------------------------------------- execution


def exec_into_pod(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "pods") & a["subresource"].isin(["exec", "attach"]) & a["verb"].isin(["create", "get"]) & _allowed(ev)
    rows = a[m]
    if rows.empty:
        return pd.DataFrame()
    hits = _hits_by_object(rows, lambda r: f"{r.user} ran {r.subresource} in pod {r.entity}" + (f": {r.exec_command}" if r.exec_command else "")
                           + f" (from {r.source_ip}, {r.user_agent})")
    # a pod's own identity exec-ing into another pod is movement, not a first foothold
    by_sa = hits["user"].fillna("").str.startswith("system:serviceaccount:")
    return set_where(hits, by_sa, tactic="Lateral Movement", kill_chain_phase="Actions on Objectives", severity="high")


def exec_suspicious_command(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    cmd = a["exec_command"].fillna("")
    m = (a["subresource"].isin(["exec", "attach"]) & _allowed(ev) & cmd.str.contains(BAD_EXEC) & ~cmd.str.contains(SA_TOKEN_PATHS))
    return _hits_by_object(a[m], lambda r: f"{r.user} exec'd a reverse-shell, download or credential command in {r.entity}: {r.exec_command}")


def exec_reads_token(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = a["subresource"].isin(["exec", "attach"]) & _allowed(ev) & a["exec_command"].fillna("").str.contains(SA_TOKEN_PATHS)
    return _hits_by_object(a[m], lambda r: f"{r.user} exec'd into {r.entity} to read its service-account token: {r.exec_command}")


def kubectl_cp(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["subresource"] == "exec") & _allowed(ev) & a["exec_command"].fillna("").str.contains(r"^tar\s+-?c\S*f\s+-", regex=True)
    return _hits_by_object(a[m], lambda r: f"{r.user} copied files out of {r.entity} (kubectl cp: {r.exec_command})")


def ephemeral_container(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "pods") & (a["subresource"] == "ephemeralcontainers") & a["verb"].isin(["update", "patch"]) & _allowed(ev)
    return _hits_by_object(a[m], lambda r: f"{r.user} added an ephemeral (debug) container to {r.entity}")


def port_forward(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "pods") & (a["subresource"] == "portforward") & _allowed(ev)
    return _hits_by_object(a[m], lambda r: f"{r.user} port-forwarded into {r.entity} from {r.source_ip}")


def node_proxy(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    uri = a["request_uri"].fillna("")
    m = (a["resource"] == "nodes") & (a["subresource"] == "proxy") & _allowed(ev) & ~uri.str.contains(r"/proxy/(?:metrics|healthz|stats/summary)")
    rows = a[m]
    hits = hits_from_rows(rows, entity_type="node", entity=rows["object_name"], user=rows["user"], source_ip=rows["source_ip"],
                          summary=lambda r: f"{r.user} reached the kubelet API of node {r.entity} through the API server: {r.request_uri}",
                          table="audit", gap=ev.settings["session_gap"])
    if len(hits):
        hits["severity"] = ["critical" if re.search(r"/(?:exec|run|checkpoint|attach)/", s) else "high" for s in hits["summary"]]
    return hits


# ---------------------------------------------------------------------- privileged pods and escapes


def _spec_rule(ev: Evidence, test: Any, summary: Any) -> pd.DataFrame:
    rows, specs = _workload_writes(ev)
    if rows.empty:
        return pd.DataFrame()
    found = specs.map(test)
    rows = rows.assign(detail=found)[found.map(bool).astype(bool)]
    return _hits_by_object(rows, summary)


def _privileged(spec: dict[str, Any]) -> str:
    names = [c.get("name", "?") for c in containers(spec) if ((c.get("securityContext") or {}).get("privileged") is True)]
    return ", ".join(names)


def privileged_pod(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(ev, _privileged, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} with privileged container(s) {r.detail}"
                      + f" (from {r.source_ip})")


def _host_namespaces(spec: dict[str, Any]) -> str:
    return ", ".join(k for k in ("hostPID", "hostIPC", "hostNetwork") if spec.get(k) is True)


def host_namespaces(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(ev, _host_namespaces, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} sharing the node's {r.detail}")


def _sensitive_host_paths(spec: dict[str, Any]) -> str:
    paths = [((v.get("hostPath") or {}).get("path") or "") for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("hostPath")]
    bad = [p for p in paths if is_sensitive_host_path(p)]
    return ", ".join(bad)


def sensitive_host_path(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(ev, _sensitive_host_paths, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} mounting host path(s) {r.detail}")


def _dangerous_caps(spec: dict[str, Any]) -> str:
    caps = {str(c).upper().removeprefix("CAP_") for ct in containers(spec) for c in (((ct.get("securityContext") or {}).get("capabilities") or {}).get("add") or [])}
    return ", ".join(sorted(caps & DANGEROUS_CAPS))


def dangerous_capabilities(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(ev, _dangerous_caps, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} adding capabilities {r.detail}")


def _registry(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" not in image or not ("." in first or ":" in first or first == "localhost"):
        return "docker.io"
    return first


def _image_baseline(ev: Evidence) -> set[str]:
    trusted = ev.settings["trusted_registries"]
    if trusted is not None:
        return set(trusted)
    pods, start = ev.context("pods"), ev.start()
    if pods.empty or start is None:
        return set()
    before = pods[pods["created"].notna() & (pods["created"] < start)]
    return {_registry(i) for images in before["images"].dropna() for i in images}


def untrusted_image(ev: Evidence) -> pd.DataFrame:
    trusted = _image_baseline(ev)
    if not trusted:
        return pd.DataFrame()

    def bad(spec: dict[str, Any]) -> str:
        imgs = [str(c.get("image", "")) for c in containers(spec) if c.get("image")]
        return ", ".join(i for i in imgs if _registry(i) not in trusted and not any(i.startswith(t) for t in trusted))

    return _spec_rule(ev, bad, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} with image(s) from an untrusted registry: {r.detail}")


# ---------------------------------------------------------------------- persistence


def _binding_role(obj: Any) -> str | None:
    return ((obj or {}).get("roleRef") or {}).get("name") if isinstance(obj, dict) else None


def cluster_admin_binding(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & a["verb"].isin(WRITE_VERBS) & _allowed(ev)
    bodies = _bodies(a, m, unreadable=ev.unreadable)
    role = bodies.map(_binding_role)
    keep = m & (role == "cluster-admin")
    rows = a[keep].assign(subjects=bodies[keep].map(_subjects))
    return _hits_by_object(rows, lambda r: f"{r.user} bound cluster-admin with {r.resource} {r.object_name} to {r.subjects} (from {r.source_ip})",
                           entity_type="binding")


def _dicts(obj: Any, key: str) -> list[dict[str, Any]]:
    """The objects in the list ``obj[key]``: a body of another shape gives none (and no error)."""
    items = obj.get(key) if isinstance(obj, dict) else None
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _strings(v: Any) -> set[str]:
    return {x for x in v if isinstance(x, str)} if isinstance(v, list) else set()


def _subjects(obj: Any) -> str:
    return ", ".join(f"{s.get('kind')} {str(s.get('namespace')) + '/' if s.get('namespace') else ''}{s.get('name')}" for s in _dicts(obj, "subjects"))


def _subject_users(obj: Any) -> list[str]:
    out = []
    for s in _dicts(obj, "subjects"):
        if s.get("kind") == "ServiceAccount":
            out.append(f"system:serviceaccount:{s.get('namespace')}:{s.get('name')}")
        else:
            out.append(str(s.get("name")))
    return out


def new_binding_first_use(ev: Evidence) -> pd.DataFrame:
    """After a binding to cluster-admin is created: the first request it authorised (the
    authorizer's reason names it) or, when the reason is not specific, the first allowed
    request by one of its subjects."""
    a = ev.audit
    m = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & (a["verb"] == "create") & _allowed(ev)
    bodies = _bodies(a, m, unreadable=ev.unreadable)
    out = []
    ok = _allowed(ev)
    for i in a.index[m & (bodies.map(_binding_role) == "cluster-admin")]:
        name, t0, users = a.at[i, "object_name"], a.at[i, "time"], _subject_users(bodies[i])
        later = a[(a["time"] > t0) & ok]
        named = later["authz_reason"].fillna("").str.contains(f'"{re.escape(str(name))}"', regex=True)
        groups = later["user_groups"].map(lambda g, users=users: bool(set(_items(g)) & set(users)))
        use = later[named | later["user"].isin(users) | groups]
        if len(use):
            first = use.iloc[[0]].assign(binding=name, created_by=a.at[i, "user"])
            out.append(_hits_by_actor(first, lambda r: f"first use of the new cluster-admin binding {r.binding} (created by {r.created_by}): "
                                      f"{r.user} {r.verb} {r.resource} {r.object_namespace}/{r.object_name} from {r.source_ip}"))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


RISKY_VERBS = frozenset({"*", "bind", "escalate", "impersonate"})
RISKY_RESOURCES = frozenset({"*", "pods/exec", "pods/attach", "nodes/proxy", "serviceaccounts/token", "secrets", "certificatesigningrequests/approval"})


def _risky_rules(obj: Any) -> str:
    found = set()
    for r in _dicts(obj, "rules"):
        found |= _strings(r.get("verbs")) & RISKY_VERBS
        found |= _strings(r.get("resources")) & RISKY_RESOURCES
    return ", ".join(sorted(found))


def risky_role(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = a["resource"].isin(["clusterroles", "roles"]) & a["verb"].isin(WRITE_VERBS) & _allowed(ev) & ~_system(ev)
    risky = _bodies(a, m, unreadable=ev.unreadable).map(_risky_rules)
    rows = a[m].assign(detail=risky[m])
    rows = rows[rows["detail"].map(bool).astype(bool)]
    return _hits_by_object(rows, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_name} granting {r.detail}", entity_type="role")


def cronjob_write(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = ((a["api_group"] == "batch") & a["resource"].isin(["cronjobs", "jobs"]) & a["verb"].isin([*WRITE_VERBS, "delete"])
         & a["subresource"].isna() & _allowed(ev) & ~_system(ev))
    return _hits_by_object(a[m], lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} (from {r.source_ip})",
                           entity_type="workload")


def daemonset_create(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "daemonsets") & (a["verb"] == "create") & _allowed(ev) & ~_system(ev)
    return _hits_by_object(a[m], lambda r: f"{r.user} created DaemonSet {r.object_namespace}/{r.object_name} (runs on every node)",
                           entity_type="workload")


def rbac_then_workload(ev: Evidence) -> pd.DataFrame:
    """The same identity changes RBAC and then writes a workload within 5 minutes."""
    a = ev.audit
    ok = _allowed(ev) & ~_system(ev) & a["verb"].isin(WRITE_VERBS)
    rbac = a[ok & a["resource"].isin(["clusterrolebindings", "rolebindings", "clusterroles", "roles"])]
    work = a[ok & a["resource"].isin(WORKLOAD_RESOURCES - {"pods"}) & a["subresource"].isna()]
    if rbac.empty or work.empty:
        return pd.DataFrame()
    pairs = pd.merge_asof(work.sort_values("time"), rbac[["time", "user", "event_id", "resource", "object_name"]].sort_values("time")
                          .rename(columns={"event_id": "rbac_event", "resource": "rbac_resource", "object_name": "rbac_object", "time": "rbac_time"}),
                          left_on="time", right_on="rbac_time", by="user", direction="backward", tolerance=pd.Timedelta(minutes=5))
    pairs = pairs[pairs["rbac_event"].notna()]
    if pairs.empty:
        return pd.DataFrame()
    return _hits_by_actor(pairs, lambda r: f"{r.user} changed {r.rbac_resource} {r.rbac_object} and then {r.verb}d {r.resource} "
                          f"{r.object_namespace}/{r.object_name}", linked=pairs["rbac_event"], since=pairs["rbac_time"])


def admission_webhook(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"].isin(["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]) & a["verb"].isin([*WRITE_VERBS, "delete"])
         & _allowed(ev) & ~_system(ev))
    return _hits_by_object(a[m], lambda r: f"{r.user} {r.verb}d admission webhook {r.resource} {r.object_name}", entity_type="webhook")


def static_mirror_pod(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "pods") & (a["verb"] == "create") & a["user"].fillna("").str.startswith("system:node:") & _allowed(ev)
    bodies = _bodies(a, m, unreadable=ev.unreadable)
    mirror = bodies.map(lambda o: "kubernetes.io/config.mirror" in (((o or {}).get("metadata") or {}).get("annotations") or {}) if isinstance(o, dict) else False)
    rows = a[m & mirror.astype(bool)]
    rows = rows[rows["object_namespace"] != "kube-system"]  # control-plane static pods live there
    return _hits_by_object(rows, lambda r: f"node {r.user} registered static (mirror) pod {r.entity}: a manifest on the node's disk runs it")


def pod_in_system_namespace(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "pods") & (a["verb"] == "create") & a["subresource"].isna() & a["object_namespace"].isin(["kube-system", "kube-public"]) \
        & _allowed(ev) & ~_system(ev) & ~a["user"].isin(["system:admin", "kubernetes-admin"])
    return _hits_by_object(a[m], lambda r: f"{r.user} created pod {r.entity} in a system namespace, named like a system pod"
                           if re.match(r"(?:kube-|coredns|etcd|calico|cilium|aws-node|azure|gke-|konnectivity)", str(r.object_name))
                           else f"{r.user} created pod {r.entity} in a system namespace")


def first_workload_creates(ev: Evidence) -> pd.DataFrame:
    """The first pod or workload each identity (not a controller, not a node) created."""
    a = ev.audit
    m = a["resource"].isin(WORKLOAD_RESOURCES) & (a["verb"] == "create") & a["subresource"].isna() & _allowed(ev) & ~_system(ev)
    return a[m].sort_values("time").drop_duplicates("user")


def new_pod_creator(ev: Evidence) -> pd.DataFrame:
    """A pod (or workload) created by an identity that never created one before in the case,
    after a quiet learning period; controllers and nodes are expected creators."""
    rows = first_workload_creates(ev)
    start = ev.start()
    if start is None:
        return pd.DataFrame()
    rows = rows[rows["time"] >= start + pd.Timedelta(ev.settings["learning_window"])]
    return _hits_by_object(rows, lambda r: f"{r.user} created {r.resource} {r.object_namespace}/{r.object_name}: the first time this identity "
                           f"created a workload in the evidence (from {r.source_ip})", entity_type="workload")


# ---------------------------------------------------------------------- credential access


def secrets_read(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "secrets") & a["verb"].isin(["get", "list", "watch"]) & _allowed(ev) & ~_system(ev)
    rows = a[m]
    if rows.empty:
        return pd.DataFrame()
    hits = _hits_by_actor(rows, lambda r: f"{r.user} read secret(s) starting with {r.object_namespace or '(all namespaces)'}/{r.object_name or '*'}"
                          f" ({r.n} request(s), {r.verb}, from {r.source_ip}, {r.user_agent})", gap=ev.settings["session_gap"])
    flags = [("list" in s and "(all namespaces)" in s) or "kube-system" in s or "serviceaccount" in str(u)
             for s, u in zip(hits["summary"], hits["user"])]
    hits["severity"] = ["high" if f else "medium" for f in flags]
    return hits


def token_request(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    tok = (a["resource"] == "serviceaccounts") & (a["subresource"] == "token") & (a["verb"] == "create")
    csr = (a["resource"] == "certificatesigningrequests") & a["verb"].isin(["create", "update", "patch"])
    m = (tok | csr) & _allowed(ev) & ~_system(ev) & ~a["user"].fillna("").str.startswith("system:node:")
    return _hits_by_object(a[m], lambda r: f"{r.user} minted a credential: {r.resource}/{r.subresource or r.verb} {r.object_namespace}/{r.object_name}",
                           entity_type="service_account")


def token_used_elsewhere(ev: Evidence) -> pd.DataFrame:
    """A service-account token used from an address that is not its pod's at that time, or
    from outside the cluster. Bound tokens name their pod (``user.extra``); for the others
    the pod at the source address must run as that service account."""
    a = ev.audit
    sa = a[a["sa_name"].notna() & a["source_ip"].notna() & ~_system(ev)]
    if sa.empty:
        return pd.DataFrame()
    nets = cluster_networks(ev.context("nodes"))
    outside = external_mask(sa["source_ip"], nets)
    src_pod = sa["source_pod"] if "source_pod" in sa.columns else pd.Series(None, index=sa.index)
    src_ns = sa["source_namespace"] if "source_namespace" in sa.columns else pd.Series(None, index=sa.index)
    bound = sa["token_pod"].notna()
    wrong_bound = bound & src_pod.notna() & ((src_pod != sa["token_pod"]) | (src_ns != sa["sa_namespace"]))
    src_sa = service_accounts(ev, src_ns, src_pod)
    wrong_unbound = ~bound & src_pod.notna() & src_sa.notna() & ((src_sa != sa["sa_name"]) | (src_ns != sa["sa_namespace"]))
    rows = sa[outside | wrong_bound | wrong_unbound].assign(
        where=lambda d: [f"outside the cluster ({ip})" if o else f"pod {n}/{p} ({ip})" for ip, o, n, p in
                         zip(d["source_ip"], outside[d.index], src_ns[d.index], src_pod[d.index])],
        owner=lambda d: [f"pod {ns}/{p}" if isinstance(p, str) else "its pods" for ns, p in zip(d["sa_namespace"], d["token_pod"])])
    if rows.empty:
        return pd.DataFrame()
    hits = _hits_by_actor(rows, lambda r: f"token of service account {r.entity} (bound to {r.owner}) used from {r.where}: "
                          f"{r.n} request(s) starting with {r.verb} {r.resource}", gap=ev.settings["session_gap"])
    hits["severity"] = "critical"
    return hits


def impersonation(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    imp = a["impersonated_user"].fillna("")
    groups = a["impersonated_groups"].map(lambda g: "system:masters" in _items(g))
    m = (imp.str.match(PRIVILEGED_USERS) | groups) & _allowed(ev)
    return _hits_by_actor(a[m], lambda r: f"{r.user} impersonated {r.impersonated_user or 'system:masters'}: {r.verb} {r.resource}",
                          gap=ev.settings["session_gap"])


# ---------------------------------------------------------------------- discovery


def self_review(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"].isin(["selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"]) & (a["verb"] == "create")
         & (a["sa_name"].notna() | a["user"].fillna("").str.startswith("system:node:")))
    return _hits_by_actor(a[m], lambda r: f"{r.user} asked the API what it may do ({r.resource}, kubectl auth can-i / whoami) from {r.source_ip}",
                          gap=ev.settings["session_gap"])


def api_enumeration(ev: Evidence) -> pd.DataFrame:
    """One identity from one address lists at least three kinds of object within a minute."""
    a = ev.audit
    lists = a[(a["verb"] == "list") & ~_system(ev) & a["resource"].notna()]
    if lists.empty:
        return pd.DataFrame()
    lists = lists.assign(minute=lists["time"].dt.floor("min"))
    kinds = lists.groupby(["user", "source_ip", "minute"])["resource"].transform("nunique")
    rows = lists[kinds >= 3]
    return _hits_by_actor(rows, lambda r: f"{r.user} listed {r.n} kinds of object within a minute from {r.source_ip}",
                          gap=ev.settings["session_gap"])


def forbidden_burst(ev: Evidence) -> pd.DataFrame:
    """More than five denied requests from one address within a minute: probing."""
    a = ev.audit
    code = a["response_code"].astype("Int64")
    denied = a[code.isin([401, 403]).fillna(False) & ~_system(ev)]
    if denied.empty:
        return pd.DataFrame()
    denied = denied.assign(minute=denied["time"].dt.floor("min"))
    n = denied.groupby(["source_ip", "minute"])["event_id"].transform("size")
    rows = denied[n > 5]
    if rows.empty:
        return pd.DataFrame()
    outside = external_mask(rows["source_ip"], cluster_networks(ev.context("nodes")))
    hits = hits_from_rows(rows, entity_type="ip", entity=rows["source_ip"], user=rows["user"], source_ip=rows["source_ip"],
                          summary=lambda r: f"{r.n} denied API requests from {r.source_ip} (as {r.user}) within minutes: probing",
                          table="audit", gap=ev.settings["session_gap"])
    ext = hits["source_ip"].isin(set(rows.loc[outside, "source_ip"]))
    return set_where(hits, ext, kill_chain_phase="Reconnaissance")


def anonymous_allowed(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    anon = (a["user"] == "system:anonymous") | a["user_groups"].map(lambda g: "system:unauthenticated" in _items(g))
    m = anon & _allowed(ev) & ~a["request_uri"].fillna("").str.match(HEALTH_URIS)
    return hits_from_rows(a[m], entity_type="ip", entity=a.loc[m, "source_ip"], user=a.loc[m, "user"], source_ip=a.loc[m, "source_ip"],
                          summary=lambda r: f"anonymous request allowed from {r.source_ip}: {r.verb} {r.request_uri}", table="audit",
                          gap=ev.settings["session_gap"])


# ---------------------------------------------------------------------- defence evasion, impact, exposure


def events_deleted(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "events") & a["verb"].isin(["delete", "deletecollection"]) & _allowed(ev) & ~_system(ev)
    return _hits_by_actor(a[m], lambda r: f"{r.user} deleted Kubernetes events in {r.object_namespace or 'all namespaces'} ({r.verb})",
                          gap=ev.settings["session_gap"])


def coredns_modified(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = ((a["resource"] == "configmaps") & (a["object_namespace"] == "kube-system") & a["object_name"].isin(["coredns", "kube-dns", "coredns-custom"])
         & a["verb"].isin([*WRITE_VERBS, "delete"]) & _allowed(ev) & ~_system(ev)
         & ~a["user"].isin(["system:serviceaccount:kube-system:coredns", "system:serviceaccount:kube-system:kube-dns"]))
    return _hits_by_object(a[m], lambda r: f"{r.user} {r.verb}d the cluster DNS configuration {r.object_name}", entity_type="object")


CREDENTIAL_TEXT = re.compile(r"aws_access_key_id|aws_secret_access_key|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|\"password\"\s*:|passwd|client_secret",
                             re.IGNORECASE)


def configmap_credentials(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = ((a["resource"] == "configmaps") & a["verb"].isin(WRITE_VERBS) & _allowed(ev)).fillna(False).astype(bool)
    m[m] = a.loc[m, "request_object"].fillna("").str.contains(CREDENTIAL_TEXT)  # the regex only on the candidate rows
    return _hits_by_object(a[m], lambda r: f"{r.user} wrote credentials in plain text into ConfigMap {r.object_namespace}/{r.object_name}",
                           entity_type="object")


def exposed_service(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "services") & a["verb"].isin(WRITE_VERBS) & _allowed(ev) & ~_system(ev)
    bodies = _bodies(a, m, unreadable=ev.unreadable)

    def exposure(o: Any) -> str:
        spec = (o or {}).get("spec") or {} if isinstance(o, dict) else {}
        if spec.get("type") == "NodePort":
            return "NodePort"
        if spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerSourceRanges"):
            return "LoadBalancer open to any address"
        return "externalIPs" if spec.get("externalIPs") else ""

    rows = a[m].assign(detail=bodies[m].map(exposure))
    rows = rows[rows["detail"].map(bool).astype(bool)]
    return _hits_by_object(rows, lambda r: f"{r.user} exposed service {r.object_namespace}/{r.object_name} outside the cluster ({r.detail})",
                           entity_type="service")


def destruction(ev: Evidence) -> pd.DataFrame:
    """Five or more deletions of workloads, volumes or namespaces by one identity within 5
    minutes, or a deletecollection of them."""
    a = ev.audit
    kinds = ["deployments", "statefulsets", "daemonsets", "persistentvolumeclaims", "persistentvolumes", "namespaces", "configmaps", "secrets"]
    d = a[a["resource"].isin(kinds) & a["verb"].isin(["delete", "deletecollection"]) & _allowed(ev) & ~_system(ev)]
    if d.empty:
        return pd.DataFrame()
    d = d.assign(window=d["time"].dt.floor("5min"))
    n = d.groupby(["user", "window"])["event_id"].transform("size")
    rows = d[(n >= 5) | (d["verb"] == "deletecollection")]
    return _hits_by_actor(rows, lambda r: f"{r.user} deleted {r.n} workloads/volumes/namespaces starting with {r.resource} {r.object_namespace}/{r.object_name}",
                          gap=ev.settings["session_gap"])


def sidecar_injection(ev: Evidence) -> pd.DataFrame:
    """A patch or update of a running workload's container list by someone who is not a
    controller: a container can be slipped into a legitimate pod template."""
    a = ev.audit
    m = (a["resource"].isin(["deployments", "daemonsets", "statefulsets"]) & a["verb"].isin(["patch", "update"]) & a["subresource"].isna()
         & _allowed(ev) & ~_system(ev))
    specs = _bodies(a, m, unreadable=ev.unreadable).map(pod_spec)
    rows = a[m & specs.map(lambda s: bool(s and s.get("containers")))]
    rows = rows.assign(names=specs[rows.index].map(lambda s: ", ".join(str(c.get("name")) for c in s.get("containers") or [])))
    return _hits_by_object(rows, lambda r: f"{r.user} {r.verb}ed the containers of {r.resource} {r.object_namespace}/{r.object_name}: {r.names}",
                           entity_type="workload")


R = Rule
AUDIT_RULES = [
    R("k8s-exec-into-pod", "Exec or attach into a pod", "medium", "MS-TA9006", "T1609", "Execution", "Exploitation", "audit", exec_into_pod,
      "pods/exec or pods/attach, create or get (websocket), allowed. By a service account it is lateral movement."),
    R("k8s-exec-suspicious-command", "Exec with a reverse shell, download or credential command", "high", "MS-TA9007", "T1059", "Execution",
      "Exploitation", "audit", exec_suspicious_command),
    R("k8s-exec-reads-sa-token", "Exec reading a service-account token", "high", "MS-TA9016", "T1528", "Credential Access",
      "Actions on Objectives", "audit", exec_reads_token),
    R("k8s-kubectl-cp", "Files copied out of a pod (kubectl cp)", "medium", "MS-TA9041", "T1005", "Collection", "Actions on Objectives", "audit",
      kubectl_cp),
    R("k8s-ephemeral-container", "Ephemeral (debug) container added", "medium", "MS-TA9006", "T1609", "Execution", "Exploitation", "audit",
      ephemeral_container),
    R("k8s-port-forward", "Port-forward into a pod", "medium", None, "T1572", "Command and Control", "Command & Control", "audit", port_forward),
    R("k8s-node-proxy", "Kubelet API reached through nodes/proxy", "high", "MS-TA9030", "T1613", "Discovery", "Actions on Objectives", "audit",
      node_proxy),
    R("k8s-privileged-pod", "Privileged container created", "high", "MS-TA9018", "T1610", "Privilege Escalation", "Exploitation", "audit",
      privileged_pod),
    R("k8s-host-namespaces", "Pod sharing the node's PID, IPC or network namespace", "high", "MS-TA9018", "T1611", "Privilege Escalation",
      "Exploitation", "audit", host_namespaces),
    R("k8s-sensitive-host-path", "Sensitive host path mounted", "high", "MS-TA9013", "T1611", "Privilege Escalation", "Exploitation", "audit",
      sensitive_host_path),
    R("k8s-dangerous-capabilities", "Container with dangerous Linux capabilities", "high", "MS-TA9018", "T1611", "Privilege Escalation",
      "Exploitation", "audit", dangerous_capabilities),
    R("k8s-untrusted-image", "Image from an untrusted registry", "medium", "MS-TA9002", "T1525", "Initial Access", "Delivery", "audit",
      untrusted_image, "Registries: settings['trusted_registries'], else those of pods running before the evidence starts."),
    R("k8s-cluster-admin-binding", "Binding to cluster-admin created", "critical", "MS-TA9019", "T1078.003", "Persistence", "Installation", "audit",
      cluster_admin_binding),
    R("k8s-cluster-admin-binding-first-use", "First use of a new cluster-admin binding", "critical", "MS-TA9019", "T1078.003", "Privilege Escalation",
      "Actions on Objectives", "audit", new_binding_first_use),
    R("k8s-risky-role", "Role granting wildcard, escalation or sensitive permissions", "medium", "MS-TA9019", "T1098.006", "Persistence",
      "Installation", "audit", risky_role),
    R("k8s-cronjob-write", "CronJob or Job created or changed by a non-controller", "medium", "MS-TA9014", "T1053.007", "Persistence",
      "Installation", "audit", cronjob_write),
    R("k8s-daemonset-create", "DaemonSet created by a non-controller", "medium", "MS-TA9012", "T1543", "Persistence", "Installation", "audit",
      daemonset_create),
    R("k8s-rbac-then-workload", "RBAC change followed by a workload write", "high", "MS-TA9012", "T1543", "Persistence", "Installation", "audit",
      rbac_then_workload),
    R("k8s-sidecar-injection", "Workload containers patched by a non-controller", "low", "MS-TA9011", "T1610", "Execution", "Installation", "audit",
      sidecar_injection),
    R("k8s-admission-webhook", "Admission webhook configuration written", "high", "MS-TA9015", "T1546", "Persistence", "Installation", "audit",
      admission_webhook),
    R("k8s-static-pod", "Static (mirror) pod registered outside kube-system", "medium", "MS-TA9017", "T1543", "Persistence", "Installation",
      "audit", static_mirror_pod),
    R("k8s-pod-in-system-namespace", "Pod created in kube-system by a non-controller", "high", "MS-TA9023", "T1036.005", "Defense Evasion",
      "Installation", "audit", pod_in_system_namespace),
    R("k8s-new-pod-creator", "Workload created by an identity that never created one before", "medium", "MS-TA9008", "T1610", "Execution",
      "Installation", "audit", new_pod_creator),
    R("k8s-secrets-read", "Secrets read by a non-system identity", "medium", "MS-TA9025", "T1552.007", "Credential Access",
      "Actions on Objectives", "audit", secrets_read),
    R("k8s-token-request", "Service-account token or client certificate minted", "medium", "MS-TA9016", "T1528", "Credential Access",
      "Actions on Objectives", "audit", token_request),
    R("k8s-token-used-elsewhere", "Service-account token used from outside its pod", "critical", "MS-TA9016", "T1550.001", "Lateral Movement",
      "Actions on Objectives", "audit", token_used_elsewhere),
    R("k8s-impersonation", "Impersonation of a privileged identity", "high", None, "T1078", "Privilege Escalation", "Exploitation", "audit",
      impersonation),
    R("k8s-self-review", "Permission discovery by a pod or node identity", "medium", "MS-TA9029", "T1613", "Discovery", "Actions on Objectives",
      "audit", self_review),
    R("k8s-api-enumeration", "Enumeration of several kinds of object", "medium", "MS-TA9029", "T1613", "Discovery", "Actions on Objectives",
      "audit", api_enumeration),
    R("k8s-forbidden-burst", "Burst of denied API requests", "medium", "MS-TA9029", "T1613", "Discovery", "Actions on Objectives", "audit",
      forbidden_burst),
    R("k8s-anonymous-allowed", "Anonymous request allowed", "high", None, "T1078.001", "Initial Access", "Delivery", "audit", anonymous_allowed),
    R("k8s-events-deleted", "Kubernetes events deleted", "medium", "MS-TA9022", "T1070", "Defense Evasion", "Installation", "audit",
      events_deleted),
    R("k8s-coredns-modified", "Cluster DNS configuration changed", "high", "MS-TA9035", "T1557", "Lateral Movement", "Actions on Objectives",
      "audit", coredns_modified),
    R("k8s-configmap-credentials", "Credentials written into a ConfigMap", "medium", "MS-TA9027", "T1552", "Credential Access",
      "Actions on Objectives", "audit", configmap_credentials),
    R("k8s-exposed-service", "Service exposed outside the cluster", "medium", "MS-TA9005", "T1133", "Initial Access", "Delivery", "audit",
      exposed_service),
    R("k8s-destruction", "Bulk deletion of workloads, volumes or namespaces", "high", "MS-TA9038", "T1485", "Impact", "Actions on Objectives",
      "audit", destruction),
]
