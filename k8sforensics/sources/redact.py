"""Credential redaction: one pass for every value the toolkit stores or shows.

Evidence goes into a case that analysts share, mail and export; credentials must not. Each
credential is replaced by ``REDACTED:sha256=<16 hex>:len=<n>`` (the first 16 hex digits of
the sha256 of the value's UTF-8 text, and its length in characters) so that two records
carrying the same value can still be matched — and a value known to have leaked can be
looked for with ``redacted(value)`` — without the value itself ever being stored.

Two kinds of rule, each counted by name (``Redactions``) so the manifest can say what was
redacted per ingest:

- **structured** (``redact``), over parsed JSON bodies and objects: Secret ``data`` and
  ``stringData`` wherever a Secret appears (request, response, watch events, lists, tables,
  patches on secrets); TokenRequest/TokenReview tokens; the ``last-applied-configuration``
  annotation, parsed and redacted by the same rules (a Secret's whole); and any string value
  whose key names a credential (``DB_PASSWORD``, ``apiKey``, ``client_secret``…): env
  ``{"name": …, "value": …}`` pairs, ConfigMap data, annotations;
- **by shape** (``redact_text``), in free text and in every string inside a body that a
  cheap pre-check flags: the detectors of `detect-secrets <https://github.com/Yelp/detect-secrets>`_
  (AWS keys, JWTs, private keys, GitHub/GitLab/Slack/Stripe/… tokens, basic-auth URLs,
  ``password=``-style keywords), plus the shapes its file grammars do not cover: URL query
  parameters and command-line flags that name a credential (``?token=…``, ``--password …``),
  ``Authorization: Bearer``/``Basic`` values, and whole private-key blocks.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MARK = "REDACTED:sha256="

# resources whose request/response bodies carry credentials
SECRET_RESOURCES = frozenset({"secrets", "tokenreviews", "tokenrequests"})

#: the most nesting a walk follows; deeper parts of a body are replaced whole (a body that
#: deep is not a Kubernetes object, and nothing in it is read as one)
MAX_DEPTH = 200

# A key that names a credential: its last word is one of these (DB_PASSWORD, apiKey,
# aws_secret_access_key, client-secret), not a reference to one (secretName, tokenPath).
_CREDENTIAL_KEY = re.compile(
    r"(?:^|[_.\-/]|(?<=[a-z])(?=[A-Z]))(?:password|passwd|passphrase|pwd|secret|secrets|token|apikey|api[_-]?key|"
    r"access[_-]?key|secret[_-]?key|private[_-]?key|signing[_-]?key|client[_-]?secret|credential|credentials|"
    r"auth[_-]?token|bearer|connection[_-]?string|conn[_-]?str|dsn|cookie|session[_-]?key)$",
    re.IGNORECASE,
)


class Redactions(Counter[str]):
    """How many values each rule replaced."""


def redacted(value: Any) -> str:
    """The stand-in stored for a credential: same value, same stand-in."""
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    return f"{MARK}{digest}:len={len(text)}"


def is_credential_key(key: str) -> bool:
    """Does this key or variable name name a credential (``DB_PASSWORD``, ``apiKey``)?"""
    return bool(_CREDENTIAL_KEY.search(key.strip()))


# An environment variable needs less: ``STRIPE_KEY``, ``ADMIN_PASS`` hold credentials by
# convention, where an object's ``key`` field (``secretKeyRef.key``) names one.
_CREDENTIAL_ENV = re.compile(r"(?:^|_)(?:key|pass|pw|auth)$", re.IGNORECASE)


def is_credential_env(name: str) -> bool:
    """Does this environment variable name hold a credential (``DB_PASSWORD``, ``STRIPE_KEY``)?"""
    return is_credential_key(name) or bool(_CREDENTIAL_ENV.search(name.strip()))


def needs_redaction(resource: str | None, subresource: str | None) -> bool:
    return resource in SECRET_RESOURCES or subresource == "token"


# --------------------------------------------------------------------------- structured


def redact(
    obj: Any,
    *,
    resource: str | None = None,
    subresource: str | None = None,
    counts: Counter[str] | None = None,
    text: bool = True,
) -> Any:
    """A copy of ``obj`` (parsed JSON) with credentials replaced; ``obj`` is not modified.

    ``resource`` and ``subresource`` come from the event's objectRef, so bodies without a
    ``kind`` (patches, DeleteOptions, watch events) are judged by what they were sent to.
    ``text=True`` also runs ``redact_text`` on every string. The walk is iterative and stops
    at ``MAX_DEPTH``: it never recurses, whatever the body."""
    counts = Redactions() if counts is None else counts
    as_secret = resource == "secrets"
    as_token = subresource == "token" or resource == "tokenreviews"
    if isinstance(obj, list) and as_secret:
        # a JSON patch on a secret: every value an op carries may be secret material
        return [_redact_patch_op(op, counts) for op in obj]
    return _walk(obj, as_secret=as_secret, as_token=as_token, counts=counts, text=text)


def _walk(root: Any, *, as_secret: bool, as_token: bool, counts: Counter[str], text: bool) -> Any:
    # Iterative: (parent container, key in parent, node, depth, secret context, token context).
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int, bool, bool]] = [(holder, 0, root, 0, as_secret, as_token)]
    while stack:
        parent, key, node, depth, secret_ctx, token_ctx = stack.pop()
        if depth > MAX_DEPTH:
            parent[key] = redacted(node)
            counts["too-deep"] += 1
            continue
        if isinstance(node, str):
            parent[key] = redact_text(node, counts) if text else node
            continue
        if isinstance(node, list):
            out_list: list[Any] = list(node)
            parent[key] = out_list
            for i, item in enumerate(node):
                stack.append((out_list, i, item, depth + 1, secret_ctx, False))
            continue
        if not isinstance(node, dict):
            parent[key] = node
            continue
        kind = node.get("kind")
        # a Secret: by its kind, or (without one) a body sent to the secrets resource that
        # carries data — the object of a watch event, a table row, a strategic merge patch
        secret = kind == "Secret" or (secret_ctx and kind is None and ("data" in node or "stringData" in node))
        token = kind in ("TokenRequest", "TokenReview") or (token_ctx and kind is None)
        out: dict[str, Any] = dict(node)
        parent[key] = out
        for k, v in node.items():
            if secret and k in ("data", "stringData"):
                out[k] = _redact_values(v, counts, "secret-data")
                continue
            if token and k in ("spec", "status") and isinstance(v, dict) and v.get("token"):
                v = {**v, "token": redacted(v["token"])}
                counts["token"] += 1
            if k == "annotations" and isinstance(v, dict) and LAST_APPLIED in v:
                v = {**v, LAST_APPLIED: _redact_last_applied(v[LAST_APPLIED], secret=secret, counts=counts)}
            if isinstance(k, str) and isinstance(v, str) and v and not v.startswith(MARK) and is_credential_key(k):
                out[k] = redacted(v)
                counts["credential-key"] += 1
                continue
            if (
                k == "value"
                and isinstance(v, str)
                and v
                and isinstance(node.get("name"), str)
                and is_credential_env(node["name"])
            ):
                out[k] = redacted(v)  # an env var: {"name": "DB_PASSWORD", "value": "..."}
                counts["credential-env"] += 1
                continue
            child_secret = kind in ("SecretList",) or (secret_ctx and kind is None and k in ("items", "object", "rows"))
            stack.append((out, k, v, depth + 1, child_secret or (secret_ctx and k in ("object", "items")), False))
    return holder[0]


def _redact_values(value: Any, counts: Counter[str], rule: str) -> Any:
    if isinstance(value, dict):
        out = {k: v if isinstance(v, str) and v.startswith(MARK) else redacted(v) for k, v in value.items()}
        counts[rule] += sum(1 for k in value if out[k] is not value[k])
        return out
    if value is None or (isinstance(value, str) and value.startswith(MARK)):
        return value
    counts[rule] += 1
    return redacted(value)


def _redact_last_applied(text: Any, *, secret: bool, counts: Counter[str]) -> Any:
    """The annotation is the whole object as last applied, as JSON text: a Secret's is
    replaced whole; another kind's is parsed and redacted by the same rules."""
    if secret or not isinstance(text, str):
        counts["last-applied"] += 1
        return redacted(text)
    try:
        inner = orjson.loads(text)
    except orjson.JSONDecodeError:
        return redact_text(text, counts)
    before = sum(counts.values())
    cleaned = redact(inner, counts=counts)
    if isinstance(inner, dict) and inner.get("kind") == "Secret":
        counts["last-applied"] += 1
        return redacted(text)
    return orjson.dumps(cleaned).decode() if sum(counts.values()) != before else text


