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
import re._constants as _sre  # the parsed form of a pattern, for _literals
import re._parser as _sre_parse
import warnings
from collections import Counter
from collections.abc import Callable
from functools import cache, lru_cache
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
    r"auth[_-]?token|bearer|connection[_-]?string|conn[_-]?str|dsn|cookie|session[_-]?key|"
    # a GCP SignJwt/SignBlob response: a signed JWT is a bearer credential
    r"signed[_-]?jwt|signed[_-]?blob)$",
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
    scan = bool(BODY_TEXT_PRECHECK.search(text)) if scan is None else scan
    if needs_redaction(resource, subresource) or (_STRUCTURE.search(text) if structured is None else structured):
        before = sum(counts.values())
        obj = redact(obj, resource=resource, subresource=subresource, counts=counts, text=False)
        if sum(counts.values()) != before:
            # the text as written again (its escapes undone): scanned if the written text or
            # this one needs it
            text = orjson.dumps(obj).decode()
            scan = scan or bool(BODY_TEXT_PRECHECK.search(text))
    if not scan:
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


def _folded(words: str) -> str:
    """``words`` (a regex of ASCII words) with each letter as the class of every character
    Python's case-insensitive matching takes for it (``ſ`` for ``s``, the Kelvin sign for ``k``,
    dotted and dotless ``i``): the pattern then means the same to Python's engine and to RE2,
    whose own case folding differs on those."""
    extra = {"i": "İı", "k": "\u212a", "s": "ſ"}
    return re.sub(r"[A-Za-z]", lambda m: f"[{m[0].lower()}{m[0].upper()}{extra.get(m[0].lower(), '')}]", words)


# every character Python's ``\s`` and ``str.strip`` take as whitespace, for RE2 (whose ``\s``
# is ASCII only)
_SPACE = "[\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_JSON_SPACE = "[ \t\n\r]*"
# the last words of a key that names a credential (_CREDENTIAL_KEY), and of an environment
# variable that holds one (_CREDENTIAL_ENV)
_KEY_WORDS = _folded(
    r"passw(?:or)?d|passphrase|pwd|secrets?|token|(?:api|access|secret|private|signing|session)[_-]?key|"
    r"client[_-]?secret|credentials?|auth[_-]?token|bearer|connection[_-]?string|conn[_-]?str|dsn|cookie"
)
# what may stand before a key's last word (_CREDENTIAL_KEY: the start, a separator, or — its
# lower-to-upper case change read case-insensitively — any letter), and before an env
# variable's (_CREDENTIAL_ENV: the start or ``_``)
# (inside a JSON string, after what may come first; ``\/`` is a written ``/``)
_JSON_STRING_BODY = r'(?:[^"\\]|\\(?s:.))*'
_KEY_START = "(?:[_./-]|\\\\/|[A-Za-zſ\u212aİı])"
_KEY_NAME = f'"(?:{_JSON_STRING_BODY}?{_KEY_START})?(?:{_KEY_WORDS})'
_ENV_NAME = f'{_KEY_NAME}|"(?:{_JSON_STRING_BODY}?_)?(?:{_folded("key|pass|pw|auth")})'
# what a string's end may hold after its last word that ``strip`` takes away: whitespace, raw
# or as a JSON escape
_TRAIL = rf"(?:{_SPACE}|\\[tnrf])*"
# a \u escape of a character a structured rule reads (a letter, whitespace, ``-./_``, anything
# beyond ASCII): a body that spells a key or a kind that way is walked whatever it says
_ESCAPE_THAT_MATTERS = (
    r"\\u(?:00(?:[46][1-9a-fA-F]|[57][0-9aA]|2[0d-fD-F]|5[fF]|0[9a-dA-D]|1[c-fC-F]|[89a-fA-F][0-9a-fA-F])|"
    r"0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3})"
)
# What makes a JSON body need the structured rules: a superset of every body ``redact`` changes
# when the event's resource does not (the walk is decided by the resource for secrets and
# tokens): a string-valued key whose last word names a credential, an env entry's ``name``
# whose last word does (each after what may stand before that word), a Secret or a Secret
# list, a token review or request, the last-applied annotation, or a \u escape that could
# spell any of these. The same text is a Python and an
# RE2 pattern with the same meaning (no ``\s``, ``\w`` or ``(?i)``: spelled out above), so the
# column-level check in Arrow flags exactly the rows the per-row check flags.
_STRUCTURE_PATTERN = (
    rf'{_KEY_NAME}{_TRAIL}"{_JSON_SPACE}:{_JSON_SPACE}"[^"]|'
    rf'"name"{_JSON_SPACE}:{_JSON_SPACE}(?:{_ENV_NAME}){_TRAIL}"|'
    r'"Secret(?:List)?"|"Token(?:Review|Request)"|last-applied-configuration|' + _ESCAPE_THAT_MATTERS
)
_STRUCTURE = re.compile(_STRUCTURE_PATTERN)


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
# Where nothing comes before the words, ``\w+[_-]key`` finds what ``\w[_-]key`` finds (one
# word character before the separator is enough for a search), without Python's engine
# backtracking through every run of word characters: _FIRST_WORDS is _WORDS for that place.
_FIRST_WORDS = _WORDS.replace(r"\w+[_-]", r"\w[_-]")
PRECHECK = re.compile(
    rf"(?i)(?:{_FIRST_WORDS})['\"]?\s*(?:[=:]|%3[ad])|--?(?:{_WORDS})\s|(?:{_FIRST_WORDS})\s+\S|{_SHAPES}"
)
BODY_TEXT_PRECHECK = re.compile(rf"(?i)(?:{_FIRST_WORDS})\s*[=:]|--?(?:{_WORDS})\s|{_SHAPES}")
# The same for a map key or an object key that names a credential (``is_credential_key``
# and ``is_credential_env``), for Arrow's RE2 engine: by its last word.
KEY_PRECHECK = (
    r"(?i)(?:passw\w*|passphrase|pwd|secrets?|token|api.?key|access.?key|secret.?key|private.?key|signing.?key|"
    r"client.?secret|credentials?|auth.?token|bearer|connection.?string|conn.?str|dsn|cookie|session.?key|"
    r"[_-]key|[_-]pass|[_-]pw|[_-]auth|^key|^pass|^pw|^auth)$"
)
# A JSON body that needs the structured rules or the text rules (_STRUCTURE, or any text-rule
# shape), or a body that is not JSON and needs the text rules (PRECHECK), for Arrow's RE2.
BODY_PRECHECK = f"{_STRUCTURE_PATTERN}|(?i:{PRECHECK.pattern.removeprefix('(?i)')})"


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


