"""Live collection end to end: the real ``kubernetes`` client against an API server started on
loopback that serves recorded real object lists (../shared/real_samples) with pagination and a
bearer-token check."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

import k8sforensics as kf
from k8sforensics.cli import main
from k8sforensics.context import collect_inventory
from k8sforensics.context.collect import KINDS, CollectionError

TOKEN = "test-token-123"
# `kubectl apply` of a Secret leaves its values in the annotation, which metadata-only lists return
LAST_APPLIED_SECRET = (
    '{"apiVersion":"v1","data":{"password":"c2VjcmV0"},"kind":"Secret","metadata":{"name":"db","namespace":"default"}}'
)
CSR_PEM_B64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlJQ1ZqQ0NBVDRDQVFBd0VURVBNQTBHQTFVRUF3d0dZWFIwWVdOcgotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K"
CERT_PEM_B64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURFekNDQWZ1Z0F3SUJBZ0lVU3l5M3I5WU4xUUdXejVsYTNXOTEyNHJINFJzd0RRWUpLb1pJaHZjTkFRRUwKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="


def recorded(real_samples: Path) -> dict[str, list]:
    """API path → items, from the recorded kubectl dumps (kinds not recorded serve empty lists)."""
    by_kind: dict[str, list] = {}
    for f in sorted((real_samples / "k8s-object-lists").glob("troubleshoot-*.json")):
        doc = json.loads(f.read_text())
        kind = doc["kind"].removesuffix("List")
        by_kind.setdefault(kind, []).extend(doc["items"])
    by_kind.setdefault("Secret", []).append(
        {
            "metadata": {
                "name": "db",
                "namespace": "default",
                "uid": "s1",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED_SECRET},
            },
            "type": "Opaque",
            "data": {"password": "c2VjcmV0"},
        }
    )
    by_kind.setdefault("CertificateSigningRequest", []).append(
        {
            "metadata": {"name": "csr-x", "uid": "c1"},
            "spec": {"request": CSR_PEM_B64, "signerName": "kubernetes.io/kube-apiserver-client"},
            "status": {"certificate": CERT_PEM_B64},
        }
    )
    return {path: by_kind.get(list_kind.removesuffix("List"), []) for _, path, list_kind in KINDS}


class FakeAPI(BaseHTTPRequestHandler):
    paths: ClassVar[dict[str, list]] = {}
    seen: ClassVar[list[tuple[str, str, str]]] = []
    deny: ClassVar[set[str]] = set()

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        self.seen.append((url.path, q.get("limit", [""])[0], self.headers.get("Accept", "")))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
        if url.path in self.deny:
            return self._send(403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
        if url.path == "/version":
            return self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.2+k3s1"})
        if url.path not in self.paths:
            return self._send(404, {"kind": "Status", "code": 404})
        items = self.paths[url.path]
        start = int(q.get("continue", ["0"])[0])
        limit = int(q.get("limit", ["500"])[0])
        page = items[start : start + limit]
        if url.path.endswith("/secrets") and "as=PartialObjectMetadataList" in self.headers.get("Accept", ""):
            page = [{"metadata": i["metadata"]} for i in page]  # what a real server answers
        meta = {"resourceVersion": "1"} | ({"continue": str(start + limit)} if start + limit < len(items) else {})
        self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": page})

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def api(real_samples: Path, tmp_path: Path):
    FakeAPI.paths, FakeAPI.seen, FakeAPI.deny = recorded(real_samples), [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "lab",
                "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "users": [{"name": "ir", "user": {"token": TOKEN}}, {"name": "bad", "user": {"token": "wrong"}}],
                "contexts": [
                    {"name": "lab", "context": {"cluster": "lab", "user": "ir"}},
                    {"name": "stale", "context": {"cluster": "lab", "user": "bad"}},
                ],
            }
        )
    )
    yield kubeconfig
    server.shutdown()


def test_collect_pages_through_everything_and_the_inventory_reads_it(api: Path, tmp_path: Path) -> None:
    record = collect_inventory(tmp_path / "snap", kubeconfig=str(api), page_size=2)
    assert record["server_version"]["gitVersion"] == "v1.31.2+k3s1" and record["read_only"]
    pods_pages = [s for s in FakeAPI.seen if s[0] == "/api/v1/pods"]
    assert (
        len(pods_pages) == (record["counts"]["pods"] + 1) // 2 and record["counts"]["pods"] == 18
    )  # limit/continue followed
    secrets = [s for s in FakeAPI.seen if s[0] == "/api/v1/secrets"]
    assert all("PartialObjectMetadataList" in s[2] for s in secrets)
    snap = (tmp_path / "snap" / "secrets.json").read_text()
    assert "c2VjcmV0" not in snap and '"db"' in snap and "REDACTED:sha256=" in snap  # nor in last-applied-configuration
    assert record["redactions"]["last-applied"] == 1
    csr = json.loads((tmp_path / "snap" / "certificatesigningrequests.json").read_text())["items"][0]
    assert (
        csr["status"]["certificate"] == CERT_PEM_B64 and csr["spec"]["request"] == CSR_PEM_B64
    )  # public material is kept
    assert (
        record["counts"]["mutatingwebhookconfigurations"] == 0
        and (tmp_path / "snap" / "validatingwebhookconfigurations.json").is_file()
    )
    inv = kf.read_inventory(tmp_path / "snap")
    assert len(inv.pods) == 18 and len(inv.nodes) == 2
    assert "managedFields" not in (tmp_path / "snap" / "pods.json").read_text()


def test_actionable_errors(api: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CollectionError, match="401 Unauthorized"):
        collect_inventory(tmp_path / "a", kubeconfig=str(api), context="stale")
    FakeAPI.deny = {"/apis/rbac.authorization.k8s.io/v1/clusterroles"}
    with pytest.raises(CollectionError, match="may not list clusterroles"):
        collect_inventory(tmp_path / "b", kubeconfig=str(api))
    with pytest.raises(CollectionError, match="context"):
        collect_inventory(tmp_path / "c", kubeconfig=str(api), context="nope")
    assert main(["collect", "--out", str(tmp_path / "d"), "--kubeconfig", str(tmp_path / "missing")]) == 2
    assert "kubeconfig" in capsys.readouterr().err


def test_timeout_is_reported(tmp_path: Path) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": f"http://127.0.0.1:{silent.getsockname()[1]}"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "u"}}],
            }
        )
    )
    with pytest.raises(CollectionError, match="no answer"):
        collect_inventory(tmp_path / "t", kubeconfig=str(cfg), timeout=0.5)
    silent.close()


def test_the_clusterrole_grants_exactly_get_and_list_of_every_kind_collected() -> None:
    import yaml

    role = yaml.safe_load((Path(kf.__file__).parent / "context" / "collector-clusterrole.yaml").read_text())
    granted = {
        (g, r) for rule in role["rules"] if "resources" in rule for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert all(sorted(rule["verbs"]) == (["get", "list"] if "resources" in rule else ["get"]) for rule in role["rules"])
    # /api/v1/<resource> is the core group ""; /apis/<group>/<version>/<resource> the others
    needed = {
        ("", p.split("/")[3]) if p.startswith("/api/") else (p.split("/")[2], p.split("/")[4]) for _, p, _ in KINDS
    }
    assert needed == granted
