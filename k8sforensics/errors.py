"""A few exception types that say which file (and line) and what to do about it."""

from __future__ import annotations


class K8sForensicsError(Exception):
    """Base class: every error the toolkit raises on purpose."""


class EvidenceError(K8sForensicsError):
    """An evidence file cannot be read at all (missing, unreadable, not a file)."""

    def __init__(self, path: str, problem: str, hint: str = "") -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        msg = f"{path}: {problem}"
        if hint:
            msg += f" — {hint}"
        super().__init__(msg)


class UnknownFormatError(EvidenceError):
    """No format module claims the file."""

    def __init__(self, path: str, tried: list[str], seen: str = "") -> None:
        self.tried = tried
        hint = "check that this is evidence of a supported kind (`k8sforensics formats` lists them)"
        problem = "no format recognises this file (tried: " + ", ".join(tried) + ")"
        if seen:
            problem += f"; it starts with {seen!r}"
        super().__init__(path, problem, hint)


class BadRecordError(EvidenceError):
    """A record could not be parsed and the policy is on_bad_lines='error'."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(
            f"{path}:{line}",
            reason,
            "fix or remove the record, or ingest with on_bad_lines='warn' to quarantine it",
        )


class CaseError(K8sForensicsError):
    """The case directory is missing, not a case, or would be overwritten."""