def _literals(pattern: Any) -> frozenset[str] | None:
    """Strings one of which every match of a parsed pattern contains (the longest such a
    sequence of its top level or of a required part of it gives), or None when none is certain.
    Lookarounds, optional parts and parts with flags of their own are passed over: leaving a
    part out can only make the answer looser, never wrong."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    for op, av in pattern:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider(frozenset({"".join(run)}))
            run = []
        if op is _sre.SUBPATTERN and not (av[1] or av[2]):
            consider(_literals(av[3]))
        elif op is _sre.BRANCH:
            branches = [_literals(branch) for branch in av[1]]
            if all(branches):
                consider(frozenset().union(*branches))  # type: ignore[arg-type]
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            consider(_literals(av[2]))
    if run:
        consider(frozenset({"".join(run)}))
    return best


class _Literals:
    """Does a text hold one of ``words`` (under Python's case-insensitive matching when
    ``ignorecase``)? For an ASCII text, where lowering is exact, a substring test on the lowered
    text (Python's ``re`` scans a case-insensitive alternation position by position); else, and
    for a word with a character that folds to ASCII (``ſ``), the regex."""

    def __init__(self, words: frozenset[str], *, ignorecase: bool) -> None:
        flags = re.IGNORECASE if ignorecase else 0
        self.regex = re.compile("|".join(map(re.escape, sorted(words))), flags)
        self.ignorecase = ignorecase
        ascii_words = {w.lower() if ignorecase else w for w in words if w.isascii()}
        folds_to_ascii = (
            any(not w.isascii() and all(c.isascii() or _folds_to_ascii(c) for c in w) for w in words)
            if ignorecase
            else False
        )
        self.words: tuple[str, ...] | None = None if folds_to_ascii else tuple(sorted(ascii_words))

    def search(self, text: str, low: str | None = None) -> bool:
        """``low``: ``text.lower()`` when the caller has it (ASCII text only)."""
        if self.words is None or not text.isascii():
            return self.regex.search(text) is not None
        if self.ignorecase:
            low = text.lower() if low is None else low
            return any(w in low for w in self.words)
        return any(w in text for w in self.words)

    def starts(self, text: str, low: str | None = None) -> list[int]:
        """Every place a word starts, in order (overlapping ones too)."""
        if self.words is None or not text.isascii():
            return [m.start() for m in re.finditer(f"(?=(?:{self.regex.pattern}))", text, self.regex.flags)]
        hay = (text.lower() if low is None else low) if self.ignorecase else text
        out: set[int] = set()
        for w in self.words:
            i = hay.find(w)
            while i >= 0:
                out.add(i)
                i = hay.find(w, i + 1)
        return sorted(out)


@cache
def _folds_to_ascii(c: str) -> bool:
    return any(re.fullmatch(re.escape(c), chr(a), re.IGNORECASE) for a in range(128))


def _finite(pattern: Any) -> frozenset[str] | None:
    """Every string a parsed pattern of literals, alternatives and optional parts matches, or
    None if it is not that simple."""
    out = frozenset({""})
    for op, av in pattern:
        if op is _sre.LITERAL:
            part = frozenset({chr(av)})
        elif op is _sre.IN and all(o is _sre.LITERAL for o, _ in av):
            part = frozenset(chr(c) for _, c in av)
        elif op is _sre.SUBPATTERN and not (av[1] or av[2]):
            part = _finite(av[3])
        elif op is _sre.BRANCH:
            branches = [_finite(b) for b in av[1]]
            part = None if any(b is None for b in branches) else frozenset().union(*branches)  # type: ignore[arg-type]
        elif op is _sre.MAX_REPEAT and av[0] == 0 and av[1] == 1:
            inner = _finite(av[2])
            part = None if inner is None else inner | {""}
        else:
            return None
        if part is None:
            return None
        out = frozenset(a + b for a in out for b in part)
        if len(out) > 256:
            return None
    return out


def _words(pattern: str, flags: int) -> _Literals:
    """A ``_Literals`` for a regex of a few words (``api_?key|password``)."""
    words = _finite(_sre_parse.parse(pattern, flags))
    if not words or "" in words:
        raise ValueError(f"not a few words: {pattern!r}")
    return _Literals(words, ignorecase=bool(flags & re.IGNORECASE))


def _gate(pattern: re.Pattern[str]) -> _Literals | None:
    """A cheap test that passes every text ``pattern`` matches in (the literals every match
    contains, under the pattern's own case rules), or None if there is none worth it."""
    try:
        literals = _literals(_sre_parse.parse(pattern.pattern, pattern.flags))
    except Exception:  # a pattern the parser of this Python does not take: no gate, always run
        return None
    if not literals or min(map(len, literals)) < 2 or pattern.flags & re.ASCII:
        return None
    return _Literals(literals, ignorecase=bool(pattern.flags & re.IGNORECASE))


def _leading(pattern: Any) -> frozenset[str] | None:
    """Strings one of which every match of a parsed pattern starts with, or None."""
    run: list[str] = []
    for op, av in pattern:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            return frozenset({"".join(run)})
        if op is _sre.SUBPATTERN and not (av[1] or av[2]):
            return _leading(av[3])
        if op is _sre.BRANCH:
            branches = [_leading(branch) for branch in av[1]]
            return None if not all(branches) else frozenset().union(*branches)  # type: ignore[arg-type]
        return None
    return frozenset({"".join(run)}) if run else None


def _near(pattern: re.Pattern[str]) -> tuple[int, int, _Literals] | None:
    """Where a match of ``pattern`` can start, as (least, most) characters before one of some
    words: the parts before the first part that starts with a word must be of bounded width
    (a lookbehind, an optional bracket or quote), else None."""
    if pattern.flags & re.ASCII:
        return None
    try:
        parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
        if parsed.getwidth()[0] == 0:  # a pattern that can match nothing: finditer's own rules
            return None
        least = most = 0
        for op, av in parsed:
            words = _leading([(op, av)])
            if words and min(map(len, words)) >= 2:
                return least, most, _Literals(words, ignorecase=bool(pattern.flags & re.IGNORECASE))
            lo, hi = _sre_parse.SubPattern(parsed.state, [(op, av)]).getwidth()
            if hi >= _sre.MAXREPEAT:
                return None
            least, most = least + lo, most + hi
    except Exception:  # a pattern this parser does not take apart: run it everywhere
        return None
    return None


def _finditer_near(
    pattern: re.Pattern[str], near: tuple[int, int, _Literals], text: str, low: str | None
) -> list[re.Match[str]]:
    """``pattern.finditer(text)``, the pattern tried only where ``near`` says a match can start."""
    least, most, words = near
    starts: set[int] = set()
    for at in words.starts(text, low):
        starts.update(range(max(at - most, 0), max(at - least, -1) + 1))
    out: list[re.Match[str]] = []
    end = 0
    for start in sorted(starts):
        if start >= end and (m := pattern.match(text, start)):
            out.append(m)
            end = m.end()
    return out


class _StartsAt:
    """A pattern's ``search`` tried only where it can start: where one of the words it starts
    with does. ``match`` at a place is what ``search`` does there, so the first match is the same."""

    def __init__(self, pattern: re.Pattern[str], starts: _Literals) -> None:
        self.pattern, self.starts = pattern, starts

    def search(self, text: str) -> re.Match[str] | None:
        for start in self.starts.starts(text):
            m = self.pattern.match(text, start)
            if m:
                return m
        return None


class _Gated:
    """A pattern's ``search`` run only on text where its gate finds something."""

    def __init__(self, pattern: re.Pattern[str], gate: _Literals) -> None:
        self.pattern, self.gate = pattern, gate

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self.gate.search(text) else None


Detector = tuple[str, Callable[[str], list[str]], "_Literals | None"]


@lru_cache(maxsize=1)
def _detectors() -> list[Detector]:
    """detect-secrets' detectors as functions from text to the credentials found in it, each
    with a gate: a cheap search that finds something in every text the detector finds
    something in (None: always run).

    A regex detector's own ``analyze_string`` yields the first group of a pattern that has
    one, which for some is the prefix (``ghp``) rather than the token: its patterns are
    applied here, taking a group only when it is the part after a prefix (the password of a
    basic-auth URL), else the whole match carried to the end of the token (a JWT's pattern
    stops before its signature). Each pattern is only run on text its own gate passes. The
    keyword detector runs as its own code, its patterns searched only from where their
    keyword occurs (most of a large body is far from any)."""
    # detect-secrets' logger setup (logging.captureWarnings) reroutes every warning of the
    # process to logging when it is imported: keep the process's own warnings as they were
    shown = warnings.showwarning
    try:
        from detect_secrets.core.plugins.util import (
            get_mapping_from_secret_type_to_class,
        )
        from detect_secrets.plugins import keyword
        from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
        from detect_secrets.settings import default_settings
        from detect_secrets.util.filetype import determine_file_type
    finally:
        warnings.showwarning = shown

    def by_pattern(patterns: list[re.Pattern[str]]) -> Callable[[str], list[str]]:
        gated = [(pattern, _gate(pattern), _near(pattern)) for pattern in patterns]

        def find(line: str) -> list[str]:
            out = []
            low = line.lower() if line.isascii() else None
            for pattern, gate, near in gated:
                if gate is not None and not gate.search(line, low):
                    continue
                matches = pattern.finditer(line) if near is None else _finditer_near(pattern, near, line, low)
                for m in matches:
                    groups = [g for g in range(1, (pattern.groups or 0) + 1) if m.group(g) and m.start(g) > m.start()]
                    if groups:
                        out.append(m.group(groups[-1]))
                    else:
                        end = _TOKEN_TAIL.match(line, m.end())
                        out.append(line[m.start() : end.end() if end else m.end()])
            return out

        return find

    def either(gates: list[_Literals | None]) -> _Literals | None:
        # one test for all of a detector's gates, when they share their case rule
        if not gates or None in gates or len({g.ignorecase for g in gates if g}) != 1:
            return None
        words = frozenset().union(*(_finite(_sre_parse.parse(g.regex.pattern)) or () for g in gates if g))
        return _Literals(words, ignorecase=next(g.ignorecase for g in gates if g))

    def by_keyword(plugin: Any) -> tuple[Callable[[str], list[str]], re.Pattern[str] | None]:
        # the patterns detect-secrets picks for a YAML file: the most permissive about quoting
        grammar = keyword.REGEX_BY_FILETYPE[determine_file_type("evidence.yaml")]
        group = "(" + "|".join(keyword.DENYLIST) + ")"
        faster: dict[Any, int] = {}
        for pattern, number in grammar.items():
            words = _words(group, pattern.flags)
            if pattern.pattern.startswith(group):
                faster[_StartsAt(pattern, words)] = number
            else:  # every pattern holds a keyword: run it only where one is
                faster[_Gated(pattern, words)] = number

        def find(line: str) -> list[str]:
            # BasePlugin.analyze_line is what the detector's own analyze_line calls, with the grammar
            hits = BasePlugin.analyze_line(plugin, filename="evidence.yaml", line=line, denylist_regex_to_group=faster)
            return [h.secret_value for h in hits]

        # every pattern holds the keywords (some case-sensitively): a text without any, in any
        # case, is one none of them matches
        return find, _words(group, re.IGNORECASE) if all(group in p.pattern for p in grammar) else None

    with default_settings():
        out: list[Detector] = []
        shown = warnings.showwarning
        for secret_type, cls in sorted(get_mapping_from_secret_type_to_class().items()):
            if secret_type in _NOT_USED:
                continue
            plugin = cls()
            if isinstance(plugin, RegexBasedDetector):
                patterns = list(plugin.denylist)
                out.append((secret_type, by_pattern(patterns), either([_gate(p) for p in patterns])))
            elif isinstance(plugin, keyword.KeywordDetector):
                find, gate = by_keyword(plugin)
                out.append((secret_type, find, gate))
            else:  # a detector this code does not know: run as it is, on everything
                out.append(
                    (
                        secret_type,
                        lambda line, p=plugin: [
                            h.secret_value for h in p.analyze_line(filename="evidence.yaml", line=line, line_number=0)
                        ],
                        None,
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
    # evidence repeats itself (the same command line, env value or URI many times): a short
    # text's result is kept, with what it counted
    new, found = _scan_short(text) if len(text) <= _SHORT else _scan(text)
    if new is None:
        return text
    counts = Redactions() if counts is None else counts
    counts.update(dict(found))
    return new


_SHORT = 2048


def _scan(text: str) -> tuple[str | None, tuple[tuple[str, int], ...]]:
    """``text`` with what the text rules find replaced (None: nothing found), and how many
    values each rule replaced."""
    counts: Counter[str] = Counter()
    found: dict[str, str] = {}  # value → rule
    # a URI carries its command and query URL-encoded: look in the decoded text, replace
    # both spellings of what is found
    decoded = unquote_plus(text) if ("%" in text or "+" in text) else text
    for scanned in (text, decoded) if decoded != text else (text,):
        _find(scanned, found)
    if not found:
        return None, ()
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
    return text, tuple(counts.items())


_scan_short = lru_cache(maxsize=16384)(_scan)


def _find(text: str, found: dict[str, str]) -> None:
    # each rule runs only on text its gate passes (a search for what every match of it holds)
    low = text.lower() if text.isascii() else None
    if _PRIVATE_KEY_GATE.search(text, low):
        for m in _PRIVATE_KEY.finditer(text):
            found[m.group(0)] = "private-key"
    if _AUTH_HEADER_GATE.search(text, low):
        for m in _AUTH_HEADER.finditer(text):
            found.setdefault(m.group("value"), "auth-header")
    for m in _named_values(text, low):
        value = m.group("value")
        if not value.startswith(MARK) and not _is_reference(value):
            found.setdefault(value, "named-value")
    for secret_type, analyze, gate in _detectors():
        if gate is not None and not gate.search(text, low):
            continue
        try:
            hits = analyze(text)
        except Exception:  # a detector's own failure must not stop an ingest
            continue
        for value in hits:
            if value and secret_type == "Private Key":
                continue  # the header only: the whole block is taken above
            if value and len(value) >= 4 and not value.startswith(MARK):
                found.setdefault(value, "detect-secrets:" + secret_type)


_PRIVATE_KEY_GATE = _gate(_PRIVATE_KEY) or _Literals(frozenset({""}), ignorecase=False)
_AUTH_HEADER_GATE = _gate(_AUTH_HEADER) or _Literals(frozenset({""}), ignorecase=False)
# Where _NAMED_VALUE can match: its credential word right before what each of its forms needs
# next (``=``/``:`` or whitespace). A match starts at most one character before the run of
# name characters that ends at that word (``(?:[a-z0-9]+[_.-])*``, a flag's dashes, the
# whitespace or start before them).
_NAMED_WORD = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|"
    r"private[_-]?key|client[_-]?secret|credentials?|auth[_-]?token|sig|signature"
)
_NAMED_WORDS = _words(_NAMED_WORD, re.IGNORECASE)
_NAMED_AT = re.compile(rf"(?i)(?:{_NAMED_WORD})(?:[=:]|\s)")
_NAME_CHAR = re.compile(r"(?i)[a-z0-9_.-]")


def _named_values(text: str, low: str | None = None) -> list[re.Match[str]]:
    """What ``_NAMED_VALUE.finditer(text)`` gives, trying the pattern only where a match can
    start (the pattern backtracks through every run of name characters it is tried in: on a
    large body, most of the time of the text rules)."""
    starts: set[int] = set()
    for at in _NAMED_WORDS.starts(text, low):
        if not _NAMED_AT.match(text, at):  # not followed by what any form needs next
            continue
        first = at
        while first > 0 and _NAME_CHAR.match(text, first - 1):
            first -= 1
        starts.update(range(max(first - 1, 0), at + 1))
        if len(starts) > len(text) // 4:  # runs as long as the text: as cheap to try everywhere
            return list(_NAMED_VALUE.finditer(text))
    out: list[re.Match[str]] = []
    end = 0
    for start in sorted(starts):
        if start >= end and (m := _NAMED_VALUE.match(text, start)):
            out.append(m)
            end = m.end()
    return out


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
    # access_key_id / issued_key_id are identifiers (AWS documents the key id as not secret), kept so a
    # session's later calls can be joined to it; the secret and the session token are in the bodies
    "cloud": (
        ("user_agent", TEXT),
        ("error_message", TEXT),
        ("request_parameters", BODY),
        ("response_elements", BODY),
        ("extra", BODY),
    ),
    "alerts": (("title", TEXT), ("description", TEXT), ("extra", BODY)),
    "objects": (("object", BODY),),
    "quarantine": (("excerpt", "excerpt"),),
    "findings": (("summary", TEXT), ("title", TEXT)),
}
# PRECHECK for Arrow's RE2 engine (same alternatives), run over a whole column at once
_PRECHECK_RE2 = PRECHECK.pattern


def _or_non_ascii(pattern: str) -> str:
    """``pattern`` for RE2, or any character outside ASCII: RE2's ``\\w`` and case folding are
    ASCII where Python's are Unicode (``passwordİ=`` is a credential key to Python's rules and not
    to RE2's), so a text with such a character is left to the Python rules, which decide."""
    return f"(?:{pattern})|[^\\x00-\\x7f]"


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
        flagged = pc.fill_null(
            pc.match_substring_regex(col, _or_non_ascii(BODY_PRECHECK if kind == BODY else _PRECHECK_RE2)), False
        )
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
            structure = pc.fill_null(
                pc.match_substring_regex(flagged_bodies, _or_non_ascii(_STRUCTURE_PATTERN)), False
            ).to_pylist()
            scan = pc.fill_null(
                pc.match_substring_regex(flagged_bodies, _or_non_ascii(BODY_TEXT_PRECHECK.pattern)), False
            ).to_pylist()
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
            pc.fill_null(pc.match_substring_regex(part, _or_non_ascii(pattern)), False).to_numpy(zero_copy_only=False)
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