def _redact_patch_op(op: Any, counts: Counter[str]) -> Any:
    if isinstance(op, dict) and "value" in op:
        v = op["value"]
        counts["secret-patch"] += len(v) if isinstance(v, dict) else 1
        return {**op, "value": {k: redacted(x) for k, x in v.items()} if isinstance(v, dict) else redacted(v)}
    return op


def redact_json_text(
    text: str,
    *,
    resource: str | None = None,
    subresource: str | None = None,
    counts: Counter[str] | None = None,
    structured: bool | None = None,
    scan: bool | None = None,
) -> str:
    """A JSON body as text, redacted: the structured rules on the parsed body where it may need
    them (exact values, so their stand-ins match), then the text rules once over the whole text
    (cheaper than once per string inside it); text that is not JSON is redacted as free text."""
    counts = Redactions() if counts is None else counts
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return redact_text(text, counts)
    # ``structured`` and ``scan``: what _STRUCTURE and BODY_TEXT_PRECHECK say of the text, when
    # the caller already knows (redact_batch asks Arrow for a whole column at once)
    if needs_redaction(resource, subresource) or (_STRUCTURE.search(text) if structured is None else structured):
        before = sum(counts.values())
        obj = redact(obj, resource=resource, subresource=subresource, counts=counts, text=False)
        if sum(counts.values()) != before:
            text = orjson.dumps(obj).decode()
    if not (BODY_TEXT_PRECHECK.search(text) if scan is None else scan):
        return text
    found = Redactions()
    scanned = redact_text(text, found)
    if scanned is text:
        return text
    try:
        orjson.loads(scanned)
    except orjson.JSONDecodeError:  # a value the text pass took ran across JSON syntax: string by string instead
        return orjson.dumps(redact(obj, counts=counts, text=True)).decode()
    counts.update(found)
    return scanned


