"""Commands a responder pastes into a shell, built from argument lists.

Object names come from evidence, and evidence can be forged or tampered with: a "pod" named
``p;touch${IFS}/tmp/x;`` is possible in a log even though the API server would refuse it.
Every command is therefore an argument list joined with ``shlex`` quoting, and a name that
is not a valid Kubernetes name is never put into a command at all: the action says it is
suspicious evidence instead (``valid_name``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

# RFC 1123 subdomain (most object names) and label (namespaces); see
# https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# RBAC object names may hold more (system:controller:…); path segment names only need to be safe
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.:@]*")


def valid_name(name: object, *, kind: str = "object") -> bool:
    """Is ``name`` a name the API server could have accepted for this kind of object?
    (``namespace``: an RFC 1123 label; RBAC objects: path-segment safe; else a subdomain.)"""
    if not isinstance(name, str) or not name or len(name) > 253:
        return False
    if kind == "namespace":
        return len(name) <= 63 and bool(_LABEL.fullmatch(name))
    if kind in ("clusterrolebinding", "rolebinding", "clusterrole", "role", "user"):
        return bool(_PATH_SEGMENT.fullmatch(name))
    return bool(_SUBDOMAIN.fullmatch(name))


def command(*argv: str) -> str:
    """One command line from its arguments, each quoted for a POSIX shell as needed."""
    return shlex.join(argv)


def kubectl(*args: str, namespace: str | None = None) -> str:
    """``kubectl [-n NAMESPACE] ARGS…``, quoted."""
    return command("kubectl", *(["-n", namespace] if namespace else []), *args)


def chain(*commands: str) -> str:
    """Commands run one after the other, each only if the last succeeded."""
    return " && ".join(c for c in commands if c)


def names_ok(*pairs: tuple[str, object]) -> bool:
    """Every (kind, name) pair is a valid name of its kind."""
    return all(valid_name(name, kind=kind) for kind, name in pairs)


def suspicious(names: Sequence[object]) -> str:
    """What an action says instead of a command when evidence names something no API server
    would accept."""
    shown = ", ".join(
        repr(n) for n in names if not isinstance(n, str) or not (valid_name(n) or valid_name(n, kind="role"))
    )
    return (
        f" — SUSPICIOUS EVIDENCE: {shown} is not a valid Kubernetes name (forged or tampered records?); "
        f"no command is given, find the object by hand"
    )


def save(cmd: str, path: str) -> str:
    """``CMD > PATH``, written to ``PATH.partial`` and moved into place only when CMD succeeds:
    a re-run that fails (the pod is gone by now) never truncates a copy an earlier run took.
    ``cmd`` is one command or a pipeline (the redirection applies to its last command)."""
    partial = f"{path}.partial"
    return f"{cmd} > {shlex.quote(partial)} && {command('mv', '-f', partial, path)}"


def pipe(*commands: str) -> str:
    """Each command's output into the next one's input."""
    return " | ".join(c for c in commands if c)


def tolerate(cmd: str, *, otherwise: str = "true") -> str:
    """``{ CMD || OTHERWISE; }``: a step whose failure is expected (a container with no previous
    instance) runs ``otherwise`` instead of breaking the ``chain`` it is part of."""
    return f"{{ {cmd} || {otherwise}; }}"
