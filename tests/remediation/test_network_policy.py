"""The NetworkPolicy evaluator follows the Kubernetes semantics, and generation turns observed
flows into policies that allow them — and nothing the attack did."""

from __future__ import annotations

import pandas as pd
import pytest

from k8sforensics.remediation import evaluate, network_policies, pod_labels
from k8sforensics.remediation.network_policy import stable_labels
from tests.event_frames import frame

LABELS = {
    ("shop", "web-1"): {"app": "web"},
    ("shop", "cart-1"): {"app": "cart"},
    ("pay", "api-1"): {"app": "api"},
    ("shop", "odd"): {},
}


def flow(src: tuple[str, str] | str, dst: tuple[str, str] | str, port: int, proto: str = "tcp", **kw: object) -> dict:
    row: dict = {
        "time": "2026-03-10T10:00:00Z",
        "dst_port": port,
        "protocol": proto,
        "verdict": "allowed",
        "is_reply": False,
        **kw,
    }
    for side, end in (("src", src), ("dst", dst)):
        if isinstance(end, tuple):
            row.update({f"{side}_namespace": end[0], f"{side}_pod": end[1], f"{side}_ip": f"10.244.0.{len(end[1])}"})
        else:
            row[f"{side}_ip"] = end
    return row


def policy(ns: str, selector: dict, types: list[str], **rules: list) -> dict:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": ns},
        "spec": {"podSelector": selector, "policyTypes": types, **rules},
    }


def verdicts(policies: list[dict], *flows: dict) -> list[bool]:
    return evaluate(policies, frame("flows", *flows), LABELS).tolist()


def test_no_policy_means_open_and_default_deny_closes_both_ways() -> None:
    f = [flow(("shop", "web-1"), ("shop", "cart-1"), 8080), flow("198.51.100.9", ("shop", "web-1"), 8080)]
    assert verdicts([], *f) == [True, True]
    assert verdicts([policy("shop", {}, ["Ingress", "Egress"])], *f) == [False, False]
    # a pod without a label of its own is still selected by a namespace-wide policy
    assert verdicts([policy("shop", {}, ["Egress"])], flow(("shop", "odd"), "203.0.113.5", 443)) == [False]


def test_both_ends_must_allow() -> None:
    f = flow(("shop", "web-1"), ("pay", "api-1"), 8443)
    egress = policy(
        "shop",
        {"matchLabels": {"app": "web"}},
        ["Egress"],
        egress=[
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "pay"}},
                        "podSelector": {"matchLabels": {"app": "api"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8443}],
            }
        ],
    )
    deny_pay = policy("pay", {}, ["Ingress"])
    assert verdicts([egress], f) == [True]
    assert verdicts([egress, deny_pay], f) == [False]
    allow_pay = policy(
        "pay",
        {"matchLabels": {"app": "api"}},
        ["Ingress"],
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop"]}
                            ]
                        }
                    }
                ]
            }
        ],
    )
    assert verdicts([egress, deny_pay, allow_pay], f) == [True]
    # a podSelector alone means the policy's own namespace
    same_ns_only = policy(
        "pay", {"matchLabels": {"app": "api"}}, ["Ingress"], ingress=[{"from": [{"podSelector": {}}]}]
    )
    assert verdicts([egress, deny_pay, same_ns_only], f) == [False]