# what makes a body need the structured rules (a superset, as BODY_PRECHECK's first part)
_STRUCTURE = re.compile(
    r'(?i)"[^"]*(?:passw|passphrase|pwd|secret|token|api.?key|access.?key|private.?key|signing.?key|[_-]key|credential|cookie|'
    r'dsn|bearer|connection.?string)[^"]*"\s*:\s*"|"name"\s*:\s*"[^"]*(?:pass|pw|key|token|secret|auth|credential)[^"]*"|'
    r'last-applied-configuration|"Secret"|"Token(?:Review|Request)"|"(?:data|stringData)"\s*:'
)


# --------------------------------------------------------------------------- by shape

# A superset of what the text rules look for: text without any of these is left alone
# without running them (most of an audit log or a process table). Words as common in
# Kubernetes evidence as "authorization" or "credential-id" are not in it: what they could
# introduce is caught by the words and shapes that are.
_WORDS = r"passw\w*|passphrase|pwd|secrets?|token|api.?key|access.?key|private.?key|signing.?key|\w+[_-]key|\w+[_-]pass|credentials?|sig|signature|cookie|dsn"
_SHAPES = (
    r"bearer[\s+]|basic[\s+]|AKIA|ASIA|AGPA|AIDA|AROA|A3T|eyJ|xox|gh[pousr]_|github_pat|glpat|sk_live|rk_live|sk-|SG\.|npm_|pypi-|AIza|"
    r"://[^/\s:@]+:[^/\s@]+@|-----BEGIN"
)
# A superset of what the text rules look for — a credential word followed by an assignment
# or given as a flag, or a credential's shape: text without any is left alone (most of an
# audit log or a process table). PRECHECK allows a quote before the assignment
# (``"password": "…"`` in a log message); BODY_TEXT_PRECHECK, for whole JSON bodies, does not:
# a JSON key that names a credential is the structured rules' business.
PRECHECK = re.compile(rf"(?i)(?:{_WORDS})['\"]?\s*(?:[=:]|%3[ad])|--?(?:{_WORDS})\s|(?:{_WORDS})\s+\S|{_SHAPES}")
BODY_TEXT_PRECHECK = re.compile(rf"(?i)(?:{_WORDS})\s*[=:]|--?(?:{_WORDS})\s|{_SHAPES}")
# The same for a map key or an object key that names a credential (``is_credential_key``
# and ``is_credential_env``), for Arrow's RE2 engine: by its last word.
KEY_PRECHECK = (
    r"(?i)(?:passw\w*|passphrase|pwd|secrets?|token|api.?key|access.?key|secret.?key|private.?key|signing.?key|"
    r"client.?secret|credentials?|auth.?token|bearer|connection.?string|conn.?str|dsn|cookie|session.?key|"
    r"[_-]key|[_-]pass|[_-]pw|[_-]auth|^key|^pass|^pw|^auth)$"
)
# A JSON body that needs the structured rules or the text rules: a string-valued key that
# names a credential, an env entry whose name does, the last-applied annotation, a Secret or
# a token review, or any text-rule shape.
BODY_PRECHECK = (
    r'(?i)"[^"]*(?:passw|passphrase|pwd|secret|token|api.?key|access.?key|private.?key|signing.?key|[_-]key|'
    r'credential|cookie|dsn|bearer|connection.?string)[^"]*"\s*:\s*"|'
    r'"name"\s*:\s*"[^"]*(?:pass|pw|key|token|secret|auth|credential)[^"]*"|last-applied-configuration|"Secret"|'
    r'"Token(?:Review|Request)"|' + PRECHECK.pattern.removeprefix("(?i)")
)


