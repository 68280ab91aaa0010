"""Live, read-only collection of the inventory with the official ``kubernetes`` client.

Lists every kind the inventory reads, page by page (``limit``/``continue``), and writes the
same ``List`` JSON that ``kubectl get -o json`` gives, one file per kind, plus
``collection.json`` (server version, collection time, counts). Secrets are listed as
``PartialObjectMetadataList``: their values never leave the API server. Every object then goes
through the same credential redaction as ingested evidence (``sources.redact``): a Secret's
``last-applied-configuration`` annotation, env values and annotations that name a credential
are replaced by their stand-ins, counted in ``collection.json``. Public material is kept: a
CertificateSigningRequest's request and issued certificate, a webhook's ``caBundle``. The
least-privilege ClusterRole it needs ships beside this module (``collector-clusterrole.yaml``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ..errors import K8sForensicsError
from ..sources.redact import Redactions, redact

# (file name, API path, kind of the list): namespaced kinds are listed cluster-wide
KINDS: list[tuple[str, str, str]] = [
    ("namespaces", "/api/v1/namespaces", "NamespaceList"),
    ("nodes", "/api/v1/nodes", "NodeList"),
    ("pods", "/api/v1/pods", "PodList"),
    ("services", "/api/v1/services", "ServiceList"),
    ("serviceaccounts", "/api/v1/serviceaccounts", "ServiceAccountList"),
    ("secrets", "/api/v1/secrets", "SecretList"),
    ("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", "EndpointSliceList"),
    ("deployments", "/apis/apps/v1/deployments", "DeploymentList"),
    ("replicasets", "/apis/apps/v1/replicasets", "ReplicaSetList"),
    ("daemonsets", "/apis/apps/v1/daemonsets", "DaemonSetList"),
    ("statefulsets", "/apis/apps/v1/statefulsets", "StatefulSetList"),
    ("jobs", "/apis/batch/v1/jobs", "JobList"),
    ("cronjobs", "/apis/batch/v1/cronjobs", "CronJobList"),
    ("roles", "/apis/rbac.authorization.k8s.io/v1/roles", "RoleList"),
    ("rolebindings", "/apis/rbac.authorization.k8s.io/v1/rolebindings", "RoleBindingList"),
    ("clusterroles", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "ClusterRoleList"),
    ("clusterrolebindings", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "ClusterRoleBindingList"),
    ("networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicyList"),
    # what `remediate --verify` checks the attacker's objects against: admission webhooks an
    # attacker registers (MS-TA9005 persistence, ATT&CK T1546) and the CSRs of client
    # certificates it had issued (https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/)
    (
        "mutatingwebhookconfigurations",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "MutatingWebhookConfigurationList",
    ),
    (
        "validatingwebhookconfigurations",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        "ValidatingWebhookConfigurationList",
    ),
    (
        "certificatesigningrequests",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        "CertificateSigningRequestList",
    ),
]
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
PAGE = 500


class CollectionError(K8sForensicsError):
    """Live collection failed; the message says what to fix."""


def collect_inventory(
    out: str | Path,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    timeout: float = 30.0,
    page_size: int = PAGE,
) -> dict[str, Any]:
    """Snapshot the cluster's inventory into ``out`` (read-only). Returns the collection record."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    except ConfigException as e:
        raise CollectionError(
            f"kubeconfig: {e} — pass --kubeconfig FILE and --context NAME (see `kubectl config get-contexts`)"
        ) from None
    except FileNotFoundError as e:
        raise CollectionError(f"kubeconfig not found ({e.filename or kubeconfig}) — pass --kubeconfig FILE") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    version = _get(api, "/version", None, timeout)
    counts: dict[str, int] = {}
    redactions = Redactions()
    for name, path, list_kind in KINDS:
        items: list[Any] = []
        token: str | None = None
        while True:
            query = [("limit", page_size)] + ([("continue", token)] if token else [])
            page = _get(
                api, path, query, timeout, accept=METADATA_ONLY if name == "secrets" else "application/json", what=name
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        for i, item in enumerate(items):
            (item.get("metadata") or {}).pop("managedFields", None)
            if name == "secrets":
                item.pop("data", None)  # never stored, even if a server ignored the metadata-only request
                item.pop("stringData", None)
                item["kind"] = "Secret"
            items[i] = redact(item, resource=name, counts=redactions)
        document = {"kind": list_kind, "apiVersion": "v1", "metadata": {}, "items": items}
        (out / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")
        counts[name] = len(items)
    record = {
        "collected_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "server": api.configuration.host,
        "server_version": version,
        "counts": counts,
        "redactions": dict(redactions),
        "read_only": True,
    }
    (out / "collection.json").write_text(json.dumps(record, indent=1) + "\n")
    api.close()
    return record


def _get(
    api: Any,
    path: str,
    query: list[tuple[str, Any]] | None,
    timeout: float,
    *,
    accept: str = "application/json",
    what: str = "",
) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    headers = {"Accept": accept}
    try:
        if hasattr(api, "param_serialize"):  # kubernetes >= 30 (OpenAPI generator 7)
            method, url, hdrs, body, post = api.param_serialize(
                "GET", path, query_params=query or [], header_params=headers, auth_settings=["BearerToken"]
            )
            response = api.call_api(
                method, url, header_params=hdrs, body=body, post_params=post, _request_timeout=timeout
            )
            data = response.read() if hasattr(response, "read") else response.data
            status = getattr(response, "status", 200)
            if status >= 400:
                raise ApiException(status=status, reason=getattr(response, "reason", "") or _reason(status))
        else:
            response = api.call_api(
                path,
                "GET",
                query_params=query or [],
                header_params=headers,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
            data = response[0].data if isinstance(response, tuple) else response.data
        return json.loads(data)
    except ApiException as e:
        if e.status in (401, 403):
            verb_resource = f"list {what}" if what else f"get {path}"
            raise CollectionError(
                f"{api.configuration.host}{path}: {e.status} {e.reason} — the credentials may not {verb_resource}; "
                "bind the ClusterRole in k8sforensics/context/collector-clusterrole.yaml to the identity you collect with"
            ) from None
        raise CollectionError(f"{api.configuration.host}{path}: {e.status} {e.reason}") from None
    except HTTPError as e:
        raise CollectionError(
            f"{api.configuration.host}{path}: no answer ({type(e).__name__}) — check the server address and network, or raise --timeout"
        ) from None


def _reason(status: int) -> str:
    return {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(status, "error")
