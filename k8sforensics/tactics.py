"""The kill-chain phases and the default phase of each ATT&CK tactic, declared once: the
built-in rules, Sigma and Falco rules, and the vendor alert formats all place a tactic in a phase
with this table (Lockheed Martin's Cyber Kill Chain; tactics as MITRE ATT&CK names them,
https://attack.mitre.org/tactics/enterprise/)."""

from __future__ import annotations

PHASES = (
    "Reconnaissance",
    "Weaponization",
    "Delivery",
    "Exploitation",
    "Installation",
    "Command & Control",
    "Actions on Objectives",
)
# Default phase of a tactic (the kill-chain phase a tactic usually belongs to); rules override it where the judgement differs.
TACTIC_PHASES = {
    "Reconnaissance": "Reconnaissance",
    "Resource Development": "Weaponization",
    "Initial Access": "Delivery",
    "Execution": "Exploitation",
    "Persistence": "Installation",
    "Privilege Escalation": "Exploitation",
    "Defense Evasion": "Installation",
    "Stealth": "Installation",
    "Defense Impairment": "Installation",
    "Credential Access": "Actions on Objectives",
    "Discovery": "Actions on Objectives",
    "Lateral Movement": "Actions on Objectives",
    "Collection": "Actions on Objectives",
    "Exfiltration": "Actions on Objectives",
    "Impact": "Actions on Objectives",
    "Command and Control": "Command & Control",
}
