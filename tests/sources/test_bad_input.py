"""Bad input gets a message a person can act on, or a quarantine entry — never a deep
traceback and never a silently lost record."""

from __future__ import annotations

import builtins
import gzip
import json
import random
import warnings
from pathlib import Path

import pytest
import zstandard

import k8sforensics as kf
from k8sforensics.errors import BadRecordError, EvidenceError, UnknownFormatError
from k8sforensics.sources import open_reader


def good_line(audit_fixtures: Path) -> str:
    return (audit_fixtures / "k8s_audit__bad_lines.jsonl").read_text().splitlines()[0]


def read(path: Path, **kw):
    reader = open_reader(path, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = sum(b.num_rows for b in reader.batches())
    r = reader.result
    assert rows + r.merged + sum(r.skipped.values()) + r.quarantined == r.records
    return rows, reader


def numbered_events(audit_fixtures: Path, n: int) -> list[str]:
    ev = json.loads(good_line(audit_fixtures))
    rnd = random.Random(1)
    out = []
    for _i in range(n):
        ev["auditID"] = f"{rnd.getrandbits(128):032x}"  # incompressible enough for a real truncation
        out.append(json.dumps(ev))
    return out


def test_missing_path_names_it() -> None:
    with pytest.raises(EvidenceError, match=r"/no/such/audit\.log: no such file or folder"):
        kf.read_audit("/no/such/audit.log")


def test_glob_matching_nothing() -> None:
    with pytest.raises(EvidenceError, match="the pattern matches no file"):
        kf.read_audit("/no/such/dir/*.log")


def test_unreadable_file(tmp_path: Path, audit_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "audit.log"
    p.write_text(good_line(audit_fixtures) + "\n")
    real_open = builtins.open

    def deny(file, mode="r", *a, **kw):  # root ignores file modes, so deny at open()
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(EvidenceError, match=r"audit\.log: permission denied"):
        kf.read_audit(p)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_text("\n\n")
    with pytest.raises(EvidenceError, match="is empty"):
        kf.read_audit(p)


def test_unknown_format_names_formats_tried(tmp_path: Path) -> None:
    p = tmp_path / "notes.json"
    p.write_text('{"hello": "world"}\n')
    with pytest.raises(
        UnknownFormatError,
        match=r"notes\.json: no format recognises this file \(tried: gke-audit, aks-audit, k8s-audit\)",
    ):
        kf.read_audit(p)


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_truncated_archive_keeps_what_came_before(tmp_path: Path, audit_fixtures: Path, kind: str) -> None:
    lines = numbered_events(audit_fixtures, 2000)
    data = ("\n".join(lines) + "\n").encode()
    packed = gzip.compress(data) if kind == "gz" else zstandard.ZstdCompressor().compress(data)
    p = tmp_path / f"audit.log.{kind}"
    p.write_bytes(packed[: len(packed) // 2])
    rows, reader = read(p)
    assert 200 < rows < 2000
    last = reader.quarantine[-1]
    assert "truncated" in last["reason"] and "records after this point are lost" in last["reason"]
    assert last["evidence_line"] == rows + 1


def test_invalid_utf8_is_quarantined(tmp_path: Path, audit_fixtures: Path) -> None:
    g = good_line(audit_fixtures).encode()
    p = tmp_path / "audit.log"
    p.write_bytes(g + b"\n" + g.replace(b"nodes", b"no\xff\xfedes") + b"\n" + g + b"\n")
    rows, reader = read(p)
    assert rows == 2
    assert [(q["evidence_line"], q["reason"]) for q in reader.quarantine] == [(2, "not valid UTF-8 text")]


def test_fifty_megabyte_line(tmp_path: Path, audit_fixtures: Path) -> None:
    g = good_line(audit_fixtures)
    p = tmp_path / "audit.log"
    p.write_text(g + "\n" + "x" * (50 << 20) + "\n" + g + "\n")
    rows, reader = read(p)
    assert rows == 2 and reader.result.quarantined == 1
    q = reader.quarantine[0]
    assert q["evidence_line"] == 2 and "not valid JSON" in q["reason"] and len(q["excerpt"]) <= 300
    # with a lower cap the record is refused without being buffered
    rows, reader = read(p, max_record_bytes=8 << 20)
    assert rows == 2 and reader.quarantine[0]["reason"] == f"record longer than {8 << 20} bytes; not read"


def test_fifty_megabyte_valid_event_is_a_row(tmp_path: Path, audit_fixtures: Path) -> None:
    ev = json.loads(good_line(audit_fixtures))
    ev["requestObject"] = {"kind": "ConfigMap", "data": {"blob": "y" * (50 << 20)}}
    p = tmp_path / "audit.log"
    p.write_text(json.dumps(ev) + "\n")
    rows, reader = read(p)
    assert rows == 1 and reader.result.quarantined == 0


def test_ten_thousand_deep_nesting(tmp_path: Path, audit_fixtures: Path) -> None:
    g = good_line(audit_fixtures)
    p = tmp_path / "audit.log"
    p.write_text(g + "\n" + '{"a":' * 10_000 + "1" + "}" * 10_000 + "\n" + g + "\n")
    rows, reader = read(p)
    assert rows == 2
    assert [(q["evidence_line"], q["reason"]) for q in reader.quarantine] == [
        (2, "JSON nested too deeply to parse safely")
    ]


def test_deep_but_parseable_body_is_kept(tmp_path: Path, audit_fixtures: Path) -> None:
    ev = json.loads(good_line(audit_fixtures))
    ev["requestObject"] = json.loads('{"a":' * 500 + "1" + "}" * 500)
    p = tmp_path / "audit.log"
    p.write_text(json.dumps(ev) + "\n")
    df = kf.read_audit(p)
    assert df.request_object.iloc[0].startswith('{"a":{"a":')


def test_deep_nesting_in_a_pretty_printed_file(tmp_path: Path, audit_fixtures: Path) -> None:
    ev = json.loads(good_line(audit_fixtures))
    p = tmp_path / "audit.json"
    p.write_text(json.dumps(ev, indent=2) + "\n" + "[" * 10_000 + "]" * 10_000 + "\n" + json.dumps(ev, indent=2) + "\n")
    rows, reader = read(p)
    assert rows == 2 and reader.result.quarantined == 1


def test_on_bad_lines_error_names_file_and_line(audit_fixtures: Path) -> None:
    with pytest.raises(BadRecordError, match=r"bad_lines\.jsonl:2: not valid JSON") as e:
        kf.read_audit(audit_fixtures / "k8s_audit__bad_lines.jsonl", on_bad_lines="error")
    assert e.value.line == 2


def test_on_bad_lines_warn_and_skip(audit_fixtures: Path) -> None:
    with pytest.warns(UserWarning, match="4 bad record"):
        kf.read_audit(audit_fixtures / "k8s_audit__bad_lines.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = kf.read_audit(audit_fixtures / "k8s_audit__bad_lines.jsonl", on_bad_lines="skip")
    assert len(df) == 4


def test_on_bad_lines_is_checked(audit_fixtures: Path) -> None:
    with pytest.raises(ValueError, match="on_bad_lines"):
        kf.read_audit(audit_fixtures / "k8s_audit__bad_lines.jsonl", on_bad_lines="ignore")  # type: ignore[arg-type]


def test_symlink_out_of_the_evidence_folder_is_not_followed(tmp_path: Path, audit_fixtures: Path) -> None:
    outside = tmp_path / "outside.log"
    outside.write_text(good_line(audit_fixtures) + "\n")
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "a.log").write_text(good_line(audit_fixtures).replace('"m0"', '"inside"') + "\n")
    (folder / "link.log").symlink_to(outside)
    assert list(kf.read_audit(folder).audit_id) == ["inside"]


def test_evidence_is_opened_read_only(tmp_path: Path, audit_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes = []
    real_open = builtins.open

    def spy(file, mode="r", *a, **kw):
        if str(file).startswith(str(audit_fixtures)):
            modes.append(mode)
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy)
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    assert modes and set(modes) == {"rb"}
