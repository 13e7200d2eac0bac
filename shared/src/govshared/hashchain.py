"""Tamper-evident records: each entry's hash covers its content and the previous entry's hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

GENESIS = "0" * 64


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON (hash fields excluded)."""
    content = {k: v for k, v in entry.items() if k not in ("hash", "prev_hash")}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, default=_canonical)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def chain_intact(entries: Iterable[tuple[str, str, Mapping[str, Any]]]) -> bool:
    """True when every ``(prev_hash, hash, fields)`` links to the one before and matches its hash."""
    prev = GENESIS
    for prev_hash, hash_, fields in entries:
        if prev_hash != prev or entry_hash(prev, fields) != hash_:
            return False
        prev = hash_
    return True


def _canonical(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
