"""Tiny event frames for rule tests: only the columns a test sets, the rest null."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pandas as pd

from k8sforensics.frames import to_frame
from k8sforensics.schema import TABLES

_ids = itertools.count(1)
ENRICHED = {
    "audit": ["actor_namespace", "actor_pod", "source_kind", "source_namespace", "source_pod"],
    "flows": ["src_kind", "dst_kind"],
    "runtime": [],
}


def frame(table: str, *rows: dict[str, Any]) -> pd.DataFrame:
    """Rows of ``table`` (times as strings, request objects as dicts) with every column."""
    empty = to_frame(TABLES[table].arrow_schema.empty_table())
    out = []
    for r in rows:
        r = dict(r)
        r.setdefault("event_id", f"ev:{next(_ids)}")
        for key in ("request_object", "response_object"):
            if isinstance(r.get(key), dict):
                r[key] = orjson.dumps(r[key]).decode()
        out.append(r)
    df = pd.DataFrame(out).reindex(columns=[*empty.columns, *ENRICHED[table]])
    for col in df.columns:
        df[col] = pd.to_datetime(df[col], utc=True) if col in ("time", "time_end") else df[col].astype(object)
    return df


def audit(time: str, user: str, verb: str, resource: str, **kw: Any) -> dict[str, Any]:
    """One allowed audit request; ``code=403`` makes it a denied attempt."""
    code = kw.pop("code", 200)
    sa = user.split(":")[2:] if user.startswith("system:serviceaccount:") else [None, None]
    return {
        "time": time,
        "user": user,
        "verb": verb,
        "resource": resource,
        "response_code": code,
        "decision": "allow" if code < 400 else "forbid",
        "sa_namespace": sa[0],
        "sa_name": sa[1],
        "user_groups": ["system:authenticated"],
        "source_ip": "10.0.0.5",
        **kw,
    }
