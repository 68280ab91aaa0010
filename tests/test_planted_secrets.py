"""No credential leaves the evidence: credentials planted at every site the README names, in
every family, are found nowhere in what the toolkit writes or returns — the case's tables
decoded, its files' raw bytes, the quarantine, the findings, the remediation YAML and
checklist, the HTML reports and executed notebooks, and what the loaders return."""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from pathlib import Path
from typing import Any

import pytest

import k8sforensics as kf
import k8sforensics.ingest
from k8sforensics.sources.redact import redacted

T = "2024-05-10T10:00:{:02d}Z"


def _token(prefix: str = "") -> str:
    return prefix + secrets.token_hex(16)


class Plant:
    """Planted values, by the site they were planted at."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def __call__(self, site: str, value: str | None = None) -> str:
        self.values[site] = value or _token()
        return self.values[site]


def audit_event(
    n: int,
    *,
    verb: str,
    uri: str,
    resource: str,
    name: str = "x",
    namespace: str = "shop",
    subresource: str | None = None,
    request: Any = None,
    response: Any = None,
    user: str = "alice",
) -> dict[str, Any]:
    ref = {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"}
    if subresource:
        ref["subresource"] = subresource
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"plant-{n}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.9"],
        "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        "objectRef": ref,
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": T.format(n),
        "stageTimestamp": T.format(n),
    }
    if request is not None:
        event["requestObject"] = request
    if response is not None:
        event["responseObject"] = response
    return event


def write_evidence(root: Path, plant: Plant) -> None:
    (root / "audit").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "runtime").mkdir()
    b64 = base64.b64encode(plant("secret data (audit create)").encode()).decode()
    plant.values["secret data (audit create)"] = b64
    secret = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": "db",
            "namespace": "shop",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"kind": "Secret", "data": {"pw": b64}})
            },
        },
        "data": {"pw": b64},
        "stringData": {"token": plant("secret stringData")},
    }
    env = [
        {"name": "DB_PASSWORD", "value": plant("pod env *PASSWORD*")},
        {"name": "API_TOKEN", "value": plant("pod env *TOKEN*")},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {
            "serviceAccountName": "web",
            "nodeName": "node-1",
            "containers": [{"name": "web", "image": "web:1", "env": env}],
        },
    }
    deploy = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "api:1",
                            "env": [
                                {"name": "SECRET_KEY", "value": plant("deployment env *SECRET*")},
                                {"name": "STRIPE_KEY", "value": plant("deployment env *KEY*")},
                            ],
                        }
                    ]
                }
            }
        },
    }
    aws_id = "AKIA" + secrets.token_hex(8).upper()
    configmap = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "app", "namespace": "shop"},
        "data": {
            "DATABASE_URL": f"jdbc:postgresql://db:5432/app?user=app&password={plant('configmap jdbc password')}",
            "aws.conf": f"aws_access_key_id = {plant('configmap aws key id', aws_id)}\naws_secret_access_key = {plant('configmap aws secret key')}",
            "tls.key": "-----BEGIN RSA PRIVATE KEY-----\n"
            + plant("configmap private key", secrets.token_hex(48))
            + "\n-----END RSA PRIVATE KEY-----\n",
        },
    }
    watch_b64 = base64.b64encode(plant("watch event secret data").encode()).decode()
    plant.values["watch event secret data"] = watch_b64
    events = [
        audit_event(
            1,
            verb="create",
            uri="/api/v1/namespaces/shop/secrets",
            resource="secrets",
            name="db",
            request=secret,
            response=secret,
        ),
        audit_event(
            2,
            verb="watch",
            uri="/api/v1/namespaces/shop/secrets?watch=true",
            resource="secrets",
            response={
                "type": "ADDED",
                "object": {"kind": "Secret", "metadata": {"name": "db2"}, "data": {"k": watch_b64}},
            },
        ),
        audit_event(
            3, verb="list", uri=f"/api/v1/namespaces?token={plant('requestURI ?token=')}", resource="namespaces"
        ),
        audit_event(
            4,
            verb="create",
            uri=(
                "/api/v1/namespaces/shop/pods/web-1/exec?command=curl&command=-H&command=Authorization%3A+Bearer+"
                f"{plant('exec command bearer token')}&command=https%3A%2F%2Fkubernetes.default&stdin=true"
            ),
            resource="pods",
            name="web-1",
            subresource="exec",
            user="mallory",
        ),
        audit_event(
            5,
            verb="create",
            uri="/api/v1/namespaces/shop/pods",
            resource="pods",
            name="web-1",
            request=pod,
            response=pod,
        ),
        audit_event(
            6,
            verb="create",
            uri="/apis/apps/v1/namespaces/shop/deployments",
            resource="deployments",
            name="api",
            request=deploy,
        ),
        audit_event(
            7,
            verb="create",
            uri="/api/v1/namespaces/shop/configmaps",
            resource="configmaps",
            name="app",
            request=configmap,
        ),
        audit_event(
            8,
            verb="create",
            uri="/api/v1/namespaces/shop/serviceaccounts/web/token",
            resource="serviceaccounts",
            name="web",
            subresource="token",
            response={
                "kind": "TokenRequest",
                "status": {"token": plant("TokenRequest token"), "expirationTimestamp": "2024-05-10T11:00:00Z"},
            },
        ),
        audit_event(
            9,
            verb="create",
            uri="/apis/authentication.k8s.io/v1/tokenreviews",
            resource="tokenreviews",
            request={"kind": "TokenReview", "spec": {"token": plant("TokenReview token")}},
        ),
    ]
    lines = [json.dumps(e) for e in events]
    truncated = json.dumps(
        audit_event(
            10,
            verb="create",
            uri="/api/v1/namespaces/shop/secrets",
            resource="secrets",
            request={"kind": "Secret", "data": {"a": plant("truncated audit record")}},
        )
    )
    lines.append(truncated[: truncated.index(plant.values["truncated audit record"]) + 20])
    (root / "audit" / "audit.log").write_text("\n".join(lines) + "\n")
    # GKE: the request rides in protoPayload
    gke_b64 = base64.b64encode(plant("GKE wrapper secret data").encode()).decode()
    plant.values["GKE wrapper secret data"] = gke_b64
    gke = {
        "insertId": "g1",
        "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "dev@example.com"},
            "methodName": "io.k8s.core.v1.secrets.create",
            "resourceName": "core/v1/namespaces/shop/secrets/db3",
            "requestMetadata": {"callerIp": "203.0.113.20"},
            "serviceName": "k8s.io",
            "status": {},
            "request": {
                "@type": "core.k8s.io/v1.Secret",
                "kind": "Secret",
                "metadata": {"name": "db3"},
                "data": {"x": gke_b64},
            },
        },
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "gke-prod"}},
        "timestamp": T.format(11),
    }
    (root / "audit" / "gke.jsonl").write_text(json.dumps(gke) + "\n")
    # kubectl dumps: Secrets without kind (one per line, and in a List), a Pod and a ConfigMap
    loose = base64.b64encode(plant("kubectl Secret without kind (JSON lines)").encode()).decode()
    plant.values["kubectl Secret without kind (JSON lines)"] = loose
    in_list = base64.b64encode(plant("kubectl Secret without kind (List)").encode()).decode()
    plant.values["kubectl Secret without kind (List)"] = in_list
    (root / "inventory" / "secrets.jsonl").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "metadata": {"name": "s1", "namespace": "shop"},
                "type": "Opaque",
                "data": {"k": loose},
            }
        )
        + "\n"
    )
    (root / "inventory" / "list.json").write_text(
        json.dumps(
            {
                "kind": "List",
                "apiVersion": "v1",
                "items": [
                    {
                        "apiVersion": "v1",
                        "metadata": {"name": "s2", "namespace": "shop"},
                        "type": "Opaque",
                        "data": {"k": in_list},
                    },
                    {**pod, "status": {"phase": "Running", "podIP": "10.0.1.5"}},
                    {**configmap, "data": {"PRIVATE_KEY": plant("kubectl ConfigMap credential-named value")}},
                    {
                        "kind": "Secret",
                        "apiVersion": "v1",
                        "metadata": {"name": "s3", "namespace": "shop"},
                        "data": {"k": plant("kubectl Secret dump data")},
                    },
                ],
            }
        )
    )
    # runtime: command lines carrying credentials
    falco = {
        "hostname": "node-1",
        "priority": "Notice",
        "rule": "Terminal shell in container",
        "source": "syscall",
        "time": "2024-05-10T10:00:20Z",
        "output": f"10:00:20: Notice shell (cmdline=mysql -u root --password={plant('falco --password=')} -h db)",
        "output_fields": {
            "container.id": "3f1b2c4d5e6f",
            "k8s.ns.name": "shop",
            "k8s.pod.name": "web-1",
            "proc.cmdline": f"mysql -u root --password={plant.values['falco --password=']} -h db",
            "proc.exepath": "/usr/bin/mysql",
        },
    }
    (root / "runtime" / "falco.jsonl").write_text(json.dumps(falco) + "\n")
    aws_secret = plant("tetragon AWS secret key", secrets.token_urlsafe(30))
    tetragon = {
        "process_exec": {
            "process": {
                "exec_id": "ZXhlYzE=",
                "pid": 7,
                "uid": 0,
                "cwd": "/",
                "binary": "/usr/bin/env",
                "arguments": f"AWS_SECRET_ACCESS_KEY={aws_secret} aws s3 ls",
                "start_time": "2024-05-10T10:00:21Z",
                "pod": {
                    "namespace": "shop",
                    "name": "web-1",
                    "container": {"id": "containerd://" + "ab" * 32, "name": "web"},
                },
            },
            "parent": {
                "exec_id": "cGFyZW50",
                "pid": 6,
                "binary": "/bin/sh",
                "arguments": f'-c "psql postgres://app:{plant("tetragon parent basic-auth URL")}@db/app"',
            },
        },
        "node_name": "node-1",
        "time": "2024-05-10T10:00:21Z",
    }
    (root / "runtime" / "tetragon.jsonl").write_text(json.dumps(tetragon) + "\n")
    # flows: an HTTP URL carrying a token in its query (Hubble L7)
    (root / "flows").mkdir()
    hubble = {
        "flow": {
            "time": "2024-05-10T10:00:22Z",
            "verdict": "FORWARDED",
            "IP": {"source": "10.0.1.5", "destination": "10.0.2.9"},
            "l4": {"TCP": {"source_port": 40000, "destination_port": 8080}},
            "source": {"namespace": "shop", "pod_name": "web-1"},
            "destination": {"namespace": "pay", "pod_name": "api-1"},
            "l7": {
                "type": "REQUEST",
                "http": {
                    "method": "GET",
                    "url": f"http://api:8080/v1/pay?access_token={plant('hubble HTTP URL ?access_token=')}",
                },
            },
            "Type": "L7",
            "node_name": "node-1",
        },
        "node_name": "node-1",
        "time": "2024-05-10T10:00:22Z",
    }
    (root / "flows" / "hubble.jsonl").write_text(json.dumps(hubble) + "\n")


def every_text(case: kf.Case) -> dict[str, str]:
    """Every table of the case decoded to text, and every file's raw bytes."""
    out = {}
    for name in (*kf.case.TABLES,):
        out[f"table {name}"] = case.table(name, max_rows=None).to_json(orient="records", default_handler=str)
    for name in kf.case.CONTEXT_TABLES:
        out[f"context {name}"] = case.context(name).to_json(orient="records", default_handler=str)
    out["findings"] = case.findings().to_json(orient="records", default_handler=str)
    out["quarantine"] = case.quarantine().to_json(orient="records", default_handler=str)
    for path in sorted(case.path.rglob("*")):
        if path.is_file():
            out[f"file {path.relative_to(case.path)}"] = path.read_bytes().decode("latin-1")
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[kf.Case, Plant, Path]:
    root = tmp_path_factory.mktemp("planted")
    plant = Plant()
    write_evidence(root / "evidence", plant)
    case = kf.Case.create(root / "case", cluster="lab")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, root / "evidence")
    kf.detect(case)
    kf.write_remediation(case)
    return case, plant, root