# A credential named in a query string, an assignment or a command-line flag, and the value
# after it: ``?token=…``, ``DB_PASSWORD=…``, ``password: …``, ``--password …``. (A bare word
# followed by a space is not enough: ``kubectl create token my-sa`` names no credential.)
_CREDENTIAL_WORD = (
    r"(?:[a-z0-9]+[_.-])*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"secret[_-]?key|private[_-]?key|client[_-]?secret|credentials?|auth[_-]?token|sig|signature)"
)
_NAMED_VALUE = re.compile(
    rf"(?i)(?:(?P<name>{_CREDENTIAL_WORD})\s*[=:]\s*|(?:^|\s)--?(?P<flag>{_CREDENTIAL_WORD})\s+"
    rf"|(?:^|\s)(?P<compound>(?:[a-z0-9]+[_-])+{_CREDENTIAL_WORD})\s+)"
    r"['\"]?(?P<value>[^\s&'\";,]{4,})"
)
_AUTH_HEADER = re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.DOTALL
)
# detect-secrets detectors used on free text: all but the entropy ones (they flag ordinary
# words in command lines) and the public-IP one (addresses are evidence, not secrets)
_NOT_USED = {"Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)"}


@lru_cache(maxsize=1)
def _detectors() -> list[tuple[str, Callable[[str], list[str]]]]:
    """detect-secrets' detectors as functions from text to the credentials found in it.

    A regex detector's own ``analyze_string`` yields the first group of a pattern that has
    one, which for some is the prefix (``ghp``) rather than the token: its patterns are
    applied here, taking a group only when it is the part after a prefix (the password of a
    basic-auth URL), else the whole match carried to the end of the token (a JWT's pattern
    stops before its signature)."""
    # detect-secrets' logger setup (logging.captureWarnings) reroutes every warning of the
    # process to logging when it is imported: keep the process's own warnings as they were
    shown = warnings.showwarning
    try:
        from detect_secrets.core.plugins.util import (
            get_mapping_from_secret_type_to_class,
        )
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.settings import default_settings
    finally:
        warnings.showwarning = shown

    def by_pattern(patterns: list[re.Pattern[str]]) -> Callable[[str], list[str]]:
        def find(line: str) -> list[str]:
            out = []
            for pattern in patterns:
                for m in pattern.finditer(line):
                    groups = [g for g in range(1, (pattern.groups or 0) + 1) if m.group(g) and m.start(g) > m.start()]
                    if groups:
                        out.append(m.group(groups[-1]))
                    else:
                        end = _TOKEN_TAIL.match(line, m.end())
                        out.append(line[m.start() : end.end() if end else m.end()])
            return out

        return find

    with default_settings():
        out: list[tuple[str, Callable[[str], list[str]]]] = []
        shown = warnings.showwarning
        for secret_type, cls in sorted(get_mapping_from_secret_type_to_class().items()):
            if secret_type in _NOT_USED:
                continue
            plugin = cls()
            if isinstance(plugin, RegexBasedDetector):
                out.append((secret_type, by_pattern(list(plugin.denylist))))
            else:
                # the keyword detector: its YAML grammar is the most permissive about quoting
                out.append(
                    (
                        secret_type,
                        lambda line, p=plugin: [
                            h.secret_value for h in p.analyze_line(filename="evidence.yaml", line=line, line_number=0)
                        ],
                    )
                )
        warnings.showwarning = shown
        return out


