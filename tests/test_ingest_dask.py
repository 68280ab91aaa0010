"""A distributed ingest (one task per file on a Dask LocalCluster of two workers) makes the
same case as a single-process one: the same rows in every table, the same quarantine and
counts; a task that fails is retried and leaves no partial files behind."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf

from .conftest import ROOT

distributed = pytest.importorskip("distributed")
TABLES = ["audit", "runtime", "flows", "objects", "quarantine"]
CONTEXT = ["pods", "pod_ips", "containers", "rbac", "nodes", "workloads"]


def _ingest(path: Path, **kw: object) -> kf.Case:
    case = kf.Case.create(path, cluster="prod-eu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, ROOT / "sample_data", progress=False, **kw)
    return case


def _rows(case: kf.Case, table: str) -> pd.DataFrame:
    if table in CONTEXT:
        frame = case.context(table)
    elif table == "quarantine":
        frame = case.quarantine()
    else:
        frame = case.table(table)
    frame = frame.drop(columns=[c for c in ("ingest_id",) if c in frame.columns])
    key = [
        c
        for c in ("event_id", "evidence_id", "evidence_line", "namespace", "name", "ip", "start", "container_id")
        if c in frame.columns
    ]
    return frame.astype(str).sort_values(key).reset_index(drop=True)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    return _ingest(tmp_path_factory.mktemp("single") / "case")


@pytest.mark.slow
def test_a_case_ingested_on_dask_equals_the_single_process_one(single: kf.Case, tmp_path: Path) -> None:
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        distributed.get_task_stream(client) as stream,
    ):
        spread = _ingest(tmp_path / "case", client=client)
    tasks = [t for t in stream.data if str(t["key"]).startswith("parse-")]
    assert len(tasks) == 9 and len({t["worker"] for t in tasks}) == 2  # one task per file, on both workers
    for table in TABLES + CONTEXT:
        a, b = _rows(single, table), _rows(spread, table)
        assert len(a) or table in ("rbac", "workloads"), table
        pd.testing.assert_frame_equal(a, b, obj=table)
    assert len(_rows(spread, "audit")) > 500 and len(_rows(spread, "flows")) > 1000
    one, two = single.manifest["ingests"][0], spread.manifest["ingests"][0]
    assert [(i["sha256"], i["rows"], i["quarantined"]) for i in one["inputs"]] == [
        (i["sha256"], i["rows"], i["quarantined"]) for i in two["inputs"]
    ]
    assert {t: single.manifest["tables"][t]["rows"] for t in ("audit", "flows", "runtime")} == {
        t: spread.manifest["tables"][t]["rows"] for t in ("audit", "flows", "runtime")
    }
    assert not (spread.path / "_tmp").exists()


def test_a_failed_task_is_retried_and_leaves_nothing_behind(
    single: kf.Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8sforensics.ingest import PartWriter

    real = PartWriter.write
    failed: list[str] = []

    def flaky(self, name, batch, keep=None):  # the first audit batch of the first attempt dies mid-file
        real(self, name, batch, keep)
        if self.table.name == "audit" and not failed:
            failed.append(name)
            raise OSError("worker lost")

    monkeypatch.setattr(PartWriter, "write", flaky)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        spread = _ingest(tmp_path / "case", client=client)
    assert failed  # it did fail once
    for table in ("audit", "quarantine"):
        pd.testing.assert_frame_equal(_rows(single, table), _rows(spread, table), obj=table)
    assert not (spread.path / "_tmp").exists()
