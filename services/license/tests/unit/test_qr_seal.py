"""Licence QR payloads sealed with SM2 over SM3, checked by a second implementation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from pysmx.SM2 import Verify as independent_sm2_verify

from govshared.seal import (
    DEFAULT_SIGNER_ID,
    Sm2Signer,
    generate_sm2_key,
    sm3_digest,
    to_be_signed,
)
from licensing.licences.seal import SealQrSigner

CLAIMS = {"lno": "SH-food-0001", "ver": 2, "dig": "ab" * 32}


def _signer(private: str, *, seal_id: str = "LIC-SEAL-1", days: int = 365) -> SealQrSigner:
    now = datetime.now(UTC)
    return SealQrSigner(
        Sm2Signer(
            private_key=private,
            seal_id=seal_id,
            authority="上海市市场监督管理局",
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=days),
        )
    )


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_sealed_payload_reads_back_and_verifies_independently() -> None:
    private, public = generate_sm2_key()
    ours = _signer(private)
    payload = ours.sign(CLAIMS)
    assert ours.read(payload) == CLAIMS
    assert ours.sign(CLAIMS) == payload  # cached: one SM2 signature per licence version
    header_b64, claims_b64, signature_b64 = payload.split(".")
    header = json.loads(_unb64(header_b64))
    tbs = to_be_signed(
        digest_hex=sm3_digest(f"{header_b64}.{claims_b64}".encode()).hex(),
        seal_id=header["sid"],
        signed_at=datetime.fromisoformat(header["sat"]),
    )
    assert independent_sm2_verify(
        _unb64(signature_b64).hex(), tbs, public, 64, uid=DEFAULT_SIGNER_ID
    )


def test_forged_payloads_read_as_none() -> None:
    private, _ = generate_sm2_key()
    ours = _signer(private)
    header, _, signature = ours.sign(CLAIMS).split(".")
    altered = (
        base64.urlsafe_b64encode(json.dumps({**CLAIMS, "dig": "0" * 64}).encode())
        .decode()
        .rstrip("=")
    )
    stranger, _ = generate_sm2_key()
    for payload in (
        f"{header}.{altered}.{signature}",
        _signer(stranger).sign(CLAIMS),
        _signer(private, seal_id="OTHER").sign(CLAIMS),
        "garbage",
        "a.b.c",
    ):
        assert ours.read(payload) is None
    assert ours.read(ours.sign({"lno": "x"})) is None
