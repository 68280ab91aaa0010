"""k8sforensics: investigate a breached Kubernetes cluster from its evidence.

    import k8sforensics as kf
    df = kf.read_audit("audit-logs/")               # any audit format, auto-detected
    case = kf.Case.create("case/")                  # or kf.Case.open("case/")
    print(case.ingest(["audit-logs/", "eks.json.gz"]))
    case.audit(start="2024-05-01", namespace="prod")
    case.sql("select user, count(*) from audit group by user")
    findings = kf.detect(case)                       # rules → findings.parquet
    print(kf.narrative(kf.kill_chain(case)))         # the attack in kill-chain order
    kf.remediation(case); kf.write_remediation(case)  # what to do, and the objects that do it
"""

from __future__ import annotations

from .analysis import (
    blast_radius,
    edges_to_cut,
    entity_events,
    kill_chain,
    lateral_movement,
    narrative,
    paths,
    patient_zero,
    phases,
)
from .case import Case
from .context import Inventory, attribute, collect_inventory, read_inventory
from .context.enrich import enrich
from .detect import BUILTIN_RULES, Rule, detect, load_sigma_rules
from .errors import (
    BadRecordError,
    CaseError,
    EvidenceError,
    K8sForensicsError,
    UnknownFormatError,
)
from .ingest import IngestReport
from .remediation import remediation, write_remediation
from .schema import SCHEMA_VERSION
from .sources import read_audit, read_flows, read_runtime
from .version import __version__

__all__ = [
    "__version__",
    "BUILTIN_RULES",
    "SCHEMA_VERSION",
    "BadRecordError",
    "Case",
    "CaseError",
    "EvidenceError",
    "IngestReport",
    "Inventory",
    "K8sForensicsError",
    "Rule",
    "UnknownFormatError",
    "attribute",
    "blast_radius",
    "collect_inventory",
    "detect",
    "edges_to_cut",
    "enrich",
    "entity_events",
    "kill_chain",
    "lateral_movement",
    "load_sigma_rules",
    "narrative",
    "paths",
    "patient_zero",
    "phases",
    "read_audit",
    "read_flows",
    "read_inventory",
    "read_runtime",
    "remediation",
    "write_remediation",
]
