"""The tamper-evident audit trail: each entry's hash covers its content and the previous hash."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON (hash fields excluded)."""
    content = {k: v for k, v in entry.items() if k not in ("hash", "prev_hash")}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, default=_canonical)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _canonical(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)
