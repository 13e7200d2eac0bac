"""Approval's test fixtures: every database test runs on PostgreSQL and on SQLite.

The database is migrated with Alembic (never ``create_all``), the app runs its real lifespan and is
called through ``httpx.ASGITransport``. License is reached through a stand-in of its REST contract
mounted on the license URL, so that approval's own tests need no second service; the cross-service
tests in the repository's ``tests/`` run the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from approval.config import Settings
from approval.main import ALEMBIC_INI, create_app
from govshared.contracts import ReformModeAnswer
from govshared.db import mark_read_only
from govshared.events import REFORM_MODE_LABELS, ReformMode
from govshared.testing import (
    BACKENDS,
    CleanTables,
    PerWorker,
    Tokens,
    migrated_database,
    watch_event_contracts,
    with_clean_tables,
)
from licensing.catalogue.service import shipped_catalogue

LICENSE_URL = "http://license.test"

# Reform modes the stand-in license answers with (the real data lives in the license service).
REFORM_MODES = {
    "JXW-QX-008": ReformMode.CANCELLED,
    "JXW-BA-009": ReformMode.FILING,
    "JXW-BA-010": ReformMode.FILING,
    "JXW-CN-011": ReformMode.COMMITMENT,
    "JXW-CN-012": ReformMode.COMMITMENT,
}


# The 告知承诺 texts are license's (one text per reform-item version): the stand-in serves the very
# texts license ships, so that approval's guide is checked against them.
LICENSE_TEXTS = {
    v["item_code"]: v["commitment_text"]
    for v in shipped_catalogue()["versions"]
    if v["jurisdiction"] == "310000" and v["commitment_text"]
}


# Enterprises the stand-in says are barred from the commitment route, and the licences it holds.
BARRED: set[str] = set()
HELD_LICENCES: dict[str, list[str]] = {}


def license_standin(request: httpx.Request) -> httpx.Response:
    """Answers ``GET /api/v1/reform-items/{code}/mode`` as license's contract says."""
    parts = request.url.path.strip("/").split("/")
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return httpx.Response(401, json={"code": "unauthenticated"})
    if parts[:3] == ["api", "v1", "enterprises"] and parts[-1] == "licences":
        held = HELD_LICENCES.get(parts[3], [])
        items = [
            {
                "licence_no": f"SH-{licence_type}-0001",
                "licence_type": licence_type,
                "item_code": None,
                "holder_uscc": parts[3],
                "status": "valid",
                "valid_from": "2024-01-01",
                "valid_until": None,
            }
            for licence_type in held
        ]
        return httpx.Response(200, json={"items": items, "next_cursor": None})
    if parts[:3] == ["api", "v1", "enterprises"] and parts[-1] == "commitment-eligibility":
        barred = parts[3] in BARRED
        reasons = ["曾作出虚假承诺"] if barred else []
        return httpx.Response(
            200, json={"uscc": parts[3], "eligible": not barred, "reasons": reasons}
        )
    if request.method != "GET" or parts[:3] != ["api", "v1", "reform-items"] or parts[-1] != "mode":
        return httpx.Response(404, json={"code": "not_found"})
    code = parts[3]
    mode = REFORM_MODES.get(code, ReformMode.OPTIMIZED)
    answer = ReformModeAnswer(
        item_code=code,
        item_name=code,
        jurisdiction=request.url.params["jurisdiction"],
        mode=mode,
        mode_label=REFORM_MODE_LABELS[mode],
        effective_from=date(2021, 7, 1),
        version=1,
        commitment_text=LICENSE_TEXTS.get(code) if mode is ReformMode.COMMITMENT else None,
    )
    return httpx.Response(200, content=answer.model_dump_json())


@pytest.fixture(autouse=True)
def _events_match_their_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event a test makes the service emit matches its type's data model (the producers
    build event data without validating it again; shared/tests/test_event_contracts.py)."""
    watch_event_contracts(monkeypatch)


@pytest.fixture
def barred() -> Iterator[set[str]]:
    """USCCs the license stand-in reports as barred from the commitment route (none again after
    the test)."""
    yield BARRED
    BARRED.clear()


@pytest.fixture
def held_licences() -> Iterator[dict[str, list[str]]]:
    """Valid e-licence types the license stand-in reports per USCC (none again after the test)."""
    yield HELD_LICENCES
    HELD_LICENCES.clear()


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
            prefix="approval_test",
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
        "license_url": LICENSE_URL,
        "reform_mode_cache_seconds": 0,
        "log_json": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_factory(database_url: str, tokens: Tokens, tmp_path: Path) -> Callable[..., Settings]:
    """Make settings of another app on the same database, with overrides."""
    return lambda **overrides: make_settings(database_url, tokens, tmp_path, **overrides)


@asynccontextmanager
async def running_app(database_url: str, tokens: Tokens, data_dir: Path) -> AsyncIterator[FastAPI]:
    """The approval app on the database with its lifespan running (demo catalogue loaded)."""
    settings = make_settings(database_url, tokens, data_dir)
    application = create_app(
        settings, http_mounts={LICENSE_URL: httpx.MockTransport(license_standin)}
    )
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
    """The approval app with its lifespan running (demo catalogue loaded), one per backend and
    worker."""
    application, _ = await app_on(database_url, tokens, per_worker, tmp_path_factory)
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://approval.test") as c:
        yield c


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session on the app's database, for assertions on what was stored."""
    async with app.state.sessionmaker() as s:
        await mark_read_only(s)
        yield s
