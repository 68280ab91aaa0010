"""AWS CloudTrail records, in every shape a responder gets them.

- S3 log files ``{"Records": [...]}`` (the driver decompresses ``.json.gz``);
- one record per line (CloudTrail Lake exports, SIEM exports) or a JSON array of records
  (Stratus Red Team detonation logs; the driver splits arrays);
- ``aws cloudtrail lookup-events`` output ``{"Events": [{..., "CloudTrailEvent": "<JSON text>"}]}``:
  the record is the decoded ``CloudTrailEvent``;
- EventBridge events ``{"detail-type": "AWS API Call via CloudTrail", "detail": {...}}``;
- CloudWatch Logs ``filter-log-events`` pages and subscription payloads: the driver unwraps them
  (sources._json.unwrap) and hands over the record each message holds.

Record fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html,
``userIdentity``: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html.
Session credentials a call returned never reach a column (sources._cloud.body).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ._cloud import body, k8s_user
from ._values import as_list, as_object, text
from .k8s_audit import service_account
from .protocol import BadRecord, NotAnEvent
from .redact import redact_text

NAME = "aws-cloudtrail"
FAMILY = "cloud"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

# EventBridge's detail-types for CloudTrail records (API calls, console sign-ins, service events,
# Insights): https://docs.aws.amazon.com/eventbridge/latest/ref/events-structure.html
_VIA_CLOUDTRAIL = " via CloudTrail"
# EKS Pod Identity session tags: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html
_TAG_NAMESPACE, _TAG_SA, _TAG_POD, _TAG_CLUSTER = (
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "eks-cluster-name",
)
# requestParameters naming what a call acted on when the record has no resources[] (most
# management events): roles assumed, secrets read, policies attached, keys created for a user
_RESOURCE_PARAMETERS = ("roleArn", "secretId", "secretIdList", "policyArn", "principalArn", "userName", "clusterName")
# fields mapped to a column; the rest of a record goes to ``extra``
_MAPPED = frozenset(
    {
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "errorCode",
        "errorMessage",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "resources",
        "recipientAccountId",
    }
)


def is_record(value: Any) -> bool:
    """A CloudTrail record: ``eventSource`` an AWS service endpoint and an ``eventName``."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("eventName"), str)
        and isinstance(value.get("eventSource"), str)
        and value["eventSource"].endswith(".amazonaws.com")
    )


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    if is_record(record):
        return True
    if isinstance(record.get("Records"), list):
        recs = record["Records"]
        return any(is_record(r) for r in recs[:20]) or (not recs and set(record) == {"Records"})
    if isinstance(record.get("Events"), list):
        return any(isinstance(e, dict) and "CloudTrailEvent" in e for e in record["Events"][:20])
    return isinstance(record.get("detail-type"), str) and record["detail-type"].endswith(_VIA_CLOUDTRAIL)


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any] | BadRecord]:
    """One row per CloudTrail record the value holds; a bad item of an envelope is a
    ``BadRecord`` beside its good neighbours."""
    if not isinstance(record, dict):
        raise BadRecord("a CloudTrail record is a JSON object")
    if is_record(record):
        yield record_row(record)
        return
    if isinstance(record.get("Records"), list):
        if not record["Records"]:
            raise NotAnEvent("CloudTrail log file with no records")
        yield from _each(record["Records"], "Records")
        return
    if isinstance(record.get("Events"), list):
        if not record["Events"]:
            raise NotAnEvent("lookup-events page with no events")
        yield from _each((_lookup_event(e) for e in record["Events"]), "Events")
        return
    if isinstance(record.get("detail-type"), str) and record["detail-type"].endswith(_VIA_CLOUDTRAIL):
        detail = record.get("detail")
        if not is_record(detail):
            raise BadRecord(f"EventBridge {record['detail-type']!r} event without a CloudTrail record in detail")
        yield record_row(detail)
        return
    raise BadRecord("not a CloudTrail record: no eventSource/eventName")


def _each(items: Any, envelope: str) -> Iterator[dict[str, Any] | BadRecord]:
    for k, item in enumerate(items):
        try:
            if isinstance(item, BadRecord):
                raise item
            if not is_record(item):
                raise BadRecord(f"{envelope}[{k}] is not a CloudTrail record")
            yield record_row(item)
        except BadRecord as e:
            yield e


def _lookup_event(item: Any) -> Any:
    """A lookup-events item → the record its ``CloudTrailEvent`` text holds (JSON in a string:
    https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_Event.html)."""
    inner = as_object(item).get("CloudTrailEvent")
    if not isinstance(inner, str):
        return BadRecord("field Events[].CloudTrailEvent: missing or not JSON text")
    try:
        return orjson.loads(inner)
    except orjson.JSONDecodeError as e:
        return BadRecord(f"field Events[].CloudTrailEvent: not valid JSON ({e})")


