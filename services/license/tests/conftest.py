"""License's test fixtures: every database test runs on PostgreSQL and on SQLite.

The database is migrated with Alembic (never ``create_all``), the app runs its real lifespan (demo
catalogue loaded) and is called through ``httpx.ASGITransport``. Approval's events are delivered the
way its relay delivers them: CloudEvents posted to ``/api/v1/events`` with a service token.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from govshared.auth import Role
from govshared.chinatime import CHINA
from govshared.db import mark_read_only
from govshared.events import (
    CLOUDEVENTS_BATCH_JSON,
    ApplicationEventData,
    EventType,
    NotificationDeliveredData,
    ReformMode,
    make_event,
)
from govshared.migrate import upgrade
from govshared.testing import (
    BACKENDS,
    CleanTables,
    PerWorker,
    Tokens,
    drop_postgres_database,
    make_database,
    migrated_database,
    watch_event_contracts,
    with_clean_tables,
)
from licensing import clock
from licensing.config import Settings
from licensing.context import context_of
from licensing.main import ALEMBIC_INI, create_app
from licensing.workdays import add_working_days

ITEM_NAMES = {
    "JXW-XK-001": "食盐定点生产企业审批",
    "JXW-XK-002": "食盐定点批发企业审批",
    "JXW-XK-003": "无线电台（站）设置审批",
    "JXW-CN-011": "固定资产投资项目节能审查",
    "JXW-CN-012": "工业产品生产许可（告知承诺）",
}


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
async def per_worker() -> AsyncIterator[PerWorker]:
    """The databases and apps this worker made, closed at the end of its session."""
    made = PerWorker()
    yield made
    await made.aclose()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest,
    per_worker: PerWorker,
    tokens: Tokens,
    tmp_path_factory: pytest.TempPathFactory,
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
            prefix="license_test",
            directory=tmp_path_factory.mktemp("db"),
            alembic_ini=ALEMBIC_INI,
        ),
    )
    _, tables = await app_on(url, tokens, per_worker, tmp_path_factory)
    yield url
    await tables.reset()


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
        # Every commitment grant drawn for an on-site check: the draw is then predictable.
        "commitment_on_site_share": 1.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_maker() -> Callable[..., Settings]:
    """``make_settings`` itself, for apps on databases of their own."""
    return make_settings


@pytest.fixture
def settings_factory(database_url: str, tokens: Tokens, tmp_path: Path) -> Callable[..., Settings]:
    """Make settings of another app on the same database, with overrides."""
    return lambda **overrides: make_settings(database_url, tokens, tmp_path, **overrides)


@asynccontextmanager
async def running_app(database_url: str, tokens: Tokens, data_dir: Path) -> AsyncIterator[FastAPI]:
    """The license app on the database with its lifespan running (demo catalogue loaded)."""
    application = create_app(make_settings(database_url, tokens, data_dir))
    async with application.router.lifespan_context(application):
        yield application


async def app_on(
    url: str, tokens: Tokens, per_worker: PerWorker, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FastAPI, CleanTables]:
    """The worker's app on the database (made on first use) and the ``CleanTables`` of it."""
    made: tuple[FastAPI, CleanTables] = await per_worker.get(
        ("app", url),
        lambda: with_clean_tables(running_app(url, tokens, tmp_path_factory.mktemp("data"))),
    )
    return made


@pytest.fixture
async def app(
    database_url: str,
    tokens: Tokens,
    per_worker: PerWorker,
    tmp_path_factory: pytest.TempPathFactory,
) -> FastAPI:
    """The license app with its lifespan running (demo catalogue loaded), one per backend and
    worker."""
    application, _ = await app_on(database_url, tokens, per_worker, tmp_path_factory)
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://license.test") as c:
        yield c


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session on the app's database, for assertions on what was stored."""
    async with app.state.sessionmaker() as s:
        await mark_read_only(s)
        yield s


