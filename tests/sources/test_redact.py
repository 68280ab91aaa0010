"""Credentials never reach the case: each kind replaced by a hash and a length."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import k8sforensics as kf
from k8sforensics.sources.redact import redact, redacted


def by_id(audit_fixtures: Path) -> dict:
    df = kf.read_audit(audit_fixtures / "k8s_audit__secrets_and_tokens.jsonl")
    return {r.audit_id: r for r in df.itertuples()}


def test_redacted_value_is_hash_and_length() -> None:
    v = "aHVudGVyMg=="
    assert redacted(v) == f"REDACTED:sha256={hashlib.sha256(v.encode()).hexdigest()[:16]}:len={len(v)}"


def test_secret_data_and_string_data(audit_fixtures: Path) -> None:
    r = by_id(audit_fixtures)["k1"]
    for body in (r.request_object, r.response_object):
        obj = json.loads(body)
        assert obj["data"]["password"] == redacted("aHVudGVyMg==")
        assert obj["stringData"]["token"] == redacted("s3cr3t-plain")
        assert obj["metadata"]["name"] == "db"  # metadata stays
        assert "aHVudGVyMg" not in body and "s3cr3t" not in body


def test_secret_last_applied_configuration(audit_fixtures: Path) -> None:
    obj = json.loads(by_id(audit_fixtures)["k1"].request_object)
    ann = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert ann.startswith("REDACTED:sha256=")


def test_secret_list_items(audit_fixtures: Path) -> None:
    body = by_id(audit_fixtures)["k2"].response_object
    assert json.loads(body)["items"][0]["data"]["password"].startswith("REDACTED:")
    assert "aHVudGVyMg" not in body


def test_token_request_token(audit_fixtures: Path) -> None:
    r = by_id(audit_fixtures)["k3"]
    obj = json.loads(r.response_object)
    assert obj["status"]["token"] == redacted("eyJhbGciOiJSUzI1NiJ9.payload.sig")
    assert obj["status"]["expirationTimestamp"] == "2024-05-10T01:00:02Z"
    assert "payload.sig" not in r.response_object


def test_token_review_token(audit_fixtures: Path) -> None:
    r = by_id(audit_fixtures)["k4"]
    assert json.loads(r.request_object)["spec"]["token"].startswith("REDACTED:")
    assert "other.sig" not in r.request_object


def test_json_patch_and_merge_patch_on_secret(audit_fixtures: Path) -> None:
    rows = by_id(audit_fixtures)
    patch = json.loads(rows["k5"].request_object)
    assert patch[0]["path"] == "/data/password" and patch[0]["value"].startswith("REDACTED:")
    merge = json.loads(rows["k6"].request_object)
    assert merge["stringData"]["password"].startswith("REDACTED:")


def test_secret_inside_any_body_is_redacted() -> None:
    # a Secret riding in a generic List or a watch event of another resource
    body = {
        "kind": "List",
        "items": [{"kind": "Secret", "data": {"k": "dmFsdWU="}}, {"kind": "ConfigMap", "data": {"k": "v"}}],
    }
    out = redact(body, resource="configmaps")
    assert out["items"][0]["data"]["k"].startswith("REDACTED:")
    assert out["items"][1]["data"]["k"] == "v"  # ConfigMaps are evidence (credentials-in-config detection)
    assert body["items"][0]["data"]["k"] == "dmFsdWU="  # input not modified


def test_nothing_secret_survives_in_the_case(audit_fixtures: Path, tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, audit_fixtures / "k8s_audit__secrets_and_tokens.jsonl")
    # every value of every table, decompressed, as text
    text = case.audit().astype(str).to_csv() + case.quarantine().astype(str).to_csv()
    assert "REDACTED:sha256=" in text
    for leaked in ("aHVudGVyMg==", "s3cr3t-plain", "payload.sig", "other.sig", "bmV3cGFzcw==", "plain-new"):
        assert leaked not in text


def test_redaction_leaves_the_process_warnings_alone() -> None:
    """detect-secrets reroutes every warning to logging when imported; redaction undoes that."""
    import warnings

    import pytest

    from k8sforensics.sources.redact import redact_text

    shown = warnings.showwarning
    assert "REDACTED" in redact_text("mysql --password=Sup3rS3cretPassw0rd")
    assert warnings.showwarning is shown
    with pytest.warns(UserWarning, match="still seen"):
        warnings.warn("still seen", UserWarning, stacklevel=2)


def test_every_column_the_redaction_pass_names_is_a_column_of_its_table() -> None:
    from k8sforensics.schema import FINDINGS, QUARANTINE, TABLES
    from k8sforensics.sources.redact import COLUMNS

    tables = {**TABLES, "quarantine": QUARANTINE, "findings": FINDINGS}
    for table, columns in COLUMNS.items():
        for name, _ in columns:
            assert name in tables[table].names, (table, name)
