"""The JupyterLab controls work without a browser: filters redraw the figure, the entity
picker pivots to that entity's events (escaped)."""

from __future__ import annotations

import k8sforensics as kf
from k8sforensics import views


def test_filters_and_pivot(sample_case: kf.Case) -> None:
    panel = views.kill_chain_explorer(kf.kill_chain(sample_case), case=sample_case)
    window, (phase_pick, (namespace, entity)), figure, phase_table, events = (
        panel.children[0],
        (panel.children[1].children[0], panel.children[1].children[1].children),
        *panel.children[2:],
    )
    every = {t.name for t in figure.data if t.mode == "markers"}
    assert {"Reconnaissance", "Exploitation", "Actions on Objectives"} <= every
    namespace.value = "shop"
    assert {t.name for t in figure.data if t.mode == "markers"} < every
    assert "Installation" not in phase_table.value
    phase_pick.value = ("Exploitation",)
    assert {t.name for t in figure.data if t.mode == "markers"} == {"Exploitation"}
    window.index = (0, 0)  # the first instant only: the scan
    assert not [t for t in figure.data if t.mode == "markers"]
    entity.value = "shop/web-q7rclvtq89-mtpxj"
    assert "<td class='k8sf-text'>runtime</td>" in events.value and "<td class='k8sf-text'>flows</td>" in events.value
    entity.value = "(none)"
    assert events.value == ""
