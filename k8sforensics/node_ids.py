"""Graph node ids, formatted and parsed in one place.

A node id is ``<kind>:<rest>``: ``pod:<namespace>/<name>``, ``sa:<namespace>/<name>``,
``secret:<namespace>/<name>`` (``*`` for "every"), ``workload:<namespace>/<resource>/<name>``,
``node:<name>``, ``ip:<address>``, ``user:<name>``, ``binding:<name>``, ``role:<name>``,
``webhook:<name>`` and ``<resource>:<name>`` for other cluster-scoped objects. Names come from
evidence, so parsing never evaluates anything: it splits on the first separators only (a user
name may hold ``:`` and ``/``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

NAMESPACED = frozenset({"pod", "sa", "secret"})
# the API server's user name of a service account and of a node's kubelet
# (kubernetes.io/docs/reference/access-authn-authz/authentication/#users-in-kubernetes, .../node/)
SA_USER = "system:serviceaccount:"
NODE_USER = "system:node:"


@dataclass(frozen=True)
class NodeId:
    """A parsed node id: its kind, namespace (None when cluster-scoped), name and, for a
    workload, its resource (``deployments``)."""

    kind: str
    namespace: str | None
    name: str
    resource: str | None = None

    @property
    def label(self) -> str:
        """What follows the kind: ``ns/name``, ``ns/resource/name`` or ``name``."""
        parts = [p for p in (self.namespace, self.resource) if p is not None]
        return "/".join([*parts, self.name])


def parse(node_id: str) -> NodeId:
    """The parts of ``node_id`` (an id without a kind has kind ``""``)."""
    kind, sep, rest = str(node_id).partition(":")
    if not sep:
        return NodeId("", None, str(node_id))
    if kind in NAMESPACED:
        ns, slash, name = rest.partition("/")
        return NodeId(kind, ns, name) if slash else NodeId(kind, None, rest)
    if kind == "workload":
        ns, resource, name = (rest.split("/", 2) + ["", ""])[:3]
        return NodeId(kind, ns, name, resource)
    return NodeId(kind, None, rest)


def namespaced(node_id: str) -> tuple[str, str]:
    """(namespace, name) of a namespaced id (``pod:shop/web-1`` → ``("shop", "web-1")``; "" for
    a namespace the id lacks)."""
    n = parse(node_id)
    return n.namespace or "", n.name


def label(node_id: str) -> str:
    """What follows the kind (``pod:shop/web-1`` → ``shop/web-1``)."""
    return str(node_id).partition(":")[2]


def kind(node_id: str) -> str:
    """The kind of an id (``pod:shop/web-1`` → ``pod``; ``""`` for an id without one)."""
    k, sep, _ = str(node_id).partition(":")
    return k if sep else ""


def is_a(node_id: str, *kinds: str) -> bool:
    """Whether ``node_id`` is of one of ``kinds`` (``is_a(n, "sa", "user")``: an identity)."""
    return kind(node_id) in kinds


def is_kubelet(node_id: str) -> bool:
    """Whether ``node_id`` is a node's kubelet identity (``user:system:node:<name>``)."""
    n = parse(node_id)
    return n.kind == "user" and n.name.startswith(NODE_USER)


def kubelet(node_id: str) -> str:
    """The kubelet's identity of a node (``node:n`` → ``user:system:node:n``): its client
    credential lives on the node (Kubernetes docs, Node authorization)."""
    return user(NODE_USER + parse(node_id).name)


def identity(username: str) -> str:
    """The identity node of an API server user name: ``system:serviceaccount:ns:name`` →
    ``sa:ns/name``, anything else → ``user:<name>``."""
    return (
        "sa:" + username.removeprefix(SA_USER).replace(":", "/", 1) if username.startswith(SA_USER) else user(username)
    )


def entity(entity_type: str, name: str) -> str:
    """A finding's or a patient-zero row's entity as a node id: ``pod`` ``shop/web-1`` →
    ``pod:shop/web-1``, ``service_account`` ``ci/deployer`` → ``sa:ci/deployer``, ``user``."""
    kinds = {"pod": "pod", "service_account": "sa", "user": "user"}
    return f"{kinds[entity_type]}:{name}"


