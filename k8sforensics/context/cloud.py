"""From the cluster to the cloud: which cloud identity each Kubernetes identity or node can act
as (the ``cloud_bindings`` context table), and the join from cloud calls back to the pod or node
that made them (``cloud_sessions``, ``attribute_cloud``).

A cloud session is an issued access key (the ``issued_key_id`` of an AssumeRoleWithWebIdentity,
a Pod Identity AssumeRole, a chained AssumeRole), a node's instance-role session (session name
``i-…``), or a GKE Workload Identity delegation. The session is tied to the Kubernetes identity
the record names and, through its source address at its time, to the pod or node that used it;
every later call signed with the session's key inherits that. Nothing is guessed: a key the
evidence never issued, or an address no pod or node held then, stays unknown.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from ..frames import to_frame, utc_timestamp
from ..schema import NODES, POD_IPS, PODS
from ..sources._values import as_list, as_object
from ..sources.k8s_audit import service_account as parse_service_account
from .attribution import attribute_frame
from .networks import Network, case_networks

if TYPE_CHECKING:
    from ..case import Case

# --------------------------------------------------------------------------- bindings

# EKS IAM roles for service accounts: the role the pod's projected token may assume, and the
# token's audience (sts.amazonaws.com unless annotated otherwise).
# https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html,
# https://docs.aws.amazon.com/eks/latest/userguide/pod-configuration.html,
# annotations of the webhook that injects the token: https://github.com/aws/amazon-eks-pod-identity-webhook
IRSA_ROLE = "eks.amazonaws.com/role-arn"
IRSA_AUDIENCE = "eks.amazonaws.com/audience"
IRSA_DEFAULT_AUDIENCE = "sts.amazonaws.com"
# GKE Workload Identity: the Google service account the Kubernetes one impersonates.
# https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity
GKE_SERVICE_ACCOUNT = "iam.gke.io/gcp-service-account"
# AKS Workload Identity: the Entra application / managed identity client id on the service
# account; only pods labelled azure.workload.identity/use: "true" get the token injected.
# https://learn.microsoft.com/en-us/azure/aks/workload-identity-overview,
# https://azure.github.io/azure-workload-identity/docs/topics/service-account-labels-and-annotations.html
AZURE_CLIENT_ID = "azure.workload.identity/client-id"
AZURE_USE = "azure.workload.identity/use"
# the audience of the federated credential AKS Workload Identity tokens are exchanged for
# (https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation-create-trust)
AZURE_AUDIENCE = "api://AzureADTokenExchange"

# Node spec.providerID (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/):
# AWS aws:///<zone>/i-<hex> (https://github.com/kubernetes/cloud-provider-aws; Fargate nodes
# name no instance), GCE gce://<project>/<zone>/<instance name> (https://github.com/kubernetes/cloud-provider-gcp),
# Azure azure:///subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/...
# (https://github.com/kubernetes-sigs/cloud-provider-azure)
_AWS_PROVIDER = re.compile(r"^aws://(?:/[^/]*)?/(?P<instance>i-[0-9a-f]{8,17})$")
_GCE_PROVIDER = re.compile(r"^gce://(?P<project>[^/]+)/(?P<zone>[^/]+)/(?P<name>[^/]+)$")
_AZURE_PROVIDER = re.compile(r"^azure://(?P<id>/subscriptions/[^/]+/resourceGroups/.+)$", re.IGNORECASE)
# an EC2 instance id, which an instance-profile role session is named after
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html); ids are
# lowercase hex, but an id re-cased by an export or anonymiser is still one (compared lowercased)
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$", re.IGNORECASE)


def instance_identity(provider_id: Any) -> tuple[str, str] | None:
    """``(provider, cloud identity)`` a Node's ``spec.providerID`` names: the EC2 instance id,
    ``projects/<p>/zones/<z>/instances/<name>`` for GCE, the ARM resource id for Azure."""
    if not isinstance(provider_id, str):
        return None
    text = provider_id.strip()
    if m := _AWS_PROVIDER.match(text):
        return "aws", m.group("instance")
    if m := _GCE_PROVIDER.match(text):
        return "gcp", f"projects/{m.group('project')}/zones/{m.group('zone')}/instances/{m.group('name')}"
    if m := _AZURE_PROVIDER.match(text):
        return "azure", m.group("id")
    return None


def binding_rows(by_kind: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]) -> list[dict[str, Any]]:
    """``cloud_bindings`` rows of the parsed objects (``(object, objects row)`` per kind, as
    ``inventory.build_context`` holds them): service-account annotations and node provider ids."""
    labelled = {
        (r["cluster"], as_object(obj.get("metadata")).get("namespace"), _pod_account(obj))
        for obj, r in by_kind.get("Pod", [])
        if str(as_object(as_object(obj.get("metadata")).get("labels")).get(AZURE_USE, "")).lower() == "true"
    }
    out: list[dict[str, Any]] = []
    for obj, r in by_kind.get("ServiceAccount", []):
        out.extend(service_account_bindings(obj, r, azure_labelled=labelled))
    for obj, r in by_kind.get("Node", []):
        row = node_binding(obj, r)
        if row:
            out.append(row)
    return out


def _pod_account(obj: dict[str, Any]) -> Any:
    spec = as_object(obj.get("spec"))
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"


def _annotation(annotations: dict[str, Any], key: str) -> str | None:
    # a value that is not text (a damaged dump) binds nothing; text is kept as written
    v = annotations.get(key)
    return v.strip() if isinstance(v, str) and v.strip() else None


def service_account_bindings(
    obj: dict[str, Any], r: dict[str, Any], *, azure_labelled: set[tuple[Any, ...]] | None = None
) -> list[dict[str, Any]]:
    """The bindings a ServiceAccount's annotations declare (IRSA, GKE, AKS Workload Identity).
    ``azure_labelled``: (cluster, namespace, service account) of the pods labelled
    ``azure.workload.identity/use: "true"`` — without one the AKS binding is said to be unused."""
    md = as_object(obj.get("metadata"))
    notes = as_object(md.get("annotations"))
    base = {
        "cluster": r["cluster"],
        "namespace": md.get("namespace"),
        "service_account": md.get("name"),
        "node": None,
        "evidence_id": r.get("evidence_id"),
    }
    out = []
    if role := _annotation(notes, IRSA_ROLE):
        out.append(
            base
            | {
                "kind": "irsa",
                "provider": "aws",
                "cloud_identity": role,
                "audience": _annotation(notes, IRSA_AUDIENCE) or IRSA_DEFAULT_AUDIENCE,
                "declared_by": f"annotation {IRSA_ROLE}",
            }
        )
    if gsa := _annotation(notes, GKE_SERVICE_ACCOUNT):
        out.append(
            base
            | {
                "kind": "gke-workload-identity",
                "provider": "gcp",
                "cloud_identity": gsa,
                "audience": None,  # the pool <project>.svc.id.goog: the cluster's project, not the GSA's
                "declared_by": f"annotation {GKE_SERVICE_ACCOUNT}",
            }
        )
    if client := _annotation(notes, AZURE_CLIENT_ID):
        used = azure_labelled is None or (r["cluster"], md.get("namespace"), md.get("name")) in azure_labelled
        out.append(
            base
            | {
                "kind": "azure-workload-identity",
                "provider": "azure",
                "cloud_identity": client,
                "audience": AZURE_AUDIENCE,
                "declared_by": f"annotation {AZURE_CLIENT_ID}"
                + ("" if used else f" (no pod in the inventory labelled {AZURE_USE})"),
            }
        )
    return out


def node_binding(obj: dict[str, Any], r: dict[str, Any]) -> dict[str, Any] | None:
    """The instance identity a Node's ``spec.providerID`` names, or None."""
    found = instance_identity(as_object(obj.get("spec")).get("providerID"))
    if not found:
        return None
    return {
        "cluster": r["cluster"],
        "kind": "node-instance",
        "provider": found[0],
        "namespace": None,
        "service_account": None,
        "node": as_object(obj.get("metadata")).get("name"),
        "cloud_identity": found[1],
        "audience": None,
        "declared_by": "providerID",
        "evidence_id": r.get("evidence_id"),
    }


