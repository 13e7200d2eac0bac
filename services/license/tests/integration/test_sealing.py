"""The sealer never loses a certificate: a seal that cannot sign (expired, or a seal service that is
down) leaves it queued with the licence event waiting, and it is sealed and announced once the seal
can sign. Sealing through an external seal service (``LICENSE_SEAL_BACKEND=http``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pysmx.SM2 import Verify as independent_sm2_verify
from sqlalchemy import select

from govshared.migrate import upgrade
from govshared.seal import (
    DEFAULT_SIGNER_ID,
    SealNotValid,
    Sm2Signer,
    generate_sm2_key,
    to_be_signed,
)
from govshared.seal import queue as sealer_module
from govshared.testing import BACKENDS, Tokens, drop_postgres_database, make_database, random_uscc
from licensing.certificates.render import read_sealed
from licensing.config import Settings
from licensing.context import context_of
from licensing.db import outbox_events
from licensing.main import ALEMBIC_INI, create_app
from licensing.models import LicenceCertificate

SEAL_URL = "http://seal.test"
SEAL_ID = "3100000000002"

AppFactory = Callable[..., Any]


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of its own."""
    url = await make_database(request.param, prefix="license_seal", directory=tmp_path)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        yield url
    finally:
        if request.param == "postgresql":
            await drop_postgres_database(url)


@pytest.fixture
def running(
    database: str, tokens: Tokens, tmp_path: Path, settings_maker: Callable[..., Settings]
) -> AppFactory:
    """Run a license app on the database with settings overrides (and outgoing HTTP mounts)."""

    @asynccontextmanager
    async def run(
        mounts: dict[str, httpx.AsyncBaseTransport] | None = None, **overrides: object
    ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings = settings_maker(database, tokens, tmp_path, approval_url="", **overrides)
        app = create_app(settings, http_mounts=mounts)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://license.test"
            ) as client,
        ):
            yield app, client

    return run


async def _issue(
    client: httpx.AsyncClient, tokens: Tokens, new_event: Callable[..., dict[str, Any]]
) -> tuple[str, str]:
    uscc = random_uscc()
    response = await client.post(
        "/api/v1/events",
        content=json.dumps([new_event(uscc=uscc)]).encode(),
        headers={
            **tokens.service("approval"),
            "Content-Type": "application/cloudevents-batch+json",
        },
    )
    assert response.status_code == 200 and response.json()["processed"] == 1, response.text
    listed = await client.get(f"/api/v1/enterprises/{uscc}/licences", headers=tokens.service())
    [licence] = listed.json()["items"]
    return uscc, str(licence["licence_no"])


async def _certificate(app: FastAPI, licence_no: str) -> LicenceCertificate:
    async with app.state.sessionmaker() as session:
        certificate = await session.scalar(
            select(LicenceCertificate).where(LicenceCertificate.licence_no == licence_no)
        )
    assert certificate is not None
    return certificate


async def _event_types(app: FastAPI, licence_no: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(outbox_events.c.event_type).where(
                outbox_events.c.payload.contains(licence_no),
                outbox_events.c.destination == "notify",
            )
        )
    return [r.event_type for r in rows]


