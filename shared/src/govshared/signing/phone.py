"""The phone's side of a signing session: check the digest of the content shown, sign it with SM2.

``tools/phone.py`` wraps this as a command; tests use ``sign_commitment`` to sign a 告知承诺书 through
the REST API the way an applicant's phone does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from govshared.seal import sm2_sign, sm3_hex
from govshared.signing.devca import DevCA


def sign_digest(private_key: str, digest_hex: str) -> str:
    """The SM2 signature (r‖s hex) of a 32-byte SM3 digest, default signer id."""
    digest = bytes.fromhex(digest_hex)
    if len(digest) != 32:
        raise ValueError("an SM3 digest has 32 bytes (64 hex digits)")
    return sm2_sign(private_key, "", digest)


def answer(session: dict[str, Any], *, private_key: str, certificate_pem: str) -> dict[str, str]:
    """The body to post to ``.../signature`` for a session (its digest checked against its content)."""
    digest = sm3_hex(session["content"].encode())
    if digest != session["digest"]:
        raise ValueError("the session's digest is not the SM3 of its content: refusing to sign")
    return {
        "signature": sign_digest(private_key, digest),
        "certificate": certificate_pem,
        "digest": digest,
    }


async def sign_commitment(
    client: httpx.AsyncClient,
    *,
    headers: dict[str, str],
    uscc: str,
    item_code: str,
    applicant_name: str,
    ca_directory: Path,
    prefix: str = "",
) -> str:
    """Open a commitment session, sign it with a seal the development CA issues to ``uscc``, and
    return the session id to submit with the application (``prefix``: approval's base path)."""
    seal = DevCA(ca_directory).issue_seal(uscc=uscc, name=applicant_name)
    opened = await client.post(
        f"{prefix}/api/v1/signing-sessions",
        json={"item_code": item_code, "applicant_name": applicant_name},
        headers=headers,
    )
    opened.raise_for_status()
    session = opened.json()
    signed = await client.post(
        f"{prefix}/api/v1/signing-sessions/{session['id']}/signature",
        json=answer(session, private_key=seal.private_key, certificate_pem=seal.certificate_pem),
        headers=headers,
    )
    signed.raise_for_status()
    return str(session["id"])


async def sign_for_application(
    client: httpx.AsyncClient,
    *,
    headers: dict[str, str],
    uscc: str,
    applicant_name: str,
    application_id: str,
    purpose: str,
    ca_directory: Path,
    prefix: str = "",
) -> str:
    """Open a session on an application (``withdrawal``, ``receipt``), sign it, return its id."""
    seal = DevCA(ca_directory).issue_seal(uscc=uscc, name=applicant_name)
    opened = await client.post(
        f"{prefix}/api/v1/applications/{application_id}/signing-sessions",
        json={"purpose": purpose},
        headers=headers,
    )
    opened.raise_for_status()
    session = opened.json()
    signed = await client.post(
        f"{prefix}/api/v1/signing-sessions/{session['id']}/signature",
        json=answer(session, private_key=seal.private_key, certificate_pem=seal.certificate_pem),
        headers=headers,
    )
    signed.raise_for_status()
    return str(session["id"])
