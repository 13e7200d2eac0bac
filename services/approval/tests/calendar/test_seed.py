"""Seeding the calendar into the database, on PostgreSQL and SQLite: fast, idempotent, flagged."""

from __future__ import annotations

import time
from datetime import date

from fastapi import FastAPI
from sqlalchemy import func, select

from approval.calendar.models import CalendarYearRow
from approval.calendar.service import CalendarService, default_seed_years, seed_calendar
from approval.calendar.workdays import DayKind, DaySource, add_working_days

from .conftest import SEEDED_YEARS, d


async def test_seeded_years_hold_every_date(calendar_app: FastAPI) -> None:
    async with calendar_app.state.sessionmaker() as session:
        days = await CalendarService(session).repository.days_between(
            d("2004-01-01"), d("2028-12-31")
        )
        years = (await session.execute(select(CalendarYearRow))).scalars().all()
    assert len(days) == (date(2029, 1, 1) - date(2004, 1, 1)).days
    flags = {y.year: (y.source, y.provisional) for y in years if y.year in SEEDED_YEARS}
    assert flags[2021] == (DaySource.CHINESECALENDAR.value, False)
    assert flags[2027] == (DaySource.PROVISIONAL.value, True)
    by_day = {x.day: x for x in days}
    assert by_day[d("2021-09-18")].kind is DayKind.ADJUSTED_WORKDAY
    assert by_day[d("2027-10-01")].provisional


async def test_seeding_is_idempotent_and_fast(calendar_app: FastAPI) -> None:
    sessionmaker = calendar_app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        assert await seed_calendar(session, years=SEEDED_YEARS) == []
    started = time.perf_counter()
    async with sessionmaker() as session, session.begin():
        added = await seed_calendar(session, years=range(2090, 2101))
    elapsed = time.perf_counter() - started
    assert added == list(range(2090, 2101))
    assert elapsed < 5, f"seeding 11 years took {elapsed:.2f}s"
    async with sessionmaker() as session, session.begin():
        assert await seed_calendar(session, years=range(2090, 2101)) == []
        count = await session.scalar(
            select(func.count()).select_from(CalendarYearRow).where(CalendarYearRow.year >= 2090)
        )
    assert count == 11


def test_default_seed_years_reach_two_years_ahead() -> None:
    years = default_seed_years(date(2026, 11, 28))
    assert years[0] == 2004 and years[-1] == 2028


async def test_calendar_service_adds_working_days_from_the_database(
    calendar_app: FastAPI,
) -> None:
    async with calendar_app.state.sessionmaker() as session:
        service = CalendarService(session)
        first = await service.add_working_days(d("2021-09-17"), 20)
        second = await service.add_working_days(d("2021-02-05"), 20)
        # A window far too small for the answer is widened until the rule fits in it.
        widened = await service.compute(
            lambda calendar: add_working_days(calendar, d("2021-09-17"), 20),
            first=d("2021-09-17"),
            last=d("2021-09-18"),
        )
    assert first.due == d("2021-10-21") and not first.depends_on_provisional
    assert second.due == d("2021-03-10")
    assert widened == d("2021-10-21")