_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-+/=.]*")


def redact_text(text: str, counts: Counter[str] | None = None) -> str:
    """Free text (a URI, a command line, a log message) with every credential found by
    shape replaced."""
    if not text or not PRECHECK.search(text):
        return text
    counts = Redactions() if counts is None else counts
    found: dict[str, str] = {}  # value → rule
    # a URI carries its command and query URL-encoded: look in the decoded text, replace
    # both spellings of what is found
    decoded = unquote_plus(text) if ("%" in text or "+" in text) else text
    for scanned in (text, decoded) if decoded != text else (text,):
        _find(scanned, found)
    if not found:
        return text
    # A keyword detector may take a value up to the end of the line (``KEY=v aws s3 ls``):
    # where a tighter match lies inside such a span, keep the tighter one, so the stand-in is
    # the credential's own and matches it elsewhere.
    for value in [v for v in found if any(c.isspace() for c in v)]:
        if any(w != value and w in value for w in found):
            del found[value]
    # longest first, so a value inside another is not replaced twice
    for value in sorted(found, key=len, reverse=True):
        for spelling in {value, quote_plus(value), quote(value, safe="")}:
            if spelling in text:
                counts[found[value]] += text.count(spelling)
                text = text.replace(spelling, redacted(value))
    return text


def _find(text: str, found: dict[str, str]) -> None:
    for m in _PRIVATE_KEY.finditer(text):
        found[m.group(0)] = "private-key"
    for m in _AUTH_HEADER.finditer(text):
        found.setdefault(m.group("value"), "auth-header")
    for m in _NAMED_VALUE.finditer(text):
        value = m.group("value")
        if not value.startswith(MARK) and not _is_reference(value):
            found.setdefault(value, "named-value")
    for secret_type, analyze in _detectors():
        try:
            hits = analyze(text)
        except Exception:  # a detector's own failure must not stop an ingest
            continue
        for value in hits:
            if value and secret_type == "Private Key":
                continue  # the header only: the whole block is taken above
            if value and len(value) >= 4 and not value.startswith(MARK):
                found.setdefault(value, "detect-secrets:" + secret_type)


def _is_reference(value: str) -> bool:
    """``--token-file /var/run/…`` or ``secretKeyRef``-style names are where a credential is,
    not the credential."""
    return value.startswith(("/", "$", "${", "{{")) or value.lower() in {
        "true",
        "false",
        "null",
        "none",
        "redacted",
        "xxxx",
        "****",
    }


