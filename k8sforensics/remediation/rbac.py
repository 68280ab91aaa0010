"""Least-privilege RBAC from what identities actually did (the audit2rbac idea): for each
service account or user, the Roles (per namespace) and ClusterRole (cluster-scoped resources,
requests across namespaces, non-resource URLs) that allow exactly the requests it made outside
the attack, and their bindings; and the existing bindings nothing legitimate used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from .. import node_ids
from ..detect.facts import allowed, is_system

PREFIX = "k8sforensics-least"
# secrets are named in the rule (resourceNames): reading one secret must not mean reading all
NAMED_RESOURCES = {"secrets"}


def used_permissions(audit: pd.DataFrame, *, exclude: Iterable[str] = ()) -> pd.DataFrame:
    """What each non-system identity was allowed to do, outside the ``exclude`` event ids:
    ``identity, subject_kind, subject_namespace, subject, namespace, api_group, resource, verb, name, url``
    (``resource`` with its ``/subresource``; ``url`` for non-resource requests)."""
    skip = set(exclude)
    a = audit[
        allowed(audit) & ~is_system(audit["user"]) & audit["user"].notna() & ~audit["event_id"].astype(str).isin(skip)
    ]
    a = a[
        ~a["user"].astype(str).str.startswith("system:") | a["sa_name"].notna()
    ]  # anonymous, nodes, controllers: not ours to narrow
    sa = a["sa_name"].notna()
    resource = a["resource"].where(
        a["subresource"].isna(), a["resource"].astype(str) + "/" + a["subresource"].astype(str)
    )
    url = a["request_uri"].astype("string").str.split("?").str[0].where(a["resource"].isna())
    out = pd.DataFrame(
        {
            "identity": node_ids.actors(a["sa_namespace"], a["sa_name"], a["user"]),
            "subject_kind": pd.Series("ServiceAccount", index=a.index).where(sa, "User"),
            "subject_namespace": a["sa_namespace"].where(sa),
            "subject": a["sa_name"].where(sa, a["user"]),
            "namespace": a["object_namespace"],
            "api_group": a["api_group"].fillna(""),
            "resource": resource,
            "verb": a["verb"],
            "name": a["object_name"],
            "url": url,
        }
    )
    return out.drop_duplicates().reset_index(drop=True)


def least_privilege(used: pd.DataFrame) -> list[dict[str, Any]]:
    """Role + RoleBinding per (identity, namespace), ClusterRole + ClusterRoleBinding for the rest,
    allowing exactly ``used`` (from ``used_permissions``)."""
    out: list[dict[str, Any]] = []
    for identity, g in used.groupby("identity", sort=True):
        first = g.iloc[0]
        subject = {"kind": first["subject_kind"], "name": first["subject"]}
        if first["subject_kind"] == "ServiceAccount":
            subject["namespace"] = first["subject_namespace"]
        else:
            subject["apiGroup"] = "rbac.authorization.k8s.io"
        name = _name(identity)
        scoped = g[g["namespace"].notna() & g["resource"].notna()]
        for ns, h in scoped.groupby("namespace", sort=True):
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": name, "namespace": ns},
                    "rules": _rules(h),
                }
            )
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": ns},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": [subject],
                }
            )
        cluster = g[g["namespace"].isna()]
        rules = _rules(cluster[cluster["resource"].notna()])
        urls = sorted({u for u, v in zip(cluster["url"], cluster["verb"]) if isinstance(u, str) and u})
        if urls:
            rules.append(
                {
                    "nonResourceURLs": urls,
                    "verbs": sorted({str(v) for u, v in zip(cluster["url"], cluster["verb"]) if isinstance(u, str)}),
                }
            )
        if rules:
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": name},
                    "rules": rules,
                }
            )
            out.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                    "subjects": [subject],
                }
            )
    return out


def _rules(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Resources with the same group and verbs share a rule; secrets are named."""
    per: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
    for (group, resource), h in rows.groupby(["api_group", "resource"], sort=True):
        base = str(resource).split("/")[0]
        if (
            base in NAMED_RESOURCES
            and h["name"].notna().all()
            and not h["verb"].isin(["list", "watch", "create", "deletecollection"]).any()
        ):
            names = tuple(sorted(set(h["name"].astype(str))))
        else:
            names = ()
        per.setdefault((str(group), ",".join(sorted(set(h["verb"].astype(str)))), names), set()).add(str(resource))
    rules = []
    for (group, verbs, names), resources in sorted(per.items()):
        rule: dict[str, Any] = {"apiGroups": [group], "resources": sorted(resources), "verbs": verbs.split(",")}
        if names:
            rule["resourceNames"] = list(names)
        rules.append(rule)
    return rules


def _name(identity: str) -> str:
    who = node_ids.label(identity)
    text = "".join(c if c.isalnum() or c in "-." else "-" for c in f"{PREFIX}-{who.replace('/', '-')}".lower())
    return text[:253].strip("-.")


def unused_bindings(rbac: pd.DataFrame, used: pd.DataFrame) -> pd.DataFrame:
    """Bindings whose service-account or user subject made no legitimate request the binding's
    rules cover: ``binding_kind, binding_namespace, binding, subject, role, reason``."""
    rows = []
    seen = set()
    for r in rbac.itertuples(index=False):
        if r.subject_kind not in ("ServiceAccount", "User"):
            continue
        identity = (
            node_ids.service_account(r.subject_namespace, r.subject)
            if r.subject_kind == "ServiceAccount"
            else node_ids.user(r.subject)
        )
        key = (r.binding_kind, r.binding_namespace, r.binding, identity)
        if key in seen:
            continue
        seen.add(key)
        mine = rbac[
            (rbac["binding"] == r.binding) & (rbac["binding_kind"] == r.binding_kind) & (rbac["subject"] == r.subject)
        ]
        u = used[used["identity"] == identity]
        if r.binding_kind == "RoleBinding":
            u = u[u["namespace"] == r.binding_namespace]
        if not any(_covers(rule, u) for rule in mine.itertuples(index=False)):
            rows.append(
                {
                    "binding_kind": r.binding_kind,
                    "binding_namespace": r.binding_namespace if r.binding_kind == "RoleBinding" else None,
                    "binding": r.binding,
                    "subject": identity,
                    "role": f"{r.role_kind} {r.role}",
                    "reason": f"{identity} made no request outside the attack that {r.role_kind} {r.role} allows",
                }
            )
    return pd.DataFrame(rows, columns=["binding_kind", "binding_namespace", "binding", "subject", "role", "reason"])


def _covers(rule: Any, used: pd.DataFrame) -> bool:
    if used.empty:
        return False
    if not rule.role_found:
        return True  # the role's rules are unknown: do not call the binding unused
    groups, resources, verbs = (
        list(x) if x is not None and not isinstance(x, float) else []
        for x in (rule.api_groups, rule.resources, rule.verbs)
    )
    m = used["resource"].notna()
    m &= used["api_group"].isin(groups) | ("*" in groups)
    m &= used["resource"].isin(resources) | ("*" in resources)
    m &= used["verb"].isin(verbs) | ("*" in verbs)
    return bool(m.any())
