"""Trust anchors are settings: a licensed CA's certificate and its CRL endpoint (fetched, cached,
failing closed); the development CA only when none is set, and never in production."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from approval.context import context_of
from approval.signing.config import VerifierOnFirstUse, build_verifier
from govshared.seal import sm2_sign
from govshared.signing import (
    CertificateRevoked,
    CertificateUntrusted,
    RevocationUnavailable,
    canonical_digest,
)
from govshared.signing.devca import DevCA
from govshared.testing import Tokens, problem, random_uscc, serve_on_loopback

from ..conftest import make_settings

NAME = "上海临港示范有限公司"


async def test_configured_anchors_and_their_crl_endpoint(tmp_path: Path, tokens: Tokens) -> None:
    licensed = DevCA(tmp_path / "licensed-ca")
    anchor = tmp_path / "anchor.pem"
    anchor.write_text(licensed.cert_path.read_text())
    fetched: list[str] = []
    down = False

    async def crl_endpoint(request: Request) -> Response:
        fetched.append(request.url.path)
        if down:
            return Response(status_code=503)
        return Response(licensed.crl_path.read_bytes(), media_type="application/pkix-crl")

    # The CA's CRL distribution point: a third party, so a stand-in server on loopback.
    ca_site = Starlette(routes=[Route("/crl/latest.crl", crl_endpoint)])
    async with serve_on_loopback(ca_site) as ca_url, httpx.AsyncClient() as http:
        crl_url = f"{ca_url}/crl/latest.crl"
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
            tokens,
            tmp_path / "data",
            signing_trust_anchor_files=[str(anchor)],
            signing_crl_urls=[crl_url],
            signing_crl_cache_seconds=3600,
        )
        verifier = build_verifier(settings, http=http)
        assert verifier is not None
        uscc = random_uscc()
        seal = licensed.issue_seal(uscc=uscc, name=NAME)
        _, digest = canonical_digest({"x": 1})
        signature = sm2_sign(seal.private_key, seal.public_key, digest)

        async def check() -> object:
            return await verifier.verify(
                certificate=seal.certificate_pem,
                signature=signature,
                expected_digest=digest,
                at=datetime.now(UTC),
                uscc=uscc,
            )

        found = await check()
        await check()
        assert fetched == ["/crl/latest.crl"]  # read once, then cached
        assert found.revocation is not None  # type: ignore[attr-defined]
        assert found.revocation.crl_location == crl_url  # type: ignore[attr-defined]

        # The CA revokes the seal; once the cached list is read again, the seal is refused.
        licensed.revoke(seal.serial)
        for _, source in verifier._anchors.values():
            if source is not None:
                source.invalidate()
        with pytest.raises(CertificateRevoked):
            await check()
        # The endpoint is down and nothing is cached: fail closed, never pass.
        down = True
        for _, source in verifier._anchors.values():
            if source is not None:
                source.invalidate()
        with pytest.raises(RevocationUnavailable):
            await check()

        # A seal of the development CA is not trusted once anchors are configured (nor made).
        dev = DevCA(tmp_path / "dev-ca").issue_seal(uscc=uscc, name=NAME)
        with pytest.raises(CertificateUntrusted):
            await verifier.check_certificate(dev.certificate_pem, at=datetime.now(UTC))
        assert not (tmp_path / "data" / "keys" / "signing-ca").exists()

    # Production without anchors: signatures cannot be checked (503 signing_not_configured).
    production = settings.model_copy(
        update={"environment": "production", "signing_trust_anchor_files": []}
    )
    assert build_verifier(production, http=None) is None
    # An anchor without a CRL is refused: revocation must be checkable.
    without_crl = settings.model_copy(update={"signing_crl_urls": []})
    with pytest.raises(ValueError, match="CRL"):
        build_verifier(without_crl, http=None)


async def test_production_without_anchors_answers_503_and_signs_nothing(
    app: Any, client: httpx.AsyncClient, phone: Any
) -> None:
    """Production with no trust anchor configured: a signature cannot be checked, so posting one
    is 503 signing_not_configured (never accepted unchecked), and the session stays open."""
    opened = await client.post(
        "/api/v1/signing-sessions",
        json={"item_code": "JXW-CN-011", "applicant_name": NAME},
        headers=phone.headers,
    )
    assert opened.status_code == 201, opened.text
    session = opened.json()
    production = app.state.settings.model_copy(
        update={"environment": "production", "signing_trust_anchor_files": []}
    )
    configured = context_of(app)
    # The app is shared by the worker's tests: its context is put back by hand (monkeypatch
    # would delete it, Starlette's State keeping attributes outside __dict__).
    app.state.context = replace(configured, verifier=VerifierOnFirstUse(production, http=None))
    try:
        refused = await phone.sign(client, session)
    finally:
        app.state.context = configured
    assert refused.status_code == 503, refused.text
    assert problem(refused)["code"] == "signing_not_configured"
    assert refused.headers["content-type"].startswith("application/problem+json")
    fetched = await client.get(f"/api/v1/signing-sessions/{session['id']}", headers=phone.headers)
    assert fetched.json()["status"] == "open"
