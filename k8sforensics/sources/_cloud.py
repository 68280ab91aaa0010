"""What the cloud formats (aws-cloudtrail, gcp-cloud-audit) share: request and response bodies
as JSON text with the credentials a cloud call returns replaced, and the Kubernetes identity a
cloud subject names."""

from __future__ import annotations

from typing import Any

from ._values import json_text
from .k8s_audit import SA_PREFIX
from .redact import MARK, redact_json_text, redacted

# Keys whose values are credentials in cloud request and response bodies, compared without case.
# AWS: AssumeRole*/GetSessionToken/GetFederationToken return credentials.{secretAccessKey,
# sessionToken}, CreateAccessKey accessKey.secretAccessKey
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_Credentials.html,
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_AccessKey.html); GCP: iamcredentials
# GenerateAccessToken accessToken, GenerateIdToken token, SignJwt signedJwt, SignBlob signedBlob,
# STS ExchangeToken access_token (https://cloud.google.com/iam/docs/reference/credentials/rest,
# https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token). Listed here, not left to
# the key-name rules of sources.redact alone: signedJwt and signedBlob are not named like credentials.
SECRET_KEYS = frozenset(
    k.lower()
    for k in (
        "secretAccessKey",
        "sessionToken",
        "password",
        "newPassword",
        "oldPassword",
        "token",
        "accessToken",
        "access_token",
        "idToken",
        "id_token",
        "refreshToken",
        "refresh_token",
        "subjectToken",
        "subject_token",
        "signedJwt",
        "signedBlob",
        "privateKeyData",
        "clientSecret",
        "client_secret",
    )
)


def scrubbed(obj: Any) -> Any:
    """A copy of ``obj`` with the value of every ``SECRET_KEYS`` key replaced by its stand-in
    (``redact.redacted``: the same value gives the same stand-in, so a leaked one is found)."""
    stack: list[tuple[Any, Any, Any]] = []
    holder: list[Any] = [None]
    stack.append((holder, 0, obj))
    while stack:  # iterative: a body may be nested deeper than Python recurses
        parent, key, node = stack.pop()
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            parent[key] = out
            for k, v in node.items():
                if isinstance(k, str) and k.lower() in SECRET_KEYS and v not in (None, "", {}, []):
                    out[k] = v if isinstance(v, str) and v.startswith(MARK) else redacted(v)
                else:
                    out[k] = None
                    stack.append((out, k, v))
        elif isinstance(node, list):
            items: list[Any] = [None] * len(node)
            parent[key] = items
            stack.extend((items, i, v) for i, v in enumerate(node))
        else:
            parent[key] = node
    return holder[0]


def body(obj: Any) -> str | None:
    """``obj`` as compact JSON text with credentials replaced: ``SECRET_KEYS`` first, then the
    rules every audit body goes through (``redact.redact_json_text``). None stays None."""
    if obj is None:
        return None
    return redact_json_text(json_text(scrubbed(obj)))


def k8s_user(namespace: str | None, name: str | None) -> str | None:
    """``system:serviceaccount:<namespace>:<name>``, when both are known."""
    return f"{SA_PREFIX}{namespace}:{name}" if namespace and name else None