def redact_excerpt(text: str, counts: Counter[str] | None = None) -> str:
    """An excerpt of a bad record, as stored in the quarantine: redacted as JSON when it
    parses, else string by string: every quoted value after a key that names a credential
    and every value inside a ``data``/``stringData`` object of a record that mentions a
    Secret is replaced, then the text rules run over what is left."""
    counts = Redactions() if counts is None else counts
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        obj = None
    if obj is not None and not isinstance(obj, (str, int, float, bool)):
        # a bad record may be a Secret that lost its kind: any data without a kind is taken as one
        context = "secrets" if ('"data"' in text or '"stringData"' in text) else None
        return orjson.dumps(redact(obj, resource=context, counts=counts)).decode()
    if '"Secret' in text or '"stringData"' in text or '"data"' in text:
        text = _DATA_BLOCK.sub(
            lambda m: m.group("head") + _QUOTED.sub(lambda q: _quoted_stand_in(q, counts), m.group("body")), text
        )
    text = _KEYED_STRING.sub(
        lambda m: (
            m.group("key") + _stand_in(m.group("value"), counts) if is_credential_key(m.group("name")) else m.group(0)
        ),
        text,
    )
    return redact_text(text, counts)


# inside a (possibly cut-off) data/stringData object: every "key": "value" pair
_DATA_BLOCK = re.compile(r'(?P<head>"(?:data|stringData)"\s*:\s*\{)(?P<body>[^{}]*)')
_QUOTED = re.compile(r'(?P<key>"[^"\\]*"\s*:\s*)"(?P<value>(?:[^"\\]|\\.)*)("|$)')
_KEYED_STRING = re.compile(r'(?P<key>"(?P<name>[^"\\]{1,80})"\s*:\s*)"(?P<value>(?:[^"\\]|\\.)*)("|$)')


def _stand_in(value: str, counts: Counter[str]) -> str:
    if value.startswith(MARK):
        return f'"{value}"'
    counts["excerpt"] += 1
    return f'"{redacted(value)}"'


def _quoted_stand_in(m: re.Match[str], counts: Counter[str]) -> str:
    return m.group("key") + _stand_in(m.group("value"), counts)


# --------------------------------------------------------------------------- tables

# What each table's columns hold, for the pass every batch goes through before it is stored:
# free text, a JSON body, or a map/list of text. Columns not named are identifiers, names,
# addresses and times: the evidence itself, never a credential's only home.
TEXT, BODY, TEXTS = "text", "body", "texts"
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "audit": (
        ("request_uri", TEXT),
        ("exec_command", TEXT),
        ("user_agent", TEXT),
        ("response_reason", TEXT),
        ("authz_reason", TEXT),
        ("request_object", BODY),
        ("response_object", BODY),
        ("annotations", TEXTS),
        ("user_extra", TEXTS),
    ),
    "runtime": (("output", TEXT), ("args", TEXT), ("cmdline", TEXT), ("parent_cmdline", TEXT), ("extra", BODY)),
    "flows": (("http_url", TEXT), ("extra", BODY)),
    "objects": (("object", BODY),),
    "quarantine": (("excerpt", "excerpt"),),
    "findings": (("summary", TEXT), ("title", TEXT)),
}
# PRECHECK for Arrow's RE2 engine (same alternatives), run over a whole column at once
_PRECHECK_RE2 = PRECHECK.pattern


