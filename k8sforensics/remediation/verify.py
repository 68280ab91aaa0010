"""Was the checklist carried out? Each action's ``check`` against a fresh inventory snapshot.

    snapshot = read_snapshot("after/")            # `k8sforensics collect --out after/`, or kubectl dumps
    result = verify_actions(actions, snapshot, case_dir=case.path)   # + verdict, evidence, checked_at

A verdict is "done", "not done" or "not checkable", always with the evidence it rests on. A
snapshot only shows what it collected: a kind it holds no file or object of, or whose file did
not parse, cannot tell "deleted" from "not collected", so every check on it is "not checkable"
— absence is never taken for done without the kind having been listed. Everything read from
the snapshot and from the checks is data: names are compared and quoted, never evaluated, and
files are parsed with ``json`` and ``yaml.safe_load_all`` only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..analysis.possible import resource_of
from ..context.collect import KINDS
from ..errors import K8sForensicsError

DONE, NOT_DONE, NOT_CHECKABLE = "done", "not done", "not checkable"
VERDICTS = (DONE, NOT_DONE, NOT_CHECKABLE)
NO_CHECK = "no check from the inventory for this kind of action"
SUFFIXES = (".json", ".yaml", ".yml")
# resources without a namespace (kubectl api-resources --namespaced=false); a check's or a
# file's namespace on one of these is ignored, as the API server ignores it
CLUSTER_SCOPED = frozenset(
    {
        "namespaces",
        "nodes",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "certificatesigningrequests",
        "customresourcedefinitions",
        "apiservices",
        "storageclasses",
        "csidrivers",
        "csinodes",
        "volumeattachments",
        "priorityclasses",
        "runtimeclasses",
        "ingressclasses",
        "podsecuritypolicies",
        "clusterpolicies",
        "constrainttemplates",
    }
)
# what a file that does not parse raises: JSON and encoding errors (ValueError), YAML's, nesting, I/O
_UNREADABLE = (ValueError, yaml.YAMLError, RecursionError, OSError)
_MAX_DEPTH = 32  # nesting of all/any a check may have: a deeper one is not one the checklist wrote
_SHOWN = 200  # characters of a name shown in evidence


class SnapshotError(K8sForensicsError):
    """The snapshot cannot be read at all (no such folder); the message says what to pass."""


def _singular(resource: str) -> str:
    if resource == "endpoints":
        return resource
    if resource.endswith("ies"):
        return resource[:-3] + "y"
    if resource.endswith("ses"):
        return resource[:-2]
    return resource.removesuffix("s")


@dataclass
class Snapshot:
    """The objects of an inventory dump, per resource, and what it can vouch for: the resources
    it collected (``collected``), those whose file did not parse (``unreadable``), and files
    that did not parse and could have held anything (``unknown_unreadable``)."""

    path: Path
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    collected: set[str] = field(default_factory=set)
    collected_at: str | None = None
    cluster_wide: bool = False  # written by `k8sforensics collect`, which lists every namespace
    warnings: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # resource → the file that did not parse
    unknown_unreadable: list[str] = field(default_factory=list)
    _by_name: dict[tuple[str, str | None, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _by_uid: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    _namespaces: dict[str, set[str | None]] = field(default_factory=dict, repr=False)

    def add(self, resource: str, obj: dict[str, Any]) -> None:
        """One object of ``resource``; the same object (uid) read from several files once."""
        md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name, uid = md.get("name"), md.get("uid")
        if not isinstance(name, str) or not name:
            return
        ns = _namespace(resource, md.get("namespace"))
        key = (resource, ns, name)
        if isinstance(uid, str) and uid and any(_uid(o) == uid for o in self._by_name.get(key, [])):
            return
        self.objects.setdefault(resource, []).append(obj)
        self._by_name.setdefault(key, []).append(obj)
        self._namespaces.setdefault(resource, set()).add(ns)
        if isinstance(uid, str) and uid:
            self._by_uid[(resource, uid)] = obj
        self.collected.add(resource)

    def find(self, resource: str, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """The objects of that resource, namespace and name (several when one was recreated
        between two dumps read together)."""
        return self._by_name.get((resource, _namespace(resource, namespace), name), [])

    def by_uid(self, resource: str, uid: str) -> dict[str, Any] | None:
        return self._by_uid.get((resource, uid))

    def blind_spot(self, resource: str) -> str | None:
        """Why this snapshot cannot say that an object of ``resource`` is absent, or None."""
        if resource in self.unreadable:
            return f"the snapshot's {_shown(self.unreadable[resource])} did not parse"
        if resource not in self.collected:
            return f"the snapshot holds no {resource}"
        if self.unknown_unreadable:
            return f"the snapshot's {', '.join(_shown(f) for f in self.unknown_unreadable[:3])} did not parse and may hold it"
        return None

    def holds_namespace(self, resource: str, namespace: str | None) -> bool:
        return namespace in self._namespaces.get(resource, set())


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """A folder as ``k8sforensics collect --out DIR`` writes it (one List per kind and
    ``collection.json``), or any folder (or file) of ``kubectl get -o json|yaml`` output: Lists
    or single objects, ``.json``/``.yaml``/``.yml``. A file that does not parse is a warning in
    ``Snapshot.warnings`` (and what it may have held is not checkable), never an exception."""
    root = Path(path)
    if not root.exists():
        raise SnapshotError(
            f"{root}: no such snapshot — pass the folder `k8sforensics collect --out DIR` wrote, "
            "or a folder of `kubectl get -o json` files"
        )
    snap = Snapshot(path=root)
    files = (
        [root]
        if root.is_file()
        else sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    )
    for f in files:
        rel = f.name if f == root else f.relative_to(root).as_posix()
        if rel == "collection.json":
            _read_collection(f, snap)
            continue
        try:
            documents = _parse(f)
        except _UNREADABLE as e:  # a broken file is a warning, never a traceback
            _unparsed(snap, f, rel, e)
            continue
        for i, doc in enumerate(documents):
            _read_document(doc, snap, rel=rel, stem=f.stem, index=i)
    return snap


def _parse(f: Path) -> list[Any]:
    text = f.read_text(encoding="utf-8")
    if f.suffix.lower() == ".json":
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _unparsed(snap: Snapshot, f: Path, rel: str, error: BaseException) -> None:
    snap.warnings.append(
        f"{rel}: does not parse ({type(error).__name__}: {_shown(str(error).splitlines()[0] if str(error) else '')}); "
        "what it holds is not checked"
    )
    resource = f.stem.lower()
    if resource in _known_resources():
        snap.unreadable[resource] = rel
    else:
        snap.unknown_unreadable.append(rel)


@lru_cache(maxsize=1)
def _known_resources() -> frozenset[str]:
    return frozenset(name for name, _, _ in KINDS) | CLUSTER_SCOPED


def _read_collection(f: Path, snap: Snapshot) -> None:
    try:
        record = json.loads(f.read_text(encoding="utf-8"))
    except _UNREADABLE as e:
        snap.warnings.append(f"collection.json: does not parse ({type(e).__name__}); the collection time is unknown")
        return
    if not isinstance(record, dict):
        snap.warnings.append("collection.json: not a collection record; the collection time is unknown")
        return
    counts = record.get("counts")
    if isinstance(counts, dict):
        snap.collected |= {k for k in counts if isinstance(k, str)}
        snap.cluster_wide = True
    if isinstance(record.get("collected_at"), str):
        snap.collected_at = record["collected_at"]


def _read_document(doc: Any, snap: Snapshot, *, rel: str, stem: str, index: int) -> None:
    where = f"{rel}" + (f" (document {index + 1})" if index else "")
    if not isinstance(doc, dict):
        snap.warnings.append(f"{where}: not a Kubernetes object or List; skipped")
        return
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    items = doc.get("items")
    if isinstance(items, list) and (kind is None or kind.endswith("List")):
        # a typed List (PodList, as the API and the collector write it) names its items' kind,
        # even when it is empty; kubectl's "List" leaves it to each item
        item_kind = kind[: -len("List")] if kind and kind != "List" else None
        if item_kind:
            snap.collected.add(resource_of(item_kind))
        elif not items and stem.lower() in _known_resources():
            snap.collected.add(stem.lower())  # an empty `kubectl get pods -o json > pods.json`
        skipped = 0
        for item in items:
            k = item.get("kind") if isinstance(item, dict) and isinstance(item.get("kind"), str) else item_kind
            if k is None and stem.lower() in _known_resources():
                snap.add(stem.lower(), item)
            elif k is None or not isinstance(item, dict):
                skipped += 1
            else:
                snap.add(resource_of(k), item)
        if skipped:
            snap.warnings.append(f"{where}: {skipped} item(s) without a kind; skipped")
        return
    if kind is None:
        snap.warnings.append(f"{where}: an object without a kind; skipped")
        return
    snap.add(resource_of(kind), doc)


# --------------------------------------------------------------------------- the checks


@dataclass
class _Where:
    case_dir: Path
    preserved_root: Path


Verdict = tuple[str, str]


def verify_actions(
    actions: pd.DataFrame,
    snapshot: Snapshot | str | os.PathLike[str],
    *,
    case_dir: str | os.PathLike[str],
    preserved_root: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The checklist with ``verdict`` ("done" | "not done" | "not checkable"), ``evidence`` and
    ``checked_at`` (the snapshot's collection time, None if unknown) per action. ``check`` is
    a dict or its JSON text (as in checklist.csv); none → "not checkable". The snapshot's
    warnings (files that did not parse) are in ``result.attrs["warnings"]``."""
    snap = snapshot if isinstance(snapshot, Snapshot) else read_snapshot(snapshot)
    where = _Where(
        Path(case_dir).resolve(), Path(preserved_root).resolve() if preserved_root is not None else Path.cwd()
    )
    out = actions.copy()
    checks = out["check"] if "check" in out.columns else pd.Series([None] * len(out), index=out.index)
    results = [_row(c, snap, where) for c in checks]
    out["verdict"] = [v for v, _ in results]
    out["evidence"] = [e for _, e in results]
    out["checked_at"] = snap.collected_at
    out.attrs["warnings"] = list(snap.warnings)
    return out


