"""The licence seal: a content digest and a signed QR payload that anyone can verify.

GB/T 38540 seals are SM2 signatures over SM3 digests; the signer sits behind this small interface so
that a seal platform or HSM replaces the development RSA key without touching the register.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any, Protocol
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization


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


class Signer(Protocol):
    """Signs and reads QR payloads."""

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact signed payload."""
        ...

    def read(self, payload: str) -> dict[str, Any] | None:
        """The claims of a genuine payload, or None when the signature does not hold."""
        ...


class RsaSigner:
    """Development signer: RS256 with the service's own key pair."""

    def __init__(self, private_key_pem: str) -> None:
        self._private = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        self._public = self._private.public_key()

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of the claims."""
        return jwt.encode(claims, self._private, algorithm="RS256")  # type: ignore[arg-type]

    def read(self, payload: str) -> dict[str, Any] | None:
        """The claims, or None for anything that is not a payload we signed."""
        try:
            claims: dict[str, Any] = jwt.decode(
                payload,
                self._public,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"require": ["lno", "ver", "dig"]},
            )
        except (jwt.PyJWTError, ValueError):
            return None
        return claims


def qr_claims(licence: Any) -> dict[str, Any]:
    """What a QR code carries: the number, the version and the content digest."""
    return {"lno": licence.licence_no, "ver": licence.version, "dig": licence.content_hash}


def qr_url(verify_url: str, payload: str) -> str:
    """The URL the QR code encodes."""
    return f"{verify_url}?{urlencode({'qr': payload})}"
