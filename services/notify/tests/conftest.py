"""Notify's test fixtures: every database test runs on PostgreSQL and on SQLite.

The database is migrated with Alembic (never ``create_all``), the app runs its real lifespan and is
called through ``httpx.ASGITransport``. The outside world is real and local: an aiosmtpd SMTP server,
one HTTP server on 127.0.0.1 that plays the enterprises' webhook receivers, the SMS provider's
gateway and approval's event endpoint, and another that plays approval's and license's document
downloads (service token checked), which a test can stop and start again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from govshared.auth import Role, TokenVerifier
from govshared.events import CLOUDEVENTS_BATCH_JSON, EventType
from govshared.testing import (
    BACKENDS,
    CleanTables,
    PerWorker,
    Tokens,
    migrated_database,
    watch_event_contracts,
    with_clean_tables,
)
from notify.config import Settings
from notify.context import context_of
from notify.main import ALEMBIC_INI, create_app
from notify.worker import DeliveryWorker, build_proof, build_senders

RECEIPT_SECRET = "test-receipt-secret"
SMS_API_KEY = "test-sms-key"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailSink:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.connections = 0
        # Mailboxes the server refuses, as Postfix does: its reply names the address.
        self.unknown: set[str] = set()
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages addressed to ``address``."""
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]


@dataclass
class Outside:
    """The local stand-ins: webhook receivers, the SMS gateway, approval's event endpoint."""

    base_url: str
    webhooks: dict[str, list[tuple[dict[str, str], bytes]]] = field(default_factory=dict)
    webhook_status: dict[str, int] = field(default_factory=dict)
    webhook_answer: dict[str, bytes] = field(default_factory=dict)
    sms: list[dict[str, Any]] = field(default_factory=list)
    sms_status: int = 200
    sms_message_id: str | None = None  # what the gateway answers as its message id (None: its own)
    approval_events: list[dict[str, Any]] = field(default_factory=list)

    def webhook_url(self, name: str) -> str:
        """The URL of a named receiver."""
        return f"{self.base_url}/hooks/{name}"

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        """SMS the gateway accepted for a phone number."""
        return [m for m in self.sms if m["phone"] == phone]