def pod(namespace: str, name: str) -> str:
    return f"pod:{namespace}/{name}"


def service_account(namespace: str, name: str) -> str:
    return f"sa:{namespace}/{name}"


def node(name: str) -> str:
    return f"node:{name}"


def ip(address: str) -> str:
    return f"ip:{address}"


def user(name: str) -> str:
    return f"user:{name}"


def secret(namespace: str, name: str) -> str:
    return f"secret:{namespace}/{name}"


def workload(namespace: str, resource: str, name: str) -> str:
    return f"workload:{namespace}/{resource}/{name}"


def binding(name: str) -> str:
    return f"binding:{name}"


def cluster_scoped(resource: str, name: str) -> str:
    """Any other cluster-scoped object: ``<resource>:<name>`` (``clusterroles:escalate``)."""
    return f"{resource}:{name}"


def group(name: str) -> str:
    return f"group:{name}"


def role(namespace: str | None, name: str) -> str:
    """``role:<name>`` cluster-wide, ``role:<namespace>/<name>`` in a namespace."""
    return f"role:{name}" if namespace is None else f"role:{namespace}/{name}"


def webhook(name: str) -> str:
    return f"webhook:{name}"


def csr(name: str) -> str:
    return f"csr:{name}"


# vectorised: Series in, Series out, the same strings as the scalar formatters; each part goes
# through ``astype(str)`` as the graph always did (a missing part may stay missing or read "nan"
# depending on the dtype: mask such rows)


def _series(kind: str, *parts: pd.Series) -> pd.Series:
    out = parts[0].astype(str)
    for p in parts[1:]:
        out = out + "/" + p.astype(str)
    return kind + ":" + out


def pods(namespace: pd.Series, name: pd.Series) -> pd.Series:
    return _series("pod", namespace, name)


def service_accounts(namespace: pd.Series, name: pd.Series) -> pd.Series:
    return _series("sa", namespace, name)


def secrets(namespace: pd.Series, name: pd.Series) -> pd.Series:
    return _series("secret", namespace, name)


def workloads(namespace: pd.Series, resource: pd.Series, name: pd.Series) -> pd.Series:
    return _series("workload", namespace, resource, name)


def nodes(name: pd.Series) -> pd.Series:
    return _series("node", name)


def ips(address: pd.Series) -> pd.Series:
    return _series("ip", address)


def users(name: pd.Series) -> pd.Series:
    return _series("user", name)


def bindings(name: pd.Series) -> pd.Series:
    return _series("binding", name)


def webhooks(name: pd.Series) -> pd.Series:
    return _series("webhook", name)


def csrs(name: pd.Series) -> pd.Series:
    return _series("csr", name)


def actors(sa_namespace: pd.Series, sa_name: pd.Series, user: pd.Series) -> pd.Series:
    """The identity of each request: ``sa:ns/name`` where the service account is known, else
    ``user:<name>``."""
    return service_accounts(sa_namespace, sa_name).where(sa_name.notna(), users(user))


def identities(usernames: pd.Series) -> pd.Series:
    """``identity`` of each user name (a missing one stays missing)."""
    u = usernames.astype("string")
    is_sa = u.str.startswith(SA_USER).fillna(False).astype(bool)
    return ("sa:" + u.str.removeprefix(SA_USER).str.replace(":", "/", n=1)).where(is_sa, "user:" + u)


def sql(kind: str, *columns: str) -> str:
    """A DuckDB expression making ids of ``kind`` from ``columns`` (``'pod:' || ns || '/' || name``)."""
    return f"'{kind}:' || " + " || '/' || ".join(columns)


def username(node_id: str) -> str:
    """The API server's user name of an identity node: ``sa:ns/name`` →
    ``system:serviceaccount:ns:name``, ``user:name`` → ``name``."""
    n = parse(node_id)
    return f"{SA_USER}{n.namespace}:{n.name}" if n.kind == "sa" else n.name