@pytest.mark.parametrize(
    "ports, ok",
    [
        ([{"protocol": "TCP", "port": 8443}], True),
        ([{"protocol": "UDP", "port": 8443}], False),
        ([{"protocol": "TCP", "port": 80}], False),
        ([{"protocol": "TCP", "port": 8000, "endPort": 9000}], True),
        ([{"protocol": "TCP"}], True),
        (None, True),
    ],
)
def test_ports(ports: list | None, ok: bool) -> None:
    rule: dict = {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
    if ports is not None:
        rule["ports"] = ports
    assert verdicts([policy("pay", {}, ["Ingress"], ingress=[rule])], flow("198.51.100.9", ("pay", "api-1"), 8443)) == [
        ok
    ]


def test_ip_blocks_and_their_exceptions() -> None:
    p = policy(
        "shop",
        {"matchLabels": {"app": "web"}},
        ["Ingress"],
        ingress=[
            {
                "from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["198.51.100.66/32"]}}],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
    )
    assert verdicts(
        [p], flow("192.0.2.1", ("shop", "web-1"), 8080), flow("198.51.100.66", ("shop", "web-1"), 8080)
    ) == [True, False]


def test_generated_policies_allow_what_was_seen_and_not_the_attack() -> None:
    f = frame(
        "flows",
        flow(("shop", "web-1"), ("shop", "cart-1"), 8080),
        flow(("shop", "cart-1"), ("pay", "api-1"), 8443),
        *[flow(f"192.0.2.{i}", ("shop", "web-1"), 8080) for i in range(10)],
        flow("198.51.100.66", ("shop", "web-1"), 8080, event_id="exploit"),
        flow(("shop", "web-1"), "203.0.113.77", 443, event_id="c2"),
        flow(("shop", "cart-1"), ("pay", "api-1"), 8443, is_reply=True),
        flow(("shop", "web-1"), ("pay", "api-1"), 5432, verdict="denied"),
    )
    attack = f["event_id"].isin(["exploit", "c2"])
    policies = network_policies(f, LABELS, attack=attack, attacker_ips=["198.51.100.66", "203.0.113.77"])
    names = sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies)
    assert names == [
        ("pay", "k8sforensics-allow-api"),
        ("pay", "k8sforensics-allow-dns-and-api"),
        ("pay", "k8sforensics-default-deny"),
        ("shop", "k8sforensics-allow-cart"),
        ("shop", "k8sforensics-allow-dns-and-api"),
        ("shop", "k8sforensics-allow-web"),
        ("shop", "k8sforensics-default-deny"),
    ]
    verdict = evaluate(policies, f, LABELS)
    live = ~f["is_reply"].astype(bool) & (f["verdict"] == "allowed")
    assert verdict[live & ~attack].all() and not verdict[attack].any()
    web = next(p for p in policies if p["metadata"]["name"] == "k8sforensics-allow-web")
    world = web["spec"]["ingress"][-1]["from"][0]["ipBlock"]
    assert world == {
        "cidr": "0.0.0.0/0",
        "except": ["198.51.100.66/32", "203.0.113.77/32"],
    }  # ten clients: the port is public
    assert web["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_labels_for_pods_known_only_from_the_evidence() -> None:
    assert stable_labels({"app": "web", "pod-template-hash": "5d8f"}) == {"app": "web"}
    pods = pd.DataFrame(
        {
            "namespace": ["shop", "shop"],
            "name": ["web-5d8f9c7b4d-aaaaa", "web-5d8f9c7b4d-bbbbb"],
            "workload": ["web", "web"],
            "labels": [{"app": "web", "tier": "fe", "pod-template-hash": "x"}, {"app": "web"}],
        }
    )
    lifetimes = pd.DataFrame(
        {
            "namespace": ["shop", "shop", "shop"],
            "pod": ["web-5d8f9c7b4d-ccccc", "web-77c9d8f6b5-ddddd", "lonely"],
            "workload": ["web", None, None],
        }
    )
    labels = pod_labels(pods, lifetimes)
    assert labels[("shop", "web-5d8f9c7b4d-aaaaa")] == {"app": "web", "tier": "fe"}
    assert labels[("shop", "web-5d8f9c7b4d-ccccc")] == {"app": "web"}  # what its workload's pods share
    assert labels[("shop", "web-77c9d8f6b5-ddddd")] == {"app": "web"}  # named like the Deployment's pods
    assert labels[("shop", "lonely")] == {}


def test_system_namespaces_are_left_alone_and_every_closed_namespace_keeps_dns_and_the_api_server() -> None:
    labels = {**LABELS, ("kube-system", "coredns-1"): {"k8s-app": "kube-dns"}}
    f = frame(
        "flows",
        flow(("shop", "web-1"), ("kube-system", "coredns-1"), 53, "udp"),
        flow(
            ("kube-system", "coredns-1"), ("shop", "web-1"), 41234, "udp"
        ),  # the DNS answer, a UDP reply without a flag
        flow(("shop", "web-1"), ("shop", "cart-1"), 8080),
    )
    policies = network_policies(f, labels, skip_namespace=lambda ns: ns == "kube-system", api_servers=["172.20.0.1"])
    assert not any(p["metadata"]["namespace"] == "kube-system" for p in policies)  # a default deny there takes DNS down
    allow = next(p for p in policies if p["metadata"]["name"] == "k8sforensics-allow-dns-and-api")
    assert allow["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "172.20.0.1/32"}}]
    # no rule for the reply on an ephemeral port (connection tracking lets answers through), and every request still passes
    assert not any(
        r.get("ports") == [{"protocol": "UDP", "port": 41234}] for p in policies for r in p["spec"].get("ingress", [])
    )
    assert evaluate(policies, f, labels).tolist() == [True, False, True]


def test_a_stale_pod_address_stands_for_the_workload_that_held_it_never_for_an_ip_block() -> None:
    stale = {"10.244.3.10": ("shop", "cart-1")}  # cart-1 held it; at the time of the flow no pod did
    f = frame("flows", flow(("shop", "web-1"), "10.244.3.10", 8080))
    policies = network_policies(f, LABELS, stale_addresses=stale)
    text = str(policies)
    assert "10.244.3.10" not in text and "'app': 'cart'" in text
    assert evaluate(policies, f, LABELS, stale_addresses=stale).all()
    assert not evaluate(policies, frame("flows", flow(("shop", "web-1"), ("pay", "api-1"), 8080)), LABELS).any()
