"""license counts its working days by the official schedule approval's admins load (调休 included),
fetched from approval's real app over HTTP (ASGI, in process) and kept in license's database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from approval.config import Settings as ApprovalSettings
from approval.main import ALEMBIC_INI as APPROVAL_ALEMBIC_INI
from approval.main import create_app as create_approval_app
from govshared.auth import Role
from govshared.db import make_engine, make_sessionmaker
from govshared.migrate import upgrade
from govshared.testing import BACKENDS, Tokens, drop_postgres_database, make_database
from licensing import workdays
from licensing.calendar import OfficialCalendar
from licensing.main import ALEMBIC_INI
from licensing.models import OfficialCalendarYear

APPROVAL_URL = "http://approval.test"
TODAY = date(2026, 12, 20)
# A 2027 schedule as a 国办发明电 would give it (a test's, not the real notice): 国庆节 Friday
# 10-01 to Thursday 10-07 off, Sunday 09-26 and Saturday 10-09 worked.
SCHEDULE = {
    "notice": "国办发明电〔2026〕99号（测试）",
    "holidays": [{"date": f"2027-10-0{d}", "name": "国庆节"} for d in range(1, 8)],
    "adjusted_workdays": [
        {"date": "2027-09-26", "name": "国庆节调休"},
        {"date": "2027-10-09", "name": "国庆节调休"},
    ],
}


@pytest.fixture(autouse=True)
def no_official_years() -> Iterator[None]:
    """Each test starts and ends with no official schedule adopted in this process."""
    workdays.forget()
    yield
    workdays.forget()


@pytest.fixture(params=BACKENDS)
async def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """license's and approval's databases of the backend, migrated."""
    urls = [
        await make_database(request.param, prefix=f"calendar_{name}", directory=tmp_path)
        for name in ("license", "approval")
    ]
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, urls[0])
        await asyncio.to_thread(upgrade, APPROVAL_ALEMBIC_INI, urls[1])
        yield urls[0], urls[1]
    finally:
        if request.param == "postgresql":
            for url in urls:
                await drop_postgres_database(url)


@pytest.fixture
async def approval(
    databases: tuple[str, str], tokens: Tokens, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    app = create_approval_app(
        ApprovalSettings(
            environment="test",
            database_url=databases[1],
            data_dir=tmp_path / "approval",
            **tokens.settings(),  # type: ignore[arg-type]
            migrate_on_start=False,
            run_workers=False,
            license_url="",
            license_events_url="",
            log_json=False,
            log_level="WARNING",
        )
    )
    async with app.router.lifespan_context(app):
        yield app


async def test_a_schedule_loaded_at_approval_counts_in_licenses_limits(
    databases: tuple[str, str], approval: FastAPI, tokens: Tokens
) -> None:
    engine = make_engine(databases[0])
    sessionmaker = make_sessionmaker(engine)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=approval))
    try:

        def calendar(fetch: bool) -> OfficialCalendar:
            return OfficialCalendar(
                sessionmaker=sessionmaker,
                http=http,
                approval_url=APPROVAL_URL,
                fetch=fetch,
                poll_seconds=3600,
                today=lambda: TODAY,
            )

        # Before the notice: the statutory rule (国庆 10-01 to 10-03, 补假 Monday and Tuesday),
        # so three working days after Thursday 09-30 end on Friday 10-08.
        assert await calendar(fetch=True).fetch_once(TODAY) == []  # approval: provisional only
        assert workdays.add_working_days(date(2027, 9, 30), 3) == date(2027, 10, 8)

        loaded = await http.put(
            f"{APPROVAL_URL}/api/v1/calendar/years/2027",
            json=SCHEDULE,
            headers=tokens.staff(Role.ADMIN),
        )
        assert loaded.status_code == 200, loaded.text
        # Two worker replicas fetching at once both keep the year (one writes over the other).
        both = await asyncio.gather(
            calendar(fetch=True).fetch_once(TODAY), calendar(fetch=True).fetch_once(TODAY)
        )
        assert both == [[2027], [2027]]
        async with sessionmaker() as session:
            kept = await session.get(OfficialCalendarYear, 2027)
        assert kept is not None and kept.notice == SCHEDULE["notice"]
        assert kept.working_weekends == ["2027-09-26", "2027-10-09"]
        assert kept.closed_weekdays == [f"2027-10-0{d}" for d in (1, 4, 5, 6, 7)]

        # Every process adopts what the database keeps (a web replica: no fetch of its own).
        assert workdays.add_working_days(date(2027, 9, 30), 3) == date(2027, 10, 8)
        assert await calendar(fetch=False).reload() == [2027]
        # 10-01 to 10-07 off, Friday 10-08 and Saturday 10-09 (调休) worked, Monday 10-11.
        assert workdays.add_working_days(date(2027, 9, 30), 3) == date(2027, 10, 11)
        # The working Sunday before counts: Friday 09-24 + 1 working day is Sunday 09-26.
        assert workdays.add_working_days(date(2027, 9, 24), 1) == date(2027, 9, 26)

        # approval unreachable: the schedule kept stays in force after a restart.
        workdays.forget()
        unreachable = OfficialCalendar(
            sessionmaker=sessionmaker,
            http=httpx.AsyncClient(transport=httpx.MockTransport(_refused)),
            approval_url=APPROVAL_URL,
            fetch=True,
            poll_seconds=3600,
            today=lambda: TODAY,
        )
        await unreachable._pass()
        assert workdays.add_working_days(date(2027, 9, 30), 3) == date(2027, 10, 11)
    finally:
        await http.aclose()
        await engine.dispose()


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)
