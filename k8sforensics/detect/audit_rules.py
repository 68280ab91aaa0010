"""Built-in rules over the audit table (and the context rules that join it with others).

Each rule follows the Threat Matrix technique it names and avoids the usual rule bugs: matches need an allowed
decision (a 403 is an attempt, reported by the probing rule), exec is create *or* get,
fields are the ones real events carry (``objectRef.apiGroup``, nested ``capabilities.add``),
and every stage of a request is already folded into one row by the loader.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import node_ids
from ..bodies import UnreadableBodies
from ..context.networks import cluster_networks, external_mask
from . import runtime_rules
from .engine import (
    Evidence,
    Rule,
    hits_from_rows,
    pod_entity,
    service_accounts,
    set_where,
)
from .facts import (
    SA_TOKEN_PATHS,
    SA_TOKEN_TYPE,
    allowed,
    allowed_requests,
    dicts_in,
    is_sensitive_host_path,
    is_system,
    parsed_bodies,
    subject_users,
    system_requests,
)

WORKLOAD_RESOURCES = frozenset(
    {"pods", "deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicationcontrollers"}
)
WRITE_VERBS = frozenset({"create", "update", "patch"})
DANGEROUS_CAPS = frozenset(
    {"SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "NET_ADMIN", "BPF", "DAC_READ_SEARCH", "SYS_RAWIO", "ALL"}
)
BAD_EXEC = re.compile(
    r"/dev/tcp/|/dev/udp/|\bnc\b.*\s-e\s|\bncat\b.*\s-e\s|\bmkfifo\b|\bsocat\b.*exec|bash\s+-i\b|"
    r"\b(?:curl|wget)\b.*https?://|169\.254\.169\.254|metadata\.google\.internal|/\.aws/|azure\.json|base64\s+-d"
)
HEALTH_URIS = re.compile(
    r"^/(?:healthz|livez|readyz|version|metrics|openid/v1/jwks|\.well-known/openid-configuration)\b"
)
PRIVILEGED_USERS = re.compile(
    r"^(?:system:admin|kubernetes-admin|cluster-admin|system:node:.*|system:serviceaccount:kube-system:.*|system:kube-.*)$"
)


def _items(v: Any) -> list[Any]:
    """A list cell (a list, an array, or missing) as a list."""
    return [] if v is None or isinstance(v, float) else list(v)


def in_burst(
    rows: pd.DataFrame, *, by: list[str], window: Any, min_count: int, distinct: str | None = None
) -> pd.Series:
    """Rows (aligned with ``rows``) that lie in some sliding ``window`` in which one key (``by``)
    has at least ``min_count`` rows (or, with ``distinct``, that many distinct values of that
    column). A sliding window, not fixed clock buckets (``dt.floor``): a burst that straddles a
    bucket boundary (two deletions at 10:04:58 and three at 10:05:01) is still one burst.

    Whole columns: the rows sorted by key and time, each row's window ``[t, t + window)`` found
    by one binary search over (key, time ranks), and the rows a window covers marked by a running
    sum; distinct values counted as the rows in the window whose value did not occur earlier in it."""
    n = len(rows)
    if n == 0:
        return pd.Series(False, index=rows.index, dtype=bool)
    span = pd.Timedelta(window).to_timedelta64().astype("timedelta64[ns]").astype(np.int64)
    # the key is the columns' text, as one group each (None and "None" are one key, as before)
    keys = (
        rows[by].astype(str).groupby(by, sort=False, dropna=False).ngroup().to_numpy(dtype=np.int64)
        if by
        else np.zeros(n, dtype=np.int64)
    )
    times = pd.to_datetime(rows["time"], utc=True).dt.as_unit("ns").array.asi8
    order = np.lexsort((times, keys))  # stable: equal times keep the rows' order
    key, t = keys[order], times[order]
    # rank every time and every window end on one scale: (key, rank) then fits one integer
    scale = np.unique(np.concatenate([t, t + span]))
    width = len(scale) + 1
    at = key * width + np.searchsorted(scale, t)
    ends = np.searchsorted(
        at, key * width + np.searchsorted(scale, t + span), side="left"
    )  # rows in [t_i, t_i + window)
    first = np.arange(n)
    if distinct is None:
        counts = ends - first
        full = counts >= min_count
    else:
        values = pd.factorize(rows[distinct].astype(str).to_numpy()[order])[0].astype(np.int64)
        full = _distinct_at_least(key * (int(values.max()) + 1) + values, ends, min_count)
    # mark [i, ends[i]) for every full window: +1 at its start, -1 past its end, a running sum
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, first[full], 1)
    np.add.at(marks, ends[full], -1)
    covered = np.cumsum(marks[:n]) > 0
    out = np.zeros(n, dtype=bool)
    out[order] = covered
    return pd.Series(out, index=rows.index, dtype=bool)


def _distinct_at_least(value: np.ndarray, ends: np.ndarray, min_count: int) -> np.ndarray:
    """Per row i (sorted by key and time; ``value`` also encodes the key): at least
    ``min_count`` distinct values in rows ``[i, ends[i])``. A row k counts for window i when
    its value's previous row is before i; windows are walked one offset at a time, only those
    still undecided."""
    n = len(value)
    idx = np.lexsort((np.arange(n), value))
    prev = np.full(n, -1, dtype=np.int64)
    same = value[idx[1:]] == value[idx[:-1]]
    prev[idx[1:][same]] = idx[:-1][same]
    full = np.zeros(n, dtype=bool)
    count = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    d = 0
    while len(active):
        k = active + d
        inside = k < ends[active]
        count[active] += inside & (prev[np.minimum(k, n - 1)] < active)
        done = count[active] >= min_count
        full[active[done]] = True
        # undecided: not yet enough, and the window still has rows to add
        left = ends[active] - (k + 1)
        active = active[~done & (left > 0) & (count[active] + left >= min_count)]
        d += 1
    return full


def _outside(ev: Evidence) -> pd.Series:
    """Audit rows whose client address is outside the cluster and its private network
    (``network.external_mask`` over the nodes' addresses and pod CIDRs)."""
    return ev.memo("audit.outside", lambda: external_mask(ev.audit["source_ip"], cluster_networks(ev.context("nodes"))))


def anonymous(a: pd.DataFrame) -> pd.Series:
    """Requests the API server served without authenticating the client."""
    return ((a["user"] == "system:anonymous") | in_lists(a["user_groups"], "system:unauthenticated")).astype(bool)


def in_lists(lists: pd.Series, value: str) -> pd.Series:
    """Where the list cell (a list, an array, or missing) holds ``value``: as an Arrow list
    column when the cells are lists of text, else cell by cell."""
    try:
        arr = pa.array(lists.to_numpy(dtype=object), type=pa.list_(pa.string()), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):  # another shape of cell: one at a time
        return lists.map(lambda g: value in _items(g)).astype(bool)
    hit = pc.fill_null(pc.equal(pc.list_flatten(arr), value), False).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    found = np.bincount(parents[hit], minlength=len(lists)) > 0
    return pd.Series(found, index=lists.index, dtype=bool)


def people(a: pd.DataFrame) -> pd.Series:
    """Requests by people and outside automation (kubeconfig users, CI users, cloud IAM
    identities): not a service account, not a node or controller, not anonymous."""
    return (a["user"].notna() & a["sa_name"].isna() & ~is_system(a["user"]) & ~anonymous(a)).astype(bool)


def pod_spec(obj: Any) -> dict[str, Any] | None:
    """The pod spec of a Pod, a workload's template or a CronJob's job template."""
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if "jobTemplate" in spec:
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if "template" in spec:
        spec = (spec.get("template") or {}).get("spec") or {}
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
    m = (
        a["verb"].isin(WRITE_VERBS)
        & a["resource"].isin(WORKLOAD_RESOURCES)
        & a["subresource"].isna()
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    bodies = parsed_bodies(a, m, unreadable=ev.unreadable)
    specs = bodies.map(pod_spec)
    keep = m & specs.notna()
    rows = a[keep]
    # a pod created with generateName has no name in the request URI: take it from the body
    named = bodies[keep].map(
        lambda o: (
            ((o or {}).get("metadata") or {}).get("name")
            or (((o or {}).get("metadata") or {}).get("generateName") or "") + "*"
        )
    )
    rows = rows.assign(
        object_name=rows["object_name"].where(rows["object_name"].notna() & (rows["object_name"] != ""), named)
    )
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
    return hits_from_rows(
        rows,
        entity_type=kw.pop("entity_type", "pod" if bool(pods.all()) else "object"),
        entity=entity,
        namespace=rows["object_namespace"],
        pod=rows["object_name"].where(pods, None),
        user=rows["user"],
        source_ip=rows["source_ip"],
        summary=summary,
        table="audit",
        gap=gap,
        **kw,
    )


def _hits_by_actor(rows: pd.DataFrame, summary: Any, *, gap: Any = None, **kw: Any) -> pd.DataFrame:
    """Hits about who acted: the entity is the identity."""
    if rows.empty:
        return pd.DataFrame()
    sa = rows["sa_name"].notna()
    entity = (rows["sa_namespace"].astype(str) + "/" + rows["sa_name"].astype(str)).where(sa, rows["user"])
    return hits_from_rows(
        rows,
        entity_type=kw.pop("entity_type", "service_account" if bool(sa.all()) else "user"),
        entity=entity,
        namespace=rows["object_namespace"],
        user=rows["user"],
        source_ip=rows["source_ip"],
        summary=summary,
        table="audit",
        gap=gap,
        **kw,
    )


# ---------------------------------------------------------------------- execution


def exec_into_pod(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["resource"] == "pods")
        & a["subresource"].isin(["exec", "attach"])
        & a["verb"].isin(["create", "get"])
        & allowed_requests(ev)
    )
    rows = a[m]
    if rows.empty:
        return pd.DataFrame()
    hits = _hits_by_object(
        rows,
        lambda r: (
            f"{r.user} ran {r.subresource} in pod {r.entity}"
            + (f": {r.exec_command}" if r.exec_command else "")
            + f" (from {r.source_ip}, {r.user_agent})"
        ),
    )
    # a pod's own identity exec-ing into another pod is movement, not a first foothold
    by_sa = hits["user"].fillna("").str.startswith("system:serviceaccount:")
    return set_where(hits, by_sa, tactic="Lateral Movement", kill_chain_phase="Actions on Objectives", severity="high")


def exec_suspicious_command(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    cmd = a["exec_command"].fillna("")
    m = (
        a["subresource"].isin(["exec", "attach"])
        & allowed_requests(ev)
        & cmd.str.contains(BAD_EXEC)
        & ~cmd.str.contains(SA_TOKEN_PATHS)
    )
    return _hits_by_object(
        a[m],
        lambda r: f"{r.user} exec'd a reverse-shell, download or credential command in {r.entity}: {r.exec_command}",
    )


def exec_reads_token(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        a["subresource"].isin(["exec", "attach"])
        & allowed_requests(ev)
        & a["exec_command"].fillna("").str.contains(SA_TOKEN_PATHS)
    )
    return _hits_by_object(
        a[m], lambda r: f"{r.user} exec'd into {r.entity} to read its service-account token: {r.exec_command}"
    )


def kubectl_cp(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["subresource"] == "exec")
        & allowed_requests(ev)
        & a["exec_command"].fillna("").str.contains(r"^tar\s+-?c\S*f\s+-", regex=True)
    )
    return _hits_by_object(a[m], lambda r: f"{r.user} copied files out of {r.entity} (kubectl cp: {r.exec_command})")


def ephemeral_container(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["resource"] == "pods")
        & (a["subresource"] == "ephemeralcontainers")
        & a["verb"].isin(["update", "patch"])
        & allowed_requests(ev)
    )
    return _hits_by_object(a[m], lambda r: f"{r.user} added an ephemeral (debug) container to {r.entity}")