def pod_identity_bindings(
    dump: Any, *, cluster: str | None = None, evidence_id: str | None = None
) -> list[dict[str, Any]]:
    """``cloud_bindings`` rows of an ``aws eks describe-pod-identity-association`` answer
    (``{"association": {...}}``), a list of such answers, or ``list-pod-identity-associations``
    (``{"associations": [...]}``; its summaries name no role, so they bind nothing).
    https://docs.aws.amazon.com/eks/latest/APIReference/API_PodIdentityAssociation.html:
    namespace, serviceAccount, roleArn, associationArn, targetRoleArn (a role in another account
    the pod's session then assumes). No reader ingests such dumps yet: this maps one."""
    items = []
    for doc in as_list(dump) if isinstance(dump, list) else [dump]:
        doc = as_object(doc)
        items.extend([doc["association"]] if isinstance(doc.get("association"), dict) else [])
        items.extend(a for a in as_list(doc.get("associations")) if isinstance(a, dict))
    out = []
    for a in items:
        for key in ("roleArn", "targetRoleArn"):
            role = a.get(key)
            if not isinstance(role, str) or not role:
                continue
            out.append(
                {
                    "cluster": cluster or a.get("clusterName"),
                    "kind": "pod-identity",
                    "provider": "aws",
                    "namespace": a.get("namespace"),
                    "service_account": a.get("serviceAccount"),
                    "node": None,
                    "cloud_identity": role,
                    "audience": "pods.eks.amazonaws.com",  # the service principal that assumes the role
                    "declared_by": f"association {a.get('associationArn') or a.get('associationId')}"
                    + (" (target role)" if key == "targetRoleArn" else ""),
                    "evidence_id": evidence_id,
                }
            )
    return out


