"""A short sha256 over weight files, so results.json says exactly which weights were scored.

Hashing the files' bytes (not the tensors) is cheap, format-agnostic and stable
across loads; it changes whenever a checkpoint is re-saved with different weights.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

CHUNK = 1 << 20


def fingerprint_files(paths: Iterable[str | Path], length: int = 16) -> str:
    """Hex sha256 of one file's bytes (so it matches ``sha256sum``'s prefix), or for several
    files the sha256 of their digests in the given order; first ``length`` chars."""
    digests = []
    for p in paths:
        st = os.stat(p)
        digests.append(_file_digest(str(Path(p).resolve()), st.st_size, st.st_mtime_ns))
    if len(digests) == 1:
        return digests[0].hex()[:length]
    return hashlib.sha256(b"".join(digests)).hexdigest()[:length]


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    """Digest of one file, cached per (path, size, mtime) so reloading the same model is free."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.digest()
