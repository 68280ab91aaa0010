"""The pySigma processing pipeline that maps Sigma rules onto the case's tables.

Two log sources are read (https://sigmahq.io/docs/basics/log-sources.html):
``product: kubernetes, service: audit`` → the ``audit`` table, and ``product: linux, category:
process_creation`` → the ``runtime`` table's ``exec`` events. Sigma field names are mapped onto
our columns with pySigma's ``FieldMappingTransformation``; ``requestObject.*`` and
``responseObject.*`` become paths inside the stored JSON bodies (``request_object.*``,
``response_object.*``). A rule from another log source, or one that names a field with no
mapping, fails in the pipeline with the reason it is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
    FieldPrefixMappingTransformation,
    PreprocessingTransformation,
    SetStateTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

AUDIT_FIELDS = {
    "verb": "verb",
    "requestURI": "request_uri",
    "stage": "stage",
    "level": "level",
    "auditID": "audit_id",
    "objectRef.resource": "resource",
    "objectRef.subresource": "subresource",
    "objectRef.namespace": "object_namespace",
    "objectRef.name": "object_name",
    "objectRef.apiGroup": "api_group",
    "objectRef.apiVersion": "api_version",
    "user.username": "user",
    "user.groups": "user_groups",
    "user.uid": "user_uid",
    "impersonatedUser.username": "impersonated_user",
    "impersonatedUser.groups": "impersonated_groups",
    "sourceIPs": "source_ips",
    "userAgent": "user_agent",
    "responseStatus.code": "response_code",
    "responseStatus.reason": "response_reason",
    "annotations.authorization.k8s.io/decision": "decision",
    "annotations.authorization.k8s.io/reason": "authz_reason",
}
PROCESS_FIELDS = {
    "Image": "process",
    "CommandLine": "cmdline",
    "ParentImage": "parent_process",
    "ParentCommandLine": "parent_cmdline",
    "User": "user_name",
    "CurrentDirectory": "cwd",
    "ProcessId": "pid",
    "ParentProcessId": "ppid",
}
# Sigma's audit-event body fields → the columns that store those bodies as JSON text
JSON_PREFIXES = {"requestObject.": "request_object.", "responseObject.": "response_object."}
# the columns a keyword (a value without a field) is matched against
KEYWORD_COLUMNS = {
    "audit": ["request_uri", "user_agent", "request_object"],
    "runtime": ["cmdline", "parent_cmdline", "process"],
}


def audit_source() -> LogsourceCondition:
    """Kubernetes audit events (a condition belongs to one processing item: one each)."""
    return LogsourceCondition(product="kubernetes", service="audit")


def exec_source() -> LogsourceCondition:
    """Process creation on Linux."""
    return LogsourceCondition(product="linux", category="process_creation")


class UnmappedFieldsError(SigmaTransformationError):
    """A rule names fields the pipeline has no column for (``fields``)."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__("fields with no column mapping: " + ", ".join(fields))
        self.fields = fields


@dataclass
class RequireMappedFields(PreprocessingTransformation):
    """Fail a rule that names a field outside ``known`` (nor under one of ``prefixes``): such a
    field would silently match nothing."""

    known: list[str]
    prefixes: list[str] = field(default_factory=list)

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            names = {f for d in rule.detection.detections.values() for f in _fields(d)}
        else:
            ref = getattr(rule.condition, "fieldref", None)
            names = set(rule.group_by or []) | ({ref} if isinstance(ref, str) else set(ref or []))
        unmapped = sorted(f for f in names if f not in self.known and not f.startswith(tuple(self.prefixes)))
        if unmapped:
            raise UnmappedFieldsError(unmapped)


@dataclass
class UnreadLogsource(PreprocessingTransformation):
    """Fail a rule whose log source no table holds, naming it."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        if isinstance(rule, SigmaRule):
            ls = rule.logsource
            raise SigmaTransformationError(f"log source {ls.product}/{ls.category or ls.service} is not read")
        raise SigmaTransformationError("the correlated rules' log source is not read")


def _fields(detection: SigmaDetection | SigmaDetectionItem) -> list[str]:
    if isinstance(detection, SigmaDetectionItem):
        return [detection.field] if detection.field is not None else []
    return [f for item in detection.detection_items for f in _fields(item)]


def case_pipeline(
    *, audit_fields: Mapping[str, str] | None = None, process_fields: Mapping[str, str] | None = None
) -> ProcessingPipeline:
    """The pipeline for the case's tables; ``audit_fields`` and ``process_fields`` extend (and
    may override) ``AUDIT_FIELDS`` and ``PROCESS_FIELDS``."""
    amap = {**AUDIT_FIELDS, **(audit_fields or {})}
    pmap = {**PROCESS_FIELDS, **(process_fields or {})}
    return ProcessingPipeline(
        name="k8sforensics case tables",
        priority=20,
        items=[
            ProcessingItem(
                identifier="unread_logsource",
                transformation=UnreadLogsource(),
                rule_conditions=[audit_source(), exec_source()],
                rule_condition_linking=any,
                rule_condition_negation=True,
            ),
            # audit events: https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/#audit-k8s-io-v1-Event
            ProcessingItem(
                identifier="audit_known_fields",
                transformation=RequireMappedFields(known=list(amap), prefixes=list(JSON_PREFIXES)),
                rule_conditions=[audit_source()],
            ),
            ProcessingItem(
                identifier="audit_fields",
                transformation=FieldMappingTransformation(dict(amap)),
                rule_conditions=[audit_source()],
            ),
            ProcessingItem(
                identifier="audit_bodies",
                transformation=FieldPrefixMappingTransformation(dict(JSON_PREFIXES)),
                rule_conditions=[audit_source()],
            ),
            ProcessingItem(
                identifier="audit_table",
                transformation=SetStateTransformation("table", "audit"),
                rule_conditions=[audit_source()],
            ),
            # process creation: the runtime table's exec events (Falco, Tetragon, Tracee process executions)
            ProcessingItem(
                identifier="exec_known_fields",
                transformation=RequireMappedFields(known=list(pmap)),
                rule_conditions=[exec_source()],
            ),
            ProcessingItem(
                identifier="exec_fields",
                transformation=FieldMappingTransformation(dict(pmap)),
                rule_conditions=[exec_source()],
            ),
            ProcessingItem(
                identifier="exec_only",
                transformation=AddConditionTransformation({"event_type": "exec"}),
                rule_conditions=[exec_source()],
            ),
            ProcessingItem(
                identifier="exec_table",
                transformation=SetStateTransformation("table", "runtime"),
                rule_conditions=[exec_source()],
            ),
        ],
    )


__all__ = ["AUDIT_FIELDS", "JSON_PREFIXES", "KEYWORD_COLUMNS", "PROCESS_FIELDS", "UnmappedFieldsError", "case_pipeline"]
