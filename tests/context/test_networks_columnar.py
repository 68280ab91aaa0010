"""external_mask and within judge dotted IPv4 addresses as whole columns: the same answer as
judging each address with ipaddress, for every dtype an address column comes in."""

from __future__ import annotations

import ipaddress
import random

import numpy as np
import pandas as pd
import pytest

from k8sforensics.context.networks import external_mask, is_external, within

ODD = [
    "",
    "None",
    "-",
    "01.2.3.4",  # leading zeros: not an address for ipaddress
    "1.2.3.256",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3",
    "1.2.3.4.5",
    "[10.1.2.3]",
    "[2001:db8::1]",
    "fd00::1",
    "2600::1",
    "::1",
    "fe80::1",
    "169.254.169.254",
    "100.100.100.200",
    "fd00:ec2::254",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "127.0.0.1",
    None,
]
NETWORKS = [ipaddress.ip_network(n) for n in ("8.8.0.0/16", "1.0.0.0/8", "203.0.113.5/32", "2600::/16")]


def _addresses(n: int) -> list[str | None]:
    rng = random.Random(7)
    first = [1, 8, 10, 100, 127, 169, 172, 192, 198, 203, 224, 240, 255]
    out: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.2:
            out.append(rng.choice(ODD))
        else:
            out.append(".".join([str(rng.choice(first))] + [str(rng.randint(0, 255)) for _ in range(3)]))
    return out


def _within_each(v: object, nets: list) -> bool:
    try:
        addr = ipaddress.ip_address(str(v).strip("[]"))
    except ValueError:
        return False
    return any(addr in n for n in nets if n.version == addr.version)


@pytest.mark.parametrize("dtype", [object, "str", "string", pd.ArrowDtype(__import__("pyarrow").string())])
@pytest.mark.parametrize("networks", [NETWORKS, [], NETWORKS[:1]])
def test_columns_judge_as_each_address(dtype: object, networks: list) -> None:
    values = _addresses(3000)
    ips = pd.Series(values, dtype=dtype, index=np.arange(len(values)) * 3)
    got = external_mask(ips, networks)
    assert got.dtype == bool and got.index.equals(ips.index)
    want = [v is not None and is_external(v, networks) for v in values]
    assert got.tolist() == want
    assert within(ips, networks).tolist() == [v is not None and _within_each(v, networks) for v in values]


def test_values_that_are_not_text_are_judged_one_by_one() -> None:
    ips = pd.Series([ipaddress.ip_address("8.8.8.8"), "10.0.0.1", None, 5, "9.9.9.9"], dtype=object)
    assert external_mask(ips, []).tolist() == [True, False, False, False, True]
    assert external_mask(pd.Series([], dtype=object), NETWORKS).tolist() == []
