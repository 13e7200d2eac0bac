"""Calendar fixtures: a real calendar snapshot for the pure rules, and an app with the calendar router.

The app is approval's own ``create_app`` on the migrated test database of each backend, with the
calendar seeded with a fixed range of years so that tests do not change with the date.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from approval.calendar.service import seed_calendar
from approval.calendar.sources import seed_year
from approval.calendar.workdays import CalendarSnapshot
from approval.config import Settings
from approval.main import create_app
from govshared.testing import PerWorker, Tokens

# Fixed, so that tests do not change with the date they run on: 2027 and 2028 are provisional.
SEEDED_YEARS = range(2004, 2029)


@pytest.fixture(scope="session")
def real_calendar() -> CalendarSnapshot:
    """The national calendar from chinesecalendar (2004–2026) and provisional 2027–2028."""
    return CalendarSnapshot([day for year in SEEDED_YEARS for day in seed_year(year)])


@asynccontextmanager
async def seeded_calendar_app(
    database_url: str, tokens: Tokens, data_dir: Path
) -> AsyncIterator[FastAPI]:
    """Approval (which mounts the calendar router), seeded with fixed years."""
    settings = Settings(
        environment="test",
        database_url=database_url,
        data_dir=data_dir,
        **tokens.settings(),  # type: ignore[arg-type]
        migrate_on_start=False,
        run_workers=False,
        load_demo_catalogue=False,
        log_json=False,
        log_level="WARNING",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        async with application.state.sessionmaker() as session, session.begin():
            await seed_calendar(session, years=SEEDED_YEARS)
        yield application


@pytest.fixture
async def calendar_app(
    database_url: str,
    tokens: Tokens,
    per_worker: PerWorker,
    tmp_path_factory: pytest.TempPathFactory,
) -> FastAPI:
    """Approval seeded with fixed years on each backend, one per backend and worker."""
    application: FastAPI = await per_worker.get(
        ("calendar_app", database_url),
        lambda: seeded_calendar_app(database_url, tokens, tmp_path_factory.mktemp("calendar-data")),
    )
    # Again for each test (one query when none is missing): the tables are emptied back to the
    # main app's seed after each test (``database_url``), which holds the years of the date.
    async with application.state.sessionmaker() as session, session.begin():
        await seed_calendar(session, years=SEEDED_YEARS)
    return application


@pytest.fixture
async def calendar_client(calendar_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the calendar app."""
    transport = httpx.ASGITransport(app=calendar_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://approval.test") as c:
        yield c


def d(text: str) -> date:
    """A date from ISO text (keeps the tables readable)."""
    return date.fromisoformat(text)