def outside_app(outside: Outside) -> Starlette:
    """The stand-in HTTP endpoints."""

    async def hook(request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        outside.webhooks.setdefault(name, []).append((dict(request.headers), body))
        return Response(
            outside.webhook_answer.get(name, b""), status_code=outside.webhook_status.get(name, 200)
        )

    async def sms_send(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {SMS_API_KEY}":
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        body = await request.json()
        if outside.sms_status != 200:
            # As providers do, the refusal names the number it concerns.
            return JSONResponse(
                {"error": "provider says no", "phone": body["phone"]},
                status_code=outside.sms_status,
            )
        message_id = outside.sms_message_id or f"sms-{uuid.uuid4().hex[:12]}"
        outside.sms.append({**body, "message_id": message_id})
        return JSONResponse({"message_id": message_id, "status": "accepted"})

    async def approval_events(request: Request) -> Response:
        outside.approval_events.extend(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/hooks/{name}", hook, methods=["POST"]),
            Route("/sms/v1/sms/send", sms_send, methods=["POST"]),
            Route("/approval/api/v1/events", approval_events, methods=["POST"]),
        ]
    )


class DocumentPeer:
    """Approval's and license's PDF downloads on a loopback port: ``/{service}/api/v1/...``.

    Like the real endpoints it answers only a valid bearer token, here only a service's. ``stop``
    and ``start`` take the port down and up again (a peer that is down refuses connections).
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.files: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (service, path, caller)
        self._verifier = verifier
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def url(self, service: str) -> str:
        """The base URL notify is configured with for a service."""
        return f"{self.base_url}/{service}"

    def serve(self, service: str, path: str, content: bytes) -> None:
        """Serve ``content`` at ``path`` of ``service``."""
        self.files[(service, path)] = content

    def requests_for(self, path: str) -> list[tuple[str, str, str | None]]:
        """The requests made for one path."""
        return [r for r in self.requests if r[1] == path]

    def _app(self) -> Starlette:
        async def download(request: Request) -> Response:
            service = request.path_params["service"]
            path = "/api/v1/" + request.path_params["rest"]
            header = request.headers.get("authorization", "")
            try:
                principal = self._verifier.verify(header.removeprefix("Bearer "))
            except Exception:
                self.requests.append((service, path, None))
                return JSONResponse({"code": "unauthenticated"}, status_code=401)
            self.requests.append((service, path, principal.subject))
            if principal.role is not Role.SERVICE:
                return JSONResponse({"code": "forbidden"}, status_code=403)
            content = self.files.get((service, path))
            if content is None:
                return JSONResponse({"code": "document_not_found"}, status_code=404)
            return Response(content, media_type="application/pdf")

        return Starlette(routes=[Route("/{service}/api/v1/{rest:path}", download)])

    async def start(self) -> None:
        """Listen (again)."""
        config = uvicorn.Config(
            self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn offers no started event
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


def document_ref(
    content: bytes,
    *,
    kind: str = "acceptance",
    title: str = "受理通知书",
    number: str = "310000〔2026〕受字第3A9F01C2号",
    download_path: str | None = None,
) -> dict[str, Any]:
    """A ``SealedDocumentRef`` of ``content`` as approval's events carry it."""
    document_id = str(uuid.uuid4())
    return {
        "document_id": document_id,
        "kind": kind,
        "title": title,
        "number": number,
        "issued_on": "2026-11-28",
        "pdf_sha256": hashlib.sha256(content).hexdigest(),
        "pdf_size": len(content),
        "download_path": download_path
        or f"/api/v1/applications/{uuid.uuid4()}/documents/{document_id}/pdf",
        "verify_url": f"https://onestop.example.gov.cn/verify?number={number}",
    }


def sealed_pdf(label: str) -> bytes:
    """Bytes standing in for a sealed PDF (unique per call)."""
    return (
        b"%PDF-1.7\n% onestop test document\n"
        + label.encode()
        + b"\n"
        + uuid.uuid4().bytes * 64
        + b"\n%%EOF\n"
    )


@pytest.fixture(autouse=True)
def _events_match_their_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event a test makes the service emit matches its type's data model (the producers
    build event data without validating it again; shared/tests/test_event_contracts.py)."""
    watch_event_contracts(monkeypatch)


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """Test key pair and token factory."""
    return Tokens(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[MailSink, int]]:
    """A real SMTP server (aiosmtpd) on loopback."""
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture(scope="session")
async def outside() -> AsyncIterator[Outside]:
    """A real HTTP server on loopback with the stand-in endpoints."""
    port = free_port()
    state = Outside(base_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        outside_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no started event
        await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
async def documents(tokens: Tokens) -> AsyncIterator[DocumentPeer]:
    """Approval's and license's document downloads, on a real loopback port."""
    peer = DocumentPeer(tokens.verifier())
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture(scope="session")
async def per_worker(
    smtp: tuple[MailSink, int], outside: Outside, documents: DocumentPeer
) -> AsyncIterator[PerWorker]:
    """The databases and apps this worker made, closed at the end of its session (before the
    stand-ins the apps talk to)."""
    made = PerWorker()
    yield made
    await made.aclose()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest,
    per_worker: PerWorker,
    tokens: Tokens,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[MailSink, int],
    outside: Outside,
    documents: DocumentPeer,
) -> AsyncIterator[str]:
    """A migrated database of each backend with the app running on it (``app``), made once per
    worker and shared by its tests. After each test its tables are back to what the app's start-up
    left there (``CleanTables``), whatever the test wrote and through whichever app: no test sees
    another's rows."""
    backend: str = request.param
    url = await per_worker.get(
        ("database", backend),
        lambda: migrated_database(
            backend,
            prefix="notify_test",
            directory=tmp_path_factory.mktemp("db"),
            alembic_ini=ALEMBIC_INI,
        ),
    )
    _, tables = await app_on(url, tokens, per_worker, tmp_path_factory, smtp, outside, documents)
    yield url
    await tables.reset()


# The portal's gateway that download links in messages start with.
PORTAL = "https://onestop.example.gov.cn"
# A named user told of every clock warning (rule ``named_recipients``).
DUTY_OFFICER = "duty-officer-310000"


def make_settings(
    database_url: str, tokens: Tokens, data_dir: Path, **overrides: object
) -> Settings:
    """Settings of a test app."""
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "data_dir": data_dir,
        **tokens.settings(),
        "migrate_on_start": False,
        "run_workers": False,
        "log_json": False,
        "log_level": "WARNING",
        "delivery_base_backoff_seconds": 0.0,
        "delivery_max_attempts": 3,
        "rate_limit_sms_per_hour": 3,
        "sms_receipt_secret": RECEIPT_SECRET,
        "sms_api_key": SMS_API_KEY,
        "sse_poll_seconds": 0.05,
        "sse_max_seconds": 1.0,
        # The stand-in webhook receivers listen on 127.0.0.1 (tests/security proves the refusal
        # with this off), each on a port of its own (any port: development and tests only).
        "webhook_allow_loopback": True,
        "webhook_ports": [],
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_app(
    settings: Settings,
) -> AsyncIterator[FastAPI]:
    """The notify app with its lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def app_on(
    url: str,
    tokens: Tokens,
    per_worker: PerWorker,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[MailSink, int],
    outside: Outside,
    documents: DocumentPeer,
) -> tuple[FastAPI, CleanTables]:
    """The worker's app on the database (made on first use) and the ``CleanTables`` of it."""

    def make() -> AbstractAsyncContextManager[tuple[FastAPI, CleanTables]]:
        settings = make_settings(
            url,
            tokens,
            tmp_path_factory.mktemp("data"),
            smtp_host="127.0.0.1",
            smtp_port=smtp[1],
            sms_gateway_url=f"{outside.base_url}/sms",
            approval_events_url=f"{outside.base_url}/approval/api/v1/events",
            named_recipients={"cn.gov.approval.application.clock_warning.*": [DUTY_OFFICER]},
            approval_url=documents.url("approval"),
            license_url=documents.url("license"),
            approval_public_url=PORTAL,
            license_public_url=PORTAL + "/",
        )
        return with_clean_tables(running_app(settings))

    made: tuple[FastAPI, CleanTables] = await per_worker.get(("app", url), make)
    return made


