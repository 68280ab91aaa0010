"""Credential redaction for objects carried in audit events.

Evidence goes into a case that analysts share and export; secret values must not. Each
credential string is replaced by ``REDACTED:sha256=<16 hex>:len=<n>`` so that two events
carrying the same value can still be matched, and a known leaked value can be checked,
without the value itself ever being stored.
"""

from __future__ import annotations

import hashlib
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# resources whose request/response bodies carry credentials
SECRET_RESOURCES = frozenset({"secrets", "tokenreviews", "tokenrequests"})


def redacted(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    return f"REDACTED:sha256={digest}:len={len(text)}"


def needs_redaction(resource: str | None, subresource: str | None) -> bool:
    return resource in SECRET_RESOURCES or subresource == "token"


def redact(obj: Any, *, resource: str | None = None, subresource: str | None = None) -> Any:
    """A copy of ``obj`` with credentials replaced; ``obj`` is not modified.

    Covers Secret ``data``/``stringData`` (anywhere in the tree: lists, tables, watch
    events), a Secret's ``last-applied-configuration`` annotation, TokenRequest
    ``status.token``, TokenReview ``spec.token``, and patches on secrets. ``resource`` and
    ``subresource`` come from the event's objectRef, so bodies without a ``kind`` (patches,
    DeleteOptions) are judged by what they were sent to.
    """
    if isinstance(obj, list) and resource == "secrets":
        # JSON patch on a secret: every value an op carries may be secret material
        return [_redact_patch_op(op) for op in obj]
    as_secret = resource == "secrets"
    as_token = subresource == "token" or resource == "tokenreviews"
    if isinstance(obj, dict):
        # The common shapes hold no nested objects that could carry more credentials:
        # redact them directly instead of walking (and copying) the whole tree.
        kind = obj.get("kind")
        if kind in ("TokenReview", "TokenRequest") or (as_token and kind is None):
            return _redact_object(obj, secret=False, token=True)
        if kind == "Secret" or (as_secret and kind is None and "items" not in obj):
            return _redact_object(obj, secret=True, token=False)
        if kind == "SecretList":
            items = obj.get("items")
            if isinstance(items, list):
                return {**obj, "items": [_redact_object(i, secret=True, token=False) if isinstance(i, dict) else i for i in items]}
    return _walk(obj, as_secret=as_secret, as_token=as_token)


def _redact_object(node: dict[str, Any], *, secret: bool, token: bool) -> dict[str, Any]:
    out = dict(node)
    if secret:
        for key in ("data", "stringData"):
            value = out.get(key)
            if value is not None:
                out[key] = {k: redacted(v) for k, v in value.items()} if isinstance(value, dict) else redacted(value)
        if isinstance(out.get("metadata"), dict):
            out["metadata"] = _redact_last_applied(out["metadata"])
    if token:
        for key in ("spec", "status"):
            value = out.get(key)
            if isinstance(value, dict) and "token" in value:
                out[key] = {**value, "token": redacted(value["token"])}
    return out


def _walk(node: Any, *, as_secret: bool = False, as_token: bool = False) -> Any:
    if isinstance(node, list):
        return [_walk(x, as_secret=as_secret) for x in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("kind")
    secret = kind == "Secret" or (as_secret and kind is None)
    token = kind in ("TokenRequest", "TokenReview") or (as_token and kind is None)
    out = _redact_object(node, secret=secret, token=token) if (secret or token) else dict(node)
    for key, value in out.items():
        if secret and key in ("data", "stringData", "metadata"):
            continue
        if key == "items" and isinstance(value, list):
            out[key] = [_walk(i, as_secret=kind == "SecretList" or (secret and kind is None)) for i in value]
        elif isinstance(value, (dict, list)):
            out[key] = _walk(value)
    return out


def _redact_last_applied(md: dict[str, Any]) -> dict[str, Any]:
    ann = md.get("annotations")
    if isinstance(ann, dict) and LAST_APPLIED in ann:
        return {**md, "annotations": {**ann, LAST_APPLIED: redacted(ann[LAST_APPLIED])}}
    return md


def _redact_patch_op(op: Any) -> Any:
    if isinstance(op, dict) and "value" in op:
        v = op["value"]
        return {**op, "value": {k: redacted(x) for k, x in v.items()} if isinstance(v, dict) else redacted(v)}
    return op
