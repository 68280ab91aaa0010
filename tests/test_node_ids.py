"""Node ids: every kind formats and parses back; names from evidence are split, never interpreted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sforensics import node_ids

NAME = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(ns=NAME.filter(lambda s: "/" not in s), name=NAME)
def test_namespaced_ids_round_trip(ns: str, name: str) -> None:
    for fmt, kind in ((node_ids.pod, "pod"), (node_ids.service_account, "sa"), (node_ids.secret, "secret")):
        n = node_ids.parse(fmt(ns, name))
        assert (n.kind, n.namespace, n.name, n.label) == (kind, ns, name, f"{ns}/{name}")


@pytest.mark.parametrize(
    "node_id, parts",
    [
        ("workload:shop/deployments/web", ("workload", "shop", "web", "deployments")),
        ("user:system:node:ip-10-0-1-20", ("user", None, "system:node:ip-10-0-1-20", None)),
        ("user:alice@corp.example/admin", ("user", None, "alice@corp.example/admin", None)),
        ("node:n1", ("node", None, "n1", None)),
        ("ip:2001:db8::1", ("ip", None, "2001:db8::1", None)),
        ("secret:payments/*", ("secret", "payments", "*", None)),
        ("certificatesigningrequests:csr-1", ("certificatesigningrequests", None, "csr-1", None)),
        ("plain", ("", None, "plain", None)),
    ],
)
def test_parse(node_id: str, parts: tuple) -> None:
    n = node_ids.parse(node_id)
    assert (n.kind, n.namespace, n.name, n.resource) == parts


def test_username_of_an_identity_node() -> None:
    assert node_ids.username("sa:ci/deployer") == "system:serviceaccount:ci:deployer"
    assert node_ids.username("user:alice@corp.example") == "alice@corp.example"