@pytest.fixture
def fresh_app(
    database_url: str, tokens: Tokens, tmp_path: Path
) -> Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]:
    """An app on a database of its own (for timers, which act on every licence they find);
    keyword arguments override its settings."""
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"

    @asynccontextmanager
    async def factory(**overrides: object) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        url = await make_database(backend, prefix="license_fresh", directory=tmp_path)
        try:
            await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
            application = create_app(make_settings(url, tokens, tmp_path, **overrides))
            async with application.router.lifespan_context(application):
                transport = httpx.ASGITransport(app=application)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://license.test"
                ) as c:
                    yield application, c
        finally:
            if backend == "postgresql":
                await drop_postgres_database(url)

    return factory


def application_event(
    *,
    uscc: str,
    event_type: EventType = EventType.APPLICATION_APPROVED,
    item_code: str = "JXW-XK-002",
    jurisdiction: str = "310000",
    reform_mode: ReformMode | None = ReformMode.OPTIMIZED,
    applicant_name: str = "上海盐业示范有限公司",
    application_id: uuid.UUID | None = None,
    state: str = "approved",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An approval event envelope as approval's outbox writes it."""
    application_id = application_id or uuid.uuid4()
    data = ApplicationEventData(
        application_id=application_id,
        application_no=f"{jurisdiction}-{application_id.hex[:10].upper()}",
        item_code=item_code,
        item_name=ITEM_NAMES.get(item_code, item_code),
        applicant_uscc=uscc,
        applicant_name=applicant_name,
        jurisdiction=jurisdiction,
        state=state,
        reform_mode=reform_mode,
        occurred_at=datetime.now(UTC),
        actor_role="approver",
        details=details or {},
    )
    event = make_event(
        type=event_type, source="/services/approval", subject=str(application_id), data=data
    )
    return event.model_dump(mode="json")


Deliver = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def deliver(client: httpx.AsyncClient, tokens: Tokens) -> Deliver:
    """Post events to ``/api/v1/events`` as approval's relay does (a batch, a service token)."""
    return make_deliver(client, tokens)


def make_deliver(client: httpx.AsyncClient, tokens: Tokens) -> Deliver:
    """A deliver function bound to a client."""

    async def post(*events: dict[str, Any]) -> httpx.Response:
        return await client.post(
            "/api/v1/events",
            content=json.dumps(list(events)).encode(),
            headers={
                **tokens.producer(events),
                "Content-Type": CLOUDEVENTS_BATCH_JSON,
            },
        )

    return post


@pytest.fixture
def deliverer() -> Callable[[httpx.AsyncClient, Tokens], Deliver]:
    """Make deliver functions for another app's client (e.g. ``fresh_app``)."""
    return make_deliver


@pytest.fixture
def new_event() -> Callable[..., dict[str, Any]]:
    """Make approval event envelopes."""
    return application_event


Issue = Callable[..., Awaitable[str]]


@pytest.fixture
def issue(app: FastAPI, client: httpx.AsyncClient, tokens: Tokens) -> Issue:
    """Issue a licence through an approved event and seal its certificate; its licence number."""
    return make_issue(client, tokens, app)


@pytest.fixture
def issuer() -> Callable[..., Issue]:
    """Make issue functions for another app's client (e.g. ``fresh_app``)."""
    return make_issue


async def seal_pending(app: FastAPI) -> None:
    """Run the app's certificate sealer once, as its worker would (the tests run no workers)."""
    await context_of(app).sealer.run_once()


def make_issue(client: httpx.AsyncClient, tokens: Tokens, app: FastAPI | None = None) -> Issue:
    """An issue function bound to a client; with ``app``, its sealer then seals the certificate
    (without, the app's own in-process sealer must)."""
    deliver = make_deliver(client, tokens)

    async def issue_one(**kwargs: Any) -> str:
        response = await deliver(application_event(**kwargs))
        assert response.status_code == 200, response.text
        assert response.json()["processed"] == 1
        listed = await client.get(
            f"/api/v1/enterprises/{kwargs['uscc']}/licences",
            headers=tokens.service(),
        )
        assert listed.status_code == 200, listed.text
        matching = [
            item["licence_no"]
            for item in listed.json()["items"]
            if item["item_code"] == kwargs.get("item_code", "JXW-XK-002")
        ]
        assert len(matching) == 1, listed.json()
        if app is not None:
            await seal_pending(app)
        return str(matching[0])

    return issue_one


ServeNotice = Callable[..., Awaitable[dict[str, date]]]


async def prove_service(
    client: httpx.AsyncClient,
    tokens: Tokens,
    licence_no: str,
    *,
    on: date | None = None,
    recipient: str | None = None,
) -> str:
    """notify's proof of service (送达) of the licence's latest 行政处罚事先告知, delivered on
    ``on`` (default today) to ``recipient`` (default the holder) as notify's relay posts it;
    the notice's event id."""
    detail = await client.get(f"/api/v1/licences/{licence_no}", headers=tokens.staff(Role.ADMIN))
    assert detail.status_code == 200, detail.text
    [*_, notice] = [h for h in detail.json()["history"] if h["action"] == "penalty_notified"]
    cause_event_id = str(notice["details"]["notice_event_id"])
    day = on or clock.today()
    event = make_event(
        type=EventType.NOTIFICATION_DELIVERED,
        source="/services/notify",
        subject=licence_no,
        data=NotificationDeliveredData(
            notification_id=uuid.uuid4(),
            cause_event_id=cause_event_id,
            cause_event_type=EventType.LICENCE_PENALTY_NOTIFIED.value,
            subject=licence_no,
            channel="inbox",
            # notify's enterprise recipient is its USCC
            recipient=recipient or detail.json()["holder_uscc"],
            delivered_at=datetime.combine(day, time(10), tzinfo=CHINA),
        ),
    )
    delivered = await make_deliver(client, tokens)(event.model_dump(mode="json"))
    assert delivered.status_code == 200 and delivered.json()["processed"] == 1, delivered.text
    return cause_event_id


@pytest.fixture
def proof_of_service(tokens: Tokens) -> Callable[..., Awaitable[str]]:
    """``prove_service`` with the tests' tokens: (client, licence_no, on=day)."""

    async def prove(
        client: httpx.AsyncClient,
        licence_no: str,
        *,
        on: date | None = None,
        recipient: str | None = None,
    ) -> str:
        return await prove_service(client, tokens, licence_no, on=on, recipient=recipient)

    return prove


@pytest.fixture
def serve_penalty_notice(tokens: Tokens) -> ServeNotice:
    """Serve a 行政处罚事先告知 through the register, as a penalty's decision needs first
    (行政处罚法 Art. 44), as if on the day ``on`` (default today), with the shortest lawful
    hearing deadline unless ``deadline``, and notify's proof of its service that day unless
    ``proved`` is false; the dates the register recorded."""

    async def serve(
        client: httpx.AsyncClient,
        licence_no: str,
        *,
        penalty: str = "suspension",
        on: date | None = None,
        deadline: date | None = None,
        proved: bool = True,
    ) -> dict[str, date]:
        day = on or clock.today()
        last_day = deadline or add_working_days(day, 5)
        with mock.patch.object(clock, "today", lambda: day):
            served = await client.post(
                f"/api/v1/licences/{licence_no}/penalty-notices",
                json={
                    "penalty": penalty,
                    "legal_basis": "《食盐专营办法》第二十九条",
                    "reason": "违反食盐储存规定",
                    "hearing_request_deadline": last_day.isoformat(),
                },
                headers=tokens.staff(Role.APPROVER, "310000"),
            )
        assert served.status_code == 200, served.text
        if proved:
            await prove_service(client, tokens, licence_no, on=day)
        return {"rights_notified_on": day, "hearing_request_deadline": last_day}

    return serve
