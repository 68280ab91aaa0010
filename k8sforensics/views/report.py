"""Reports: the shipped notebooks run headless with papermill on a case, exported to
self-contained HTML (nothing fetched from the network; plotly.js inlined once per page; code
hidden unless asked for)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from ..case import Case
from ..errors import K8sForensicsError

TEMPLATES = Path(__file__).resolve().parent / "templates"


class ReportError(K8sForensicsError):
    """A notebook failed while the report was being made."""


def shipped_notebooks() -> list[Path]:
    """The notebooks shipped in the package (``k8sforensics/notebooks``, the checkout's
    ``notebooks/``), in order."""
    root = Path(str(files("k8sforensics") / "notebooks"))
    return sorted(root.glob("[0-9][0-9]_*.ipynb"))


def copy_notebooks(out: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
    """The shipped notebooks copied into ``out`` for editing; an existing notebook there is
    kept unless ``overwrite`` (it may hold an analyst's work)."""
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for nb in shipped_notebooks():
        dest = target / nb.name
        if dest.exists() and not overwrite:
            raise ReportError(f"{dest} exists: pass overwrite=True (--force) to replace it")
        shutil.copyfile(nb, dest)
        written.append(dest)
    return written


class LocalKernelManager(AsyncKernelManager):
    """A kernel reached over Unix sockets in a private folder, not TCP on loopback: no other
    local user can connect to it (and ipykernel has no "running over TCP without encryption"
    warning to print)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sockets = tempfile.mkdtemp(prefix="k8sf-kernel-")
        self.transport = "ipc"
        self.ip = os.path.join(self._sockets, "kernel")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._sockets, ignore_errors=True)


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
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Run each notebook on the case and write ``<out>/<notebook>.html`` (and the executed
    ``.ipynb`` beside it). ``out`` defaults to ``<case>/report``. Returns the HTML paths. A case
    ingested with ``keep_secrets=True`` is refused unless ``include_secrets=True``.
    ``progress`` is called with one line before each notebook runs."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    case = Path(case_dir).resolve()
    # a folder that is not a case, or a damaged manifest: one clear error before any notebook runs
    opened = Case.open(case)
    if opened.manifest.get("secrets_kept") and not include_secrets:
        raise ReportError(
            f"{case}: this case was ingested with --keep-secrets and holds credentials unredacted; a report "
            f"would carry them into pages that get mailed. Pass include_secrets=True (--include-secrets) "
            f"to make one anyway"
        )
    nbs = shipped_notebooks() if notebooks is None else list(notebooks)
    if not nbs:
        raise ReportError("no notebooks to run: this installation ships none; pass notebooks=[...]")
    target = Path(out).resolve() if out is not None else case / "report"
    target.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(
        template_name="lab",
        extra_template_paths=[str(TEMPLATES)],
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.template_file = "k8sf_report.html.j2"
    written = []
    for n, nb in enumerate(nbs, 1):
        if progress is not None:
            progress(f"report: running {nb.stem} ({n}/{len(nbs)})")
        executed = target / nb.name
        try:
            papermill.execute_notebook(
                str(nb),
                str(executed),
                parameters={"case_dir": str(case), "interactive": False, **(parameters or {})},
                kernel_name=kernel_name,
                progress_bar=False,
                execution_timeout=timeout,
                cwd=str(target),
                kernel_manager_class=LocalKernelManager,
            )
        except papermill.PapermillExecutionError as e:
            raise ReportError(
                f"{nb.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue} (the partly run notebook is {executed})"
            ) from None
        node = nbformat.read(executed, as_version=4)
        # plotly.js once, in the page's head, for the figures written without it
        plotly = get_plotlyjs() if _has_plotly_figure(node) else ""
        body, _ = exporter.from_notebook_node(node, resources={"plotly_js": plotly})
        page = target / (nb.stem + ".html")
        tmp = page.with_name(f".{page.name}.{os.getpid()}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, page)  # a reader (or a second report) never sees half a page
        written.append(page)
    return written


def _has_plotly_figure(node: Any) -> bool:
    return any(
        "plotly-graph-div" in str(out.get("data", {}).get("text/html", ""))
        for cell in node.cells
        for out in cell.get("outputs", ())
    )
