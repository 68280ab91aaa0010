"""Pod Security levels from pod specs, one rule of the standard per case, and per namespace
the strictest level its pods meet."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from k8sforensics.remediation import namespace_levels, namespace_objects, violations
from k8sforensics.remediation.pod_security import level

RESTRICTED = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "registry.corp/app:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            },
        }
    ],
    "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}],
}


def spec(**changes: object) -> dict:
    s = orjson.loads(orjson.dumps(RESTRICTED))
    container = s["containers"][0]
    for key, value in changes.items():
        if key.startswith("c_"):
            container["securityContext"][key[2:]] = value
        else:
            s[key] = value
    return s


def test_a_hardened_pod_is_restricted() -> None:
    assert violations(RESTRICTED) == {"baseline": [], "restricted": []} and level(RESTRICTED) == "restricted"
    assert level({"spec": RESTRICTED, "metadata": {"name": "x"}}) == "restricted"  # a whole Pod object too


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"hostNetwork": True}, "hostNetwork"),
        ({"hostPID": True}, "hostPID"),
        ({"hostIPC": True}, "hostIPC"),
        ({"c_privileged": True}, "privileged"),
        ({"c_capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}, "SYS_ADMIN"),
        ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "hostPath"),
        ({"c_procMount": "Unmasked"}, "procMount"),
        ({"c_seccompProfile": {"type": "Unconfined"}}, "Unconfined"),
        ({"c_seLinuxOptions": {"type": "spc_t"}}, "seLinuxOptions"),
        (
            {
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                }
            },
            "kernel.msgmax",
        ),
    ],
)
def test_baseline_violations(changes: dict, reason: str) -> None:
    v = violations(spec(**changes))
    assert any(reason in x for x in v["baseline"]) and level(spec(**changes)) == "privileged"


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"c_allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
        ({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}, "runAsNonRoot"),
        ({"c_runAsUser": 0}, "runAsUser 0"),
        ({"securityContext": {"runAsNonRoot": True}}, "seccompProfile"),
        ({"c_capabilities": {"add": ["NET_BIND_SERVICE"]}}, "drop ALL"),
        ({"c_capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}, "adds CHOWN"),
        ({"volumes": [{"name": "data", "nfs": {"server": "x", "path": "/"}}]}, "nfs"),
    ],
)
def test_restricted_violations_keep_baseline(changes: dict, reason: str) -> None:
    v = violations(spec(**changes))
    assert not v["baseline"] and any(reason in x for x in v["restricted"]) and level(spec(**changes)) == "baseline"


def test_container_level_settings_can_satisfy_restricted() -> None:
    s = spec(securityContext={})
    s["containers"][0]["securityContext"].update(
        runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}
    )
    assert level(s) == "restricted"
    s["initContainers"] = [{"name": "init", "image": "busybox"}]  # every container counts, init containers too
    assert level(s) == "baseline"


def test_namespace_level_is_the_weakest_pods_and_names_the_blockers() -> None:
    def row(ns: str, name: str, s: dict) -> dict:
        return {
            "kind": "Pod",
            "namespace": ns,
            "name": name,
            "time": pd.Timestamp("2026-03-10T00:00:00Z"),
            "object": orjson.dumps({"kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": s}).decode(),
        }

    objects = pd.DataFrame(
        [
            row("a", "good", RESTRICTED),
            row("a", "loose", spec(c_allowPrivilegeEscalation=True)),
            row("b", "good", RESTRICTED),
            row("c", "root", spec(hostPID=True)),
        ]
    )
    ns = pd.DataFrame({"name": ["a"], "labels": [{"pod-security.kubernetes.io/enforce": "privileged"}]})
    levels = namespace_levels(objects, ns).set_index("namespace")
    assert levels["level"].to_dict() == {"a": "baseline", "b": "restricted", "c": "privileged"}
    assert levels.loc["a", "enforced"] == "privileged" and levels.loc["a", "blockers"] == [
        "loose: app: allowPrivilegeEscalation not false"
    ]
    assert levels.loc["c", "blockers"] == ["root: hostPID: true"] and pd.isna(levels.loc["b", "next_level"])
    objs = {o["metadata"]["name"]: o["metadata"]["labels"] for o in namespace_objects(levels.reset_index())}
    assert objs["a"] == {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
    assert objs["b"] == {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }


def test_a_pod_whose_object_cannot_be_read_blocks_every_level() -> None:
    from k8sforensics.bodies import TOO_DEEP, TOO_LARGE, UnreadableBodies

    def row(name: str, text: str) -> dict:
        return {
            "kind": "Pod",
            "namespace": "a",
            "name": name,
            "time": pd.Timestamp("2026-03-10T00:00:00Z"),
            "object": text,
        }

    good = orjson.dumps({"kind": "Pod", "metadata": {"name": "good", "namespace": "a"}, "spec": RESTRICTED}).decode()
    deep = '{"kind": "Pod", "spec": {"containers": [' + '{"a":' * 2000 + "1" + "}" * 2000 + "]}}"
    big = '{"kind": "Pod", "x": "' + "x" * (50 * 1024 * 1024) + '"}'
    bodies = UnreadableBodies()
    levels = namespace_levels(pd.DataFrame([row("good", good), row("deep", deep), row("big", big)]), unreadable=bodies)
    assert levels.loc[0, "level"] == "privileged"  # nothing enforced that could reject a pod not seen
    assert levels.loc[0, "blockers"] == ["deep: object unreadable (too deep)", "big: object unreadable (too large)"]
    assert bodies.by_reason == {TOO_DEEP: 1, TOO_LARGE: 1} and bodies.by_where == {"pod security": 2}
