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

NAMESPACED = frozenset({"pod", "sa", "secret"})


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


def username(node_id: str) -> str:
    """The API server's user name of an identity node: ``sa:ns/name`` →
    ``system:serviceaccount:ns:name``, ``user:name`` → ``name``."""
    n = parse(node_id)
    return f"system:serviceaccount:{n.namespace}:{n.name}" if n.kind == "sa" else n.name