def leaks(texts: dict[str, str], plant: Plant) -> list[str]:
    return [
        f"{site} → {where}" for site, value in plant.values.items() for where, text in texts.items() if value in text
    ]


def test_every_planted_value_reached_the_case_as_its_stand_in(planted: tuple[kf.Case, Plant, Path]) -> None:
    case, plant, _ = planted
    texts = every_text(case)
    everything = "\n".join(texts.values())
    # the planting worked: each site's record is in the case (as a row or a quarantine entry) ...
    assert case.table("audit").shape[0] >= 10 and case.table("runtime").shape[0] >= 2 and len(case.quarantine()) >= 1
    assert case.table("flows")["http_url"].notna().any()
    # ... and each value can be found again by its stand-in, except where a larger value
    # around it was replaced whole (a private-key block, a command line's keyword value), the
    # record was cut inside it (the truncated record) or the loader keeps no Secret data at all
    # (kubectl dumps keep Secrets as metadata only)
    whole = {
        "configmap private key",
        "truncated audit record",
        "kubectl Secret dump data",
        "kubectl Secret without kind (JSON lines)",
        "kubectl Secret without kind (List)",
        "configmap aws secret key",
        "configmap aws key id",
        "tetragon parent basic-auth URL",
    }
    missing = [site for site, value in plant.values.items() if redacted(value) not in everything and site not in whole]
    assert missing == []


