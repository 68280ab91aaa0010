"""Views: plotly figures, escaped HTML pieces, ipywidgets panels and the HTML report.
Figures are returned, never displayed."""

from __future__ import annotations

from .checklist import checklist_html, checklist_panel
from .explorer import kill_chain_explorer
from .network import (
    lateral_movement_figure,
    lateral_movement_panel,
    write_cytoscape_json,
    write_graphml,
)
from .summary import Summary, executive_summary, summary_html
from .timeline import escape, figure_html, kill_chain_figure, narrative_html, table_html

__all__ = [
    "Summary",
    "checklist_html",
    "checklist_panel",
    "escape",
    "executive_summary",
    "figure_html",
    "kill_chain_explorer",
    "kill_chain_figure",
    "lateral_movement_figure",
    "lateral_movement_panel",
    "narrative_html",
    "summary_html",
    "table_html",
    "write_cytoscape_json",
    "write_graphml",
]
