"""Every write to a case is one transaction: the races, stale locks, leftovers and failures
of the README's "The case" section, each reproduced. The kill -9 test is in
``test_case_faults.py``."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import k8sforensics as kf
import k8sforensics.ingest
import k8sforensics.samples
from k8sforensics.case import CaseLock, CaseNotice
from k8sforensics.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent


def state(case_dir: Path) -> dict[str, bytes]:
    """Every file of a case folder and its bytes (the OS lock file aside)."""
    return {
        str(p.relative_to(case_dir)): p.read_bytes()
        for p in sorted(case_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def case(tmp_path: Path) -> kf.Case:
    return kf.Case.create(tmp_path / "case", cluster="lab")


def test_a_stale_case_object_never_writes_back_an_old_manifest(case: kf.Case, audit_fixtures: Path) -> None:
    first = kf.Case.open(case.path)
    second = kf.Case.open(case.path)
    kf.ingest(second, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    kf.ingest(first, audit_fixtures / "gke_audit__logentries.jsonl")  # opened before the other ingest
    m = kf.Case.open(case.path).manifest
    assert [len(i["inputs"]) for i in m["ingests"]] == [1, 1]
    assert set(m["tables"]["audit"]["parts"]) >= set(second.manifest["tables"]["audit"]["parts"])
    # a detection run by a stale object keeps every ingest and says which ones it saw
    stale = kf.Case.open(case.path)
    kf.ingest(kf.Case.open(case.path), audit_fixtures / "aks_audit__blob_lines.json")
    with pytest.warns(CaseNotice, match="run detection again"):
        kf.detect(stale)
    m = kf.Case.open(case.path).manifest
    assert len(m["ingests"]) == 3
    run = m["detections"][-1]
    assert len(run["ingests_seen"]) == 2 and len(run["ingests_not_seen"]) == 1
    assert kf.Case.open(case.path).verify().ok


def test_ingest_and_detect_from_two_processes_both_land(tmp_path: Path) -> None:
    """`k8sforensics ingest` and, half a second later in a second terminal, `detect`."""
    evidence = tmp_path / "evidence"
    kf.samples.write_sample_evidence(evidence, seed=3, scale=0.3)
    case_dir = tmp_path / "case"
    kf.ingest(kf.Case.create(case_dir), ROOT / "tests" / "fixtures" / "audit" / "k8s_audit__log_backend_stages.jsonl")
    cli = [sys.executable, "-m", "k8sforensics"]
    ingest = subprocess.Popen(
        [*cli, "ingest", str(evidence), "--case", str(case_dir), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    detect = subprocess.run([*cli, "detect", str(case_dir)], capture_output=True, text=True, timeout=300)
    out, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err
    assert detect.returncode == 0, detect.stderr
    m = kf.Case.open(case_dir).manifest
    assert len(m["ingests"]) == 2 and m["detections"]
    assert kf.Case.open(case_dir).verify().ok


def test_a_busy_case_waits_then_says_who_holds_it(case: kf.Case, audit_fixtures: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from k8sforensics.case import CaseLock\n"
                "with CaseLock(Path(sys.argv[1]), 'ingest'):\n    print('held', flush=True); time.sleep(30)\n"
            ),
            str(case.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = state(case.path)
        with (
            pytest.warns(CaseNotice, match=f"waiting for the case lock: ingest by .*pid {holder.pid}"),
            pytest.raises(kf.CaseError, match=f"the case is busy \\(ingest by .*pid {holder.pid}"),
        ):
            kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl", lock_timeout=0.5)
        assert state(case.path) == before
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: the kernel released its lock, the holder record names it
    with pytest.warns(
        CaseNotice, match=f"took over the case lock from ingest by .*pid {holder.pid}.*ended without finishing"
    ):
        report = kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    assert report.rows > 0 and not (case.path / ".lock.json").exists()


def test_leftovers_of_a_dead_writer_are_removed_by_the_next_one(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    kept = state(case.path)
    rows = case.audit().shape[0]
    orphan = case.path / "audit" / "date=2024-05-01" / "part-20240501T000000-dead00-00000-x.parquet"
    orphan.write_bytes(b"PAR1 half a part")
    (case.path / "_tmp" / "20240501T000000-dead00" / "stage" / "context").mkdir(parents=True)
    (case.path / "_tmp" / "20240501T000000-dead00" / "stage" / "context" / "pods.parquet").write_bytes(b"x")
    problems = kf.Case.open(case.path).verify().problems
    assert {p.path for p in problems} == {orphan.relative_to(case.path).as_posix(), "_tmp"}
    assert kf.Case.open(case.path).audit().shape[0] == rows  # readers never see unlisted files
    with pytest.warns(CaseNotice, match="removed 2 file"):
        kf.ingest(case, audit_fixtures / "gke_audit__logentries.jsonl")
    assert not orphan.exists() and not (case.path / "_tmp").exists()
    assert set(kept) - {"manifest.json"} <= set(state(case.path))
    assert kf.Case.open(case.path).verify().ok


def test_a_failed_ingest_leaves_the_case_as_it_was(
    case: kf.Case, audit_fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the parts are in place (here: in the pod-lifetime rebuild) takes them
    back out; the manifest never records an ingest whose derived tables were not built."""
    kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    before = state(case.path)

    def broken(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    # the package, not the function kf.ingest that shadows its name
    monkeypatch.setattr(importlib.import_module("k8sforensics.ingest"), "rebuild_context", broken)
    with pytest.raises(RecursionError):
        kf.ingest(case, audit_fixtures / "gke_audit__logentries.jsonl")
    assert state(case.path) == before
    monkeypatch.undo()
    report = kf.ingest(case, audit_fixtures / "gke_audit__logentries.jsonl")  # no manual step
    assert report.rows > 0 and len(kf.Case.open(case.path).manifest["ingests"]) == 2


def test_verify_finds_changed_missing_and_truncated_files(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(case, audit_fixtures)
    kf.detect(case)
    v = case.verify()
    assert v.ok and v.files >= 4 and len(v.manifest_sha256) == 64, str(v)
    parts = sorted(case.path.glob("audit/*/*.parquet"))
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit changed
    parts[1].write_bytes(parts[1].read_bytes()[:100])
    findings = case.path / case.manifest["findings"]["path"]
    findings.unlink()
    v = kf.Case.open(case.path).verify()
    what = {p.path: p.what for p in v.problems}
    assert "sha256 differs" in what[parts[0].relative_to(case.path).as_posix()]
    assert "bytes on disk" in what[parts[1].relative_to(case.path).as_posix()]
    assert "missing" in what[findings.relative_to(case.path).as_posix()]
    # a read names the damaged file instead of a DuckDB or Arrow traceback
    with pytest.raises(kf.CaseError, match="listed in the manifest but missing|truncated"):
        kf.Case.open(case.path).sql("select count(*) from audit")


@pytest.mark.parametrize(
    "manifest, message",
    [
        ([], "a manifest is a JSON object, this is a list"),
        (
            {"tool": "k8sforensics", "schema_version": SCHEMA_VERSION, "store_version": 2, "tables": {}, "files": {}},
            "'ingests' is missing or not a list",
        ),
        (
            {
                "tool": "k8sforensics",
                "schema_version": SCHEMA_VERSION,
                "store_version": 2,
                "ingests": ["x"],
                "tables": {},
                "files": {},
            },
            "ingest #1 is not an object",
        ),
        (
            {
                "tool": "k8sforensics",
                "schema_version": SCHEMA_VERSION,
                "store_version": 2,
                "ingests": [],
                "files": {},
                "tables": {"audit": {"parts": ["../../etc/passwd"]}},
            },
            "not a path inside the case's data folders",
        ),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_damaged_manifest_is_one_clear_error(tmp_path: Path, manifest: object, message: str) -> None:
    (tmp_path / "case").mkdir()
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (tmp_path / "case" / "manifest.json").write_text(text)
    with pytest.raises(kf.CaseError, match=message):
        kf.Case.open(tmp_path / "case")
    for command in (["detect"], ["verify"], ["report"], ["remediate"]):
        r = subprocess.run(
            [sys.executable, "-m", "k8sforensics", *command, str(tmp_path / "case")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("k8sforensics: error: ") and message in r.stderr


def test_cli_errors_name_the_problem(tmp_path: Path, audit_fixtures: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for args in (
        ["ingest", str(audit_fixtures), "--case", str(a_file)],
        ["detect", str(a_file)],
        ["verify", str(a_file)],
    ):
        r = subprocess.run([sys.executable, "-m", "k8sforensics", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "is a file" in r.stderr, r.stderr
    # a part listed in the manifest but missing on disk
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    next(case.path.glob("audit/*/*.parquet")).unlink()
    r = subprocess.run(
        [sys.executable, "-m", "k8sforensics", "detect", str(case.path)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "listed in the manifest but missing" in r.stderr, (
        r.stderr
    )
    r = subprocess.run(
        [sys.executable, "-m", "k8sforensics", "verify", str(case.path)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 1 and "PROBLEM" in r.stdout and "missing on disk" in r.stdout


def test_a_link_out_of_the_evidence_folder_is_named_not_followed(tmp_path: Path, audit_fixtures: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "outside.jsonl").symlink_to(audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    case = kf.Case.create(tmp_path / "case")
    report = kf.ingest(case, evidence)
    assert report.files == []
    assert "not read (1 file(s)" in str(report) and "outside the evidence folder" in str(report)
    assert case.manifest["ingests"][0]["not_read"][0]["path"].endswith("outside.jsonl")


def test_lock_holder_record_is_only_there_while_held(tmp_path: Path) -> None:
    tmp_path.joinpath("c").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with CaseLock(tmp_path / "c", "test") as dead:
            assert dead is None
            assert json.loads((tmp_path / "c" / ".lock.json").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "c" / ".lock.json").exists()


def test_a_body_too_deep_for_the_rebuild_is_recorded_not_fatal(
    case: kf.Case, audit_fixtures: Path, tmp_path: Path
) -> None:
    """A pod create whose requestObject nests 500 levels (valid JSON, kept as a row) used to
    raise RecursionError in the lifetime rebuild after the ingest was recorded, and every
    later ingest failed the same way."""
    kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    deep: object = {"x": 1}
    for _ in range(500):
        deep = {"a": deep}
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": "deep-1",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods",
        "verb": "create",
        "user": {"username": "u"},
        "objectRef": {"resource": "pods", "namespace": "shop", "name": "p2", "apiVersion": "v1"},
        "responseStatus": {"code": 201},
        "requestReceivedTimestamp": "2024-05-10T10:00:00Z",
        "stageTimestamp": "2024-05-10T10:00:02Z",
        "requestObject": {"kind": "Pod", "metadata": {"name": "p2"}, "spec": deep},
    }
    (tmp_path / "deep.jsonl").write_text(json.dumps(event) + "\n")
    report = kf.ingest(case, tmp_path / "deep.jsonl")
    assert report.rows == 1
    record = case.manifest["ingests"][-1]["context"]["unreadable_bodies"]
    assert record["by_reason"].get("too deep", 0) >= 1 and record["examples"][0]["event_id"]
    assert kf.ingest(case, audit_fixtures / "gke_audit__logentries.jsonl").rows > 0  # the case is not poisoned
    assert kf.Case.open(case.path).verify().ok


def test_time_range_reaches_the_reader_from_the_cli_and_the_loaders(tmp_path: Path, audit_fixtures: Path) -> None:
    src = audit_fixtures / "k8s_audit__log_backend_stages.jsonl"
    assert len(kf.read_audit(src, time_range=("2030-01-01", None))) == 0  # every event is before 2030
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8sforensics",
            "ingest",
            str(src),
            "--case",
            str(tmp_path / "c"),
            "--no-progress",
            "--time-range",
            "2030-01-01",
            "2100-01-01",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    m = kf.Case.open(tmp_path / "c").manifest
    (i,) = m["ingests"][0]["inputs"]
    assert i["rows"] == 0 and i["quarantined"] == i["records"] - i["merged"] - sum(i["skipped"].values()) > 0
    assert m["ingests"][0]["args"]["time_range"] == ["2030-01-01", "2100-01-01"]


def test_processes_creating_the_same_case_at_once_all_get_it(tmp_path: Path) -> None:
    code = "import sys, k8sforensics as kf; kf.Case.create(sys.argv[1], exist_ok=True)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "c")], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert kf.Case.open(tmp_path / "c").manifest["ingests"] == []


@pytest.mark.parametrize(
    "left", [[".lock"], [".lock", ".lock.json"], [".lock", "..lock.json.4242.tmp"], [".manifest.json.4242.tmp"]]
)
def test_create_accepts_what_a_concurrent_create_leaves_midway(tmp_path: Path, left: list[str]) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    for name in left:
        (folder / name).write_text("")
    assert kf.Case.create(folder, exist_ok=True).manifest["ingests"] == []


def test_create_still_refuses_a_folder_holding_something_else(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / ".lock").write_text("")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(kf.CaseError, match="not empty"):
        kf.Case.create(folder)
