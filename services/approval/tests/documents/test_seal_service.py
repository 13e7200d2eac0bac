"""Approval sealing through an external seal service (the production shape), a stand-in on loopback."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from approval.config import Settings
from approval.context import context_of
from approval.documents.models import Document
from approval.main import ALEMBIC_INI, create_app
from govshared.auth import Role
from govshared.seal import SealNotValid, Sm2Signer, generate_sm2_key
from govshared.testing import BACKENDS, Tokens, migrated_database

from ..conftest import running_app

SEAL_ID = "3100000000099"
AUTHORITY = "上海市经济和信息化委员会（电子印章平台）"


class SealPlatform(BaseHTTPRequestHandler):
    """Publishes the seal and signs digests with a key approval never sees."""

    signer: Sm2Signer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != f"/api/v1/seals/{SEAL_ID}":
            return self._send(404, {"code": "not_found"})
        self._send(200, self.signer.identity_now().model_dump(mode="json"))

    def do_POST(self) -> None:
        if self.headers.get("authorization") != "Bearer platform-token":
            return self._send(401, {"code": "unauthenticated"})
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        try:
            sealed = self.signer.sign_at(bytes.fromhex(body["digest"]), datetime.now(UTC))
        except SealNotValid as exc:
            return self._send(409, {"code": exc.code, "detail": exc.detail})
        self._send(200, sealed.model_dump(mode="json"))


class Platform:
    """The seal platform stand-in, served on loopback from a thread."""

    def __init__(self, port: int = 0) -> None:
        self.private, self.public = generate_sm2_key()
        now = datetime.now(UTC)
        signer = Sm2Signer(
            private_key=self.private,
            seal_id=SEAL_ID,
            authority=AUTHORITY,
            valid_from=now - timedelta(days=30),
            valid_until=now + timedelta(days=30),
        )
        handler = type("H", (SealPlatform,), {"signer": signer})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of these tests' own: a sealer seals every pending document it finds, and the
    tests count what it sealed."""
    async with migrated_database(
        request.param, prefix="approval_seal", directory=tmp_path, alembic_ini=ALEMBIC_INI
    ) as url:
        yield url


@pytest.fixture
async def app(database_url: str, tokens: Tokens, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """Approval on that database (the flow's app)."""
    data_dir = tmp_path / "app"
    data_dir.mkdir()
    async with running_app(database_url, tokens, data_dir) as application:
        yield application


@pytest.fixture
def platform() -> Iterator[tuple[str, str]]:
    """The stand-in's base URL and its seal's public key."""
    running = Platform()
    yield running.url, running.public
    running.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_documents_are_sealed_by_the_seal_service(
    settings_factory: Callable[..., Settings], flow: Any, platform: tuple[str, str]
) -> None:
    url, public = platform
    await flow.submit()
    settings = settings_factory(
        seal_backend="http",
        seal_service_url=url,
        seal_service_token="platform-token",
        seal_public_key=public,
        seal_id=SEAL_ID,
    )
    sealed_app = create_app(settings)
    async with sealed_app.router.lifespan_context(sealed_app):
        transport = httpx.ASGITransport(app=sealed_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            base = f"/api/v1/applications/{flow.application_id}"
            accepted = await client.post(
                f"{base}/accept", json={}, headers=flow.tokens.staff(Role.ACCEPTOR)
            )
            assert accepted.status_code == 200, accepted.text
            assert (await context_of(sealed_app).sealer.run_once()).sealed == 1
            [document] = (await client.get(f"{base}/documents", headers=flow.applicant)).json()[
                "items"
            ]
            assert document["seal_id"] == SEAL_ID
            pdf = (
                await client.get(f"{base}/documents/{document['id']}/pdf", headers=flow.applicant)
            ).content
            verified = (
                await client.post(
                    "/api/v1/documents/verify",
                    files={"file": ("d.pdf", pdf, "application/pdf")},
                )
            ).json()
            assert verified["genuine"] is True and verified["authority"] == AUTHORITY


async def test_an_unreachable_seal_service_delays_the_document_and_never_loses_it(
    settings_factory: Callable[..., Settings], flow: Any
) -> None:
    await flow.submit()
    port = _closed_port()
    settings = settings_factory(
        seal_backend="http",
        seal_service_url=f"http://127.0.0.1:{port}",
        seal_service_token="platform-token",
        seal_id=SEAL_ID,
    )
    sealed_app = create_app(settings)
    async with sealed_app.router.lifespan_context(sealed_app):
        transport = httpx.ASGITransport(app=sealed_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            base = f"/api/v1/applications/{flow.application_id}"
            accepted = await client.post(
                f"{base}/accept", json={}, headers=flow.tokens.staff(Role.ACCEPTOR)
            )
            # The decision stands (it is the law's clock that matters); its notice waits.
            assert accepted.status_code == 200, accepted.text
            sealer = context_of(sealed_app).sealer
            # One moment for the attempt and the look after it: the backoff is what is tested, not
            # how fast a loaded machine gets from one line to the next.
            attempted = datetime.now(UTC)
            run = await sealer.run_once(now=attempted)
            assert (run.sealed, run.failed) == (0, 1)
            [document] = (await client.get(f"{base}/documents", headers=flow.applicant)).json()[
                "items"
            ]
            assert document["status"] == "pending"
            async with sealed_app.state.sessionmaker() as session:
                row = (
                    await session.execute(
                        select(
                            Document.attempts, Document.last_error, Document.next_attempt_at
                        ).where(Document.id == uuid.UUID(document["id"]))
                    )
                ).one()
            assert row.attempts == 1 and "SealUnavailable" in row.last_error
            assert row.next_attempt_at > attempted  # backoff: not retried at once
            assert (await sealer.run_once(now=attempted)).failed == 0

            running = Platform(port)  # the seal service comes back
            try:
                later = datetime.now(UTC) + timedelta(minutes=1)
                assert (await sealer.run_once(now=later)).sealed == 1
            finally:
                running.close()
            [document] = (await client.get(f"{base}/documents", headers=flow.applicant)).json()[
                "items"
            ]
            assert document["status"] == "valid" and document["seal_id"] == SEAL_ID
