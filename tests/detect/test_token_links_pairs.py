"""``token_secret_links`` picks its (read, use) pairs in DuckDB without building every pair of
rows: over generated audit logs (gets of token Secrets, lists, uses from the same, another and
an outside address, missing users and addresses, equal times) it must link exactly what the
plain pandas join of every read with every use links."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import pytest

from k8sforensics.detect import audit_rules as ar
from tests.event_frames import audit, frame

WINDOW = pd.Timedelta(hours=1)
ACCOUNTS = [("app", "web"), ("app", "db"), ("ci", "deployer"), ("kube-system", "default")]
ADDRESSES = ["10.0.0.5", "10.0.0.6", "10.0.0.7", "203.0.113.9", None]
PEOPLE = ["alice", "bob", None]


def brute_force_links(a: pd.DataFrame, *, owners: dict, outside: pd.Series, window: Any) -> pd.DataFrame:
    """The join as written before: every read with every use of its account (a get) or of its
    address (a list), then the window, then the first link per (reader, account)."""
    rows = ar.token_secret_rows(a)
    reads = rows[rows["verb"] != "create"]
    code = a["response_code"].astype("Int64")
    uses = a[a["sa_name"].notna() & (code != 401).fillna(True)]
    if reads.empty or uses.empty:
        return pd.DataFrame(columns=ar.LINK_COLUMNS)
    kind = a["source_kind"]
    reads = reads.assign(
        read_event=reads["event_id"].astype(str),
        read_time=reads["time"],
        reader=reads["user"],
        reader_actor=ar._actor_ids(reads),
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
    use_cols = ["use_event", "use_time", "use_ip", "use_verb", "use_resource", "use_user", "use_outside"]
    use_cols += ["sa_namespace", "sa_name"]
    read_cols = ["read_event", "read_time", "reader", "reader_actor", "read_ip", "secret_namespace", "secret"]
    named = reads[reads["secret"].notna()]
    named = named.assign(
        sa_namespace=named["secret_namespace"],
        sa_name=[
            owners.get((ns, n)) or (m.group("sa") if (m := ar.TOKEN_SECRET_NAME.match(str(n))) else None)
            for ns, n in zip(named["secret_namespace"], named["secret"])
        ],
    )
    named = named[named["sa_name"].notna()]
    parts = []
    if len(named):
        j = named[[*read_cols, "sa_namespace", "sa_name"]].merge(uses[use_cols], on=["sa_namespace", "sa_name"])
        same = j["read_ip"].notna() & (j["use_ip"] == j["read_ip"])
        parts.append(
            j[same | j["use_outside"].astype(bool)].assign(
                how=lambda d: ["from the reader's address" if s else "from outside" for s in same[d.index]]
            )
        )
    listed = reads[reads["secret"].isna() & reads["read_ip"].notna()]
    if len(listed):
        j = listed[read_cols].merge(uses[use_cols], left_on="read_ip", right_on="use_ip")
        scope = j["secret_namespace"].isna() | (j["secret_namespace"] == j["sa_namespace"])
        parts.append(j[scope].assign(how="from the reader's address"))
    if not parts:
        return pd.DataFrame(columns=ar.LINK_COLUMNS)
    j = pd.concat(parts, ignore_index=True)
    j = j[
        (j["use_time"] > j["read_time"])
        & (j["use_time"] <= j["read_time"] + pd.Timedelta(window))
        & (j["use_user"] != j["reader"])
    ]
    return ar.first_token_links(j[ar.LINK_COLUMNS])


def generated_log(seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(rng.randint(5, 60)):
        # minutes on a coarse grid: equal times happen, and uses inside and outside the window
        t = f"2026-01-01T{rng.randint(8, 11):02d}:{rng.choice([0, 15, 30, 45]):02d}:00Z"
        ip = rng.choice(ADDRESSES)
        kind = rng.choice(["pod", "node", None])
        if rng.random() < 0.4:  # a read of Secrets by a person or an account
            ns, sa = rng.choice(ACCOUNTS)
            reader = rng.choice([*PEOPLE, f"system:serviceaccount:{ns}:{sa}"])
            named = rng.random() < 0.6
            rows.append(
                audit(
                    t,
                    reader or "nobody",
                    rng.choice(["get", "list", "watch"]) if named else rng.choice(["list", "watch"]),
                    "secrets",
                    source_ip=ip,
                    source_kind=kind,
                    object_namespace=rng.choice([ns, None, "other"]),
                    object_name=rng.choice([f"{sa}-token", f"{sa}-token-ab3cd", "plain"]) if named else None,
                )
            )
            if reader is None:
                rows[-1]["user"] = None
        else:  # a request by a service account
            ns, sa = rng.choice(ACCOUNTS)
            rows.append(
                audit(
                    t,
                    f"system:serviceaccount:{ns}:{sa}",
                    rng.choice(["get", "list", "create"]),
                    rng.choice(["pods", "secrets", "configmaps"]),
                    source_ip=ip,
                    source_kind=kind,
                    code=rng.choice([200, 200, 401, 403]),
                )
            )
    return frame("audit", *rows)


@pytest.mark.parametrize("seed", range(60))
def test_the_pairs_found_in_duckdb_are_those_of_the_full_join(seed: int) -> None:
    a = generated_log(seed)
    outside = a["source_ip"].fillna("").str.startswith("203.")
    owners = {("app", "web-credentials"): "web"}
    got = ar.token_secret_links(a, owners=owners, outside=outside, window=WINDOW)
    want = brute_force_links(a, owners=owners, outside=outside, window=WINDOW)
    assert len(got) == len(want)
    if len(want):
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True).astype(object), want.reset_index(drop=True).astype(object)
        )


def test_some_generated_logs_link_a_token() -> None:
    """The comparison above is not vacuous: most generated logs link something."""
    linked = 0
    for seed in range(60):
        a = generated_log(seed)
        outside = a["source_ip"].fillna("").str.startswith("203.")
        linked += len(ar.token_secret_links(a, owners={}, outside=outside, window=WINDOW)) > 0
    assert linked >= 30