# --------------------------------------------------------------------------- the join

#: ``attributed_by``: how a row was joined to the cluster
ATTRIBUTED_BY = ("irsa-subject", "pod-identity-tags", "gke-delegation", "instance-id", "access-key", "source-ip")
#: ``used_from``: where the call's address is, seen from the credential's owner
USED_FROM = ("node", "pod", "outside", "unknown")
# calls that return a new session key derived from the caller's own credentials (role chaining,
# a session token): the new key is used by whoever held the old one. CreateAccessKey is not one:
# its key belongs to the IAM user it was made for, not to the caller.
_SESSION_CALLS = frozenset({"AssumeRole", "GetSessionToken", "GetFederationToken"})
_POD_COLUMNS = ("namespace", "pod", "workload_kind", "workload", "node")
# the record's columns the join reads row by row
_READ = (
    "issued_key_id",
    "access_key_id",
    "session_name",
    "principal_type",
    "principal",
    "provider",
    "action",
    "resource",
    "k8s_user",
    "service_account",
    "web_identity",
)
_OUT_COLUMNS = ("session_key", "bound_identity", "used_from", "attributed_by")


def cloud_sessions(
    cloud: pd.DataFrame,
    *,
    bindings: pd.DataFrame | None = None,
    pod_ips: pd.DataFrame | None = None,
    nodes: pd.DataFrame | None = None,
    pods: pd.DataFrame | None = None,
    services: pd.DataFrame | None = None,
    networks: list[Network] | None = None,
    nat_ips: Iterable[str] = (),
) -> pd.DataFrame:
    """``cloud`` (the CLOUD table) with namespace, pod, node, workload_kind, workload and
    service_account filled where a session or the call's address says so, and ``session_key``
    (the access key the row belongs to), ``bound_identity`` (the cloud identity the session acts
    as: role ARN, Google service account, instance id), ``used_from`` (node | pod | outside |
    unknown) and ``attributed_by`` (``ATTRIBUTED_BY``, null: not joined).

    ``pod_ips``/``nodes``/``pods``/``services``: the context tables (a case's, or an
    inventory's with ``fold_pods``); ``bindings``: ``cloud_bindings`` (a node's instance id);
    ``networks``: ``case_networks``. ``nat_ips``: the addresses the cluster's traffic leaves
    through (NAT gateways): a call from one could be any machine behind it, so its
    ``used_from`` is unknown, not outside. Values the record carries are kept unless a session
    or address gives them."""
    out = cloud.copy(deep=False)
    for col in ("service_account", *_POD_COLUMNS):
        if col not in out.columns:
            out[col] = None
    n = len(out)
    if not n:
        for col in _OUT_COLUMNS:
            out[col] = pd.Series(dtype=object)
        return out
    addr = _addresses(out, pod_ips=pod_ips, nodes=nodes, services=services, networks=networks, nat_ips=nat_ips)
    instances = _instances(bindings)
    pods = pods if pods is not None else to_frame(PODS.arrow_schema.empty_table())
    sessions = _issue_sessions(out, addr, pods, instances=instances)

    result: dict[str, list[Any]] = {c: _values(out[c]) for c in ("service_account", *_POD_COLUMNS)}
    for col in _OUT_COLUMNS:
        result[col] = [None] * n
    col = {c: _values(out[c]) if c in out.columns else [None] * n for c in _READ}
    for i in range(n):
        key = _text(col["issued_key_id"][i]) if _text(col["issued_key_id"][i]) in sessions else None
        key = key or (_text(col["access_key_id"][i]) if _text(col["access_key_id"][i]) in sessions else None)
        session_name = _text(col["session_name"][i])
        if key:
            s = sessions[key]
            own = key == _text(col["issued_key_id"][i])
            _fill(result, i, s, overwrite=True)
            result["session_key"][i] = key
            result["bound_identity"][i] = s["bound_identity"]
            result["attributed_by"][i] = s["attributed_by"] if own else "access-key"
            result["used_from"][i] = _used_from(addr, i, own_node=None)
        elif session_name and INSTANCE_ID.match(session_name) and col["principal_type"][i] == "AssumedRole":
            node = instances.get(session_name.lower())
            # the node owns the session; the pod columns name who used it from a pod's address
            _fill(result, i, _address_owner(addr, i) if addr["kind"][i] == "pod" else {}, overwrite=True)
            result["node"][i] = node
            result["session_key"][i] = _text(col["access_key_id"][i])
            result["bound_identity"][i] = session_name
            result["attributed_by"][i] = "instance-id"
            result["used_from"][i] = _used_from(addr, i, own_node=node) if node else _used_from_unowned(addr, i)
        elif col["action"][i] == "AssumeRoleWithWebIdentity" and parse_service_account(col["web_identity"][i]):
            # an IRSA exchange that issued no key (denied, or its answer not logged): still the
            # service account's, from whoever held the address
            ns, name = parse_service_account(col["web_identity"][i]) or ("", "")
            _fill(result, i, {"service_account": f"{ns}/{name}", **_address_owner(addr, i)}, overwrite=True)
            result["attributed_by"][i] = "irsa-subject"
            result["used_from"][i] = _used_from(addr, i, own_node=None)
        elif col["provider"][i] == "gcp" and _gke_identity(col, i):
            # the token mint (GenerateAccessToken, user agent gke-metadata-server) comes from the
            # node, where the metadata server runs; the calls made with the token from the pod
            # (https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity#metadata_server)
            owner = _address_owner(addr, i)
            _fill(result, i, owner, overwrite=bool(owner))
            result["bound_identity"][i] = _google_account(col, i)
            result["attributed_by"][i] = "gke-delegation"
            result["used_from"][i] = _used_from(addr, i, own_node=None)
        elif addr["kind"][i] in ("pod", "node"):
            _fill(result, i, _address_owner(addr, i), overwrite=True)
            result["attributed_by"][i] = "source-ip"
            result["used_from"][i] = addr["kind"][i]
        else:
            result["used_from"][i] = "unknown"  # not the cluster's credential as far as the evidence shows
    for name, values in result.items():
        out[name] = pd.Series(values, index=out.index, dtype=object)  # None, not NaN, where unknown
    return out


