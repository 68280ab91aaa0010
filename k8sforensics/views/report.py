"""Reports: the shipped notebooks run headless with papermill on a case, exported to
self-contained HTML (plotly.js inlined, code hidden unless asked for)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..case import Case
from ..errors import K8sForensicsError


class ReportError(K8sForensicsError):
    """A notebook failed while the report was being made."""


def shipped_notebooks() -> list[Path]:
    """The notebooks of this checkout (``notebooks/*.ipynb`` beside the package), in order."""
    root = Path(__file__).resolve().parent.parent.parent / "notebooks"
    return sorted(root.glob("[0-9][0-9]_*.ipynb"))


def run_report(
    case_dir: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    notebooks: list[Path] | None = None,
    parameters: Mapping[str, Any] | None = None,
    show_code: bool = False,
    kernel_name: str = "python3",
    timeout: int = 900,
    include_secrets: bool = False,
) -> list[Path]:
    """Run each notebook on the case and write ``<out>/<notebook>.html`` (and the executed
    ``.ipynb`` beside it). ``out`` defaults to ``<case>/report``. Returns the HTML paths. A case
    ingested with ``keep_secrets=True`` is refused unless ``include_secrets=True``."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    case = Path(case_dir).resolve()
    opened = Case.open(
        case
    )  # a folder that is not a case, or a damaged manifest: one clear error before any notebook runs
    if opened.manifest.get("secrets_kept") and not include_secrets:
        raise ReportError(
            f"{case}: this case was ingested with --keep-secrets and holds credentials unredacted; a report "
            f"would carry them into pages that get mailed. Pass include_secrets=True (--include-secrets) "
            f"to make one anyway"
        )
    nbs = shipped_notebooks() if notebooks is None else list(notebooks)
    if not nbs:
        raise ReportError(
            "no notebooks to run: this installation has no notebooks/ folder; pass notebooks=[...] or run from a checkout"
        )
    target = Path(out).resolve() if out is not None else case / "report"
    target.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(
        template_name="lab", exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True
    )
    written = []
    for nb in nbs:
        executed = target / nb.name
        try:
            papermill.execute_notebook(
                str(nb),
                str(executed),
                parameters={"case_dir": str(case), "interactive": False, **(parameters or {})},
                kernel_name=kernel_name,
                progress_bar=False,
                execution_timeout=timeout,
                cwd=str(nb.parent),
            )
        except papermill.PapermillExecutionError as e:
            raise ReportError(
                f"{nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue} (the partly run notebook is {executed})"
            ) from None
        body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
        page = target / (nb.stem + ".html")
        tmp = page.with_name(f".{page.name}.{os.getpid()}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, page)  # a reader (or a second report) never sees half a page
        written.append(page)
    return written
