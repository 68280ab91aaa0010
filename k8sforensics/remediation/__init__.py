"""Remediation: from findings and the lateral-movement graph to what to do, in order, and the
Kubernetes objects that do it.

    actions = kf.remediation(case)            # the checklist: preserve → contain → invalidate credentials →
                                              # eradicate → recover → harden → verify
    files = kf.write_remediation(case)        # <case>/remediation/*.yaml, checklist.csv and checklist.md
    done = verify_actions(actions, read_snapshot("after/"), case_dir=case.path)   # done / not done / not checkable
"""

from __future__ import annotations

from .actions import ACTION_COLUMNS, remediation_actions
from .admission import gatekeeper, image_repositories, kyverno
from .checklist import Checklist
from .network_policy import evaluate, network_policies, pod_labels
from .plan import ARTIFACTS, Remediation, remediation, write_remediation
from .pod_security import namespace_levels, namespace_objects, violations
from .rbac import least_privilege, unused_bindings, used_permissions
from .verify import read_snapshot, verify_actions

__all__ = [
    "ACTION_COLUMNS",
    "ARTIFACTS",
    "Checklist",
    "Remediation",
    "evaluate",
    "gatekeeper",
    "image_repositories",
    "kyverno",
    "least_privilege",
    "namespace_levels",
    "namespace_objects",
    "network_policies",
    "pod_labels",
    "read_snapshot",
    "remediation",
    "remediation_actions",
    "unused_bindings",
    "used_permissions",
    "verify_actions",
    "violations",
    "write_remediation",
]