def _values(column: pd.Series) -> list[Any]:
    """A column as a list, missing values as None (pandas' string dtype gives NaN)."""
    return column.astype(object).where(column.notna(), None).tolist()


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _fill(result: dict[str, list[Any]], i: int, values: dict[str, Any], *, overwrite: bool) -> None:
    for c in ("service_account", *_POD_COLUMNS):
        v = values.get(c)
        if v is not None and (overwrite or result[c][i] is None):
            result[c][i] = v


def _addresses(
    frame: pd.DataFrame,
    *,
    pod_ips: pd.DataFrame | None,
    nodes: pd.DataFrame | None,
    services: pd.DataFrame | None,
    networks: list[Network] | None,
    nat_ips: Iterable[str],
) -> dict[str, list[Any]]:
    """Who held each row's source address at the row's time (``attribution.attribute_frame``),
    as lists: kind (pod | node | outside | unknown) and the owner's columns."""
    narrow = pd.DataFrame({"source_ip": frame["source_ip"].astype(object), "time": frame["time"]})
    held = attribute_frame(
        narrow,
        pod_ips if pod_ips is not None else to_frame(POD_IPS.arrow_schema.empty_table()),
        nodes if nodes is not None else to_frame(NODES.arrow_schema.empty_table()),
        ip="source_ip",
        services=services,
        networks=networks,
    )
    nat = {str(a) for a in nat_ips}
    ips = narrow["source_ip"].tolist()
    kinds = held["kind"].tolist()
    for i, (ip, k) in enumerate(zip(ips, kinds)):
        # a provider's name for its own network ("pods.eks.amazonaws.com", "AWS Internal",
        # "gce-internal-ip"), a NAT address, a Service's or an unplaced private address: unknown
        if k == "external" and ip not in nat and _is_address(ip):
            kinds[i] = "outside"
        elif k not in ("pod", "node"):
            kinds[i] = "unknown"
    out: dict[str, list[Any]] = {"kind": kinds}
    for c in _POD_COLUMNS:
        out[c] = _values(held[c])
    return out