def record_row(ev: dict[str, Any]) -> dict[str, Any]:
    """One CloudTrail record → a ``cloud`` row."""
    ui = as_object(ev.get("userIdentity"))
    sc = as_object(ui.get("sessionContext"))
    issuer = as_object(sc.get("sessionIssuer"))
    req = ev.get("requestParameters")
    resp = ev.get("responseElements")
    params, answer = as_object(req), as_object(resp)
    utype = ui.get("type")
    web_identity = ui.get("userName") if utype == "WebIdentityUser" else answer.get("subjectFromWebIdentityToken")
    tags = _session_tags(params)
    sa = service_account(web_identity)
    ns, sa_name = (sa[0], sa[1]) if sa else (tags.get(_TAG_NAMESPACE), tags.get(_TAG_SA))
    resources = _resources(ev.get("resources"), params)
    error = ev.get("errorCode")
    return {
        "time": ev.get("eventTime"),
        "cluster": tags.get(_TAG_CLUSTER),
        "namespace": ns,
        "pod": tags.get(_TAG_POD),
        "service_account": f"{ns}/{sa_name}" if ns and sa_name else None,
        "provider": "aws",
        "account": ev.get("recipientAccountId"),
        "region": ev.get("awsRegion"),
        "service": ev.get("eventSource"),
        "action": ev.get("eventName"),
        "principal": _principal(ui),
        "principal_type": utype,
        "principal_id": ui.get("principalId"),
        "session_name": _session_name(ui),
        "session_issuer": issuer.get("arn"),
        "session_created": as_object(sc.get("attributes")).get("creationDate"),
        "access_key_id": ui.get("accessKeyId"),
        "issued_key_id": _issued_key(answer),
        "web_identity": web_identity,
        "identity_provider": ui.get("identityProvider")
        or answer.get("provider")
        or as_object(sc.get("webIdFederationData")).get("federatedProvider"),
        "source_ip": ev.get("sourceIPAddress"),
        "user_agent": _free_text(ev.get("userAgent")),
        "resource": resources[0] if resources else None,
        "resources": resources or None,
        "outcome": "failure" if error not in (None, "") else "success",
        "error_code": error,
        "error_message": _free_text(ev.get("errorMessage")),
        "read_only": ev.get("readOnly"),
        "request_id": ev.get("requestID"),
        "cloud_event_id": ev.get("eventID"),
        "k8s_user": web_identity if sa else k8s_user(ns, sa_name),
        "request_parameters": body(req),
        "response_elements": body(resp),
        "extra": body({k: v for k, v in ev.items() if k not in _MAPPED} or None),
    }


def _principal(ui: dict[str, Any]) -> Any:
    # an ARN where CloudTrail gives one; a web-identity caller has none, its principalId names
    # the OIDC provider and the subject; an AWS service is named by invokedBy
    if ui.get("arn"):
        return ui["arn"]
    if ui.get("type") == "AWSService":
        return ui.get("invokedBy")
    return ui.get("principalId") or ui.get("userName")


def _session_name(ui: dict[str, Any]) -> str | None:
    """The role session's name: the last part of an assumed-role ARN (``i-...`` for an
    instance role), else what follows the role id in the principalId."""
    if ui.get("type") != "AssumedRole":
        return None
    arn = text(ui.get("arn")) or ""
    if ":assumed-role/" in arn and arn.count("/") >= 2:
        return arn.rsplit("/", 1)[1]
    pid = text(ui.get("principalId")) or ""
    return pid.split(":", 1)[1] if ":" in pid else None


def _issued_key(answer: dict[str, Any]) -> Any:
    # AssumeRole, AssumeRoleWithWebIdentity, AssumeRoleWithSAML, GetSessionToken and
    # GetFederationToken answer credentials.accessKeyId; CreateAccessKey accessKey.accessKeyId
    return as_object(answer.get("credentials")).get("accessKeyId") or as_object(answer.get("accessKey")).get(
        "accessKeyId"
    )


def _session_tags(params: dict[str, Any]) -> dict[str, Any]:
    """Session tags an AssumeRole carries: ``tags`` as ``[{"key", "value"}]`` (as sts writes
    them) or ``principalTags`` as an object."""
    out: dict[str, Any] = {}
    for tag in as_list(params.get("tags")):
        tag = as_object(tag)
        key = tag.get("key", tag.get("Key"))
        if isinstance(key, str):
            out[key] = tag.get("value", tag.get("Value"))
    out.update({k: v for k, v in as_object(params.get("principalTags")).items() if isinstance(k, str)})
    return out


def _resources(listed: Any, params: dict[str, Any]) -> list[Any]:
    """Every resource the record names: ``resources[].ARN``, else the request's bucket and
    key (as ``s3://bucket/key``) and the parameters that name a role, secret, policy or user."""
    out = [as_object(r).get("ARN") for r in as_list(listed)]
    out = [a for a in out if a not in (None, "")]
    if out:
        return out
    bucket = params.get("bucketName")
    if isinstance(bucket, str) and bucket:
        key = params.get("key")
        out.append(f"s3://{bucket}/{key}" if isinstance(key, str) and key else f"s3://{bucket}")
    for name in _RESOURCE_PARAMETERS:
        v = params.get(name)
        out.extend(x for x in (v if isinstance(v, list) else [v]) if x not in (None, "") and not isinstance(x, dict))
    return out


def _free_text(v: Any) -> Any:
    # a user agent or error message may carry a credential (a signed URL, a key in a message)
    return redact_text(v) if isinstance(v, str) else v


__all__ = ["FAMILY", "NAME", "fast", "is_record", "record_row", "rows", "sniff", "sniff_lines"]