@pytest.fixture
async def app(
    database_url: str,
    tokens: Tokens,
    per_worker: PerWorker,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[MailSink, int],
    outside: Outside,
    documents: DocumentPeer,
) -> FastAPI:
    """The notify app with its lifespan running, one per backend and worker; tests drive the
    delivery worker themselves."""
    application, _ = await app_on(
        database_url, tokens, per_worker, tmp_path_factory, smtp, outside, documents
    )
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify.test") as c:
        yield c


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session on the app's database, for assertions on what was stored."""
    async with app.state.sessionmaker() as s:
        yield s


def application_event(
    event_type: EventType | str,
    uscc: str,
    *,
    event_id: str | None = None,
    application_no: str | None = None,
    jurisdiction: str = "310000",
    **data: Any,
) -> dict[str, Any]:
    """An approval CloudEvent as approval's relay posts it."""
    application_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    payload: dict[str, Any] = {
        "application_id": application_id,
        "application_no": application_no
        or f"{jurisdiction}-20261128-{uuid.uuid4().hex[:8].upper()}",
        "item_code": "JXW-XK-002",
        "item_name": "食盐定点批发企业审批",
        "applicant_uscc": uscc,
        "applicant_name": "上海盐业示范有限公司",
        "jurisdiction": jurisdiction,
        "state": str(event_type).split(".")[-2],
        "occurred_at": now,
    }
    payload.update(data)
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "/services/approval",
        "type": str(event_type),
        "subject": application_id,
        "time": now,
        "datacontenttype": "application/json",
        "data": payload,
    }


def document_event(
    uscc: str, document: dict[str, Any], *, event_id: str | None = None
) -> dict[str, Any]:
    """Approval's ``document.issued`` as its relay posts it, after its worker sealed a notice."""
    event = application_event(EventType.DOCUMENT_ISSUED, uscc, event_id=event_id)
    del event["data"]["state"]
    event["data"]["document"] = document
    return event


def licence_event(
    event_type: EventType | str,
    uscc: str,
    *,
    document: dict[str, Any] | None = None,
    licence_no: str | None = None,
) -> dict[str, Any]:
    """A license CloudEvent as license's relay posts it."""
    now = datetime.now(UTC).isoformat()
    licence_id = str(uuid.uuid4())
    data: dict[str, Any] = {
        "licence_id": licence_id,
        "licence_no": licence_no or f"JY310000{uuid.uuid4().hex[:8].upper()}",
        "licence_type": "salt_wholesale_certificate",
        "licence_type_name": "食盐定点批发许可证",
        "holder_name": "上海盐业示范有限公司",
        "holder_uscc": uscc,
        "status": "valid",
        "valid_until": "2031-11-27",
        "application_id": str(uuid.uuid4()),
        "occurred_at": now,
    }
    if document is not None:
        data["document"] = document
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/services/license",
        "type": str(event_type),
        "subject": licence_id,
        "time": now,
        "datacontenttype": "application/json",
        "data": data,
    }


async def post_events(
    client: httpx.AsyncClient, tokens: Tokens, events: list[dict[str, Any]]
) -> httpx.Response:
    """Post a batch the way the outbox relays do."""
    return await client.post(
        "/api/v1/events",
        content=json.dumps(events).encode(),
        headers={"Content-Type": CLOUDEVENTS_BATCH_JSON, **tokens.producer(events)},
    )


@asynccontextmanager
async def replica(app: FastAPI, settings: Settings) -> AsyncIterator[DeliveryWorker]:
    """Another delivery worker on the app's database, with its own settings and senders (as a
    second notify-worker replica would have)."""
    async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as http:
        senders = build_senders(settings, http=http)
        try:
            yield DeliveryWorker(
                sessionmaker=app.state.sessionmaker,
                settings=settings,
                senders=senders,
                proof=build_proof(),
            )
        finally:
            for sender in senders.values():
                await sender.aclose()


async def drain(app: FastAPI, *, rounds: int = 10) -> None:
    """Run the delivery worker until nothing is due (tests drive it instead of the lifespan)."""
    for _ in range(rounds):
        if not await context_of(app).delivery_worker.run_once():
            return
