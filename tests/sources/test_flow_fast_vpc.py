"""AWS VPC flow logs: the DuckDB fast path gives the per-record path's rows for lines whose
blanks, comments or headers the per-record path reads otherwise than a plain split would."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_fast_path import read

HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
LINE = "2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1714557600 1714557601 ACCEPT OK"
HEAD = 60  # past the lines the driver samples (a '#' there keeps the whole file per record)


def _both(path: Path, *, redone: int) -> None:
    fast, t_fast = read(path, True)
    slow, t_slow = read(path, False)
    assert fast.used_fast_path and fast.fast_fallback is None
    assert fast.redone == redone
    assert t_fast.to_pylist() == t_slow.to_pylist()
    assert fast.quarantine == slow.quarantine
    assert fast.result.skipped == slow.result.skipped


@pytest.mark.parametrize(
    "odd",
    [
        LINE.replace(" OK", " OK # a comment"),  # the per-record path strips from '#'
        LINE.replace("ACCEPT OK", "ACCEPT#x OK"),  # ... which leaves too few values
        LINE.replace(" OK", "\xa0OK x"),  # str.split() splits on no-break spaces, RE2's \s does not
        LINE.replace(" 6 ", " 6\x0b"),  # a vertical tab
        "\x0c" + LINE,  # a form feed before the line
        LINE.replace(" 40 ", " 40\u2003"),  # an em space
    ],
    ids=["comment", "comment-inside", "nbsp", "vtab", "formfeed", "emspace"],
)
def test_a_line_split_otherwise_by_python_is_redone(tmp_path: Path, odd: str) -> None:
    p = tmp_path / "flows.log"
    p.write_text("\n".join([HEADER, *[LINE] * HEAD, odd, LINE]) + "\n", encoding="utf-8")
    _both(p, redone=2)  # the header, and the odd line


def test_a_header_further_down_in_another_order_reads_the_file_per_record(tmp_path: Path) -> None:
    """Concatenated S3 objects of flow logs with other formats: from a header on, its order
    holds (srcaddr and dstaddr swapped here), so no line may be mapped by the first header's."""
    swapped = HEADER.replace("srcaddr dstaddr srcport dstport", "dstaddr srcaddr dstport srcport")
    p = tmp_path / "flows.log"
    p.write_text("\n".join([HEADER, *[LINE] * HEAD, swapped, LINE]) + "\n")
    _both(p, redone=HEAD + 3)
    _, table = read(p, True)
    last = max(table.to_pylist(), key=lambda r: r["evidence_line"])
    assert last["src_ip"] == "10.0.0.2"


def test_the_same_header_again_keeps_the_fast_path(tmp_path: Path) -> None:
    p = tmp_path / "flows.log"
    p.write_text("\n".join([HEADER, *[LINE] * HEAD, "  " + HEADER.replace(" ", "\t"), LINE]) + "\n")
    _both(p, redone=2)  # only the two header lines