def test_no_planted_value_in_the_case(planted: tuple[kf.Case, Plant, Path]) -> None:
    case, plant, _ = planted
    assert leaks(every_text(case), plant) == []


def test_no_planted_value_from_the_loaders(planted: tuple[kf.Case, Plant, Path]) -> None:
    _, plant, root = planted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frames = {
            "read_audit": kf.read_audit(root / "evidence" / "audit"),
            "read_runtime": kf.read_runtime(root / "evidence" / "runtime"),
            "read_inventory": kf.read_inventory(root / "evidence" / "inventory").pods,
            "read_flows": kf.read_flows(root / "evidence" / "flows"),
        }
    assert leaks({k: v.to_json(orient="records", default_handler=str) for k, v in frames.items()}, plant) == []


def test_the_manifest_counts_what_was_redacted(planted: tuple[kf.Case, Plant, Path]) -> None:
    case, _, _ = planted
    counts: dict[str, int] = {}
    for ingest in case.manifest["ingests"]:
        for i in ingest["inputs"]:
            for rule, n in (i.get("redactions") or {}).items():
                counts[rule] = counts.get(rule, 0) + n
        for rule, n in (ingest.get("quarantine_redactions") or {}).items():
            counts[rule] = counts.get(rule, 0) + n
    for rule in ("secret-data", "credential-env", "named-value", "token", "auth-header", "private-key"):
        assert counts.get(rule, 0) > 0, (rule, counts)


@pytest.mark.slow
def test_no_planted_value_in_the_reports(planted: tuple[kf.Case, Plant, Path]) -> None:
    case, plant, _ = planted
    from k8sforensics.views.report import run_report

    pages = run_report(case.path)
    texts = {str(p): p.read_text() for p in pages} | {
        str(p): p.read_text() for p in (case.path / "report").glob("*.ipynb")
    }
    assert len(texts) >= 6
    assert leaks(texts, plant) == []


def test_keep_secrets_is_recorded_and_the_report_refuses(tmp_path: Path) -> None:
    plant = Plant()
    write_evidence(tmp_path / "evidence", plant)
    case = kf.Case.create(tmp_path / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, tmp_path / "evidence" / "audit", keep_secrets=True)
    m = case.manifest
    assert m["secrets_kept"] is True and m["ingests"][0]["args"]["keep_secrets"] is True
    assert all(i["secrets_kept"] and not i["redactions"] for i in m["ingests"][0]["inputs"])
    assert plant.values["requestURI ?token="] in case.audit().to_json()  # kept, as asked
    from k8sforensics.views.report import ReportError, run_report

    with pytest.raises(ReportError, match="--keep-secrets"):
        run_report(case.path)
