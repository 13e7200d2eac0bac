"""The licence seal: a content digest and a signed QR payload that anyone can verify.

GB/T 38540 seals are SM2 signatures over SM3 digests: ``SealQrSigner`` signs QR payloads with the
shared SM2 seal (``govshared.seal``); ``RsaSigner`` (RS256 with the service key) remains for
deployments that have no seal key yet. Both sit behind this small interface so that the register
does not change when a seal platform or HSM takes over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from govshared.seal import SealSignature, SealVerifier, Sm2Signer, canonical_json, sm3_digest


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SealQrSigner:
    """QR payloads sealed with SM2 over SM3 (GB/T 38540 algorithms): ``header.claims.signature``.

    The header names the seal and the signing time; the seal signs the SM3 digest of
    ``header.claims``. Payloads are cached per claims, since pure-Python SM2 costs about 15 ms and
    a licence list shows many (any valid signature will do; nothing another replica needs).
    """

    CACHE_SIZE = 4096

    def __init__(self, signer: Sm2Signer) -> None:
        self.signer = signer
        self.seal = signer.identity_now()
        self.verifier = SealVerifier([self.seal])
        self._cache: OrderedDict[bytes, str] = OrderedDict()

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact sealed payload; ``SealNotValid`` outside the seal's validity."""
        body = canonical_json(claims)
        cached = self._cache.get(body)
        if cached is not None:
            self._cache.move_to_end(body)
            return cached
        signed_at = datetime.now(UTC).replace(microsecond=0)
        header = _b64(
            canonical_json({"alg": "SM2-SM3", "sid": self.seal.seal_id, "sat": signed_at})
        )
        signing_input = f"{header}.{_b64(body)}".encode()
        sealed = self.signer.sign_at(sm3_digest(signing_input), signed_at)
        payload = f"{signing_input.decode()}.{_b64(bytes.fromhex(sealed.signature))}"
        self._cache[body] = payload
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return payload

    def read(self, payload: str) -> dict[str, Any] | None:
        """The claims of a payload this seal made in its validity, or None."""
        try:
            header_b64, claims_b64, signature_b64 = payload.split(".")
            header = json.loads(_unb64(header_b64))
            claims: dict[str, Any] = json.loads(_unb64(claims_b64))
            signature = SealSignature(
                digest=sm3_digest(f"{header_b64}.{claims_b64}".encode()).hex(),
                signed_at=header["sat"],
                signature=_unb64(signature_b64).hex(),
                seal=self.seal.model_copy(update={"seal_id": header["sid"]}),
            )
        except (ValueError, KeyError, TypeError, binascii.Error, ValidationError):
            return None
        if header.get("alg") != "SM2-SM3" or not {"lno", "ver", "dig"} <= set(claims):
            return None
        check = self.verifier.check(signature, digest=bytes.fromhex(signature.digest))
        return claims if check.valid else None


def qr_claims(licence: Any) -> dict[str, Any]:
    """What a QR code carries: the number, the version and the content digest."""
    return {"lno": licence.licence_no, "ver": licence.version, "dig": licence.content_hash}


def qr_url(verify_url: str, payload: str) -> str:
    """The URL the QR code encodes."""
    return f"{verify_url}?{urlencode({'qr': payload})}"