def port_forward(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "pods") & (a["subresource"] == "portforward") & allowed_requests(ev)
    return _hits_by_object(a[m], lambda r: f"{r.user} port-forwarded into {r.entity} from {r.source_ip}")


def node_proxy(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    uri = a["request_uri"].fillna("")
    m = (
        (a["resource"] == "nodes")
        & (a["subresource"] == "proxy")
        & allowed_requests(ev)
        & ~uri.str.contains(r"/proxy/(?:metrics|healthz|stats/summary)")
    )
    rows = a[m]
    hits = hits_from_rows(
        rows,
        entity_type="node",
        entity=rows["object_name"],
        user=rows["user"],
        source_ip=rows["source_ip"],
        summary=lambda r: (
            f"{r.user} reached the kubelet API of node {r.entity} through the API server: {r.request_uri}"
        ),
        table="audit",
        gap=ev.settings["session_gap"],
    )
    if len(hits):
        hits["severity"] = [
            "critical" if re.search(r"/(?:exec|run|checkpoint|attach)/", s) else "high" for s in hits["summary"]
        ]
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
    names = [
        c.get("name", "?") for c in containers(spec) if ((c.get("securityContext") or {}).get("privileged") is True)
    ]
    return ", ".join(names)


def privileged_pod(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(
        ev,
        _privileged,
        lambda r: (
            f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} with privileged container(s) {r.detail}"
            + f" (from {r.source_ip})"
        ),
    )


def _host_namespaces(spec: dict[str, Any]) -> str:
    return ", ".join(k for k in ("hostPID", "hostIPC", "hostNetwork") if spec.get(k) is True)


def host_namespaces(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(
        ev,
        _host_namespaces,
        lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} sharing the node's {r.detail}",
    )


def sensitive_host_paths(spec: dict[str, Any]) -> str:
    """The host paths a pod spec mounts that hand over the node (``is_sensitive_host_path``), comma-separated."""
    paths = [
        ((v.get("hostPath") or {}).get("path") or "")
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and v.get("hostPath")
    ]
    bad = [p for p in paths if is_sensitive_host_path(p)]
    return ", ".join(bad)


def sensitive_host_path(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(
        ev,
        sensitive_host_paths,
        lambda r: (
            f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} mounting host path(s) {r.detail}"
        ),
    )


def _dangerous_caps(spec: dict[str, Any]) -> str:
    caps = {
        str(c).upper().removeprefix("CAP_")
        for ct in containers(spec)
        for c in (((ct.get("securityContext") or {}).get("capabilities") or {}).get("add") or [])
    }
    return ", ".join(sorted(caps & DANGEROUS_CAPS))


def dangerous_capabilities(ev: Evidence) -> pd.DataFrame:
    return _spec_rule(
        ev,
        _dangerous_caps,
        lambda r: (
            f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} adding capabilities {r.detail}"
        ),
    )


