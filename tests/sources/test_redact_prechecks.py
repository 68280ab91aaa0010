"""The cheap checks in front of redaction never let a credential through: every row, body or
text whose redaction changes something is one the checks flag, and the gated, accelerated text
rules find exactly what the plain ones find."""

from __future__ import annotations

import re
from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from k8sforensics.sources import redact as R

# words and shapes the rules look for, the characters that fold into ASCII letters, separators,
# JSON escapes: random text built from them hits every rule often
FRAGMENTS = [
    "password",
    "PASSWORD",
    "pwd",
    "PW",
    "pass",
    "key",
    "KEY",
    "apiKey",
    "api_key",
    "token",
    "Token",
    "secret",
    "Secret",
    "secretName",
    "credential",
    "dsn",
    "cookie",
    "auth",
    "bearer",
    "Bearer ",
    "basic ",
    "sig",
    "signature",
    "sg.",
    "SG.",
    "AKIA",
    "aws",
    "eyJ",
    "xoxb-",
    "ghp_",
    "glpat-",
    "sk_live_",
    "-----BEGIN RSA PRIVATE KEY-----",
    "://u:p@",
    "cloudant",
    "ibm",
    "cos",
    "hmac",
    "softlayer",
    "=",
    ":",
    ": ",
    "= ",
    "--",
    " ",
    "\t",
    "_",
    "-",
    ".",
    "/",
    '"',
    "'",
    "\\u0041",
    "\\u00a0",
    "\\t",
    '\\"',
    "ſ",
    "\u212a",
    "İ",
    "ı",
    "\xa0",
    "ñ",
    "contraseña",
    "abcdefgh12345678",
    "0123456789abcdef",
    "x" * 20,
    "DB_",
    "_PASS",
    "_KEY",
    "TXX",
    "2PW",
    "last-applied-configuration",
    'Secret"',
]
text = st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)

ENV_NAMES = st.one_of(text, st.sampled_from(["DB_PASSWORD", "STRIPE_KEY", "X_PW", "TXXPWD", "X2PW", "LOG_LEVEL"]))
KEYS = st.one_of(
    text,
    st.sampled_from(["name", "value", "kind", "data", "stringData", "spec", "status", "token", "annotations"]),
)
leaf = st.one_of(text, st.integers(-5, 5), st.booleans(), st.none())


def _json(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
        st.builds(lambda n, v: {"name": n, "value": v}, ENV_NAMES, text),
        st.builds(
            lambda k, d: {"kind": k, "data": d},
            st.sampled_from(["Secret", "SecretList", "ConfigMap", "TokenReview"]),
            st.dictionaries(text, text, max_size=2),
        ),
    )


bodies = st.recursive(leaf, _json, max_leaves=12)


def _as_text(body: object, spelled: int) -> str:
    """A body's JSON text, sometimes with every letter of its strings as a \\u escape."""
    out = orjson.dumps(body).decode()
    if spelled % 3 == 0:
        letters = re.compile(r"[A-Za-z]")
        out = re.sub(r'"(?:[^"\\]|\\.)*"', lambda s: letters.sub(lambda m: f"\\u{ord(m[0]):04x}", s[0]), out)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(bodies, st.integers(0, 5)), min_size=1, max_size=8))
# found by this test: RE2's \w and case folding are ASCII, Python's Unicode (a key ending in İ)
@example([({"kind": "Secret", "data": {"passwordİ=password--": ""}}, 1)])
@example([({"kind": "SecretList", "data": {"passwordİ=password": ""}}, 1)])
def test_a_batch_is_redacted_as_every_row_alone(rows: list[tuple[object, int]]) -> None:
    """redact_batch flags rows in Arrow and passes what it learnt to redact_json_text: the
    result and the counts are those of every row redacted alone, with nothing known."""
    texts = [_as_text(b, n) for b, n in rows]
    batch = pa.RecordBatch.from_pydict(
        {
            "resource": ["pods"] * len(texts),
            "subresource": [None] * len(texts),
            "request_object": texts,
            "exec_command": [t[:200] for t in texts],
        }
    )
    counts: Counter[str] = Counter()
    out = R.redact_batch(batch, "audit", counts).to_pydict()
    alone: Counter[str] = Counter()
    assert out["request_object"] == [R.redact_json_text(t, resource="pods", counts=alone) for t in texts]
    assert out["exec_command"] == [R.redact_text(t[:200], alone) for t in texts]
    assert counts == alone


