"""Matching a scenario's attack steps (its truth) to findings: the keys each names."""

from __future__ import annotations

from typing import Any

import pandas as pd


def step_keys(step: dict[str, Any]) -> set[str]:
    """The entities an attack step names (addresses, service account, node, namespace/pod)."""
    e = step["entities"]
    keys = {e[k] for k in ("source_ip", "destination_ip", "service_account", "node") if k in e}
    if "pod" in e:
        keys.add(f"{e['namespace']}/{e['pod']}")
    return keys


def finding_keys(f: pd.Series) -> set[str]:
    """The entities a finding names, in the same spelling."""
    keys = {str(f[c]) for c in ("entity", "source_ip", "destination_ip") if isinstance(f[c], str)}
    if isinstance(f["namespace"], str) and isinstance(f["pod"], str):
        keys.add(f"{f['namespace']}/{f['pod']}")
    user = f["user"] if isinstance(f["user"], str) else ""
    if user.startswith("system:serviceaccount:"):
        keys.add(user.removeprefix("system:serviceaccount:").replace(":", "/", 1))
    return keys