@lru_cache(maxsize=65_536)
def _is_address(v: Any) -> bool:
    try:
        ipaddress.ip_address(str(v).strip("[]"))
    except ValueError:
        return False
    return True


def _address_owner(addr: dict[str, list[Any]], i: int) -> dict[str, Any]:
    if addr["kind"][i] == "pod":
        return {c: addr[c][i] for c in _POD_COLUMNS}
    if addr["kind"][i] == "node":
        return {"node": addr["node"][i]}
    return {}


def _used_from(addr: dict[str, list[Any]], i: int, *, own_node: str | None) -> str:
    """Where the call came from. For a node's own credential (``own_node``) another node's
    address is outside: the credential left its instance."""
    kind = addr["kind"][i]
    if own_node is not None and kind == "node" and addr["node"][i] != own_node:
        return "outside"
    return str(kind)


def _used_from_unowned(addr: dict[str, list[Any]], i: int) -> str:
    # an instance session whose node the inventory does not name: any node's or public address
    # could be the instance's own; only a pod's address says the credential left it
    return "pod" if addr["kind"][i] == "pod" else "unknown"


def _instances(bindings: pd.DataFrame | None) -> dict[str, str]:
    """Instance id → node, from the ``node-instance`` bindings."""
    if bindings is None or not len(bindings):
        return {}
    rows = bindings[(bindings["kind"] == "node-instance") & bindings["node"].notna()]
    return {str(i).lower(): str(nd) for i, nd in zip(rows["cloud_identity"], rows["node"])}


def _params(v: Any) -> dict[str, Any]:
    # request parameters are redacted JSON text; a value that is not JSON gives nothing
    if not isinstance(v, str):
        return {}
    try:
        return as_object(orjson.loads(v))
    except orjson.JSONDecodeError:
        return {}


def _role(row: pd.Series) -> str | None:
    """The role a session-issuing call assumed: requestParameters.roleArn, else the first role
    ARN the record names."""
    role = _params(row.get("request_parameters")).get("roleArn")
    if isinstance(role, str) and role:
        return role
    listed = row.get("resources")
    for r in list(listed) if isinstance(listed, (list, tuple, np.ndarray)) else []:
        if isinstance(r, str) and ":role/" in r:
            return r
    return None


def _tag(params: dict[str, Any], key: str) -> Any:
    for tag in as_list(params.get("tags")):
        tag = as_object(tag)
        if tag.get("key", tag.get("Key")) == key:
            return tag.get("value", tag.get("Value"))
    return as_object(params.get("principalTags")).get(key)