def _row(check: Any, snap: Snapshot, where: _Where) -> Verdict:
    if check is None or (isinstance(check, float) and pd.isna(check)) or (isinstance(check, str) and not check.strip()):
        return NOT_CHECKABLE, NO_CHECK
    if isinstance(check, str):
        try:
            check = json.loads(check)
        except (ValueError, RecursionError):
            return NOT_CHECKABLE, "the check is not readable JSON"
        if check is None:
            return NOT_CHECKABLE, NO_CHECK
    return evaluate_check(check, snap, case_dir=where.case_dir, preserved_root=where.preserved_root)


def evaluate_check(
    check: Any,
    snapshot: Snapshot,
    *,
    case_dir: str | os.PathLike[str],
    preserved_root: str | os.PathLike[str] | None = None,
) -> Verdict:
    """(verdict, evidence) of one check (the DSL of issue 18: "all"/"any" of atomic checks
    whose "expect" is absent, replaced, present, label, unschedulable, pinned, applied, file or manual)."""
    where = _Where(
        Path(case_dir).resolve(), Path(preserved_root).resolve() if preserved_root is not None else Path.cwd()
    )
    return _evaluate(check, snapshot, where, depth=0)


def _evaluate(check: Any, snap: Snapshot, where: _Where, *, depth: int) -> Verdict:
    if not isinstance(check, dict):
        return NOT_CHECKABLE, "the check is not readable"
    if depth > _MAX_DEPTH:
        return NOT_CHECKABLE, "the check is nested too deep to be one the checklist wrote"
    for op in ("all", "any"):
        if op in check:
            parts = check[op]
            if not isinstance(parts, list) or not parts:
                return NOT_CHECKABLE, f"the check's {op!r} has no parts"
            return _combine(op, [_evaluate(p, snap, where, depth=depth + 1) for p in parts])
    expect = check.get("expect")
    handler = _EXPECTS.get(expect) if isinstance(expect, str) else None
    if handler is None:
        return NOT_CHECKABLE, f"unknown check {_shown(expect)}"
    try:
        return handler(check, snap, where)
    except (KeyError, TypeError, AttributeError, ValueError) as e:  # a malformed check (a hand-edited checklist.csv)
        return NOT_CHECKABLE, f"the {expect} check is malformed ({type(e).__name__}: {_shown(str(e))})"


