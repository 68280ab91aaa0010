"""Falco and Tetragon on the DuckDB fast path give exactly the rows, quarantine and skips of the
per-record path: on the fixtures, on generated events (benchmarks/gen_runtime.py), on records
built to hit each of the SQL's doubts, and for any values of the fields the mappings read."""

from __future__ import annotations

import functools
import importlib.util
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sforensics.sources import falco, tetragon

from ..conftest import FIXTURES, REAL_SAMPLES, ROOT
from .test_fast_path import _ABSENT, _ANY, _T, _object, _record, _set, _value, read

RUNTIME = FIXTURES / "runtime"


def _gen_runtime():
    spec = importlib.util.spec_from_file_location("gen_runtime", ROOT / "benchmarks" / "gen_runtime.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _agree(path: Path, *, fast_path: bool = True) -> tuple:
    fast, t_fast = read(path, True)
    slow, t_slow = read(path, False)
    if fast_path:
        assert fast.used_fast_path, "plain JSON lines of alerts and events take the fast path"
        assert fast.fast_fallback is None, fast.fast_fallback  # the SQL ran to the end
    assert fast.format is slow.format
    assert t_fast.to_pylist() == t_slow.to_pylist()
    assert fast.quarantine == slow.quarantine
    assert fast.result.skipped == slow.result.skipped
    assert (fast.result.records, fast.result.rows) == (slow.result.records, slow.result.rows)
    return fast, t_fast


def _write(tmp: Path, name: str, records: list) -> Path:
    p = tmp / name
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    return p


# --------------------------------------------------------------------------- fixtures, samples, generated


CASES = [RUNTIME / "falco__alerts.jsonl", RUNTIME / "tetragon__events.jsonl"]
if REAL_SAMPLES.is_dir():
    CASES += [
        REAL_SAMPLES / "falco-alerts-json" / "falco__single_rule_with_cat_write.json",
        REAL_SAMPLES / "tetragon-json" / "tetragon-docs__events_extracted_from_docs.jsonl",
    ]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_fixtures_and_samples_are_the_same_on_both_paths(path: Path) -> None:
    fast, _ = _agree(path)
    # only what is in doubt is redone: a clean record never is
    assert fast.redone <= fast.result.quarantined + sum(fast.result.skipped.values())


@pytest.mark.parametrize("fmt", ["falco", "tetragon"])
def test_generated_events_are_the_same_on_both_paths_and_none_is_redone(tmp_path: Path, fmt: str) -> None:
    meta = _gen_runtime().generate(600, str(tmp_path), seed=3, formats=(fmt,))[fmt]
    fast, t = _agree(Path(meta["path"]))
    assert t.num_rows == 600 and fast.redone == 0
    assert t.column("source").unique().to_pylist() == [fmt]


# --------------------------------------------------------------------------- each doubt, deterministically

_ALERT = json.loads((RUNTIME / "falco__alerts.jsonl").read_text().splitlines()[0])
_NET = json.loads((RUNTIME / "falco__alerts.jsonl").read_text().splitlines()[1])


def _fields(record: dict, **changes: object) -> dict:
    out = json.loads(json.dumps(record))
    for k, v in changes.items():
        out["output_fields"][k.replace("_", ".")] = v
    return out


FALCO_DOUBTS = {
    "float field": _fields(_ALERT, evt_latency=1e16),
    "control character": _fields(_ALERT, proc_cmdline="sh\x1f-c"),
    "nested object": _fields(_ALERT, proc_env={"A": None}),
    "null field": _fields(_ALERT, proc_cwd=None),
    "labels text": _fields(_ALERT, **{"k8s_pod_labels": "(app:web, tier:db,app:x)"}),
    "labels duplicate": _fields(_ALERT, **{"k8s_pod_labels": ["a:1", "a:2"]}),
    "gRPC time": {**_ALERT, "time": {"seconds": 1714557600, "nanos": 5}},
    "mangled time": {
        **_ALERT,
        "time": "2024-05-01T10:00:00.046Z+2",
        "output_fields": {"evt.time": 1714557600046000000},
    },
    "container id with spaces": _fields(_ALERT, container_id=" 3F1B2C4D5E6F "),
    "container id runtime prefix": _fields(_ALERT, container_full_id="containerd://" + "AB" * 32),
    "pid as text": _fields(_ALERT, proc_pid=" 42 "),
    "pid not a number": _fields(_ALERT, proc_pid="x"),
    "uuid null": {**_ALERT, "uuid": None},
    "uuid": {**_ALERT, "uuid": "0b6e1c2a"},
    "priority by number": {**_ALERT, "priority": 3},
    "priority non-ASCII": {**_ALERT, "priority": "\u212aritical"},
    "internal": {**_ALERT, "source": "internal"},
    "socket file path": _fields(_NET, fd_name="10.0.0.5:1->10.0.0.6:2"),
    "local and remote ends": _fields(
        _NET, fd_cip="", fd_sip=None, fd_lip="10.1.1.1", fd_rip="10.1.1.2", fd_lport=1, fd_rport="2"
    ),
}


def test_falco_records_in_doubt_are_redone_per_record(tmp_path: Path) -> None:
    fast, t = _agree(_write(tmp_path, "alerts.jsonl", [_ALERT, *FALCO_DOUBTS.values()]))
    assert fast.redone > 0
    rows = {r["evidence_line"]: r for r in t.to_pylist()}
    names = list(FALCO_DOUBTS)
    line = {n: names.index(n) + 2 for n in names}
    assert json.loads(rows[line["uuid"]]["extra"])["uuid"] == "0b6e1c2a"
    assert "uuid" not in json.loads(rows[line["uuid null"]]["extra"])  # a null field says nothing
    assert rows[line["labels text"]]["labels"] == [("app", "x"), ("tier", "db")]
    assert rows[line["container id with spaces"]]["container_id"] == "3f1b2c4d5e6f"
    assert rows[line["local and remote ends"]]["src_ip"] == "10.1.1.1"


_EXEC = json.loads((RUNTIME / "tetragon__exec_pretty.json").read_text())
_EVENTS = [json.loads(x) for x in (RUNTIME / "tetragon__events.jsonl").read_text().splitlines()]
_KPROBE = next(e for e in _EVENTS if "process_kprobe" in e)


def _at(record: dict, path: tuple, value: object) -> dict:
    return _set(record, path, value)


TETRAGON_DOUBTS = {
    "two events": {**_EXEC, "process_exit": {"process": {}}},
    "legacy connect": {
        "process_connect": {"process": _EXEC["process_exec"]["process"], "destination_ip": "1.1.1.1"},
        "time": _T[0],
    },
    "float": _at(_EXEC, ("process_exec", "process", "pod", "container", "pid"), 1.5),
    "control character": _at(_EXEC, ("process_exec", "process", "arguments"), "a\x1fb"),
    "two sockets": _at(
        _KPROBE, ("process_kprobe", "args"), [{"sock_arg": {"daddr": "1.1.1.1"}}, {"skb_arg": {"daddr": "2.2.2.2"}}]
    ),
    "falsy socket": _at(_KPROBE, ("process_kprobe", "args"), [{"sock_arg": {}, "skb_arg": {"daddr": "2.2.2.2"}}]),
    "file then socket": _at(
        _KPROBE, ("process_kprobe", "args"), [{"file_arg": {"path": "/etc/shadow"}}, {"sock_arg": {"daddr": "3.3.3.3"}}]
    ),
    "path arg": _at(_KPROBE, ("process_kprobe", "args"), [{"path_arg": {"path": "/x"}}, {"int_arg": 4}]),
    "labels with a number": _at(_EXEC, ("process_exec", "process", "pod", "pod_labels"), {"a": 1}),
    "binary a number": _at(_EXEC, ("process_exec", "process", "binary"), 0),
    "empty cluster": {**_EXEC, "cluster_name": ""},
    "host process": _at(_EXEC, ("process_exec", "process", "pod"), None),
    "docker id only": _at(
        _at(_EXEC, ("process_exec", "process", "pod", "container", "id"), None),
        ("process_exec", "process", "docker"),
        "3F1B2C4D5E6F0011",
    ),
}


def test_tetragon_records_in_doubt_are_redone_per_record(tmp_path: Path) -> None:
    first = {**_EXEC}
    fast, t = _agree(_write(tmp_path, "events.jsonl", [first, *TETRAGON_DOUBTS.values()]))
    assert fast.redone > 0
    rows = {r["evidence_line"]: r for r in t.to_pylist()}
    line = {n: i + 2 for i, n in enumerate(TETRAGON_DOUBTS)}
    assert rows[line["file then socket"]]["event_type"] == "network"
    assert rows[line["path arg"]]["file_path"] == "/x" and rows[line["path arg"]]["event_type"] == "file"
    assert rows[line["host process"]]["container"] is None
    assert rows[line["docker id only"]]["container_id"] == "3f1b2c4d5e6f0011"


# --------------------------------------------------------------------------- any values of the fields read
#
# For any values of the fields the mappings read (text, numbers, booleans, null, lists,
# objects, odd text, or absent), both paths give the same rows, quarantine and skips.

_ODD = st.one_of(
    _ANY,
    st.sampled_from(
        ["<NA>", "\x1f", "a\x00b", "é", "\u212a", "İNFO", " 42 ", "1.5", "()[]", "a:b", "containerd://AB12"]
    ),
    st.sampled_from([1e16, 1e-7, 2**64, -(2**63) - 1]),
)


def _odd(good: st.SearchStrategy[dict], paths: list[tuple]) -> st.SearchStrategy[dict]:
    changes = st.lists(st.tuples(st.sampled_from(paths), _ODD), max_size=3)
    return st.builds(lambda r, cs: functools.reduce(lambda acc, c: _set(acc, *c), cs, r), good, changes)


_FALCO_FIELDS = {
    "k8s.ns.name": _value("shop", "<NA>", None, ""),
    "k8s.pod.name": _value("cart-1", "<NA>"),
    "k8s.pod.labels": _value(["app:cart", "x"], "(app:cart,tier:web)", "", "<NA>"),
    "container.id": _value("3f1b2c4d5e6f", "host", "<NA>"),
    "container.full_id": _value("3f1b2c4d5e6f" + "0" * 52, ""),
    "container.name": _value("cart"),
    "container.image.repository": _value("registry/cart", ""),
    "container.image.tag": _value("1.4.2", ""),
    "container.image": _value("alpine:3.19"),
    "proc.exepath": _value("/bin/sh", "<NA>"),
    "proc.exe": _value("sh"),
    "proc.name": _value("sh"),
    "proc.pid": _value(4242, "4242", "<NA>"),
    "proc.ppid": _value(1),
    "proc.pname": _value("runc"),
    "proc.pexepath": _value("/usr/bin/runc", "<NA>"),
    "proc.pcmdline": _value("runc init"),
    "proc.cmdline": _value("sh -c id"),
    "proc.args": _value("-c id"),
    "proc.tty": _value(0, 34816),
    "proc.cwd": _value("/", "<NA>"),
    "user.uid": _value(0, -1),
    "user.name": _value("root"),
    "ka.user.name": _value("mallory"),
    "ka.target.resource": _value("pods", "secrets"),
    "ka.target.name": _value("cart-1", ""),
    "ka.target.namespace": _value("shop"),
    "evt.source": _value("syscall", "k8s_audit"),
    "evt.hostname": _value("node-2", "<NA>"),
    "evt.time": _value(1714557600123456789),
    "fd.name": _value("/etc/shadow", "10.0.0.5:1->10.0.0.6:80", "<NA>"),
    "evt.arg.path": _value("/tmp/x:y"),
    "evt.arg.pathname": _value("/etc/passwd"),
    "fs.path.name": _value("/root/.ssh/authorized_keys"),
    "fd.cip": _value("10.0.0.5", ""),
    "fd.sip": _value("10.0.0.6"),
    "fd.cport": _value(43210),
    "fd.sport": _value(80, "80"),
    "fd.lip": _value("10.0.0.7"),
    "fd.rip": _value("10.0.0.8"),
    "fd.lport": _value(1),
    "fd.rport": _value(2),
    "fd.l4proto": _value("tcp"),
    "user.loginuid": _value(-1),
    # the record's own source, hostname and uuid inside the fields too
    "source": _value(None, "x"),
    "hostname": _value(None, "h"),
    "uuid": _value(None),
}
_FALCO = _record(
    {
        "hostname": _value("node-1", ""),
        "output": _value("10:00:00: Notice x"),
        "priority": _value("Notice", "warning", "info", "DEBUG"),
        "rule": _value("Terminal shell in container", "Falco internal: metrics"),
        "source": _value("syscall", "k8s_audit", "internal", ""),
        "uuid": _value("0b6e1c2a"),
        "tags": _value(["container", "T1059"], []),
        "time": _value(*_T, "2024-05-11T00:00:00.123456789Z"),
        "output_fields": st.one_of(_record(_FALCO_FIELDS), st.just(_ABSENT)),
    }
)
_FALCO_PATHS = [
    (k,) for k in ("hostname", "output", "priority", "rule", "source", "uuid", "tags", "time", "output_fields")
]
_FALCO_PATHS += [("output_fields", k) for k in _FALCO_FIELDS]


@settings(max_examples=80, deadline=None)
@given(alerts=st.lists(_odd(_FALCO, _FALCO_PATHS), min_size=1, max_size=6))
def test_falco_mapping_fast_and_per_record_agree_for_any_field_values(alerts: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _agree(_write(Path(tmp), "alerts.jsonl", [_ALERT, *alerts]))


_PROC = {
    "exec_id": _value("ZXhlYzox"),
    "pid": _value(4242, "17"),
    "uid": _value(0, 1000),
    "cwd": _value("/"),
    "binary": _value("/bin/sh", ""),
    "arguments": _value("-c id", ""),
    "parent_exec_id": _value("cGFyZW50", ""),
    "docker": _value("3f1b2c4d5e6f001122334455667788"),
    "pod": _object(
        {
            "namespace": _value("shop"),
            "name": _value("cart-1", ""),
            "container": _object(
                {
                    "id": _value("containerd://" + "3f1b2c4d5e6f" * 5 + "0011", "host"),
                    "name": _value("cart"),
                    "image": _value({"name": "registry/cart:1.4.2"}, {}),
                }
            ),
            "pod_labels": _value({"app": "cart"}, {}),
            "workload": _value("cart"),
            "workload_kind": _value("Deployment"),
        }
    ),
}
_ARG = st.sampled_from(
    [
        {
            "sock_arg": {
                "saddr": "10.0.0.5",
                "sport": 43210,
                "daddr": "1.1.1.1",
                "dport": 443,
                "protocol": "IPPROTO_TCP",
            }
        },
        {"skb_arg": {"daddr": "2.2.2.2", "protocol": "IPPROTO_UDP"}},
        {"sockaddr_arg": {"addr": "3.3.3.3", "port": 53}},
        {"file_arg": {"path": "/etc/shadow", "permission": "-rw-r-----"}},
        {"path_arg": {"path": ""}},
        {"linux_binprm_arg": {"path": "/bin/nc"}},
        {"int_arg": 4},
        "x",
    ]
)
_EVENT = {
    "process": _object(_PROC),
    "parent": _object(
        {"pid": _value(1), "binary": _value("/bin/bash"), "arguments": _value("-i"), "exec_id": _value("cA==")}
    ),
    "policy_name": _value("connect"),
    "function_name": _value("tcp_connect"),
    "args": st.one_of(st.lists(_ARG, max_size=3), st.just(_ABSENT)),
    "status": _value(0, 127),
    "time": _value(_T[1]),
}
_TETRA_KEYS = ["process_exec", "process_exit", "process_kprobe", "process_tracepoint", "process_lsm"]


def _tetragon_event(key: str) -> st.SearchStrategy[dict]:
    good = _record(
        {
            key: _record(_EVENT),
            "node_name": _value("node-1", ""),
            "cluster_name": _value("prod", ""),
            "time": _value(*_T),
        }
    )
    paths = [(k,) for k in ("node_name", "cluster_name", "time", key)]
    paths += [(key, k) for k in _EVENT] + [(key, "process", k) for k in _PROC]
    paths += [(key, "process", "pod", k) for k in ("namespace", "name", "container", "pod_labels", "workload")]
    paths += [(key, "process", "pod", "container", k) for k in ("id", "name", "image")]
    paths += [(key, "args", 0, "sock_arg", k) for k in ("saddr", "sport", "daddr", "protocol")]
    paths += [(key, "args", 0, "file_arg", "path"), (key, "parent", "binary"), (key, "parent", "pid")]
    return _odd(good, paths)


@settings(max_examples=80, deadline=None)
@given(events=st.lists(st.sampled_from(_TETRA_KEYS).flatmap(_tetragon_event), min_size=1, max_size=6))
def test_tetragon_mapping_fast_and_per_record_agree_for_any_field_values(events: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _agree(_write(Path(tmp), "events.jsonl", [_EXEC, *events]))


def test_the_mappings_read_what_their_paths_say() -> None:
    """Every path the SQL reads is one the per-record path reads too (a typo would read nothing
    and still agree where the field is absent)."""
    falco_keys = {k for keys in falco._FIELDS.values() for k in keys}
    assert set(falco._TEXT_PATHS) <= falco_keys | set(_FALCO_FIELDS)
    assert set(_FALCO_FIELDS) >= set(falco._TEXT_PATHS) | set(falco._JSON_PATHS)  # the property test varies each
    assert all(p.startswith(("$.process", "$.parent", "$.policy_name", "$.args")) for p in tetragon._TEXT_PATHS)
