"""A licence version's register digest: SHA-256 over the fields its certificate shows.

The register keeps it beside each version (``content_hash``) so that a row that no longer matches
its fields is noticed, and so that anyone holding a certificate can look its version up by hash.
The certificate itself is sealed as a whole (``licensing.certificates``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any


def content_digest(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of what the certificate shows."""
    canonical = json.dumps(
        {k: (v.isoformat() if isinstance(v, date) else v) for k, v in fields.items()},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def certificate_fields(licence: Any) -> dict[str, Any]:
    """The fields printed on a certificate (a ``Licence`` or a row dict)."""
    get = licence.get if isinstance(licence, dict) else licence.__getattribute__
    return {
        name: get(name)
        for name in (
            "licence_no",
            "version",
            "licence_type",
            "holder_name",
            "holder_uscc",
            "issuing_authority",
            "issued_on",
            "valid_from",
            "valid_until",
            "particulars",
        )
    }