def _combine(op: str, parts: list[Verdict]) -> Verdict:
    verdicts = [v for v, _ in parts]
    if op == "all":
        verdict = NOT_DONE if NOT_DONE in verdicts else NOT_CHECKABLE if NOT_CHECKABLE in verdicts else DONE
        return verdict, "; ".join(e for _, e in parts)
    if DONE in verdicts:
        return DONE, "; ".join(e for v, e in parts if v == DONE)
    verdict = NOT_DONE if NOT_DONE in verdicts else NOT_CHECKABLE
    return verdict, "; ".join(e for _, e in parts)


def _ref(check: dict[str, Any]) -> tuple[str, str | None, str]:
    resource, name = check["resource"], check["name"]
    if not isinstance(resource, str) or not isinstance(name, str):
        raise TypeError("resource and name must be text")
    ns = check.get("namespace")
    return resource, ns if isinstance(ns, str) and ns else None, name


def _what(resource: str, ns: str | None, name: str) -> str:
    ns = _namespace(resource, ns)
    return f"{_singular(resource)} {_shown(ns)}/{_shown(name)}" if ns else f"{_singular(resource)} {_shown(name)}"


def _lookup(snap: Snapshot, resource: str, ns: str | None, name: str) -> list[dict[str, Any]] | str:
    """The objects present, or why the snapshot cannot tell (the resource not collected, a
    file that did not parse): only a collected, readable resource vouches for an absence."""
    found = snap.find(resource, ns, name)
    if found:
        return found
    blind = snap.blind_spot(resource)
    return blind if blind else []


