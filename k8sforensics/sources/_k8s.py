"""Small Kubernetes identifiers the formats share."""

from __future__ import annotations

from typing import Any

_HEX = frozenset("0123456789abcdef")


def container_id(value: Any) -> str | None:
    """``containerd://<64hex>``, ``docker://…``, ``cri-o://…``, a bare 64-hex id or a 12-hex
    short id → lowercase hex without the runtime prefix; ``host``/empty/other → None."""
    if not isinstance(value, str):
        return None
    v = value.split("://", 1)[-1].strip().lower()
    return v if v and len(v) <= 64 and set(v) <= _HEX else None