def _registry(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" not in image or not ("." in first or ":" in first or first == "localhost"):
        return "docker.io"
    return first


# public registries any account can push to: there the owner (the path's first part) is who is
# trusted, not the registry — docker.io/library (Docker Official Images) and docker.io/evilcorp
# are different publishers (docs.docker.com/docker-hub/repos/; quay.io, ghcr.io, gcr.io/<project>,
# <region>-docker.pkg.dev/<project>, public.ecr.aws/<alias>, registry.gitlab.com/<group>)
SHARED_REGISTRIES = re.compile(
    r"^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io|quay\.io|ghcr\.io|(?:[a-z]+\.)?gcr\.io|"
    r"[a-z0-9-]+\.pkg\.dev|public\.ecr\.aws|registry\.gitlab\.com)$"
)


def _image_name(image: str) -> str:
    """An image reference in full, without tag or digest: ``nginx:1.25`` → ``docker.io/library/nginx``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    registry = _registry(name)
    path = name.split("/", 1)[1] if name.split("/", 1)[0] == registry and "/" in name else name
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
        path = path if "/" in path else f"library/{path}"  # a Docker Hub name without an owner is an official image
    return f"{registry}/{path}"


def image_source(image: str) -> str:
    """Who publishes an image: its registry, or on a shared public registry the registry and
    the owner (``nginx`` → ``docker.io/library``, ``evilcorp/web`` → ``docker.io/evilcorp``,
    ``registry.corp/shop/web`` → ``registry.corp``)."""
    registry, _, path = _image_name(image).partition("/")
    return f"{registry}/{path.split('/', 1)[0]}" if SHARED_REGISTRIES.match(registry) and "/" in path else registry


# a JSON patch operation on a container's image: a pod's, or a workload's or CronJob's template's
JSON_PATCH_IMAGE = re.compile(
    r"^/spec(?:/jobTemplate/spec)?(?:/template/spec)?/(?:initContainers|containers|ephemeralContainers)/\d+/image$"
)


def _image_baseline(ev: Evidence) -> set[str]:
    trusted = ev.settings["trusted_registries"]
    if trusted is not None:
        return set(trusted)
    pods, start = ev.context("pods"), ev.start()
    if pods.empty or start is None:
        return set()
    before = pods[pods["created"].notna() & (pods["created"] < start)]
    return {image_source(str(i)) for images in before["images"].dropna() for i in images}


def _trusted_image(image: str, trusted: set[str]) -> bool:
    """An allow-list entry is a registry (all its images), a publisher (``image_source``) or a
    prefix of the full name (``docker.io/bitnami``)."""
    full = _image_name(image)
    return image_source(image) in trusted or any(
        full == t.rstrip("/") or full.startswith(t.rstrip("/") + "/") for t in trusted
    )


def untrusted_image(ev: Evidence) -> pd.DataFrame:
    """A pod, or a workload's template (created, or patched or updated: a running Deployment
    switched to another image is a backdoored image too), with an image whose publisher is not
    trusted: ``settings["trusted_registries"]``, else the publishers (``image_source``) of the
    pods running before the evidence starts (MS-TA9002 backdoor container; ATT&CK T1525 implant
    internal image; Falco's "Launch Disallowed Container", Kyverno's restrict-image-registries)."""
    trusted = _image_baseline(ev)
    if not trusted:
        return pd.DataFrame()

    def bad(spec: dict[str, Any]) -> str:
        imgs = [str(c.get("image", "")) for c in containers(spec) if c.get("image")]
        return ", ".join(i for i in imgs if not _trusted_image(i, trusted))

    summary = lambda r: (
        f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} with image(s) from an untrusted "
        f"publisher: {r.detail}"
    )
    hits = _spec_rule(ev, bad, summary)
    # a JSON patch (RFC 6902) that replaces a container's image names no pod spec
    a = ev.audit
    m = (
        (a["verb"] == "patch")
        & a["resource"].isin(WORKLOAD_RESOURCES)
        & a["subresource"].isna()
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    m &= a["request_object"].fillna("").str.startswith("[")
    if not m.any():
        return hits
    ops = parsed_bodies(a, m, unreadable=ev.unreadable)
    images = ops.map(
        lambda o: (
            [
                str(op.get("value"))
                for op in o
                if isinstance(op, dict)
                and op.get("op") in ("add", "replace")
                and JSON_PATCH_IMAGE.match(str(op.get("path", "")))
                and isinstance(op.get("value"), str)
            ]
            if isinstance(o, list)
            else []
        )
    )
    detail = images.map(lambda imgs: ", ".join(i for i in imgs if not _trusted_image(i, trusted)))
    rows = a[m].assign(detail=detail[m])
    rows = rows[rows["detail"].map(bool).astype(bool)]
    return (
        pd.concat([h for h in (hits, _hits_by_object(rows, summary)) if len(h)], ignore_index=True)
        if len(rows)
        else hits
    )


# ---------------------------------------------------------------------- persistence


def _binding_role(obj: Any) -> str | None:
    return ((obj or {}).get("roleRef") or {}).get("name") if isinstance(obj, dict) else None


def cluster_admin_binding(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & a["verb"].isin(WRITE_VERBS) & allowed_requests(ev)
    bodies = parsed_bodies(a, m, unreadable=ev.unreadable)
    role = bodies.map(_binding_role)
    keep = m & (role == "cluster-admin")
    rows = a[keep].assign(subjects=bodies[keep].map(_subjects))
    return _hits_by_object(
        rows,
        lambda r: (
            f"{r.user} bound cluster-admin with {r.resource} {r.object_name} to {r.subjects} (from {r.source_ip})"
        ),
        entity_type="binding",
    )


def _strings(v: Any) -> set[str]:
    return {x for x in v if isinstance(x, str)} if isinstance(v, list) else set()


def _subjects(obj: Any) -> str:
    return ", ".join(
        f"{s.get('kind')} {str(s.get('namespace')) + '/' if s.get('namespace') else ''}{s.get('name')}"
        for s in dicts_in(obj, "subjects")
    )


def new_binding_first_use(ev: Evidence) -> pd.DataFrame:
    """After a binding to cluster-admin is created: the first request it authorised (the
    authorizer's reason names it) or, when the reason is not specific, the first allowed
    request by one of its subjects."""
    a = ev.audit
    m = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & (a["verb"] == "create") & allowed_requests(ev)
    bodies = parsed_bodies(a, m, unreadable=ev.unreadable)
    out = []
    ok = allowed_requests(ev)
    for i in a.index[m & (bodies.map(_binding_role) == "cluster-admin")]:
        name, t0, users = a.at[i, "object_name"], a.at[i, "time"], subject_users(bodies[i])
        later = a[(a["time"] > t0) & ok]
        named = later["authz_reason"].fillna("").str.contains(f'"{re.escape(str(name))}"', regex=True)
        groups = later["user_groups"].map(lambda g, users=users: bool(set(_items(g)) & set(users)))
        use = later[named | later["user"].isin(users) | groups]
        if len(use):
            first = use.iloc[[0]].assign(binding=name, created_by=a.at[i, "user"])
            out.append(
                _hits_by_actor(
                    first,
                    lambda r: (
                        f"first use of the new cluster-admin binding {r.binding} (created by {r.created_by}): "
                        f"{r.user} {r.verb} {r.resource} {r.object_namespace}/{r.object_name} from {r.source_ip}"
                    ),
                )
            )
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


RISKY_VERBS = frozenset({"*", "bind", "escalate", "impersonate"})
RISKY_RESOURCES = frozenset(
    {
        "*",
        "pods/exec",
        "pods/attach",
        "nodes/proxy",
        "serviceaccounts/token",
        "secrets",
        "certificatesigningrequests/approval",
    }
)


def _risky_rules(obj: Any) -> str:
    found = set()
    for r in dicts_in(obj, "rules"):
        found |= _strings(r.get("verbs")) & RISKY_VERBS
        found |= _strings(r.get("resources")) & RISKY_RESOURCES
    return ", ".join(sorted(found))


def risky_role(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        a["resource"].isin(["clusterroles", "roles"])
        & a["verb"].isin(WRITE_VERBS)
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    risky = parsed_bodies(a, m, unreadable=ev.unreadable).map(_risky_rules)
    rows = a[m].assign(detail=risky[m])
    rows = rows[rows["detail"].map(bool).astype(bool)]
    return _hits_by_object(
        rows, lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_name} granting {r.detail}", entity_type="role"
    )


def cronjob_write(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["api_group"] == "batch")
        & a["resource"].isin(["cronjobs", "jobs"])
        & a["verb"].isin([*WRITE_VERBS, "delete"])
        & a["subresource"].isna()
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    return _hits_by_object(
        a[m],
        lambda r: f"{r.user} {r.verb}d {r.resource} {r.object_namespace}/{r.object_name} (from {r.source_ip})",
        entity_type="workload",
    )


def daemonset_create(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "daemonsets") & (a["verb"] == "create") & allowed_requests(ev) & ~system_requests(ev)
    return _hits_by_object(
        a[m],
        lambda r: f"{r.user} created DaemonSet {r.object_namespace}/{r.object_name} (runs on every node)",
        entity_type="workload",
    )


def rbac_then_workload(ev: Evidence) -> pd.DataFrame:
    """The same identity changes RBAC and then writes a workload within 5 minutes."""
    a = ev.audit
    ok = allowed_requests(ev) & ~system_requests(ev) & a["verb"].isin(WRITE_VERBS)
    rbac = a[ok & a["resource"].isin(["clusterrolebindings", "rolebindings", "clusterroles", "roles"])]
    work = a[ok & a["resource"].isin(WORKLOAD_RESOURCES - {"pods"}) & a["subresource"].isna()]
    if rbac.empty or work.empty:
        return pd.DataFrame()
    pairs = pd.merge_asof(
        work.sort_values("time"),
        rbac[["time", "user", "event_id", "resource", "object_name"]]
        .sort_values("time")
        .rename(
            columns={
                "event_id": "rbac_event",
                "resource": "rbac_resource",
                "object_name": "rbac_object",
                "time": "rbac_time",
            }
        ),
        left_on="time",
        right_on="rbac_time",
        by="user",
        direction="backward",
        tolerance=pd.Timedelta(minutes=5),
    )
    pairs = pairs[pairs["rbac_event"].notna()]
    if pairs.empty:
        return pd.DataFrame()
    return _hits_by_actor(
        pairs,
        lambda r: (
            f"{r.user} changed {r.rbac_resource} {r.rbac_object} and then {r.verb}d {r.resource} "
            f"{r.object_namespace}/{r.object_name}"
        ),
        linked=pairs["rbac_event"],
        since=pairs["rbac_time"],
    )


def admission_webhook(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        a["resource"].isin(["mutatingwebhookconfigurations", "validatingwebhookconfigurations"])
        & a["verb"].isin([*WRITE_VERBS, "delete"])
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    return _hits_by_object(
        a[m], lambda r: f"{r.user} {r.verb}d admission webhook {r.resource} {r.object_name}", entity_type="webhook"
    )


def static_mirror_pod(ev: Evidence) -> pd.DataFrame:
    """A static pod's mirror (``kubernetes.io/config.mirror`` annotation) registered by a
    node: a manifest on the node's disk runs it and no controller or admission made it
    (MS-TA9017, kubernetes.io/docs/tasks/configure-pod-container/static-pod/). Outside kube-system
    every one counts; in kube-system, where the control plane's own static pods live, one not in
    the inventory before the evidence starts and registered after the learning window."""
    a = ev.audit
    m = (
        (a["resource"] == "pods")
        & (a["verb"] == "create")
        & a["user"].fillna("").str.startswith("system:node:")
        & allowed_requests(ev)
    )
    bodies = parsed_bodies(a, m, unreadable=ev.unreadable)
    mirror = bodies.map(
        lambda o: (
            "kubernetes.io/config.mirror" in (((o or {}).get("metadata") or {}).get("annotations") or {})
            if isinstance(o, dict)
            else False
        )
    )
    rows = a[m & mirror.astype(bool)]
    if rows.empty:
        return pd.DataFrame()
    start = ev.start()
    pods = ev.context("pods")
    before = set()
    if start is not None and len(pods):
        old = pods[pods["created"].notna() & (pods["created"] < start)]
        before = set(zip(old["namespace"], old["name"]))
    learned = (start + pd.Timedelta(ev.settings["learning_window"])) if start is not None else None
    system = rows["object_namespace"] == "kube-system"
    new = pd.Series(
        [
            (ns, n) not in before and (learned is None or t >= learned)
            for ns, n, t in zip(rows["object_namespace"], rows["object_name"], rows["time"])
        ],
        index=rows.index,
        dtype=bool,
    )
    rows = rows[~system | new]
    hits = _hits_by_object(
        rows,
        lambda r: f"node {r.user} registered static (mirror) pod {r.entity}: a manifest on the node's disk runs it",
    )
    if hits.empty:
        return hits
    risky = pd.Series(
        [
            bool(spec and (_privileged(spec) or _host_namespaces(spec) or sensitive_host_paths(spec)))
            for spec in bodies[rows.index].map(pod_spec)
        ],
        index=rows.index,
    )
    risky_ids = set(rows.loc[risky, "event_id"].astype(str))
    return set_where(
        hits, hits["event_ids"].map(lambda ids: bool(set(map(str, ids)) & risky_ids)).to_numpy(), severity="high"
    )


def pod_in_system_namespace(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["resource"] == "pods")
        & (a["verb"] == "create")
        & a["subresource"].isna()
        & a["object_namespace"].isin(["kube-system", "kube-public"])
        & allowed_requests(ev)
        & ~system_requests(ev)
        & ~a["user"].isin(["system:admin", "kubernetes-admin"])
    )
    return _hits_by_object(
        a[m],
        lambda r: (
            f"{r.user} created pod {r.entity} in a system namespace, named like a system pod"
            if re.match(r"(?:kube-|coredns|etcd|calico|cilium|aws-node|azure|gke-|konnectivity)", str(r.object_name))
            else f"{r.user} created pod {r.entity} in a system namespace"
        ),
    )


def first_workload_creates(ev: Evidence) -> pd.DataFrame:
    """The first pod, and the first workload of each kind, each identity (not a controller, not a
    node) created."""
    a = ev.audit
    m = (
        a["resource"].isin(WORKLOAD_RESOURCES)
        & (a["verb"] == "create")
        & a["subresource"].isna()
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    return a[m].sort_values("time").drop_duplicates(["user", "resource"])


def new_pod_creator(ev: Evidence) -> pd.DataFrame:
    """A pod (or a workload of a kind) created by an identity that never created one before in the
    case, after a quiet learning period; controllers and nodes are expected creators. Kinds are
    judged apart: an identity that deploys a DaemonSet and then starts a bare pod — no controller
    will restart or replace it, the usual way to run a tool in a cluster (MS-TA9008 new container,
    ATT&CK T1610 deploy container) — made two new things."""
    rows = first_workload_creates(ev)
    start = ev.start()
    if start is None:
        return pd.DataFrame()
    rows = rows[rows["time"] >= start + pd.Timedelta(ev.settings["learning_window"])]
    return _hits_by_object(
        rows,
        lambda r: (
            f"{r.user} created {r.resource} {r.object_namespace}/{r.object_name}: the first time this identity "
            f"created {'a pod' if r.resource == 'pods' else r.resource} in the evidence (from {r.source_ip})"
        ),
        entity_type="workload",
    )


# ---------------------------------------------------------------------- credential access


def secrets_read(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["resource"] == "secrets")
        & a["verb"].isin(["get", "list", "watch"])
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    rows = a[m]
    if rows.empty:
        return pd.DataFrame()
    hits = _hits_by_actor(
        rows,
        lambda r: (
            f"{r.user} read secret(s) starting with {r.object_namespace or '(all namespaces)'}/{r.object_name or '*'}"
            f" ({r.n} request(s), {r.verb}, from {r.source_ip}, {r.user_agent})"
        ),
        gap=ev.settings["session_gap"],
    )
    flags = [
        ("list" in s and "(all namespaces)" in s) or "kube-system" in s or "serviceaccount" in str(u)
        for s, u in zip(hits["summary"], hits["user"])
    ]
    hits["severity"] = ["high" if f else "medium" for f in flags]
    return hits


def _token_secret_creates(ev: Evidence) -> pd.Series:
    """Rows creating a Secret of type ``kubernetes.io/service-account-token``: the token
    controller puts a long-lived token of the annotated account in it
    (kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#manually-create-an-api-token-for-a-serviceaccount)."""
    a = ev.audit
    m = (a["resource"] == "secrets") & (a["verb"] == "create") & allowed_requests(ev) & ~system_requests(ev)
    bodies = parsed_bodies(a, m, unreadable=ev.unreadable)
    return (m & bodies.map(lambda o: isinstance(o, dict) and o.get("type") == SA_TOKEN_TYPE)).astype(bool)


def token_request(ev: Evidence) -> pd.DataFrame:
    """Credentials minted by someone who is not the control plane: a service-account token
    (TokenRequest, or a token Secret the token controller fills in), or a client certificate
    through a CertificateSigningRequest, created or approved (ATT&CK T1649, forged
    authentication certificates; Stratus Red Team k8s.persistence.create-client-certificate)."""
    a = ev.audit
    tok = (a["resource"] == "serviceaccounts") & (a["subresource"] == "token") & (a["verb"] == "create")
    csr = (a["resource"] == "certificatesigningrequests") & a["verb"].isin(["create", "update", "patch"])
    secret = _token_secret_creates(ev)
    m = (
        (tok | csr | secret)
        & allowed_requests(ev)
        & ~system_requests(ev)
        & ~a["user"].fillna("").str.startswith("system:node:")
    )
    hits = _hits_by_object(
        a[m],
        lambda r: (
            f"{r.user} minted a credential: "
            + (
                "a long-lived service-account token Secret"
                if r.resource == "secrets"
                else f"{r.resource}/{r.subresource or r.verb}"
            )
            + f" {r.object_namespace + '/' if r.object_namespace else ''}{r.object_name}"
        ),
        entity_type="service_account",
    )
    if hits.empty:
        return hits
    is_csr = hits["entity"].fillna("").str.startswith("certificatesigningrequests/").to_numpy()
    approved = hits["summary"].str.contains("certificatesigningrequests/approval", regex=False).to_numpy()
    set_where(hits, is_csr, attack_id="T1649", entity_type="certificatesigningrequest")
    return set_where(hits, is_csr & approved, severity="high")


def token_used_elsewhere(ev: Evidence) -> pd.DataFrame:
    """A service-account token used from an address that is not its pod's at that time, or
    from outside the cluster. Bound tokens name their pod (``user.extra``); for the others
    the pod at the source address must run as that service account."""
    a = ev.audit
    sa = a[a["sa_name"].notna() & a["source_ip"].notna()]
    if sa.empty:
        return pd.DataFrame()
    outside = _outside(ev)[sa.index]
    # a controller's token (kube-system:*-controller) runs in the control plane: only its use from
    # outside is judged (Panther's k8s_system_principal_public_ip); which pod holds a control-plane
    # address is not known well enough to call another in-cluster use wrong
    system = system_requests(ev)[sa.index]
    src_pod = sa["source_pod"] if "source_pod" in sa.columns else pd.Series(None, index=sa.index)
    src_ns = sa["source_namespace"] if "source_namespace" in sa.columns else pd.Series(None, index=sa.index)
    bound = sa["token_pod"].notna()
    wrong_bound = bound & src_pod.notna() & ((src_pod != sa["token_pod"]) | (src_ns != sa["sa_namespace"]))
    src_sa = service_accounts(ev, src_ns, src_pod)
    wrong_unbound = (
        ~bound & src_pod.notna() & src_sa.notna() & ((src_sa != sa["sa_name"]) | (src_ns != sa["sa_namespace"]))
    )
    rows = sa[outside | (~system & (wrong_bound | wrong_unbound))].assign(
        where=lambda d: [
            f"outside the cluster ({ip})" if o else f"pod {n}/{p} ({ip})"
            for ip, o, n, p in zip(d["source_ip"], outside[d.index], src_ns[d.index], src_pod[d.index])
        ],
        owner=lambda d: [
            f"pod {ns}/{p}" if isinstance(p, str) else "its pods" for ns, p in zip(d["sa_namespace"], d["token_pod"])
        ],
    )
    if rows.empty:
        return pd.DataFrame()
    hits = _hits_by_actor(
        rows,
        lambda r: (
            f"token of service account {r.entity} (bound to {r.owner}) used from {r.where}: "
            f"{r.n} request(s) starting with {r.verb} {r.resource}"
        ),
        gap=ev.settings["session_gap"],
    )
    hits["severity"] = "critical"
    return hits


# ---------------------------------------------------------------------- initial access with a valid credential

# A cloud identity's name: an e-mail (GKE Google accounts, AKS Entra ID UPNs), an AWS ARN (EKS
# access entries), an Entra ID object id. Its credential is a cloud one (MS-TA9001, T1078.004);
# other users hold a kubeconfig (client certificate, static or OIDC token: MS-TA9003, T1078).
CLOUD_IDENTITY = re.compile(
    r"@|^arn:aws[a-z-]*:|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)


def identity_firsts(a: pd.DataFrame) -> pd.DataFrame:
    """The first request of each (person, client address) and each (person, user agent) pair
    (``people``; authenticated: not a 401), with ``first_key`` naming the pair. What the
    credential rule compares a request with; the reduction keeps these rows."""
    code = a["response_code"].astype("Int64")
    rows = a[people(a) & a["source_ip"].notna() & (code != 401).fillna(True)]
    if rows.empty:
        return rows.assign(first_of=pd.Series(dtype=object), first_key=pd.Series(dtype=object))
    rows = (
        rows.assign(_eid=rows["event_id"].astype(str)).sort_values(["time", "_eid"], kind="stable").drop(columns="_eid")
    )
    by_ip = rows.drop_duplicates(["user", "source_ip"])
    by_ip = by_ip.assign(
        first_of="address", first_key="address\0" + by_ip["user"].astype(str) + "\0" + by_ip["source_ip"].astype(str)
    )
    with_ua = rows[rows["user_agent"].notna()]
    by_ua = with_ua.drop_duplicates(["user", "user_agent"])
    by_ua = by_ua.assign(
        first_of="agent", first_key="agent\0" + by_ua["user"].astype(str) + "\0" + by_ua["user_agent"].astype(str)
    )
    return pd.concat([by_ip, by_ua])


def credential_from_outside(ev: Evidence) -> pd.DataFrame:
    """A person's credential (a kubeconfig, a cloud identity) used from an outside address it
    was not seen using before: the way in when no pod was exploited (Threat Matrix MS-TA9003
    kubeconfig file / MS-TA9001 cloud credentials; ATT&CK T1078, T1078.004; GuardDuty's
    "API invoked from an unusual location"). Every new (identity, outside address) pair after the
    learning window counts; inside it only an identity that had worked from inside the private
    network before. Known identities from a new place are high, new identities medium.
    Service-account tokens from outside are ``token_used_elsewhere``'s."""
    a = ev.audit
    firsts = identity_firsts(a)
    start = ev.start()
    if firsts.empty or start is None:
        return pd.DataFrame()
    addr = firsts[firsts["first_of"] == "address"]
    addr = addr.assign(outside=external_mask(addr["source_ip"], cluster_networks(ev.context("nodes")))).sort_values(
        "time", kind="stable"
    )
    agents = firsts[firsts["first_of"] == "agent"].sort_values("time", kind="stable")
    # a user agent first seen after another one of the same identity: a new client
    new_agent = set(agents.loc[agents.groupby("user").cumcount() > 0, "event_id"].astype(str))
    learned = start + pd.Timedelta(ev.settings["learning_window"])
    keep, before, inside_before = [], [], []
    seen: dict[str, list[tuple[str, bool]]] = {}
    for user, ip, t, out in zip(addr["user"], addr["source_ip"], addr["time"], addr["outside"]):
        prior = seen.setdefault(user, [])
        inside = any(not o for _, o in prior)
        keep.append(bool(out) and (t >= learned or inside))
        before.append(", ".join(p for p, _ in prior[:3]) + (f" and {len(prior) - 3} more" if len(prior) > 3 else ""))
        inside_before.append(inside)
        prior.append((ip, bool(out)))
    addr = addr.assign(before=before, inside_before=inside_before)
    rows = addr[pd.Series(keep, index=addr.index, dtype=bool)]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(
        client=[
            f"{ua}, a new client for it" if str(e) in new_agent else str(ua)
            for ua, e in zip(rows["user_agent"].fillna("unknown client"), rows["event_id"])
        ]
    )
    hits = _hits_by_actor(
        rows,
        lambda r: (
            f"{r.user}'s credential used from outside address {r.source_ip} for the first time "
            f"({r.verb} {r.resource or r.request_uri}, {r.client}); "
            + (f"seen before from {r.before}" if r.before else "its first request in the evidence")
        ),
        entity_type="user",
    )
    known = rows["before"].astype(bool).to_numpy()
    set_where(hits, known, severity="high")
    cloud = hits["user"].fillna("").str.contains(CLOUD_IDENTITY).to_numpy()
    return set_where(hits, cloud, technique_id="MS-TA9001", attack_id="T1078.004")


# ---------------------------------------------------------------------- service-account tokens kept in Secrets

SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
# legacy token Secrets the token controller made were named <sa>-token-<5 random characters>
# (kubernetes/kubernetes pkg/controller/serviceaccount/tokens_controller.go); people name the
# long-lived ones they create (kubernetes.io/docs/concepts/configuration/secret/#serviceaccount-token-secrets)
# <sa>-token the same way
TOKEN_SECRET_NAME = re.compile(r"^(?P<sa>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)-token(?:-[a-z0-9]{5})?$")
LINK_COLUMNS = [
    "read_event",
    "read_time",
    "reader",
    "reader_actor",
    "read_ip",
    "secret_namespace",
    "secret",
    "sa_namespace",
    "sa_name",
    "use_event",
    "use_time",
    "use_ip",
    "use_verb",
    "use_resource",
    "how",
]


def _actor_ids(a: pd.DataFrame) -> pd.Series:
    """The graph's node id of each row's identity (``node_ids.actors``)."""
    return node_ids.actors(a["sa_namespace"].astype(str), a["sa_name"], a["user"].astype(str))


def token_secret_rows(a: pd.DataFrame) -> pd.DataFrame:
    """What links a token in a Secret to its later use: allowed reads of secrets by identities
    that are not the control plane, and allowed creations of secrets (a created token Secret
    names its service account). The reduction and the graph carry these rows from chunk to chunk."""
    reads = (
        (a["resource"] == "secrets")
        & a["verb"].isin(["get", "list", "watch"])
        & a["subresource"].isna()
        & ~is_system(a["user"])
        & ~anonymous(a)
    )
    creates = (a["resource"] == "secrets") & (a["verb"] == "create")
    return a[(reads | creates) & allowed(a)]


def token_secret_owners(
    a: pd.DataFrame, service_accounts_context: pd.DataFrame, *, unreadable: UnreadableBodies | None = None
) -> dict[tuple[str, str], str]:
    """(namespace, Secret) → the service account whose token it holds: the Secrets a
    ServiceAccount lists (``service_accounts`` context) and Secrets created in the audit log
    with type ``kubernetes.io/service-account-token`` and the ``kubernetes.io/service-account.name``
    annotation (the token controller fills those in)."""
    out: dict[tuple[str, str], str] = {}
    ctx = service_accounts_context
    for ns, name, secrets in zip(ctx.get("namespace", []), ctx.get("name", []), ctx.get("secrets", [])):
        for secret in _items(secrets):
            if isinstance(ns, str) and isinstance(name, str):
                out[(ns, str(secret))] = name
    m = (a["resource"] == "secrets") & (a["verb"] == "create") & allowed(a)
    for i, body in parsed_bodies(a, m, unreadable=unreadable).dropna().items():
        if not isinstance(body, dict) or body.get("type") != SA_TOKEN_TYPE:
            continue
        md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        sa = (md.get("annotations") or {}).get(SA_NAME_ANNOTATION) if isinstance(md.get("annotations"), dict) else None
        name = a.at[i, "object_name"] if isinstance(a.at[i, "object_name"], str) else md.get("name")
        ns = a.at[i, "object_namespace"] if isinstance(a.at[i, "object_namespace"], str) else md.get("namespace")
        if isinstance(sa, str) and isinstance(name, str) and isinstance(ns, str):
            out[(ns, name)] = sa
    return out


def token_secret_links(
    a: pd.DataFrame, *, owners: dict[tuple[str, str], str], outside: pd.Series, window: Any
) -> pd.DataFrame:
    """A service-account token read from a Secret and then used (MS-TA9016, T1528): one row
    per (reader, service account), its first use. A ``get`` of a Secret holding an account's
    token (``owners``, else a token-like name) links to that account's next request from the
    reader's address or from outside; a ``list``/``watch`` (every Secret of its scope) only to a
    request from the reader's own address. A node's address is not the reader's own (host-network
    pods share it). ``outside`` is aligned with ``a``; columns ``LINK_COLUMNS``."""
    rows = token_secret_rows(a)
    reads = rows[rows["verb"] != "create"]
    code = a["response_code"].astype("Int64")
    # the columns a use needs, not every column: nearly every request is a service account's
    use_from = ["event_id", "time", "source_ip", "verb", "resource", "user", "sa_namespace", "sa_name"]
    uses = a.loc[(a["sa_name"].notna() & (code != 401).fillna(True)).to_numpy(dtype=bool), use_from]
    if reads.empty or uses.empty:
        return pd.DataFrame(columns=LINK_COLUMNS)
    kind = a["source_kind"] if "source_kind" in a.columns else pd.Series(None, index=a.index, dtype=object)
    reads = reads.assign(
        read_event=reads["event_id"].astype(str),
        read_time=reads["time"],
        reader=reads["user"],
        reader_actor=_actor_ids(reads),
        read_ip=reads["source_ip"].where(kind[reads.index].astype(object).ne("node"), None),
        secret_namespace=reads["object_namespace"],
        secret=reads["object_name"],
    )
    uses = uses.assign(
        use_event=uses["event_id"].astype(str),
        use_time=uses["time"],
        use_ip=uses["source_ip"],
        use_verb=uses["verb"],
        use_resource=uses["resource"],
        use_user=uses["user"],
        use_outside=outside[uses.index].to_numpy(),
    )
    use_cols = [
        "use_event",
        "use_time",
        "use_ip",
        "use_verb",
        "use_resource",
        "use_user",
        "use_outside",
        "sa_namespace",
        "sa_name",
    ]
    read_cols = ["read_event", "read_time", "reader", "reader_actor", "read_ip", "secret_namespace", "secret"]
    named = reads[reads["secret"].notna()]
    named = named.assign(
        sa_namespace=named["secret_namespace"],
        sa_name=[
            owners.get((ns, n)) or (m.group("sa") if (m := TOKEN_SECRET_NAME.match(str(n))) else None)
            for ns, n in zip(named["secret_namespace"], named["secret"])
        ],
    )
    named = named[named["sa_name"].notna()]
    listed = reads[reads["secret"].isna() & reads["read_ip"].notna()]
    if named.empty and listed.empty:
        return pd.DataFrame(columns=LINK_COLUMNS)
    # which (read, use) pairs link, found in DuckDB over a few columns: a pod that lists Secrets
    # shares its address with every request its node's pods make, millions of pairs whose rows
    # pandas would build before the time window drops nearly all of them
    pairs = _first_link_pairs(named, listed, uses, window=pd.Timedelta(window))
    parts = []
    for side, frame in (("named", named), ("listed", listed)):
        if frame.empty:
            continue
        p = pairs[pairs["side"] == side]
        j = pd.concat(
            [
                frame[read_cols].iloc[p["r"].to_numpy()].reset_index(drop=True),
                uses[use_cols].iloc[p["u"].to_numpy()].reset_index(drop=True),
            ],
            axis=1,
        )
        if side == "named":
            j = j.assign(how=["from the reader's address" if s else "from outside" for s in p["same"]])
        else:
            j = j.assign(how="from the reader's address")
        parts.append(j)
    j = pd.concat(parts, ignore_index=True)
    return first_token_links(j[LINK_COLUMNS])


def _first_link_pairs(
    named: pd.DataFrame, listed: pd.DataFrame, uses: pd.DataFrame, *, window: pd.Timedelta
) -> pd.DataFrame:
    """The (read, use) pairs ``token_secret_links`` keeps, as positions into ``named`` or
    ``listed`` (``side``, ``r``) and ``uses`` (``u``), with ``same`` (the use came from the
    reader's address): a ``get`` (``named``) pairs with its account's requests from the reader's
    address or from outside, a ``list`` (``listed``) with the requests from the reader's address
    of the accounts in its scope; the use after the read, within ``window``, by another
    identity; per (reader, service account) the first use and the last read before it
    (``first_token_links``'s choice)."""

    def nanos(s: pd.Series) -> Any:  # times as integer nanoseconds: exact comparisons, no rounding to microseconds
        t = pd.DatetimeIndex(pd.to_datetime(s, utc=True)).as_unit("ns")
        return pd.Series(t.asi8, dtype="Int64").mask(t.isna()).array

    def read_side(frame: pd.DataFrame, *, sa: bool) -> pd.DataFrame:
        out = pd.DataFrame(
            {
                "r": range(len(frame)),
                "read_time": nanos(frame["read_time"]),
                "read_event": frame["read_event"].astype(object).to_numpy(),
                "reader": frame["reader"].astype(object).to_numpy(),
                "read_ip": frame["read_ip"].astype(object).to_numpy(),
                "secret_namespace": frame["secret_namespace"].astype(object).to_numpy(),
            }
        )
        if sa:
            out["sa_namespace"] = frame["sa_namespace"].astype(object).to_numpy()
            out["sa_name"] = frame["sa_name"].astype(object).to_numpy()
        return out

    use = pd.DataFrame(
        {
            "u": range(len(uses)),
            "use_time": nanos(uses["use_time"]),
            "use_event": uses["use_event"].astype(object).to_numpy(),
            "use_ip": uses["use_ip"].astype(object).to_numpy(),
            "use_user": uses["use_user"].astype(object).to_numpy(),
            "use_outside": uses["use_outside"].astype(bool).to_numpy(),
            "sa_namespace": uses["sa_namespace"].astype(object).to_numpy(),
            "sa_name": uses["sa_name"].astype(object).to_numpy(),
        }
    )
    # pandas' ``!=`` is true where either side is missing; a missing reader or namespace has no
    # (reader, service account) group and links nothing
    common = (
        f"u.use_time > r.read_time AND u.use_time <= r.read_time + {int(window.value)} "
        "AND (u.use_user IS NULL OR r.reader IS NULL OR u.use_user <> r.reader) "
        "AND r.reader IS NOT NULL AND u.sa_namespace IS NOT NULL"
    )
    con = duckdb.connect()
    try:
        con.register("named", read_side(named, sa=True))
        con.register("listed", read_side(listed, sa=False))
        con.register("uses", use)
        return con.sql(f"""
            WITH pairs AS (
                SELECT 'named' AS side, r.r, u.u, coalesce(u.use_ip = r.read_ip, false) AS same, r.reader,
                       u.sa_namespace, u.sa_name, u.use_time, u.use_event, r.read_time, r.read_event
                FROM named r JOIN uses u ON r.sa_namespace = u.sa_namespace AND r.sa_name = u.sa_name
                WHERE (coalesce(u.use_ip = r.read_ip, false) OR u.use_outside) AND {common}
                UNION ALL
                SELECT 'listed', r.r, u.u, true, r.reader, u.sa_namespace, u.sa_name, u.use_time, u.use_event,
                       r.read_time, r.read_event
                FROM listed r JOIN uses u ON r.read_ip = u.use_ip
                WHERE (r.secret_namespace IS NULL OR r.secret_namespace = u.sa_namespace) AND {common})
            SELECT side, r, u, same FROM pairs
            QUALIFY row_number() OVER (PARTITION BY reader, sa_namespace, sa_name
                                       ORDER BY use_time, use_event, read_time DESC, read_event DESC) = 1
            ORDER BY use_time, use_event, read_time, read_event""").df()
    finally:
        con.close()


def first_token_links(links: pd.DataFrame) -> pd.DataFrame:
    """Per (reader, service account): the first use, and the last read before it."""
    if links.empty:
        return links.reset_index(drop=True)
    links = links.sort_values(["use_time", "use_event", "read_time", "read_event"], kind="stable")
    first_use = links.groupby(["reader", "sa_namespace", "sa_name"], sort=False)["use_event"].transform("first")
    links = links[links["use_event"] == first_use]
    return (
        links.drop_duplicates(["reader", "sa_namespace", "sa_name"], keep="last")
        .sort_values("use_time", kind="stable")
        .reset_index(drop=True)
    )


def token_secret_used(ev: Evidence) -> pd.DataFrame:
    """A service-account token taken from a Secret: the Secret read, then the account acting
    from the reader's address or from outside (``token_secret_links``)."""
    a = ev.audit
    owners = token_secret_owners(a, ev.context("service_accounts"), unreadable=ev.unreadable)
    links = token_secret_links(a, owners=owners, outside=_outside(ev), window=ev.settings["token_secret_use_window"])
    if links.empty:
        return pd.DataFrame()
    rows = links.assign(time=links["use_time"], event_id=links["use_event"])
    hits = hits_from_rows(
        rows,
        entity_type="service_account",
        entity=rows["sa_namespace"].astype(str) + "/" + rows["sa_name"].astype(str),
        namespace=rows["sa_namespace"],
        user=rows["reader"],
        source_ip=rows["use_ip"],
        table="audit",
        linked=rows["read_event"],
        since=rows["read_time"],
        summary=lambda r: (
            f"{r.reader} read Secret {r.secret_namespace or '(all namespaces)'}/{r.secret or '*'} "
            f"(from {r.read_ip or 'a node address'}) and the token of service account {r.entity} was then used {r.how} "
            f"({r.use_ip}): {r.use_verb} {r.use_resource}"
        ),
    )
    return set_where(
        hits, hits["summary"].str.contains("from the reader's address", regex=False).to_numpy(), severity="critical"
    )


def cluster_admins(rbac: pd.DataFrame) -> set[tuple[str, str]]:
    """(subject kind, name) of the Users, Groups and ServiceAccounts (``ns:name``) a ClusterRoleBinding
    binds to cluster-admin or to a role that allows every verb on every resource (``rbac`` context)."""
    if rbac.empty:
        return set()
    wild = rbac["verbs"].map(lambda v: "*" in _items(v)) & rbac["resources"].map(lambda v: "*" in _items(v))
    m = (rbac["binding_kind"] == "ClusterRoleBinding") & ((rbac["role"] == "cluster-admin") | wild)
    rows = rbac[m]
    return {
        (str(k), f"{ns}:{n}" if k == "ServiceAccount" else str(n))
        for k, ns, n in zip(rows["subject_kind"], rows["subject_namespace"], rows["subject"])
    }


def impersonation(ev: Evidence) -> pd.DataFrame:
    """Requests made as someone else (``Impersonate-User``/``-Group`` headers: the authorizer then
    judges the impersonated identity; kubernetes.io/docs/reference/access-authn-authz/user-impersonation/)
    by an identity that is not the control plane. High when the identity taken is privileged —
    system:masters among its groups, a privileged name (system:admin, a node, a kube-system
    account, system:anonymous), or bound to cluster-admin in the RBAC inventory (Elastic's
    "Kubernetes API Request Impersonating Privileged Identity"); medium otherwise: impersonation is
    sudo for the API and an identity that holds it can become any other."""
    a = ev.audit
    imp = a["impersonated_user"].fillna("").astype(str)
    groups = a["impersonated_groups"].map(_items)
    m = ((imp != "") | groups.map(bool)) & allowed_requests(ev) & ~system_requests(ev)
    rows = a[m]
    if rows.empty:
        return pd.DataFrame()
    admins = ev.memo("rbac.cluster_admins", lambda: cluster_admins(ev.context("rbac")))
    admin_users = {n for k, n in admins if k == "User"}
    admin_groups = {n for k, n in admins if k == "Group"} | {"system:masters"}
    admin_sas = {f"system:serviceaccount:{n}" for k, n in admins if k == "ServiceAccount"}
    who, grp = imp[rows.index], groups[rows.index]
    privileged = (
        who.str.match(PRIVILEGED_USERS)
        | (who == "system:anonymous")
        | who.isin(admin_users | admin_sas)
        | grp.map(lambda g: bool(set(g) & admin_groups))
    )
    rows = rows.assign(
        taken=[u or "groups " + ", ".join(g) for u, g in zip(who, grp)],
        why=[" (privileged)" if p else "" for p in privileged],
    )
    hits = _hits_by_actor(
        rows,
        lambda r: (
            f"{r.user} impersonated {r.taken}{r.why}: {r.n} request(s) starting with {r.verb} {r.resource}"
            f" (from {r.source_ip})"
        ),
        gap=ev.settings["session_gap"],
    )
    high = set(rows.loc[privileged.to_numpy(), "event_id"].astype(str))
    hits["severity"] = ["high" if set(map(str, ids)) & high else "medium" for ids in hits["event_ids"]]
    return hits


# ---------------------------------------------------------------------- discovery


def self_review(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        a["resource"].isin(["selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"])
        & (a["verb"] == "create")
        & (a["sa_name"].notna() | a["user"].fillna("").str.startswith("system:node:"))
    )
    return _hits_by_actor(
        a[m],
        lambda r: (
            f"{r.user} asked the API what it may do ({r.resource}, kubectl auth can-i / whoami) from {r.source_ip}"
        ),
        gap=ev.settings["session_gap"],
    )


def api_enumeration(ev: Evidence) -> pd.DataFrame:
    """One identity from one address lists at least three kinds of object within a minute
    (a sliding minute: ``in_burst``)."""
    a = ev.audit
    lists = a[(a["verb"] == "list") & ~system_requests(ev) & a["resource"].notna()]
    if lists.empty:
        return pd.DataFrame()
    rows = lists[
        in_burst(lists, by=["user", "source_ip"], window=pd.Timedelta(minutes=1), min_count=3, distinct="resource")
    ]
    return _hits_by_actor(
        rows,
        lambda r: f"{r.user} listed {r.n} kinds of object within a minute from {r.source_ip}",
        gap=ev.settings["session_gap"],
    )


def forbidden_burst(ev: Evidence) -> pd.DataFrame:
    """More than five denied requests from one address within a (sliding) minute: probing."""
    a = ev.audit
    code = a["response_code"].astype("Int64")
    denied = a[code.isin([401, 403]).fillna(False) & ~system_requests(ev)]
    if denied.empty:
        return pd.DataFrame()
    rows = denied[in_burst(denied, by=["source_ip"], window=pd.Timedelta(minutes=1), min_count=6)]
    if rows.empty:
        return pd.DataFrame()
    outside = external_mask(rows["source_ip"], cluster_networks(ev.context("nodes")))
    hits = hits_from_rows(
        rows,
        entity_type="ip",
        entity=rows["source_ip"],
        user=rows["user"],
        source_ip=rows["source_ip"],
        summary=lambda r: f"{r.n} denied API requests from {r.source_ip} (as {r.user}) within minutes: probing",
        table="audit",
        gap=ev.settings["session_gap"],
    )
    ext = hits["source_ip"].isin(set(rows.loc[outside, "source_ip"]))
    return set_where(hits, ext, kill_chain_phase="Reconnaissance")


def anonymous_allowed(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = anonymous(a) & allowed_requests(ev) & ~a["request_uri"].fillna("").str.match(HEALTH_URIS)
    return hits_from_rows(
        a[m],
        entity_type="ip",
        entity=a.loc[m, "source_ip"],
        user=a.loc[m, "user"],
        source_ip=a.loc[m, "source_ip"],
        summary=lambda r: f"anonymous request allowed from {r.source_ip}: {r.verb} {r.request_uri}",
        table="audit",
        gap=ev.settings["session_gap"],
    )


# ---------------------------------------------------------------------- defence evasion, impact, exposure


def events_deleted(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["resource"] == "events")
        & a["verb"].isin(["delete", "deletecollection"])
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    return _hits_by_actor(
        a[m],
        lambda r: f"{r.user} deleted Kubernetes events in {r.object_namespace or 'all namespaces'} ({r.verb})",
        gap=ev.settings["session_gap"],
    )


def coredns_modified(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        (a["resource"] == "configmaps")
        & (a["object_namespace"] == "kube-system")
        & a["object_name"].isin(["coredns", "kube-dns", "coredns-custom"])
        & a["verb"].isin([*WRITE_VERBS, "delete"])
        & allowed_requests(ev)
        & ~system_requests(ev)
        & ~a["user"].isin(["system:serviceaccount:kube-system:coredns", "system:serviceaccount:kube-system:kube-dns"])
    )
    return _hits_by_object(
        a[m], lambda r: f"{r.user} {r.verb}d the cluster DNS configuration {r.object_name}", entity_type="object"
    )


CREDENTIAL_TEXT = re.compile(
    r"aws_access_key_id|aws_secret_access_key|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|\"password\"\s*:|passwd|client_secret",
    re.IGNORECASE,
)


def configmap_credentials(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (
        ((a["resource"] == "configmaps") & a["verb"].isin(WRITE_VERBS) & allowed_requests(ev))
        .fillna(False)
        .astype(bool)
    )
    m[m] = a.loc[m, "request_object"].fillna("").str.contains(CREDENTIAL_TEXT)  # the regex only on the candidate rows
    return _hits_by_object(
        a[m],
        lambda r: f"{r.user} wrote credentials in plain text into ConfigMap {r.object_namespace}/{r.object_name}",
        entity_type="object",
    )


def exposed_service(ev: Evidence) -> pd.DataFrame:
    a = ev.audit
    m = (a["resource"] == "services") & a["verb"].isin(WRITE_VERBS) & allowed_requests(ev) & ~system_requests(ev)
    bodies = parsed_bodies(a, m, unreadable=ev.unreadable)

    def exposure(o: Any) -> str:
        spec = (o or {}).get("spec") or {} if isinstance(o, dict) else {}
        if spec.get("type") == "NodePort":
            return "NodePort"
        if spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerSourceRanges"):
            return "LoadBalancer open to any address"
        return "externalIPs" if spec.get("externalIPs") else ""

    rows = a[m].assign(detail=bodies[m].map(exposure))
    rows = rows[rows["detail"].map(bool).astype(bool)]
    return _hits_by_object(
        rows,
        lambda r: f"{r.user} exposed service {r.object_namespace}/{r.object_name} outside the cluster ({r.detail})",
        entity_type="service",
    )


# what deleting destroys or takes down: workloads and their pods' templates, data (volumes and
# their claims), configuration and credentials the applications need, the services that route to
# them, whole namespaces (MS-TA9038 data destruction, MS-TA9040 denial of service; ATT&CK T1485
# data destruction, T1489 service stop)
DESTRUCTIVE_KINDS = frozenset(
    {
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "cronjobs",
        "jobs",
        "persistentvolumeclaims",
        "persistentvolumes",
        "namespaces",
        "configmaps",
        "secrets",
        "services",
        "ingresses",
    }
)
BURST_WINDOW = pd.Timedelta(minutes=5)


def destruction(ev: Evidence) -> pd.DataFrame:
    """Five or more deletions of workloads, volumes, services, configuration or namespaces by
    one identity within any five minutes (a sliding window: ``in_burst``), or a deletecollection
    of them."""
    a = ev.audit
    d = a[
        a["resource"].isin(DESTRUCTIVE_KINDS)
        & a["verb"].isin(["delete", "deletecollection"])
        & allowed_requests(ev)
        & ~system_requests(ev)
    ]
    if d.empty:
        return pd.DataFrame()
    rows = d[in_burst(d, by=["user"], window=BURST_WINDOW, min_count=5) | (d["verb"] == "deletecollection")]
    return _hits_by_actor(
        rows,
        lambda r: (
            f"{r.user} deleted {r.n} workloads, volumes, services or configuration objects starting with "
            f"{r.resource} {r.object_namespace}/{r.object_name}"
        ),
        gap=ev.settings["session_gap"],
    )


SIDECAR_RESOURCES = ("deployments", "daemonsets", "statefulsets", "replicasets")
# a JSON patch (RFC 6902) operation that appends or inserts a container
JSON_PATCH_CONTAINER = re.compile(r"^/spec/template/spec/(?:initContainers|containers)/(?:-|\d+)$")


def _container_names(obj: Any) -> set[str]:
    spec = pod_spec(obj)
    if spec is None:
        return set()
    return {
        str(c.get("name"))
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    }


def _json_patch_added(obj: Any) -> set[str]:
    """Containers a JSON patch adds (``op: add`` to a container list position)."""
    if not isinstance(obj, list):
        return set()
    return {
        str((op.get("value") or {}).get("name", "?")) if isinstance(op.get("value"), dict) else "?"
        for op in obj
        if isinstance(op, dict) and op.get("op") == "add" and JSON_PATCH_CONTAINER.match(str(op.get("path", "")))
    }


def workload_template_writes(a: pd.DataFrame) -> pd.Series:
    """Allowed writes of a workload's pod template with a request body: what the sidecar rule
    learns a workload's containers from (the reduction keeps them)."""
    return (
        a["resource"].isin(SIDECAR_RESOURCES)
        & a["verb"].isin(WRITE_VERBS)
        & a["subresource"].isna()
        & a["request_object"].notna()
        & allowed(a)
    ).astype(bool)


def sidecar_injection(ev: Evidence) -> pd.DataFrame:
    """A patch or update that *grows* a running workload's container list (a container or init
    container it did not have), by someone who is not a controller: a container slipped into a
    legitimate pod template (MS-TA9011). A rollout — a new image, ``kubectl rollout restart``'s
    ``kubectl.kubernetes.io/restartedAt`` annotation — names only containers the workload
    already has and is not one. The containers a workload had come from its earlier writes in the
    evidence and its pods in the inventory; without those, or without a request body (audit level
    Metadata), growth cannot be told and nothing is reported — except a JSON patch that adds one."""
    a = ev.audit
    writes = workload_template_writes(a)
    if not writes.any():
        return pd.DataFrame()
    bodies = parsed_bodies(a, writes, unreadable=ev.unreadable)
    pods = ev.context("pods")
    known: dict[tuple[str, str, str], set[str]] = {}
    kinds = {
        "Deployment": "deployments",
        "DaemonSet": "daemonsets",
        "StatefulSet": "statefulsets",
        "ReplicaSet": "replicasets",
    }
    for ns, kind, name, names in zip(
        pods.get("namespace", []), pods.get("workload_kind", []), pods.get("workload", []), pods.get("containers", [])
    ):
        if kind in kinds and isinstance(name, str) and _items(names):
            known.setdefault((kinds[kind], ns, name), set()).update(str(n) for n in _items(names))
    system = system_requests(ev)
    grown: dict[Any, str] = {}
    # the writes in time order, their columns as lists: a cell lookup each (``a.at``) costs more
    # than the body's walk on a case with a hundred thousand template writes
    w = a.loc[writes, ["time", "event_id", "resource", "object_namespace", "object_name", "verb"]]
    w = w.assign(_eid=w["event_id"].astype(str), _body=bodies[writes], _system=system[writes])
    w = w.sort_values(["time", "_eid"], kind="stable")
    columns = (w[c].astype(object).tolist() for c in ("resource", "object_namespace", "object_name", "verb"))
    for i, resource, namespace, name, verb, body, by_system in zip(
        w.index, *columns, w["_body"].tolist(), w["_system"].tolist()
    ):
        key = (resource, namespace, name)
        names, added = _container_names(body), _json_patch_added(body)
        before = known.get(key)
        if verb != "create" and not by_system:
            new = added | (names - before if before is not None else set())
            if new:
                grown[i] = ", ".join(sorted(new))
        known.setdefault(key, set()).update(names | added)
    if not grown:
        return pd.DataFrame()
    rows = a.loc[list(grown)].assign(names=pd.Series(grown))
    return _hits_by_object(
        rows,
        lambda r: (
            f"{r.user} {r.verb}ed {r.resource} {r.object_namespace}/{r.object_name} adding container(s) {r.names}"
            f" (from {r.source_ip})"
        ),
        entity_type="workload",
    )


def pod_deletion_burst(ev: Evidence) -> pd.DataFrame:
    """Five or more pods deleted by one identity (not a controller) within any five minutes, or a
    deletecollection of pods: a pod's container logs go with it (MS-TA9021 clear container
    logs, ATT&CK T1070 indicator removal)."""
    a = ev.audit
    d = a[
        (a["resource"] == "pods")
        & a["subresource"].isna()
        & a["verb"].isin(["delete", "deletecollection"])
        & allowed_requests(ev)
        & ~system_requests(ev)
    ]
    if d.empty:
        return pd.DataFrame()
    rows = d[in_burst(d, by=["user"], window=BURST_WINDOW, min_count=5) | (d["verb"] == "deletecollection")]
    return _hits_by_actor(
        rows,
        lambda r: (
            f"{r.user} deleted {r.n} pod(s) starting with {r.object_namespace or '(all namespaces)'}/"
            f"{r.object_name or '*'} ({r.verb}): their container logs are gone"
        ),
        gap=ev.settings["session_gap"],
    )


def pod_deletions(a: pd.DataFrame) -> pd.Series:
    """Allowed deletions of single pods by someone who is not the control plane (a controller,
    a node, the garbage collector): what ``flagged_pod_deleted`` judges; the reduction keeps them."""
    return (
        (a["resource"] == "pods")
        & a["subresource"].isna()
        & (a["verb"] == "delete")
        & a["object_name"].notna()
        & allowed(a)
        & ~is_system(a["user"])
    ).astype(bool)


# what makes a pod suspect before it is deleted: how it was made (the pod-spec rules, a first-time
# creator) and what ran in it (the runtime rules that name known-bad behaviour)
SUSPECT_RUNTIME = (
    runtime_rules.host_escape,
    runtime_rules.reverse_shell,
    runtime_rules.miner,
    runtime_rules.runtime_socket,
    runtime_rules.host_cron,
    runtime_rules.static_manifest,
    runtime_rules.token_read,
    runtime_rules.exec_from_writable_dir,
    runtime_rules.download_tool,
)


def flagged_pod_deleted(ev: Evidence) -> pd.DataFrame:
    """A pod deleted by a person or a pod identity (not a controller or a node) after a detection
    about it: how it was created (privileged, host namespaces or paths, dangerous capabilities,
    an untrusted image, a system namespace, a first-time creator) or what ran in it (an escape,
    a reverse shell, a miner, a token read, ...). Deleting a pod takes its container logs and
    writable layer with it — what a responder would have read (Threat Matrix MS-TA9021 clear
    container logs; ATT&CK T1070 indicator removal, T1070.004 file deletion). A controller
    replacing a pod, or a pod no rule flagged, is not one."""
    a = ev.audit
    deletes = a[pod_deletions(a)]
    if deletes.empty:
        return pd.DataFrame()
    parts = [
        f(ev)
        for f in (
            privileged_pod,
            host_namespaces,
            sensitive_host_path,
            dangerous_capabilities,
            untrusted_image,
            pod_in_system_namespace,
            new_pod_creator,
        )
    ]
    if len(ev.runtime):
        parts += [f(ev) for f in SUSPECT_RUNTIME]
    why: dict[str, tuple[Any, str]] = {}
    for hits in parts:
        if hits.empty:
            continue
        pods = hits[hits["namespace"].notna() & hits["pod"].notna()]
        for ns, pod, t, summary in zip(pods["namespace"], pods["pod"], pods["time"], pods["summary"]):
            key = f"{ns}/{pod}"
            if key not in why or t < why[key][0]:
                why[key] = (t, str(summary))
    if not why:
        return pd.DataFrame()
    key = deletes["object_namespace"].astype(str) + "/" + deletes["object_name"].astype(str)
    first = key.map(lambda k: why.get(k, (None, ""))[0])
    rows = deletes[first.notna() & (deletes["time"] >= pd.to_datetime(first, utc=True))]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(reason=key[rows.index].map(lambda k: why[k][1]))
    return _hits_by_object(
        rows,
        lambda r: (
            f"{r.user} deleted pod {r.entity} after it was flagged ({r.reason}): its container logs and "
            f"files are gone (from {r.source_ip})"
        ),
        entity_type="pod",
    )


# the log shippers and runtime sensors whose removal blinds the responder (their public Helm
# charts' and managed add-ons' names)
DEFENCE_AGENTS = re.compile(
    r"fluent-?bit|fluentd|\bvector\b|promtail|filebeat|logstash|elastic-agent|datadog|cloudwatch-agent|"
    r"ama-logs|omsagent|oms-agent|otel|opentelemetry|falco|tetragon|tracee|sysdig|aqua|twistlock|"
    r"defender|crowdstrike|falcon-sensor|splunk|auditbeat|osquery|wazuh|kube-audit",
    re.IGNORECASE,
)


def defence_agent_tampered(ev: Evidence) -> pd.DataFrame:
    """A log shipper's or runtime sensor's DaemonSet, Deployment, ConfigMap or namespace deleted,
    or its DaemonSet patched to run nowhere (a nodeSelector no node has) or scaled to zero, by
    someone who is not a controller (ATT&CK T1562.001 impair defenses; MS-TA9021: the container
    logs stop being collected)."""
    a = ev.audit
    kinds = a["resource"].isin(["daemonsets", "deployments", "statefulsets", "configmaps", "namespaces"])
    named = a["object_name"].fillna("").str.contains(DEFENCE_AGENTS) | a["object_namespace"].fillna("").str.contains(
        DEFENCE_AGENTS
    )
    base = kinds & named & allowed_requests(ev) & ~system_requests(ev)
    deleted = base & a["verb"].isin(["delete", "deletecollection"])
    changed = base & a["verb"].isin(["patch", "update"]) & (a["subresource"].isna() | (a["subresource"] == "scale"))
    bodies = parsed_bodies(a, changed, unreadable=ev.unreadable)

    def blinds(o: Any) -> bool:
        spec = o.get("spec") if isinstance(o, dict) else None
        if not isinstance(spec, dict):
            return False
        tmpl = ((spec.get("template") or {}).get("spec") or {}) if isinstance(spec.get("template"), dict) else {}
        return spec.get("replicas") == 0 or bool(isinstance(tmpl, dict) and tmpl.get("nodeSelector"))

    rows = a[deleted | (changed & bodies.map(blinds).astype(bool))]
    return _hits_by_object(
        rows,
        lambda r: (
            f"{r.user} {r.verb}d {r.resource} {r.object_namespace + '/' if r.object_namespace else ''}{r.object_name}"
            f" of a log shipper or security sensor"
        ),
        entity_type="workload",
    )


def serviceaccount_create(ev: Evidence) -> pd.DataFrame:
    """A ServiceAccount created by someone who is not a controller (ATT&CK T1136 create
    account): a new identity to bind and mint tokens for. Namespaces' ``default`` accounts come
    from the service-account controller and are not findings; kube-system ones are medium."""
    a = ev.audit
    m = (
        (a["resource"] == "serviceaccounts")
        & (a["verb"] == "create")
        & a["subresource"].isna()
        & allowed_requests(ev)
        & ~system_requests(ev)
    )
    hits = _hits_by_object(
        a[m],
        lambda r: f"{r.user} created service account {r.object_namespace}/{r.object_name} (from {r.source_ip})",
        entity_type="service_account",
    )
    if hits.empty:
        return hits
    return set_where(hits, (hits["namespace"] == "kube-system").to_numpy(), severity="medium")


AUDIT_RULES = [
    Rule(
        id="k8s-exec-into-pod",
        title="Exec or attach into a pod",
        severity="medium",
        technique_id="MS-TA9006",
        attack_id="T1609",
        tactic="Execution",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=exec_into_pod,
        reads="reduced",
        row_local=True,
        description="pods/exec or pods/attach, create or get (websocket), allowed. By a service account it is lateral movement.",
    ),
    Rule(
        id="k8s-exec-suspicious-command",
        title="Exec with a reverse shell, download or credential command",
        severity="high",
        technique_id="MS-TA9007",
        attack_id="T1059",
        tactic="Execution",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=exec_suspicious_command,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-exec-reads-sa-token",
        title="Exec reading a service-account token",
        severity="high",
        technique_id="MS-TA9016",
        attack_id="T1528",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=exec_reads_token,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-kubectl-cp",
        title="Files copied out of a pod (kubectl cp)",
        severity="medium",
        technique_id="MS-TA9041",
        attack_id="T1005",
        tactic="Collection",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=kubectl_cp,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-ephemeral-container",
        title="Ephemeral (debug) container added",
        severity="medium",
        technique_id="MS-TA9006",
        attack_id="T1609",
        tactic="Execution",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=ephemeral_container,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-port-forward",
        title="Port-forward into a pod",
        severity="medium",
        technique_id=None,
        attack_id="T1572",
        tactic="Command and Control",
        kill_chain_phase="Command & Control",
        table="audit",
        logic=port_forward,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-node-proxy",
        title="Kubelet API reached through nodes/proxy",
        severity="high",
        technique_id="MS-TA9030",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=node_proxy,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-privileged-pod",
        title="Privileged container created",
        severity="high",
        technique_id="MS-TA9018",
        attack_id="T1610",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=privileged_pod,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-host-namespaces",
        title="Pod sharing the node's PID, IPC or network namespace",
        severity="high",
        technique_id="MS-TA9018",
        attack_id="T1611",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=host_namespaces,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-sensitive-host-path",
        title="Sensitive host path mounted",
        severity="high",
        technique_id="MS-TA9013",
        attack_id="T1611",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=sensitive_host_path,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-dangerous-capabilities",
        title="Container with dangerous Linux capabilities",
        severity="high",
        technique_id="MS-TA9018",
        attack_id="T1611",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=dangerous_capabilities,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-untrusted-image",
        title="Image from an untrusted registry",
        severity="medium",
        technique_id="MS-TA9002",
        attack_id="T1525",
        tactic="Initial Access",
        kill_chain_phase="Delivery",
        table="audit",
        logic=untrusted_image,
        reads="reduced",
        row_local=True,
        description="Registries: settings['trusted_registries'], else those of pods running before the evidence starts.",
    ),
    Rule(
        id="k8s-cluster-admin-binding",
        title="Binding to cluster-admin created",
        severity="critical",
        technique_id="MS-TA9019",
        attack_id="T1078.003",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=cluster_admin_binding,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-cluster-admin-binding-first-use",
        title="First use of a new cluster-admin binding",
        severity="critical",
        technique_id="MS-TA9019",
        attack_id="T1078.003",
        tactic="Privilege Escalation",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=new_binding_first_use,
        reads="reduced",
    ),
    Rule(
        id="k8s-risky-role",
        title="Role granting wildcard, escalation or sensitive permissions",
        severity="medium",
        technique_id="MS-TA9019",
        attack_id="T1098.006",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=risky_role,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-cronjob-write",
        title="CronJob or Job created or changed by a non-controller",
        severity="medium",
        technique_id="MS-TA9014",
        attack_id="T1053.007",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=cronjob_write,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-daemonset-create",
        title="DaemonSet created by a non-controller",
        severity="medium",
        technique_id="MS-TA9012",
        attack_id="T1543",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=daemonset_create,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-rbac-then-workload",
        title="RBAC change followed by a workload write",
        severity="high",
        technique_id="MS-TA9012",
        attack_id="T1543",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=rbac_then_workload,
        reads="reduced",
    ),
    Rule(
        id="k8s-sidecar-injection",
        title="Container added to a workload's pod template",
        severity="medium",
        technique_id="MS-TA9011",
        attack_id="T1610",
        tactic="Execution",
        kill_chain_phase="Installation",
        table="audit",
        logic=sidecar_injection,
        reads="reduced",
        description="A patch/update that grows the template's containers or initContainers; a rollout (new image, "
        "restartedAt annotation) does not.",
    ),
    Rule(
        id="k8s-admission-webhook",
        title="Admission webhook configuration written",
        severity="high",
        technique_id="MS-TA9015",
        attack_id="T1546",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=admission_webhook,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-static-pod",
        title="Static (mirror) pod registered by a node",
        severity="medium",
        technique_id="MS-TA9017",
        attack_id="T1543",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=static_mirror_pod,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-pod-in-system-namespace",
        title="Pod created in kube-system by a non-controller",
        severity="high",
        technique_id="MS-TA9023",
        attack_id="T1036.005",
        tactic="Defense Evasion",
        kill_chain_phase="Installation",
        table="audit",
        logic=pod_in_system_namespace,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-new-pod-creator",
        title="Workload created by an identity that never created one before",
        severity="medium",
        technique_id="MS-TA9008",
        attack_id="T1610",
        tactic="Execution",
        kill_chain_phase="Installation",
        table="audit",
        logic=new_pod_creator,
        reads="reduced",
    ),
    Rule(
        id="k8s-secrets-read",
        title="Secrets read by a non-system identity",
        severity="medium",
        technique_id="MS-TA9025",
        attack_id="T1552.007",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=secrets_read,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-token-request",
        title="Service-account token or client certificate minted",
        severity="medium",
        technique_id="MS-TA9016",
        attack_id="T1528",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=token_request,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-token-secret-used",
        title="Service-account token taken from a Secret and used",
        severity="high",
        technique_id="MS-TA9016",
        attack_id="T1528",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=token_secret_used,
        reads="reduced",
    ),
    Rule(
        id="k8s-credential-from-outside",
        title="Credential used from a new outside address",
        severity="medium",
        technique_id="MS-TA9003",
        attack_id="T1078",
        tactic="Initial Access",
        kill_chain_phase="Delivery",
        table="audit",
        logic=credential_from_outside,
        reads="reduced",
        description="Cloud identities (e-mail, ARN, object id) are MS-TA9001 / T1078.004.",
    ),
    Rule(
        id="k8s-serviceaccount-create",
        title="ServiceAccount created by a non-controller",
        severity="low",
        technique_id=None,
        attack_id="T1136",
        tactic="Persistence",
        kill_chain_phase="Installation",
        table="audit",
        logic=serviceaccount_create,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-token-used-elsewhere",
        title="Service-account token used from outside its pod",
        severity="critical",
        technique_id="MS-TA9016",
        attack_id="T1550.001",
        tactic="Lateral Movement",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=token_used_elsewhere,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-impersonation",
        title="Requests impersonating another identity",
        severity="high",
        technique_id=None,
        attack_id="T1078",
        tactic="Privilege Escalation",
        kill_chain_phase="Exploitation",
        table="audit",
        logic=impersonation,
        reads="reduced",
        row_local=True,
        description="High when the identity taken is privileged (system:masters, a system name, bound to cluster-admin); medium otherwise.",
    ),
    Rule(
        id="k8s-self-review",
        title="Permission discovery by a pod or node identity",
        severity="medium",
        technique_id="MS-TA9029",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=self_review,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-api-enumeration",
        title="Enumeration of several kinds of object",
        severity="medium",
        technique_id="MS-TA9029",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=api_enumeration,
        reads="reduced",
    ),
    Rule(
        id="k8s-forbidden-burst",
        title="Burst of denied API requests",
        severity="medium",
        technique_id="MS-TA9029",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=forbidden_burst,
        reads="reduced",
    ),
    Rule(
        id="k8s-anonymous-allowed",
        title="Anonymous request allowed",
        severity="high",
        technique_id=None,
        attack_id="T1078.001",
        tactic="Initial Access",
        kill_chain_phase="Delivery",
        table="audit",
        logic=anonymous_allowed,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-events-deleted",
        title="Kubernetes events deleted",
        severity="medium",
        technique_id="MS-TA9022",
        attack_id="T1070",
        tactic="Defense Evasion",
        kill_chain_phase="Installation",
        table="audit",
        logic=events_deleted,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-pod-deletion-burst",
        title="Burst of pod deletions",
        severity="medium",
        technique_id="MS-TA9021",
        attack_id="T1070",
        tactic="Defense Evasion",
        kill_chain_phase="Installation",
        table="audit",
        logic=pod_deletion_burst,
        reads="reduced",
    ),
    Rule(
        id="k8s-flagged-pod-deleted",
        title="Flagged pod deleted by a non-controller",
        severity="high",
        technique_id="MS-TA9021",
        attack_id="T1070",
        tactic="Defense Evasion",
        kill_chain_phase="Installation",
        table="audit",
        logic=flagged_pod_deleted,
        reads="reduced",
        description="A pod deleted by a person or pod identity after a rule flagged its creation or what ran in it.",
    ),
    Rule(
        id="k8s-defence-agent-tampered",
        title="Log shipper or security sensor removed or disabled",
        severity="high",
        technique_id="MS-TA9021",
        attack_id="T1562.001",
        tactic="Defense Evasion",
        kill_chain_phase="Installation",
        table="audit",
        logic=defence_agent_tampered,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-coredns-modified",
        title="Cluster DNS configuration changed",
        severity="high",
        technique_id="MS-TA9035",
        attack_id="T1557",
        tactic="Lateral Movement",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=coredns_modified,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-configmap-credentials",
        title="Credentials written into a ConfigMap",
        severity="medium",
        technique_id="MS-TA9027",
        attack_id="T1552",
        tactic="Credential Access",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=configmap_credentials,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-exposed-service",
        title="Service exposed outside the cluster",
        severity="medium",
        technique_id="MS-TA9005",
        attack_id="T1133",
        tactic="Initial Access",
        kill_chain_phase="Delivery",
        table="audit",
        logic=exposed_service,
        reads="reduced",
        row_local=True,
    ),
    Rule(
        id="k8s-destruction",
        title="Bulk deletion of workloads, volumes or namespaces",
        severity="high",
        technique_id="MS-TA9038",
        attack_id="T1485",
        tactic="Impact",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=destruction,
        reads="reduced",
    ),
]
