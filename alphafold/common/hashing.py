"""Stable identities: a target's key is a hash of its sequence."""

from __future__ import annotations

import hashlib


def sequence_hash(sequence: str) -> str:
    """SHA-256 (first 16 hex digits) of the upper-cased sequence; the campaign-wide target key."""
    return hashlib.sha256(sequence.strip().upper().encode("ascii")).hexdigest()[:16]


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Full SHA-256 of a file, read in chunks (params files are ~370 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