def _issue_sessions(
    frame: pd.DataFrame, addr: dict[str, list[Any]], pods: pd.DataFrame, *, instances: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Issued key → the session's Kubernetes identity, pod/node and bound identity, from the
    issuing records in time order (so a chained session finds its parent; a node's instance
    session is a parent too)."""
    if "issued_key_id" not in frame.columns:
        return {}
    issued = frame[frame["issued_key_id"].notna()]
    order = np.argsort(pd.to_datetime(issued["time"], utc=True).to_numpy(), kind="stable")
    positions = {idx: k for k, idx in enumerate(frame.index)}
    sessions: dict[str, dict[str, Any]] = {}
    for _, row in issued.iloc[order].iterrows():
        key = _text(row["issued_key_id"])
        if not key or key in sessions:
            continue
        i = positions[row.name]
        action = row.get("action")
        subject = parse_service_account(row.get("web_identity"))
        params = _params(row.get("request_parameters"))
        parent = sessions.get(_text(row.get("access_key_id")) or "")
        name = _text(row.get("session_name"))
        if parent is None and name and INSTANCE_ID.match(name) and row.get("principal_type") == "AssumedRole":
            parent = {"node": instances.get(name.lower()), "bound_identity": name, "attributed_by": "instance-id"}
        if action == "AssumeRoleWithWebIdentity" and subject:
            # IRSA: the subject is the service account; the pod is whoever held the address then
            owner = _address_owner(addr, i)
            sessions[key] = {
                **owner,
                "namespace": owner.get("namespace") or subject[0],
                "service_account": f"{subject[0]}/{subject[1]}",
                "bound_identity": _role(row),
                "attributed_by": "irsa-subject",
            }
        elif action == "AssumeRole" and _text(row.get("pod")) and _text(row.get("namespace")):
            # EKS Pod Identity: the session tags name the pod (and its uid), the agent asked for it
            # (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html)
            ns, pod = row["namespace"], row["pod"]
            found = _pod_at(pods, ns, pod, _tag(params, "kubernetes-pod-uid"), row["time"])
            sessions[key] = {
                "namespace": ns,
                "pod": pod,
                "workload_kind": found.get("workload_kind"),
                "workload": found.get("workload"),
                "node": found.get("node"),
                "service_account": _text(row.get("service_account")),
                "bound_identity": _role(row),
                "attributed_by": "pod-identity-tags",
            }
        elif parent and action in _SESSION_CALLS:
            # a session obtained with another session's key is held by the same pod or node
            sessions[key] = {
                **parent,
                "bound_identity": _role(row) or parent["bound_identity"],
                "attributed_by": "access-key",
            }
        elif action in _SESSION_CALLS and addr["kind"][i] in ("pod", "node"):
            # a session asked for from a pod's or node's address is held there
            sessions[key] = {**_address_owner(addr, i), "bound_identity": _role(row), "attributed_by": "source-ip"}
    return sessions


def _pod_at(pods: pd.DataFrame, namespace: Any, name: Any, uid: Any, time: Any) -> dict[str, Any]:
    """The pods row the tags name: by uid, else the one of that name alive at ``time``; {} when
    none, or more than one, fits."""
    if not len(pods):
        return {}
    if isinstance(uid, str) and uid:
        rows = pods[pods["uid"] == uid]
    else:
        t = utc_timestamp(time)
        rows = pods[(pods["namespace"] == namespace) & (pods["name"] == name)]
        alive = (rows["created"].isna() | (rows["created"] <= t)) & (rows["deleted"].isna() | (rows["deleted"] > t))
        rows = rows[alive.to_numpy(dtype=bool)]
    if len(rows) != 1:
        return {}
    r = rows.iloc[0]
    return {k: (None if pd.isna(r[k]) else r[k]) for k in ("workload_kind", "workload", "node")}


def _gke_identity(col: dict[str, list[Any]], i: int) -> bool:
    """A GCP row the format tied to a Kubernetes service account (a Workload Identity subject
    in the caller or its delegation chain)."""
    return bool(_text(col["k8s_user"][i]) or _text(col["service_account"][i]))


def _google_account(col: dict[str, list[Any]], i: int) -> str | None:
    """The Google service account a Workload Identity call acts as: the token GenerateAccessToken
    minted for (``projects/-/serviceAccounts/<email>``), else the calling service account."""
    action, resource = _text(col["action"][i]) or "", _text(col["resource"][i]) or ""
    if action.endswith("GenerateAccessToken") and "/serviceAccounts/" in resource:
        return resource.rsplit("/serviceAccounts/", 1)[1]
    principal = _text(col["principal"][i])
    return principal if principal and principal.endswith(".gserviceaccount.com") else None


# --------------------------------------------------------------------------- one key


def attribute_cloud(
    case: Case, key_or_session: str, *, at: Any = None, nat_ips: Iterable[str] = ()
) -> dict[str, Any] | None:
    """The pod or node behind a cloud session: an access key id (``ASIA…``/``AKIA…``), or an
    instance-role session name (``i-…``). ``at``: the call at or before that time is the one
    described (its ``used_from``); without it, the session as a whole (every ``used_from``).

    Returns ``kind`` (pod, node, or unknown: the evidence holds the key but ties it to nothing),
    session_key, namespace, pod, workload_kind, workload, node, service_account,
    bound_identity, attributed_by, used_from, first_seen, last_seen, calls; None when no
    cloud record names the key."""
    rows = _session_rows(case, key_or_session)
    if not len(rows):
        return None
    joined = cloud_sessions(
        rows,
        bindings=case.context("cloud_bindings"),
        pod_ips=case.context("pod_ips"),
        nodes=case.context("nodes"),
        pods=case.context("pods"),
        services=case.context("services"),
        networks=case_networks(case),
        nat_ips=nat_ips,
    )
    mine = joined[
        (joined["session_key"] == key_or_session)
        | (joined["access_key_id"] == key_or_session)
        | (joined["issued_key_id"] == key_or_session)
        | (joined["session_name"] == key_or_session)
    ].sort_values("time", kind="stable")
    if not len(mine):
        return None
    described = mine
    if at is not None:
        before = mine[mine["time"] <= utc_timestamp(at)]
        described = before.iloc[[-1]] if len(before) else mine.iloc[[0]]
    first = mine[mine["attributed_by"].notna()]
    r = (first if len(first) else mine).iloc[0]
    pod, node = _none(r["pod"]), _none(r["node"])
    return {
        "kind": "pod" if pod else ("node" if node else "unknown"),
        "session_key": _none(r["session_key"]) or key_or_session,
        **{c: _none(r[c]) for c in ("namespace", "pod", "workload_kind", "workload", "node", "service_account")},
        "bound_identity": _none(r["bound_identity"]),
        "attributed_by": _none(r["attributed_by"]),
        "used_from": sorted(set(described["used_from"].dropna())),
        "first_seen": mine["time"].iloc[0],
        "last_seen": mine["time"].iloc[-1],
        "calls": int(len(mine)),
    }


def _none(v: Any) -> Any:
    return None if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)) else v


def _session_rows(case: Case, key: str, *, depth: int = 5) -> pd.DataFrame:
    """The cloud rows that issued or used ``key`` (or are the instance session named so), and
    the rows that issued each session they were made with, up a role chain of ``depth``."""
    query = "SELECT * FROM cloud WHERE issued_key_id = $k OR access_key_id = $k OR session_name = $k"
    frames = [case.sql(query, params={"k": key})]
    seen = {key}
    for _ in range(depth):
        parents = {
            str(p)
            for p in frames[-1].loc[frames[-1]["issued_key_id"].notna(), "access_key_id"].dropna()
            if str(p) not in seen
        }
        if not parents:
            break
        seen |= parents
        frames.append(
            case.sql("SELECT * FROM cloud WHERE issued_key_id IN (SELECT unnest($p))", params={"p": sorted(parents)})
        )
    rows = pd.concat(frames, ignore_index=True)
    return rows.drop_duplicates(subset=["event_id"]).reset_index(drop=True) if len(rows) else rows


__all__ = [
    "ATTRIBUTED_BY",
    "USED_FROM",
    "attribute_cloud",
    "binding_rows",
    "cloud_sessions",
    "instance_identity",
    "node_binding",
    "pod_identity_bindings",
    "service_account_bindings",
]