async def test_an_expired_seal_leaves_the_certificate_queued_until_a_valid_seal_signs(
    running: AppFactory,
    tokens: Tokens,
    new_event: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Retry at once instead of after the backoff, so that the test need not wait.
    monkeypatch.setattr(sealer_module, "backoff", lambda attempts: timedelta(0))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    async with running(seal_valid_until=yesterday) as (app, client):
        uscc, licence_no = await _issue(client, tokens, new_event)
        run = await context_of(app).sealer.run_once()
        assert (run.sealed, run.failed) == (0, 1)
        waiting = await _certificate(app, licence_no)
        assert waiting.status == "pending" and waiting.attempts == 1
        assert waiting.last_error is not None and waiting.last_error.startswith(
            SealNotValid.__name__
        )
        # The licence is issued and verifiable; its announcement waits for its certificate.
        assert await _event_types(app, licence_no) == []
        verdict = await client.get("/api/v1/licences/verify", params={"licence_no": licence_no})
        assert verdict.json()["result"] == "valid"
        pdf = await client.get(
            f"/api/v1/licences/{licence_no}/pdf", headers=tokens.enterprise(uscc)
        )
        assert pdf.status_code == 409
    # Ops renew the seal; the next run seals what waited and announces it.
    async with running() as (app, client):
        run = await context_of(app).sealer.run_once()
        assert run.sealed >= 1 and run.failed == 0
        sealed = await _certificate(app, licence_no)
        assert sealed.status == "sealed" and sealed.attempts == 2 and sealed.last_error is None
        assert await _event_types(app, licence_no) == ["cn.gov.license.licence.issued.v1"]
        pdf = await client.get(
            f"/api/v1/licences/{licence_no}/pdf", headers=tokens.enterprise(uscc)
        )
        assert pdf.status_code == 200
        verified = await client.post(
            "/api/v1/licences/verify", files={"file": ("l.pdf", pdf.content, "application/pdf")}
        )
        assert verified.json()["result"] == "valid" and verified.json()["unaltered"] is True


class SealService:
    """A stand-in seal platform: publishes its seal and signs digests (or is down)."""

    def __init__(self) -> None:
        private, self.public_key = generate_sm2_key()
        now = datetime.now(UTC)
        self.signer = Sm2Signer(
            private_key=private,
            seal_id=SEAL_ID,
            authority="上海市市场监督管理局",
            valid_from=now - timedelta(days=30),
            valid_until=now + timedelta(days=365),
        )
        self.up = True
        self.signed = 0

    def transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            if not self.up:
                raise httpx.ConnectError("seal service down", request=request)
            assert request.headers["authorization"] == "Bearer seal-token"
            if request.method == "GET" and request.url.path == f"/api/v1/seals/{SEAL_ID}":
                return httpx.Response(
                    200, json=(await self.signer.identity()).model_dump(mode="json")
                )
            if request.method == "POST" and request.url.path == f"/api/v1/seals/{SEAL_ID}/sign":
                digest = bytes.fromhex(json.loads(request.content)["digest"])
                self.signed += 1
                signature = await self.signer.sign(digest)
                return httpx.Response(200, json=signature.model_dump(mode="json"))
            return httpx.Response(404)

        return httpx.MockTransport(handle)


async def test_certificates_sealed_by_an_external_seal_service(
    running: AppFactory,
    tokens: Tokens,
    new_event: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sealer_module, "backoff", lambda attempts: timedelta(0))
    service = SealService()
    async with running(
        {SEAL_URL: service.transport()},
        seal_backend="http",
        seal_service_url=SEAL_URL,
        seal_service_token="seal-token",
        seal_id=SEAL_ID,
        seal_public_key=service.public_key,
    ) as (app, client):
        service.up = False
        uscc, licence_no = await _issue(client, tokens, new_event)
        assert (await context_of(app).sealer.run_once()).failed == 1
        down = await _certificate(app, licence_no)
        assert down.status == "pending" and "SealUnavailable" in (down.last_error or "")

        service.up = True
        assert (await context_of(app).sealer.run_once()).sealed == 1
        assert service.signed == 1
        pdf = await client.get(
            f"/api/v1/licences/{licence_no}/pdf", headers=tokens.enterprise(uscc)
        )
        assert pdf.status_code == 200
        sealed = read_sealed(pdf.content)
        assert sealed is not None
        _, signature = sealed
        assert signature.seal.seal_id == SEAL_ID and signature.seal.public_key == service.public_key
        tbs = to_be_signed(
            digest_hex=signature.digest,
            seal_id=signature.seal.seal_id,
            signed_at=signature.signed_at,
        )
        assert independent_sm2_verify(
            signature.signature, tbs, service.public_key, 64, uid=DEFAULT_SIGNER_ID
        )
        verified = (
            await client.post(
                "/api/v1/licences/verify",
                files={"file": ("l.pdf", pdf.content, "application/pdf")},
            )
        ).json()
        assert verified["genuine"] and verified["seal_authority"] == "上海市市场监督管理局"
        assert verified["seal_id"] == SEAL_ID
