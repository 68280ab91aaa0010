"""k8sforensics: investigate a breached Kubernetes cluster from its evidence.

    import k8sforensics as kf
    df = kf.read_audit("audit-logs/")               # any audit format, auto-detected
    case = kf.Case.create("case/")                  # or kf.Case.open("case/")
    print(kf.ingest(case, ["audit-logs/", "eks.json.gz"]))
    case.audit(start="2024-05-01", namespace="prod")
    kf.enrich(case.flows(), case)                   # both ends as the pods that held the addresses then
    case.sql("select user, count(*) from audit group by user")
    findings = kf.detect(case)                      # rules → findings.parquet
    print(kf.narrative(kf.kill_chain(case)))        # the attack in kill-chain order
    kf.remediation(case); kf.write_remediation(case)  # what to do, and the objects that do it

The names here are what a notebook needs; the rest is importable from the subpackages
(``k8sforensics.detect``, ``.analysis``, ``.context``, ``.remediation``, ``.views``, ``.errors``).
"""

from __future__ import annotations

from .analysis import (
    attack_scope,
    blast_radius,
    edges_to_cut,
    kill_chain,
    lateral_movement,
    narrative,
    paths,
    patient_zero,
)
from .case import Case
from .context import attribute, read_inventory
from .context.enrich import enrich
from .detect import detect
from .errors import CaseError, K8sForensicsError
from .ingest import ingest
from .ingest.loaders import read_alerts, read_audit, read_cloud, read_flows, read_runtime
from .remediation import remediation, write_remediation
from .version import __version__

__all__ = [
    "__version__",
    "Case",
    "CaseError",
    "K8sForensicsError",
    "attack_scope",
    "attribute",
    "blast_radius",
    "detect",
    "edges_to_cut",
    "enrich",
    "ingest",
    "kill_chain",
    "lateral_movement",
    "narrative",
    "paths",
    "patient_zero",
    "read_alerts",
    "read_audit",
    "read_cloud",
    "read_flows",
    "read_inventory",
    "read_runtime",
    "remediation",
    "write_remediation",
]
