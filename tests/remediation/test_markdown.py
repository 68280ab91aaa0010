"""checklist.md: the checklist a responder pastes into a ticket — in order, per phase, and
nothing an attacker wrote into the evidence renders as Markdown or HTML."""

from __future__ import annotations

from pathlib import Path

import mistune
import pandas as pd

import k8sforensics as kf
from k8sforensics.remediation.markdown import checklist_markdown, code, escape


def _actions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "action_id": ["a", "b"],
            "step": [1, 2],
            "priority": [1, 4],
            "phase": ["preserve evidence", "eradicate"],
            "kind": ["preserve", "delete"],
            "action": [
                "save pod x | y",
                "delete the cronjob kube-system/<img src=x onerror=alert(1)> [link](http://evil.example) **bold**",
            ],
            "target": ["pod:x", "workload:kube-system/cronjobs/x"],
            "control": ["evidence preservation", "persistence removal"],
            "why": ["", "created by `sa:x`"],
            "finding_ids": [[], ["f1"]],
            "event_ids": [[], ["e1"]],
            "references": ["", "CIS 5.1.4"],
            "command": ["kubectl get pod x -o json > preserved/x.json", "kubectl delete cronjob `whoami`"],
            "artifact": ["preserved/x.json", ""],
            "check": [None, None],
            "status": ["open", "open"],
        }
    )


def test_the_checklist_renders_in_order_with_nothing_from_the_evidence_interpreted() -> None:
    md = checklist_markdown(_actions())
    html = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(md)  # raw HTML would pass through
    assert md.index("## 1. Preserve evidence") < md.index("## 4. Eradicate")
    assert "- [ ] **2.** delete the cronjob" in md
    assert "<img" not in html and "<a href" not in html and "<strong>bold</strong>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # a command keeps every character, inside a code span no backtick in it can close
    assert "<code>kubectl delete cronjob `whoami`</code>" in html


def test_escape_and_code_spans() -> None:
    assert escape("a|b *c* <d>\nnext") == r"a\|b \*c\* \<d\> next"
    assert code("x ` y") == "``x ` y``" and code("`start") == "`` `start ``"


def test_write_puts_the_markdown_beside_the_csv(sample_case: kf.Case, tmp_path: Path) -> None:
    written = kf.write_remediation(sample_case, out=tmp_path)
    md = written["checklist.md"].read_text()
    assert md.startswith("# Remediation checklist") and "## 7. Verify" in md
    assert md.count("- [ ] **") == len(pd.read_csv(written["checklist.csv"]))