def redact_batch(batch: pa.RecordBatch, table: str, counts: Counter[str]) -> pa.RecordBatch:
    """``batch`` of ``table`` with every credential in its text, body and map columns
    replaced. Rows are flagged a column at a time in Arrow (a regex over the column); only
    flagged values are parsed and redacted in Python."""
    columns = COLUMNS.get(table, ())
    if not columns or not batch.num_rows:
        return batch
    secret_rows = None
    if table == "audit":
        resource, sub = batch.column("resource"), batch.column("subresource")
        secret_rows = pc.or_(
            pc.fill_null(pc.is_in(resource, value_set=pa.array(sorted(SECRET_RESOURCES))), False),
            pc.fill_null(pc.equal(sub, "token"), False),
        )
    for name, kind in columns:
        i = batch.schema.get_field_index(name)
        if i < 0:
            continue
        col = batch.column(i)
        if col.null_count == len(col):
            continue
        if kind == TEXTS:
            rows_hit = _rows_with_hits(col)
            if not rows_hit:
                continue
            values = col.to_pylist()
            changed = False
            for r in sorted(rows_hit):
                v = values[r]
                if v is not None:
                    new = _redact_texts(v, counts)
                    changed |= new != v
                    values[r] = new
            if changed:
                batch = batch.set_column(i, batch.schema.field(i), pa.array(values, col.type))
            continue
        flagged = pc.fill_null(pc.match_substring_regex(col, BODY_PRECHECK if kind == BODY else _PRECHECK_RE2), False)
        if kind == BODY and secret_rows is not None:
            flagged = pc.or_(flagged, pc.and_(secret_rows, pc.is_valid(col)))
        rows = pc.indices_nonzero(flagged).to_pylist()
        if not rows:
            continue
        # only the flagged rows leave Arrow (a column of bodies is most of a batch's bytes)
        taken = pa.array(rows, pa.int64())
        values = col.take(taken).to_pylist()
        if kind == BODY:
            flagged_bodies = col.take(taken)
            structure = pc.fill_null(pc.match_substring_regex(flagged_bodies, _STRUCTURE.pattern), False).to_pylist()
            scan = pc.fill_null(pc.match_substring_regex(flagged_bodies, BODY_TEXT_PRECHECK.pattern), False).to_pylist()
            if table == "audit":
                resources = batch.column("resource").take(taken).to_pylist()
                subresources = batch.column("subresource").take(taken).to_pylist()
        before = sum(counts.values())
        for k, v in enumerate(values):
            if kind == TEXT:
                values[k] = redact_text(v, counts)
            elif kind == "excerpt":
                values[k] = redact_excerpt(v, counts)
            else:
                res, sub = (resources[k], subresources[k]) if table == "audit" else (None, None)
                values[k] = redact_json_text(
                    v, resource=res, subresource=sub, counts=counts, structured=structure[k], scan=scan[k]
                )
        if sum(counts.values()) != before:
            # the new values in place of the old: concatenated, then taken back into row order
            order = np.arange(len(col))
            order[rows] = len(col) + np.arange(len(rows))
            new = pa.concat_arrays([col, pa.array(values, col.type)]).take(pa.array(order))
            batch = batch.set_column(i, batch.schema.field(i), new)
    return batch


def _rows_with_hits(col: pa.Array) -> set[int]:
    """Rows of a map (or list) column with a value that PRECHECK flags, or a key that
    KEY_PRECHECK flags: the children are checked in Arrow and traced back to their rows by
    the offsets (the children of a sliced array are not sliced)."""
    offsets = col.offsets.to_numpy()
    lo, hi = int(offsets[0]), int(offsets[-1])
    checks: list[tuple[pa.Array, str, np.ndarray | None]] = []
    values = (col.items if pa.types.is_map(col.type) else col.values).slice(lo, hi - lo)
    if pa.types.is_map(col.type):
        checks.append((col.keys.slice(lo, hi - lo), KEY_PRECHECK, None))
    if pa.types.is_list(values.type):  # map of lists (user.extra): one level more
        inner = values.offsets.to_numpy()
        checks.append((values.values.slice(int(inner[0]), int(inner[-1] - inner[0])), _PRECHECK_RE2, inner - inner[0]))
    else:
        checks.append((values, _PRECHECK_RE2, None))
    rows: set[int] = set()
    for part, pattern, inner_offsets in checks:
        if not len(part):
            continue
        hit = np.flatnonzero(
            pc.fill_null(pc.match_substring_regex(part, pattern), False).to_numpy(zero_copy_only=False)
        )
        if not len(hit):
            continue
        if inner_offsets is not None:
            hit = np.searchsorted(inner_offsets, hit, side="right") - 1
        rows.update((np.searchsorted(offsets, hit + lo, side="right") - 1).tolist())
    return rows


def _redact_texts(value: Any, counts: Counter[str]) -> Any:
    """A map (as pairs or a dict) or list of texts: values whose key names a credential are
    replaced whole, the rest redacted as text."""
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        out = []
        for k, v in value:
            if isinstance(v, str) and v and not v.startswith(MARK) and is_credential_key(k):
                counts["credential-key"] += 1
                out.append((k, redacted(v)))
            else:
                out.append((k, _redact_texts(v, counts)))
        return out
    if isinstance(value, dict):
        return dict(_redact_texts(list(value.items()), counts))
    if isinstance(value, list):
        return [_redact_texts(v, counts) for v in value]
    return redact_text(value, counts) if isinstance(value, str) else value