def _gone(snap: Snapshot, resource: str, ns: str | None, name: str) -> Verdict:
    """An object absent from the snapshot: done — unless the snapshot holds nothing of its kind
    in its namespace at all (a kubectl dump of some namespaces only), where absence proves nothing."""
    text = f"{_what(resource, ns, name)} is gone"
    ns = _namespace(resource, ns)
    if ns and not snap.cluster_wide and not snap.holds_namespace(resource, ns):
        return NOT_CHECKABLE, (
            f"{_what(resource, ns, name)} is not in the snapshot, which holds no {resource} in namespace {_shown(ns)} "
            f"at all: dump it with --all-namespaces (or the collector) to tell"
        )
    return DONE, text


def _absent(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    resource, ns, name = _ref(check)
    found = _lookup(snap, resource, ns, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    if not found:
        return _gone(snap, resource, ns, name)
    uid = check.get("uid")
    same = [o for o in found if not uid or _uid(o) == uid]
    if same:
        return NOT_DONE, f"{_what(resource, ns, name)} {_still(resource)}" + (f" (uid {_shown(uid)})" if uid else "")
    return (
        NOT_DONE,
        f"{_what(resource, ns, name)} was recreated at {_shown(_created(found[-1]) or 'an unknown time')} (uid {_shown(_uid(found[-1]))})",
    )


def _still(resource: str) -> str:
    return "still runs" if resource == "pods" else "is still there"


def _replaced(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    resource, ns, name = _ref(check)
    found = _lookup(snap, resource, ns, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    if not found:
        return _gone(snap, resource, ns, name)
    uid, since = check.get("uid"), check.get("since")
    what = _what(resource, ns, name)
    if uid:
        same = [o for o in found if _uid(o) == uid]
        if same:
            return (
                NOT_DONE,
                f"{what} still has the uid it had in the case ({_shown(uid)}, created {_shown(_created(same[0]) or '?')})",
            )
        return DONE, f"{what} has a new uid ({_shown(_uid(found[-1]))}, created {_shown(_created(found[-1]) or '?')})"
    cutoff, created = _time(since), _time(_created(found[-1]))
    if cutoff is None or created is None:
        return (
            NOT_CHECKABLE,
            f"{what} is present; with no uid from the case and no creation time to compare, a replacement cannot be told",
        )
    if created > cutoff:
        return DONE, f"{what} was created at {_shown(_created(found[-1]))}, after {_shown(since)}"
    return NOT_DONE, f"{what} was created at {_shown(_created(found[-1]))}, not after {_shown(since)}: not replaced"


def _present(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    resource, ns, name = _ref(check)
    found = _lookup(snap, resource, ns, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    if found:
        created = _created(found[-1])
        return DONE, f"{_what(resource, ns, name)} is present" + (f" (created {_shown(created)})" if created else "")
    return NOT_DONE, f"{_what(resource, ns, name)} is missing"


def _label(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    resource, ns, name = _ref(check)
    key, value = check["key"], check.get("value")
    found = _lookup(snap, resource, ns, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    what = _what(resource, ns, name)
    if not found:
        return _gone(snap, resource, ns, name)
    labels = _labels(found[-1])
    if key in labels and (value is None or labels[key] == str(value)):
        return DONE, f"{what} carries the label {_shown(key)}={_shown(labels[key])}"
    has = f" (it is {_shown(labels[key])})" if key in labels else ""
    return NOT_DONE, f"{what} lacks the label {_shown(key)}={_shown(value)}{has}"


def _unschedulable(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    resource, _, name = _ref({"resource": "nodes", **check})
    found = _lookup(snap, resource, None, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    what = _what(resource, None, name)
    if not found:
        return DONE, f"{what} is gone (removed or rebuilt under another name)"
    uid, node = check.get("uid"), found[-1]
    if uid and _uid(node) != uid:
        return DONE, f"{what} is a new node (uid {_shown(_uid(node))}, created {_shown(_created(node) or '?')})"
    spec = node.get("spec") if isinstance(node.get("spec"), dict) else {}
    if spec.get("unschedulable") is True:
        return DONE, f"{what} is cordoned (spec.unschedulable)"
    return NOT_DONE, f"{what} still takes pods (not cordoned)"


def _pinned(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    resource, ns, name = _ref(check)
    found = _lookup(snap, resource, ns, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    what = _what(resource, ns, name)
    if not found:
        return NOT_DONE, f"{what} is missing (not redeployed)"
    images = _template_images(found[-1], resource)
    loose = [i for i in images if "@sha256:" not in i]
    parts: list[Verdict] = []
    if not images:
        parts.append((NOT_CHECKABLE, f"{what} has no container image in its pod template"))
    elif loose:
        parts.append((NOT_DONE, f"{what} runs images not pinned by digest: {', '.join(_shown(i) for i in loose)}"))
    else:
        parts.append((DONE, f"{what} runs images pinned by digest"))
    parts += [_old_pod(p, ns, snap) for p in check.get("pods") or []]
    return _combine("all", parts)


def _old_pod(pod: Any, ns: str | None, snap: Snapshot) -> Verdict:
    if not isinstance(pod, dict) or not isinstance(pod.get("name"), str):
        return NOT_CHECKABLE, "an old pod of the check is not readable"
    name, uid = pod["name"], pod.get("uid")
    what = _what("pods", ns, name)
    if uid:
        if snap.by_uid("pods", uid) is not None:
            return NOT_DONE, f"the old {what} still runs (uid {_shown(uid)})"
        blind = snap.blind_spot("pods")
        return (NOT_CHECKABLE, blind) if blind else (DONE, f"the old {what} is gone")
    found = _lookup(snap, "pods", ns, name)
    if isinstance(found, str):
        return NOT_CHECKABLE, found
    return (NOT_DONE, f"the old {what} still runs") if found else (DONE, f"the old {what} is gone")


def _template_images(obj: dict[str, Any], resource: str) -> list[str]:
    """Images of a workload's pod template (a CronJob's is spec.jobTemplate.spec.template; a
    bare pod's spec is its own)."""
    spec = _dict(obj.get("spec"))
    if resource == "pods":
        pod_spec = spec
    elif resource == "cronjobs":
        pod_spec = _dict(_dict(_dict(_dict(spec.get("jobTemplate")).get("spec")).get("template")).get("spec"))
    else:
        pod_spec = _dict(_dict(spec.get("template")).get("spec"))
    containers = [
        c for key in ("initContainers", "containers") for c in (pod_spec.get(key) or []) if isinstance(c, dict)
    ]
    return [str(c.get("image")) for c in containers if c.get("image")]


def _applied(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    rel = check["file"]
    path = _inside(where.case_dir, rel)
    if path is None:
        return NOT_CHECKABLE, f"{_shown(rel)} is outside the case folder; not read"
    if not path.is_file():
        return NOT_CHECKABLE, f"{_shown(rel)} is not in the case (write it with `k8sforensics remediate CASE` first)"
    try:
        objects = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    except _UNREADABLE as e:
        return NOT_CHECKABLE, f"{_shown(rel)} does not parse ({type(e).__name__})"
    if not objects:
        return NOT_CHECKABLE, f"{_shown(rel)} has nothing to apply"
    present, missing, unheld = [], [], []
    for obj in objects:
        md = _dict(obj.get("metadata"))
        kind, name = obj.get("kind"), md.get("name")
        if not isinstance(kind, str) or not isinstance(name, str):
            continue
        resource = resource_of(kind)
        # an object without a namespace goes to the namespace kubectl is pointed at: "default" unless told
        ns = None if resource in CLUSTER_SCOPED else (md.get("namespace") or "default")
        what = _what(resource, ns, name)
        found = _lookup(snap, resource, ns, name)
        if isinstance(found, str):
            unheld.append(kind)
            continue
        if not found:
            missing.append(what)
            continue
        wanted = _dict(md.get("labels")) if resource == "namespaces" else {}
        labels = _labels(found[-1])
        off = {k: v for k, v in wanted.items() if labels.get(k) != str(v)}
        if off:
            missing.append(
                f"{what} without the label(s) {', '.join(f'{_shown(k)}={_shown(v)}' for k, v in off.items())}"
            )
        else:
            present.append(what)
    checked = len(present) + len(missing)
    tail = (
        f"; {len(unheld)} of kinds the snapshot does not hold ({', '.join(sorted({_shown(k) for k in unheld}))})"
        if unheld
        else ""
    )
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return (
            NOT_DONE,
            f"{len(present)} of {checked} objects of {_shown(rel)} are in the cluster; missing: {shown}{tail}",
        )
    if present:
        return DONE, f"all {checked} objects of {_shown(rel)} the snapshot can show are in the cluster{tail}"
    return (
        NOT_CHECKABLE,
        f"{_shown(rel)}: the snapshot holds none of its kinds ({', '.join(sorted({_shown(k) for k in unheld}))})",
    )


def _file(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    rel = check["path"]
    path = _inside(where.preserved_root, rel)
    if path is None:
        return NOT_CHECKABLE, f"{_shown(rel)} is outside the preserved folder; not looked at"
    if not path.exists():
        return (
            NOT_DONE,
            f"no file {_shown(rel)} (looked in {_shown(str(where.preserved_root))}; --preserved DIR names another folder)",
        )
    size = path.stat().st_size if path.is_file() else sum(1 for _ in path.iterdir())
    if not size:
        return NOT_DONE, f"{_shown(rel)} is empty"
    return DONE, f"{_shown(rel)} is preserved ({size} {'bytes' if path.is_file() else 'entries'})"


def _manual(check: dict[str, Any], snap: Snapshot, where: _Where) -> Verdict:
    why = check.get("why")
    return NOT_CHECKABLE, f"check by hand: {_shown(why)}" if why else "check by hand"


_EXPECTS = {
    "absent": _absent,
    "replaced": _replaced,
    "present": _present,
    "label": _label,
    "unschedulable": _unschedulable,
    "pinned": _pinned,
    "applied": _applied,
    "file": _file,
    "manual": _manual,
}


# --------------------------------------------------------------------------- values


def _inside(root: Path, rel: Any) -> Path | None:
    """``root/rel`` (or ``rel`` itself, when absolute) if it stays inside ``root``: a checklist is
    a file someone may edit, and a check never sends the verification to read elsewhere."""
    if not isinstance(rel, str) or not rel:
        return None
    base = root.resolve()
    path = (base / rel).resolve()  # an absolute rel replaces base
    return path if path.is_relative_to(base) else None


def _namespace(resource: str, ns: Any) -> str | None:
    return None if resource in CLUSTER_SCOPED or not isinstance(ns, str) or not ns else ns


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _uid(obj: dict[str, Any]) -> str | None:
    uid = _dict(obj.get("metadata")).get("uid")
    return uid if isinstance(uid, str) and uid else None


def _created(obj: dict[str, Any]) -> str | None:
    created = _dict(obj.get("metadata")).get("creationTimestamp")
    return str(created) if created else None


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in _dict(_dict(obj.get("metadata")).get("labels")).items()}


def _time(value: Any) -> pd.Timestamp | None:
    if not value:
        return None
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if t is pd.NaT:
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _shown(value: Any) -> str:
    """A value from the snapshot or the checklist as evidence text: control characters spelled
    out (a forged name must not drive the terminal it is printed on), and cut short."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def summary(result: pd.DataFrame) -> dict[str, int]:
    """Verdict → how many actions got it (every verdict, zeros included)."""
    counts = result["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}
