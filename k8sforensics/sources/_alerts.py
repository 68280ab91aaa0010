"""What the vendor alert formats (GuardDuty, Defender for Containers, Security Command Center)
share: reading a key in either spelling, tactic names, the tactic → kill-chain phase table, and
how a vendor's own mapping and a format's declared table combine into the technique columns.

The tactic → phase table is ``k8sforensics.tactics.TACTIC_PHASES``, the one the rules use.
"""

from __future__ import annotations

import re
from typing import Any

from ..tactics import TACTIC_PHASES
from ._values import text
from .protocol import BadRecord

# (Threat Matrix for Kubernetes id or None, ATT&CK id or None, tactic or None)
Mapping = tuple[str | None, str | None, str | None]

_BY_WORDS = {re.sub(r"[^a-z]", "", t.lower()): t for t in TACTIC_PHASES}
_ATTACK_ID = re.compile(r"T\d{4}(?:\.\d{3})?")


def key(record: Any, name: str) -> Any:
    """``record[name]`` in camelCase or PascalCase (``aws guardduty get-findings`` and Defender's
    continuous export write PascalCase, EventBridge and the ARM API camelCase); None if absent."""
    if not isinstance(record, dict):
        return None
    if name in record:
        return record[name]
    return record.get(name[:1].upper() + name[1:], record.get(name[:1].lower() + name[1:]))


def path(record: Any, *names: str) -> Any:
    """The value at ``names`` (each key in either spelling), None where a step is missing."""
    for name in names:
        record = key(record, name)
        if record is None:
            return None
    return record


def tactic(value: Any) -> str | None:
    """A vendor's spelling of an ATT&CK tactic (``PrivilegeEscalation``, ``PRIVILEGE_ESCALATION``,
    ``Command And Control``) as the tactic's name; None for anything that is not one (Defender's
    ``Exploitation``/``Probing``/``PreAttack`` intents, GuardDuty's ``Recon``)."""
    if not isinstance(value, str):
        return None
    return _BY_WORDS.get(re.sub(r"[^a-z]", "", value.lower()))


def first_tactic(values: Any) -> str | None:
    """The first ATT&CK tactic of a list or a comma-separated text (Defender's ``Intent``)."""
    items = values.split(",") if isinstance(values, str) else values if isinstance(values, list) else []
    return next((t for t in map(tactic, items) if t), None)


def attack_id(value: Any) -> str | None:
    """An ATT&CK technique id as written (``T1610``, ``T1552.007``); None for anything else."""
    return value.strip() if isinstance(value, str) and _ATTACK_ID.fullmatch(value.strip()) else None


def technique_columns(
    declared: Mapping | None, *, vendor_tactic: str | None, vendor_attack: str | None
) -> dict[str, Any]:
    """The technique columns of an alert. The record's own mapping (what the vendor put in this
    alert) wins; the format's declared table fills what the record lacks; the Threat Matrix id
    only ever comes from the table (no vendor writes one). A type in no table keeps its
    technique null and the vendor's tactic, if it gave one."""
    ms_ta, attack, table_tactic = declared or (None, None, None)
    chosen = vendor_tactic or table_tactic
    return {
        "technique_id": ms_ta,
        "attack_id": vendor_attack or attack,
        "tactic": chosen,
        "kill_chain_phase": TACTIC_PHASES.get(chosen) if chosen else None,
    }


def vendor_time(value: Any, field: str) -> str | None:
    """A time as these vendors write it: RFC 3339 text (or absent). A number is bad input here,
    never read as epoch seconds or milliseconds: no vendor documents one, and its unit would be
    a guess. Raises ``BadRecord`` naming the field."""
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(f"field {field}: value {text(value)!s:.80} is not an RFC 3339 time")


def service_account(user: Any) -> str | None:
    """``namespace/name`` of a ``system:serviceaccount:<ns>:<name>`` user, else None."""
    if isinstance(user, str) and user.startswith("system:serviceaccount:"):
        parts = user.split(":")
        if len(parts) == 4 and parts[2] and parts[3]:
            return f"{parts[2]}/{parts[3]}"
    return None
