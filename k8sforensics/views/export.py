"""The case in the formats other tools read: Timesketch JSONL, OCSF events (JSON lines) and CSV.

By default every export holds the kill-chain timeline — the findings and the events that show
them (``analysis.kill_chain``), a bounded set however large the case. ``all_events=True``
adds every audit, runtime and flow row, read a chunk at a time (``case.chunks``) and written as
it is read, so a table of millions of rows is never in memory at once.

OCSF events are checked against the OCSF schema that ``ocsf-json-schema`` ships (OCSF 1.0 to
1.8 bundled, no network) with ``jsonschema``. Evidence strings are attacker-controlled: JSON
encodes them, and CSV cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np
import pandas as pd

from ..analysis.kill_chain import kill_chain
from ..detect.engine import PHASES
from ..errors import CaseError
from ..schema import EVENT_TABLES, FINDINGS, TABLES
from ..version import __version__

if TYPE_CHECKING:
    from ..case import Case

#: the OCSF version the events are written in: every class used here exists since 1.1, and 1.5
#: is widely read while being recent enough for finding_info.kill_chain and resources.namespace
OCSF_VERSION = "1.5.0"
PRODUCT = {"name": "k8sforensics", "vendor_name": "k8sforensics", "version": __version__}
#: what ``datetime`` means on each kind of Timesketch line
TIMESTAMP_DESC = {
    "finding": "Finding first evidence",
    "audit": "Audit request received",
    "runtime": "Event time",
    "flows": "Flow start",
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CHUNK_ROWS = 200_000  # rows read at a time when every event is exported
_BATCH_ROWS = 10_000  # rows turned into dicts at a time
_SEVERITY_ID = {"low": 2, "medium": 3, "high": 4, "critical": 5}
_PRIORITY_ID = {  # Falco/Tetragon priorities → OCSF severity_id
    "emergency": 6,
    "alert": 5,
    "critical": 5,
    "error": 4,
    "warning": 3,
    "notice": 2,
    "informational": 1,
    "info": 1,
    "debug": 1,
}
_VERB_ACTIVITY = {  # Kubernetes verb → API Activity activity_id (Create, Read, Update, Delete)
    "create": 1,
    "get": 2,
    "list": 2,
    "watch": 2,
    "update": 3,
    "patch": 3,
    "delete": 4,
    "deletecollection": 4,
}
_CLASS = {  # class_uid → (class name, category name)
    2004: ("Detection Finding", "Findings"),
    6003: ("API Activity", "Application Activity"),
    4001: ("Network Activity", "Network Activity"),
    1007: ("Process Activity", "System Activity"),
    1001: ("File System Activity", "System Activity"),
}
_CLASS_SCHEMA = {  # class_uid → the class's name in the OCSF schema
    2004: "detection_finding",
    6003: "api_activity",
    4001: "network_activity",
    1007: "process_activity",
    1001: "file_activity",
}
_FORMULA = re.compile(r"^[=+\-@\t\r]")  # what a spreadsheet reads as the start of a formula


# --------------------------------------------------------------------------- Timesketch


def timesketch_jsonl(
    case: Case,
    path: str | Path,
    *,
    findings: pd.DataFrame | None = None,
    all_events: bool = False,
    include_secrets: bool = False,
) -> Path:
    """The kill-chain timeline as Timesketch's JSONL import format: one object a line with
    ``message``, ``datetime`` (ISO 8601 UTC), ``timestamp`` (µs) and ``timestamp_desc``, plus
    the timeline's columns (lists as JSON lists, missing values left out). ``all_events=True``
    adds every other event of the case, streamed a chunk at a time."""
    _refuse_secrets(case, include_secrets=include_secrets)
    timeline = _timeline(case, findings=findings)
    out = Path(path)
    with _atomic(out) as fh:
        for row in timeline.to_dict("records"):
            fh.write(_json(_timesketch_row(row, cluster=case.cluster)) + "\n")
        if all_events:
            shown = set(timeline["event_id"].dropna())
            for table, batch in _all_events(case, exclude=shown):
                fh.writelines(_json(_timesketch_event(table, row)) + "\n" for row in batch)
    return out


def _timesketch_row(row: dict[str, Any], *, cluster: str | None) -> dict[str, Any]:
    kind = row["kind"]
    table = row["source_table"] if kind != "finding" else "finding"
    time = pd.Timestamp(row["time"])
    if kind == "finding":
        head = f"[{row['severity']} · {row['kill_chain_phase']}] {row['title']}"
        message = f"{head}: {row['summary']}" if _present(row["summary"]) else head
    else:
        message = f"[{kind} · {table}] {_text(row['summary'])}"
    line = {
        "message": _one_line(message),
        "datetime": _iso(time),
        "timestamp": _micros(time),
        "timestamp_desc": TIMESTAMP_DESC.get(table, "Event time"),
        "data_type": f"k8sforensics:{'finding' if kind == 'finding' else table}",
        "cluster": cluster,
    }
    return _with_columns(line, row)


def _timesketch_event(table: str, row: dict[str, Any]) -> dict[str, Any]:
    time = pd.Timestamp(row["time"])
    line = {
        "message": _one_line(f"[event · {table}] {_event_text(table, row)}"),
        "datetime": _iso(time),
        "timestamp": _micros(time),
        "timestamp_desc": TIMESTAMP_DESC[table],
        "data_type": f"k8sforensics:{table}",
        "kind": "event",
        "source_table": table,
    }
    return _with_columns(line, row)


# --------------------------------------------------------------------------- OCSF


def ocsf_events(
    case: Case, *, findings: pd.DataFrame | None = None, all_events: bool = False, include_secrets: bool = False
) -> list[dict[str, Any]]:
    """The timeline as OCSF events: findings as Detection Finding (2004), audit events as API
    Activity (6003), flows as Network Activity (4001), runtime events as Process Activity
    (1007; file events as File System Activity, 1001; network events as Network Activity).
    Our ids are in ``metadata.uid`` (event_id, finding_id) and ``finding_info.uid``; each
    finding names its evidence in ``finding_info.related_events``. Events appear once each,
    in time order. ``all_events=True`` lists every event of the case: for a large case use
    ``ocsf_jsonl``, which streams."""
    _refuse_secrets(case, include_secrets=include_secrets)
    return list(_ocsf_stream(case, findings=findings, all_events=all_events))


def ocsf_jsonl(
    case: Case,
    path: str | Path,
    *,
    findings: pd.DataFrame | None = None,
    all_events: bool = False,
    validate: bool = True,
    include_secrets: bool = False,
) -> Path:
    """``ocsf_events`` written one JSON object a line, streamed. With ``validate`` (the default)
    each event is checked against the OCSF schema first and a failing one stops the export
    (it would be a mapping bug, never the evidence's fault) with the schema's complaint.
    Validation costs about a millisecond an event: for every event of a large case, consider
    ``validate=False``."""
    _refuse_secrets(case, include_secrets=include_secrets)
    out = Path(path)
    with _atomic(out) as fh:
        for event in _ocsf_stream(case, findings=findings, all_events=all_events):
            if validate:
                errors = ocsf_errors(event)
                if errors:
                    raise ValueError(f"OCSF event {event['metadata'].get('uid')} is invalid: {'; '.join(errors[:5])}")
            fh.write(_json(event) + "\n")
    return out


def ocsf_errors(event: dict[str, Any], *, version: str = OCSF_VERSION) -> list[str]:
    """Why ``event`` is not a valid OCSF event of its class (empty when it is), checked with
    ``jsonschema`` against the JSON schema ``ocsf-json-schema`` builds from the OCSF schema it
    bundles, with the profiles the event declares in ``metadata.profiles``."""
    uid = event.get("class_uid")
    if uid not in _CLASS_SCHEMA:
        return [f"class_uid {uid!r} is not one this export writes"]
    profiles = tuple(sorted((event.get("metadata") or {}).get("profiles") or ()))
    validator = _validator(version, _CLASS_SCHEMA[uid], profiles)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(event)'}: {e.message}" for e in validator.iter_errors(event)]


@cache
def _validator(version: str, class_name: str, profiles: tuple[str, ...]) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_ocsf_schema(version).get_class_schema(class_name, list(profiles)))


@cache
def _ocsf_schema(version: str) -> Any:
    # Imported here: only an OCSF export pays for loading the bundled schema (a few MB of JSON).
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

    return OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))


def _ocsf_stream(case: Case, *, findings: pd.DataFrame | None, all_events: bool) -> Iterator[dict[str, Any]]:
    timeline = _timeline(case, findings=findings)
    rows = _rows_by_id(case, timeline)
    seen: set[str] = set()
    for row in timeline.to_dict("records"):
        if row["kind"] == "finding":
            yield _ocsf_finding(row, cluster=case.cluster)
            continue
        event_id, table = row["event_id"], row["source_table"]
        if event_id in seen or event_id not in rows.get(table, {}):
            continue
        seen.add(event_id)
        yield _ocsf_event(table, rows[table][event_id])
    if all_events:
        for table, batch in _all_events(case, exclude=seen):
            for row in batch:
                yield _ocsf_event(table, row)


def _rows_by_id(case: Case, timeline: pd.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """The full rows of the timeline's events, by table and event id (a bounded set, read
    with DuckDB by id so the tables are not loaded)."""
    events = timeline[timeline["kind"] != "finding"]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if events.empty:
        return out
    con = case.connect()
    try:
        for table, group in events.groupby("source_table"):
            if table not in EVENT_TABLES:  # a name that goes into SQL: only the three tables'
                continue
            con.register("wanted", pd.DataFrame({"event_id": group["event_id"].drop_duplicates()}))
            frame = con.sql(f"SELECT t.* FROM {table} t JOIN wanted USING (event_id)").df()
            out[str(table)] = {r["event_id"]: r for r in frame.to_dict("records")}
            con.unregister("wanted")
    finally:
        con.close()
    return out


def _ocsf_finding(row: dict[str, Any], *, cluster: str | None) -> dict[str, Any]:
    time, end = pd.Timestamp(row["time"]), pd.Timestamp(row["time_end"])
    phase = row["kill_chain_phase"]
    attack = {
        "technique": {"uid": row["attack_id"]} if _present(row["attack_id"]) else None,
        "tactic": {"name": row["tactic"]} if _present(row["tactic"]) else None,
    }
    ids = [i for i in (row["event_ids"] if row["event_ids"] is not None else []) if _present(i)]
    return _base(
        2004,
        1,
        time=time,
        uid=row["finding_id"],
        severity_id=_SEVERITY_ID.get(row["severity"], 0),
        message=row["summary"],
        log_name="findings",
        log_provider=row["rule_source"],
        extra={
            "activity_name": "Create",
            "severity": str(row["severity"]).capitalize() if _present(row["severity"]) else None,
            "status_id": 1,
            "status": "New",
            "start_time": _millis(time),
            "end_time": _millis(end),
            "count": _plain(row.get("event_count")) or len(ids) or None,
            "finding_info": {
                "uid": row["finding_id"],
                "title": row["title"],
                "desc": row["summary"],
                "analytic": {"uid": row["rule_id"], "name": row["title"], "type_id": 1, "type": "Rule"},
                "attacks": [attack] if attack["technique"] or attack["tactic"] else None,
                "kill_chain": [{"phase_id": PHASES.index(phase) + 1, "phase": phase}] if phase in PHASES else None,
                "first_seen_time": _millis(time),
                "last_seen_time": _millis(end),
                "types": [row["technique_id"]] if _present(row["technique_id"]) else None,
                "related_events": [{"uid": i} for i in ids] or None,
                "related_events_count": len(ids) or None,
            },
            "resources": [
                {"type": row["entity_type"], "name": row["entity"], "namespace": row["namespace"]}
                if _present(row["entity"])
                else None
            ],
            "observables": _observables(row),
            "unmapped": {
                "cluster": cluster,
                "kill_chain_phase": phase,
                "technique_id": row["technique_id"],
                "entity_type": row["entity_type"],
                "entity": row["entity"],
                "namespace": row["namespace"],
                "pod": row["pod"],
                "source_table": row["source_table"],
            },
        },
    )


def _ocsf_event(table: str, row: dict[str, Any]) -> dict[str, Any]:
    if table == "audit":
        return _ocsf_audit(row)
    if table == "flows":
        return _ocsf_flow(row)
    return _ocsf_runtime(row)


def _ocsf_audit(row: dict[str, Any]) -> dict[str, Any]:
    verb = row["verb"] if _present(row["verb"]) else None
    activity = _VERB_ACTIVITY.get(verb, 99) if verb else 0
    code = _plain(row["response_code"])
    groups = [{"name": g} for g in _list(row["user_groups"])]
    return _base(
        6003,
        activity,
        time=pd.Timestamp(row["time"]),
        uid=row["event_id"],
        severity_id=1,
        message=_event_text("audit", row),
        log_name="audit",
        log_provider=row["source"],
        extra={
            "activity_name": verb if activity == 99 else None,
            # an audit event with no user is still an API call: the actor is then unknown by name
            "actor": {
                "user": {
                    "name": row["user"] if _present(row["user"]) else "unknown",
                    "uid": row["user_uid"],
                    "groups": groups or None,
                }
            },
            "api": {
                "operation": verb or "unknown",
                "request": {"uid": row["audit_id"]} if _present(row["audit_id"]) else None,
                "response": {"code": code, "message": row["response_reason"]},
                "service": {"name": "kube-apiserver"},
                "version": row["api_version"],
                "group": {"name": row["api_group"]} if _present(row["api_group"]) else None,
            },
            "src_endpoint": {"ip": row["source_ip"]} if _present(row["source_ip"]) else {"name": "unknown"},
            "http_request": {"user_agent": row["user_agent"], "url": {"path": row["request_uri"]}}
            if _present(row["user_agent"]) or _present(row["request_uri"])
            else None,
            "resources": [
                {
                    "type": "/".join(x for x in (row["resource"], row["subresource"]) if _present(x)) or None,
                    "name": row["object_name"],
                    "namespace": row["object_namespace"],
                }
            ]
            if _present(row["object_name"])
            else None,
            "status_id": (1 if code < 400 else 2) if code is not None else 0,
            "status_code": str(code) if code is not None else None,
            "unmapped": _k8s(row)
            | {
                "decision": row["decision"],
                "authz_reason": row["authz_reason"],
                "impersonated_user": row["impersonated_user"],
                "exec_command": row["exec_command"],
                "stage": row["stage"],
            },
        },
    )


def _ocsf_flow(row: dict[str, Any]) -> dict[str, Any]:
    time = pd.Timestamp(row["time"])
    end = pd.Timestamp(row["time_end"]) if _present(row.get("time_end")) else time
    direction = {"ingress": 1, "egress": 2}.get(row["direction"], 0)
    return _base(
        4001,
        5 if row["verdict"] == "denied" else 6,  # Refuse / Traffic: flow records are traffic summaries
        time=time,
        uid=row["event_id"],
        severity_id=1,
        message=_event_text("flows", row),
        log_name="flows",
        log_provider=row["source"],
        extra={
            "src_endpoint": _endpoint(row["src_ip"], row["src_port"], row["src_namespace"], row["src_pod"]),
            "dst_endpoint": _endpoint(row["dst_ip"], row["dst_port"], row["dst_namespace"], row["dst_pod"]),
            "connection_info": {
                "direction_id": direction,
                "direction": {1: "Inbound", 2: "Outbound"}.get(direction),
                "protocol_name": row["protocol"],
            },
            "traffic": {"bytes": _plain(row["bytes"]), "packets": _plain(row["packets"])},
            "start_time": _millis(time),
            "end_time": _millis(end),
            "unmapped": _k8s(row)
            | {
                "verdict": row["verdict"],
                "verdict_raw": row["verdict_raw"],
                "drop_reason": row["drop_reason"],
                "is_reply": _plain(row["is_reply"]),
                "dst_names": _plain(row["dst_names"]),
                "dns_query": row["dns_query"],
                "dst_service": row["dst_service"],
            },
        },
    )


def _ocsf_runtime(row: dict[str, Any]) -> dict[str, Any]:
    kind = row["event_type"] if _present(row["event_type"]) else None
    device = {"type_id": 0, "hostname": row["node"]} if _present(row["node"]) else {"type_id": 0, "name": "unknown"}
    process = _process(row)
    actor = {"process": process["parent_process"]} if process.get("parent_process") else None
    if actor is None:
        user = {"uid": _text(row["uid"]), "name": row["user_name"]}
        actor = {"user": user} if any(_present(v) for v in user.values()) else {"app_name": row["source"] or "unknown"}
    extra: dict[str, Any] = {
        "device": device,
        "actor": actor,
        "unmapped": _k8s(row)
        | {"event_type": kind, "rule": row["rule"], "priority": row["priority"], "tags": _plain(row["tags"])},
    }
    severity = _PRIORITY_ID.get(str(row["priority"]).lower(), 1)
    common = {
        "time": pd.Timestamp(row["time"]),
        "uid": row["event_id"],
        "severity_id": severity,
        "message": _event_text("runtime", row),
        "log_name": "runtime",
        "log_provider": row["source"],
        "profiles": ["container"],
    }
    if kind == "file" and _present(row["file_path"]):
        name = posixpath.basename(str(row["file_path"]).rstrip("/")) or str(row["file_path"])
        extra["file"] = {"name": name, "path": row["file_path"], "type_id": 0}
        extra["activity_name"] = row["rule"] if _present(row["rule"]) else "file"
        return _base(1001, 99, extra=extra, **common)
    if kind == "network" and (_present(row["src_ip"]) or _present(row["dst_ip"])):
        extra["src_endpoint"] = _endpoint(row["src_ip"], row["src_port"], row["namespace"], row["pod"])
        extra["dst_endpoint"] = _endpoint(row["dst_ip"], row["dst_port"], None, None)
        extra["connection_info"] = {"direction_id": 0, "protocol_name": row["protocol"]}
        del extra["device"], extra["actor"]  # not attributes of Network Activity
        return _base(4001, 99, extra=extra | {"activity_name": kind}, **common)
    activity = {"exec": 1, "exit": 2}.get(kind or "", 99 if kind else 0)
    extra["process"] = process
    extra["activity_name"] = (row["rule"] if _present(row["rule"]) else kind) if activity == 99 else None
    return _base(1007, activity, extra=extra, **common)


def _process(row: dict[str, Any]) -> dict[str, Any]:
    path = row["process"] if _present(row["process"]) else None
    parent = {
        "pid": _plain(row["ppid"]),
        "uid": row["parent_exec_id"],
        "name": posixpath.basename(str(row["parent_process"])) if _present(row["parent_process"]) else None,
        "path": row["parent_process"]
        if _present(row["parent_process"]) and "/" in str(row["parent_process"])
        else None,
        "cmd_line": row["parent_cmdline"],
    }
    container = {
        "uid": row["container_id"],
        "name": row["container"],
        "image": {"uid": row["container_image"], "name": row["container_image"]}
        if _present(row["container_image"])
        else None,
        "orchestrator": "Kubernetes",
    }
    process = {
        "pid": _plain(row["pid"]),
        "uid": row["exec_id"],
        "name": posixpath.basename(path) if path else None,
        "path": path,
        "cmd_line": row["cmdline"],
        "working_directory": row["cwd"],
        "user": {"uid": _text(row["uid"]), "name": row["user_name"]},
        "parent_process": parent if _present(parent["pid"]) or _present(parent["uid"]) else None,
        "container": container if _present(container["uid"]) or _present(container["name"]) else None,
    }
    # OCSF asks a process for a pid or a uid; an alert that names neither keeps what it has
    if not _present(process["pid"]) and not _present(process["uid"]):
        process["uid"] = f"{row['event_id']}:process"
    return process


def _base(
    class_uid: int,
    activity_id: int,
    *,
    time: pd.Timestamp,
    uid: str,
    severity_id: int,
    message: Any,
    log_name: str,
    log_provider: Any,
    extra: dict[str, Any],
    profiles: list[str] | None = None,
) -> dict[str, Any]:
    """The attributes every class requires, then the class's own; missing values left out
    (OCSF types reject a null)."""
    name, category = _CLASS[class_uid]
    event = {
        "class_uid": class_uid,
        "class_name": name,
        "category_uid": class_uid // 1000,
        "category_name": category,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity_id,
        "time": _millis(time),
        "message": _one_line(str(message)) if _present(message) else None,
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": uid,
            "log_name": log_name,
            "log_provider": log_provider,
            "profiles": profiles,
        },
    }
    event |= extra
    return _drop_missing(event)


def _endpoint(ip: Any, port: Any, namespace: Any, pod: Any) -> dict[str, Any]:
    pod_name = f"{namespace}/{pod}" if _present(namespace) and _present(pod) else None
    endpoint = {"ip": ip, "port": _plain(port), "name": pod_name}
    return endpoint if _present(ip) or pod_name else {"name": "unknown"}


def _observables(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    out = []
    for name, type_id, type_name in (("source_ip", 2, "IP Address"), ("destination_ip", 2, "IP Address")):
        if _present(row[name]):
            out.append({"name": name, "type_id": type_id, "type": type_name, "value": row[name]})
    if _present(row["user"]):
        out.append({"name": "user", "type_id": 4, "type": "User Name", "value": row["user"]})
    return out or None


def _k8s(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": row["cluster"],
        "namespace": row["namespace"],
        "pod": row["pod"],
        "workload_kind": row["workload_kind"],
        "workload": row["workload"],
        "service_account": row["service_account"],
        "evidence_id": row["evidence_id"],
        "evidence_line": _plain(row["evidence_line"]),
    }


# --------------------------------------------------------------------------- CSV


def csv_files(
    case: Case, out_dir: str | Path, *, findings: pd.DataFrame | None = None, include_secrets: bool = False
) -> list[Path]:
    """``findings.csv`` (one row per finding, the findings table's columns) and
    ``timeline.csv`` (the kill-chain timeline): list columns joined with ``;``, times in ISO
    8601 UTC, every cell quoted as CSV needs, and a text cell that a spreadsheet would run as a
    formula (``=``, ``+``, ``-``, ``@``) prefixed with ``'``."""
    _refuse_secrets(case, include_secrets=include_secrets)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f = case.findings() if findings is None else findings
    timeline = _timeline(case, findings=f)
    paths = [out / "findings.csv", out / "timeline.csv"]
    for frame, columns, path in ((f, FINDINGS.names, paths[0]), (timeline, list(timeline.columns), paths[1])):
        with _atomic(path) as fh:
            w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow(columns)
            for row in frame.reindex(columns=columns).itertuples(index=False, name=None):
                w.writerow([_cell(v) for v in row])
    return paths


def _cell(value: Any) -> Any:
    v = _plain(value)
    if v is None:
        return ""
    if isinstance(v, list):
        v = ";".join("" if x is None else str(x) for x in v)
    if isinstance(v, str) and _FORMULA.match(v):
        return "'" + v
    return v


# --------------------------------------------------------------------------- entry point


def export_case(
    case: Case,
    out_dir: str | Path,
    *,
    format: Literal["timesketch", "ocsf", "csv"],
    findings: pd.DataFrame | None = None,
    all_events: bool = False,
    validate: bool = True,
    include_secrets: bool = False,
) -> list[Path]:
    """Write the case for another tool into ``out_dir``: ``timesketch`` → ``timeline.jsonl``,
    ``ocsf`` → ``ocsf.jsonl`` (validated unless ``validate=False``), ``csv`` → ``findings.csv``
    and ``timeline.csv``. The kill-chain timeline by default; ``all_events=True`` adds every
    event (JSONL formats). A case ingested with ``keep_secrets=True`` is refused unless
    ``include_secrets=True``."""
    if format not in ("timesketch", "ocsf", "csv"):
        raise ValueError(f"unknown export format {format!r}: choose timesketch, ocsf or csv")
    if format == "csv" and all_events:
        raise ValueError("csv exports the findings and the timeline; for all events use timesketch or ocsf")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kw: dict[str, Any] = {"findings": findings, "include_secrets": include_secrets}
    if format == "timesketch":
        return [timesketch_jsonl(case, out / "timeline.jsonl", all_events=all_events, **kw)]
    if format == "ocsf":
        return [ocsf_jsonl(case, out / "ocsf.jsonl", all_events=all_events, validate=validate, **kw)]
    return csv_files(case, out, **kw)


def _refuse_secrets(case: Case, *, include_secrets: bool) -> None:
    if case.manifest.get("secrets_kept") and not include_secrets:
        raise CaseError(
            f"{case.path}: this case was ingested with --keep-secrets and holds credentials unredacted; an export "
            f"would carry them to another tool. Pass include_secrets=True (--include-secrets) to export anyway"
        )


# --------------------------------------------------------------------------- shared


def _timeline(case: Case, *, findings: pd.DataFrame | None) -> pd.DataFrame:
    """``kill_chain``'s timeline with ties in a fixed order: the events of one finding at one
    time come from DuckDB joins in whatever order its threads finish, and an export should be
    the same file every time it is made."""
    timeline = kill_chain(case, findings=findings)
    rank = timeline["kind"].map({"finding": 0, "evidence": 1, "context": 2})
    keys = ["time", "_rank", "finding_id", "event_id"]
    return timeline.assign(_rank=rank).sort_values(keys, kind="stable").drop(columns="_rank").reset_index(drop=True)


#: columns an all-events export does not read: bodies and source leftovers, large and not needed
_LEFT_OUT = {"request_object", "response_object", "extra", "annotations", "user_extra"}


def _all_events(case: Case, *, exclude: set[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every event of the three tables minus ``exclude``, as rows, a bounded batch at a time:
    the case is read ``_CHUNK_ROWS`` rows at a time, turned into dicts ``_BATCH_ROWS`` at a time
    (a dict per row costs far more memory than the frame's columns)."""
    for table in EVENT_TABLES:
        columns = [c for c in TABLES[table].names if c not in _LEFT_OUT]
        for chunk in case.chunks(table, rows=_CHUNK_ROWS, columns=columns):
            if exclude:
                chunk = chunk[~chunk["event_id"].isin(exclude)]
            for start in range(0, len(chunk), _BATCH_ROWS):
                yield table, chunk.iloc[start : start + _BATCH_ROWS].to_dict("records")


def _event_text(table: str, row: dict[str, Any]) -> str:
    """One line about an event (the same words as the timeline's summaries)."""
    g = row.get
    if table == "audit":
        sub = f"/{g('subresource')}" if _present(g("subresource")) else ""
        ns = f"{g('object_namespace')}/" if _present(g("object_namespace")) else ""
        src = f" from {g('source_ip')}" if _present(g("source_ip")) else ""
        return (
            f"{_text(g('user')) or '?'} {_text(g('verb'))} {_text(g('resource'))}{sub} {ns}{_text(g('object_name'))}"
            f" → {_text(g('response_code')) or '?'}{src}"
        )
    if table == "runtime":
        rule = f"{g('rule')}: " if _present(g("rule")) else ""
        what = g("cmdline") if _present(g("cmdline")) else None
        if what is None and _present(g("process")):
            what = f"{g('process')} {_text(g('args'))}".strip()
        return rule + (_text(what) or _text(g("output")) or _text(g("event_type")))
    return (
        f"{_text(g('src_ip')) or '?'}:{_text(g('src_port'))} → {_text(g('dst_ip')) or '?'}:{_text(g('dst_port'))}"
        f"/{_text(g('protocol'))} {_text(g('verdict'))}"
    )


def _present(value: Any) -> bool:
    t = type(value)
    if t is str or t is int or t is bool:  # the common cases first: this runs for every cell
        return True
    if value is None:
        return False
    if t is float:
        return value == value
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return True
    try:
        return not pd.isna(value)
    except (TypeError, ValueError):
        return True


def _plain(value: Any) -> Any:
    """A value as JSON has it: None for missing, ISO 8601 for times, lists for arrays."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:  # the common cases first
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if not _present(value):
        return None
    if isinstance(value, pd.Timestamp):
        return _iso(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # an integer column with gaps reads back as floats: 443.0 is the port 443
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 2**53 else (None if math.isinf(f) else f)
    return value


def _flat(value: Any) -> Any:
    """A value for a Timesketch column: a map (labels) as ``key=value`` strings, since nested
    objects would become search-index mappings that clash between timelines."""
    v = _plain(value)
    return [f"{k}={x}" for k, x in sorted(v.items())] if isinstance(v, dict) else v


def _text(value: Any) -> str:
    v = _plain(value)
    return "" if v is None else str(v)


def _list(value: Any) -> list[Any]:
    v = _plain(value)
    return [x for x in v if x is not None] if isinstance(v, list) else []


def _with_columns(line: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A Timesketch line: its own fields (plain already), then the row's columns but ``time``,
    flattened, missing ones left out."""
    out = {k: v for k, v in line.items() if v is not None}
    for column, value in row.items():
        if column != "time":
            v = _flat(value)
            if v is not None and v != []:
                out[column] = v
    return out


def _drop_missing(value: Any) -> Any:
    """``value`` without None, NaN or empty containers, at every depth."""
    t = type(value)
    if t is str or t is int:  # most leaves: nothing to do
        return value
    if t is dict:
        out = {k: _drop_missing(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [x for x in (_drop_missing(v) for v in value) if x is not None and x != {}]
    return _plain(value)


def _one_line(text: str) -> str:
    # a command or user agent can carry newlines; a timeline message is one line
    return " ".join(text.split())


def _iso(time: pd.Timestamp) -> str:
    # From the epoch count (UTC whatever the zone shown), to microseconds: ISO readers
    # (Python's, Timesketch's) take no more than six digits, and this is far faster than pandas'.
    return (_EPOCH + dt.timedelta(microseconds=time.value // 1000)).isoformat()


def _micros(time: pd.Timestamp) -> int:
    return int(time.value // 1000)


def _millis(time: pd.Timestamp) -> int:
    return int(time.value // 1_000_000)


def _json(obj: dict[str, Any]) -> str:
    """One line of ASCII JSON in which ``<``, ``>`` and ``&`` are escaped too (``\\u003c``...):
    the same data to any JSON reader, and no raw markup should the file ever reach a browser."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@contextmanager
def _atomic(path: Path) -> Iterator[TextIO]:
    """A text file written under a temporary name and renamed when complete, so an export
    that fails half-way never leaves a file that looks whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            yield fh
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
