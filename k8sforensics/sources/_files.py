"""Evidence files: where they are, what they hash to, and their bytes (decompressed).

Evidence is only ever opened for reading; links that lead out of an evidence folder are
not followed.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from ..errors import EvidenceError

CHUNK_BYTES = 8 << 20  # 8 MiB reads: big enough to amortise calls, small enough to avoid mmap page faults
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Evidence:
    """One input file: where it is and what it hashes to."""

    path: str
    size: int
    sha256: str

    @property
    def short_id(self) -> str:
        return self.sha256[:16]


def expand_paths(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, not_read: list[tuple[str, str]] | None = None
) -> list[tuple[Path, bool]]:
    """Resolve paths, folders and globs into files.

    Returns ``(file, explicit)`` pairs: ``explicit`` is True for a file named directly (an
    unknown format there is an error) and False for one found in a folder or glob (an
    unknown format there is reported and passed over). Links that lead out of a folder are
    not followed; each is appended to ``not_read`` as ``(path, why)``, so the caller can say so.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[Path, bool]] = []
    seen: set[Path] = set()

    def add(p: Path, explicit: bool) -> None:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            out.append((p, explicit))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            root = p.resolve()
            for f in sorted(p.rglob("*")):
                if f.is_symlink() and not f.exists() and not_read is not None:
                    not_read.append((str(f), "a broken link: it points at nothing"))
                if f.name.startswith(".") or not f.is_file():
                    continue
                if f.is_symlink() and not f.resolve().is_relative_to(root):
                    # never follow a link out of the evidence folder: what it points at is not
                    # the evidence that was handed over, and may be anything on this machine
                    if not_read is not None:
                        not_read.append(
                            (
                                str(f),
                                f"a link to {f.resolve()}, outside the evidence folder {root}: not followed; "
                                f"copy the file into the folder, or name it directly, to read it",
                            )
                        )
                    continue
                add(f, False)
        elif p.exists():
            add(p, True)
        elif glob.has_magic(str(raw)):
            matches = sorted(glob.glob(str(raw), recursive=True))
            if not matches:
                raise EvidenceError(str(raw), "the pattern matches no file", "check the path and quoting")
            for m in matches:
                mp = Path(m)
                if mp.is_file():
                    add(mp, False)
        else:
            raise EvidenceError(str(raw), "no such file or folder", "check the path")
    return out


def open_read_only(path: Path) -> io.BufferedReader:
    try:
        return open(path, "rb")  # evidence is only ever opened for reading
    except PermissionError as e:
        raise EvidenceError(str(path), "permission denied", "run as a user who can read the evidence") from e
    except IsADirectoryError as e:
        raise EvidenceError(str(path), "is a folder, not a file") from e
    except OSError as e:
        raise EvidenceError(str(path), f"cannot be opened ({e.strerror or e})") from e


def hash_file(path: Path) -> Evidence:
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK_BYTES)  # one buffer, read into: no new bytes object per chunk
    view = memoryview(buf)
    with open_read_only(path) as f:
        try:
            while n := f.readinto(buf):
                h.update(view[:n])
                size += n
        except OSError as e:
            raise EvidenceError(str(path), f"read failed ({e.strerror or e})") from e
    return Evidence(str(path), size, h.hexdigest())


class Truncated(Exception):
    """The compressed stream ends early or is damaged; the bytes before it were delivered."""


def decompressed_chunks(path: Path) -> Iterator[bytes]:
    """Yield the file's bytes in chunks, gunzipped or un-zstd'ed when the magic says so.

    Decompression is incremental, so a truncated or damaged archive still gives every byte
    before the damage; ``Truncated`` is raised only after those bytes are out.
    """
    with open_read_only(path) as raw:
        head = raw.read(4)
        raw.seek(0)
        try:
            if head[:2] == GZIP_MAGIC:
                yield from _inflate(raw, lambda: zlib.decompressobj(wbits=31), "gzip")
            elif head == ZSTD_MAGIC:
                yield from _inflate(raw, lambda: zstandard.ZstdDecompressor().decompressobj(), "zstd")
            else:
                while chunk := raw.read(CHUNK_BYTES):
                    yield chunk
        except OSError as e:
            raise Truncated(f"read failed ({e.strerror or e})") from e


def _inflate(raw: BinaryIO, new: Callable[[], Any], kind: str) -> Iterator[bytes]:
    dec = new()
    pending = b""
    while True:
        data = pending or raw.read(1 << 20)
        pending = b""
        if not data:
            break
        try:
            out = dec.decompress(data)
        except (zlib.error, zstandard.ZstdError) as e:
            raise Truncated(f"{kind} stream is damaged ({e})") from e
        if out:
            yield out
        if dec.eof:
            # concatenated members/frames (common with log shippers): start the next one
            pending = dec.unused_data
            if not pending:
                pending = raw.read(1 << 20)
                if not pending:
                    return
            if pending[:2] != GZIP_MAGIC and pending[:4] != ZSTD_MAGIC:
                if pending.strip(b"\x00"):
                    raise Truncated(f"{kind} stream is followed by {len(pending)}+ bytes of non-{kind} data")
                return
            dec = new()
    if not dec.eof:
        raise Truncated(f"{kind} stream is truncated (the file ends before the end of the compressed data)")


def compression_of(path: Path) -> str:
    """'gzip', 'zstd' or 'none', from the magic bytes (extensions lie)."""
    with open_read_only(path) as f:
        magic = f.read(4)
    return "gzip" if magic[:2] == GZIP_MAGIC else "zstd" if magic == ZSTD_MAGIC else "none"