@settings(max_examples=500, deadline=None)
@given(bodies, st.integers(0, 5))
def test_the_structure_check_flags_every_body_the_walk_changes(body: object, spelled: int) -> None:
    """_STRUCTURE (and the same pattern in RE2) holds for every body ``redact`` changes."""
    body_text = _as_text(body, spelled)
    parsed = orjson.loads(body_text)
    counts: Counter[str] = Counter()
    changed = R.redact(parsed, counts=counts, text=False) != parsed or counts
    in_python = bool(R._STRUCTURE.search(body_text))
    in_arrow = pc.match_substring_regex(pa.array([body_text]), R._STRUCTURE_PATTERN)[0].as_py()
    assert in_python == in_arrow
    if changed:
        assert in_python, body_text


def _plain_find(found_in: str) -> dict[str, str]:
    """The text rules run everywhere, without gates: the reference the gated ones must match."""
    found: dict[str, str] = {}
    for m in R._PRIVATE_KEY.finditer(found_in):
        found[m.group(0)] = "private-key"
    for m in R._AUTH_HEADER.finditer(found_in):
        found.setdefault(m.group("value"), "auth-header")
    for m in R._NAMED_VALUE.finditer(found_in):
        if not m.group("value").startswith(R.MARK) and not R._is_reference(m.group("value")):
            found.setdefault(m.group("value"), "named-value")
    return found


@settings(max_examples=600, deadline=None)
@given(text)
def test_gated_named_values_are_the_plain_ones(value: str) -> None:
    assert [m.span() for m in R._named_values(value)] == [m.span() for m in R._NAMED_VALUE.finditer(value)]
    low = value.lower() if value.isascii() else None
    assert [m.span() for m in R._named_values(value, low)] == [m.span() for m in R._NAMED_VALUE.finditer(value)]
    found: dict[str, str] = {}
    R._find(value, found)
    plain = _plain_find(value)
    assert {k: v for k, v in found.items() if k in plain} == plain


def test_every_detector_gate_passes_what_its_detector_finds() -> None:
    """Each detect-secrets pattern, tried only near its words and behind its gate, finds what
    the pattern finds on its own, on text made to hit it."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.settings import default_settings

    samples = [
        "AKIAABCDEFGHIJKLMNOP",
        "aws_secret_key = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD'",
        "cloudant_password='abcdefghijklmnopqrstuvwxyz'",
        "ibm_cos_hmac_secret_access_key = '0123456789abcdef0123456789abcdef0123456789abcdef'",
        "ibm_cloud_iam_key = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH'",
        "softlayer_api_key = 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01'",
        "ghp_" + "a" * 36,
        "glpat-" + "a" * 20,
        "sk_live_" + "a" * 24,
        "SG." + "a" * 22 + "." + "b" * 43,
        "xoxb-1234-abcdef",
        "https://user:pass@host/",
        "AKC" + "a" * 12,
        "AccountKey=" + "a" * 88,
    ]
    texts = list(samples) + [f'{{"x":"{a}","y":"{b}"}}' for a in samples for b in ("", "key", "Token")]
    texts += [t.upper() for t in texts] + [t.replace("s", "ſ") for t in texts]
    with default_settings():
        for _, cls in sorted(get_mapping_from_secret_type_to_class().items()):
            plugin = cls()
            if not isinstance(plugin, RegexBasedDetector):
                continue
            for pattern in plugin.denylist:
                gate, near = R._gate(pattern), R._near(pattern)
                for t in texts:
                    low = t.lower() if t.isascii() else None
                    plain = [m.span() for m in pattern.finditer(t)]
                    if plain and gate is not None:
                        assert gate.search(t, low), (pattern.pattern, t)
                    if near is not None:
                        assert [m.span() for m in R._finditer_near(pattern, near, t, low)] == plain


@settings(max_examples=300, deadline=None)
@given(text)
def test_the_keyword_detector_finds_what_it_finds_unaided(value: str) -> None:
    from detect_secrets.plugins.keyword import KeywordDetector

    ours = {t: (f, g) for t, f, g in R._detectors()}["Secret Keyword"]
    find, gate = ours
    theirs = sorted(h.secret_value for h in KeywordDetector().analyze_line(filename="evidence.yaml", line=value))
    assert sorted(find(value)) == theirs
    if theirs:
        assert gate is None or gate.search(value)


def test_the_ascii_case_classes_are_pythons() -> None:
    """_folded spells each ASCII letter as every character Python's re.IGNORECASE takes for it."""
    for letter in "abcdefghijklmnopqrstuvwxyz":
        spelled = re.compile(R._folded(letter))
        caseless = re.compile(letter, re.IGNORECASE)
        for c in map(chr, range(0x3000)):
            assert bool(spelled.fullmatch(c)) == bool(caseless.fullmatch(c)), (letter, c)
