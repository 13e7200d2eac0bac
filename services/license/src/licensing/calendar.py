"""The official holiday schedules license counts its working days by.

Every year the State Council's 办公厅 publishes the next year's 放假安排: the statutory holidays,
their 补假, and the 调休 (weekdays off, weekends worked). approval's admins load it
(``PUT /api/v1/calendar/years/{year}``), and approval's statutory clocks count with it at once.
license has limits in working days of its own (行政处罚法 Art. 64 and 85: the hearing request and
the counting of 工作日; the 双随机 re-inspection and publication limits), which must count the same
days: a 调休 day off counted as a working day ends a party's hearing window a day early.

So license's workers fetch this and next year's schedules from approval's public calendar
(``GET /api/v1/calendar/years/{year}``, no token: it is public) every
``LICENSE_CALENDAR_REFRESH_SECONDS``, keep the official ones (loaded, not provisional) in license's
database, and every license process, web or worker, adopts what the database holds
(``licensing.workdays.adopt``). A year approval holds only provisionally, or while approval cannot
be reached, counts as before: chinesecalendar, else the statutory rule (``licensing.workdays``). A
schedule changed after a limit was set does not move that limit (an order or notice states its
date).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from govshared.loops import BackgroundLoop
from licensing import clock, workdays
from licensing.models import OfficialCalendarYear

logger = logging.getLogger("licensing.calendar")

OFFICIAL_SOURCES = frozenset({"official_notice", "admin"})
RELOAD_SECONDS = 60.0


class _Day(BaseModel):
    date: date
    is_working: bool


class _Year(BaseModel):
    """What license reads of approval's ``CalendarYearOut``."""

    year: int
    loaded: bool
    provisional: bool
    source: str
    notice: str | None = None
    updated_at: datetime | None = None
    days: list[_Day]


def _official(found: _Year, year: int) -> workdays.OfficialYear | None:
    """The year's official schedule from approval's answer; None when approval holds no official
    one (not loaded, provisional) or the answer is not a whole year."""
    if not found.loaded or found.provisional or found.source not in OFFICIAL_SOURCES:
        return None
    dates = [d.date for d in found.days]
    whole = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    if found.year != year or len(set(dates)) != whole or any(d.year != year for d in dates):
        logger.warning(
            "approval's calendar year is not a whole year: ignored", extra={"year": year}
        )
        return None
    return workdays.OfficialYear(
        closed_weekdays=frozenset(
            d.date for d in found.days if d.date.weekday() < 5 and not d.is_working
        ),
        working_weekends=frozenset(
            d.date for d in found.days if d.date.weekday() >= 5 and d.is_working
        ),
    )


class OfficialCalendar:
    """Fetches (workers) and adopts (every process) the official schedules."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        approval_url: str,
        fetch: bool,
        poll_seconds: float,
        today: Callable[[], date] = clock.today,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._http = http
        self._approval_url = approval_url.rstrip("/")
        self._fetch = fetch and bool(self._approval_url)
        self._today = today
        self._refresh_seconds = poll_seconds
        self._fetched_at = -math.inf  # time.monotonic() of the last fetch that answered
        # Re-read the kept schedules every minute at most (one small SELECT), so that a year one
        # worker fetched reaches the web processes soon; fetch every ``poll_seconds``, and a minute
        # after a failed fetch (approval starting after license, say), not an hour.
        self._loop = BackgroundLoop(
            self._pass,
            what="official calendar refresh",
            poll_seconds=min(RELOAD_SECONDS, poll_seconds),
            log=logger,
        )

    async def fetch_once(self, today: date) -> list[int]:
        """Fetch this and next year's schedules from approval and keep the official ones; the
        years kept. An unreachable approval raises ``httpx.HTTPError`` (the loop retries)."""
        kept: list[int] = []
        for year in (today.year, today.year + 1):
            response = await self._http.get(f"{self._approval_url}/api/v1/calendar/years/{year}")
            if response.status_code != 200:
                logger.warning(
                    "approval's calendar year not available",
                    extra={"year": year, "status": response.status_code},
                )
                continue
            try:
                found = _Year.model_validate_json(response.content)
            except ValidationError:
                logger.warning("approval's calendar year unreadable: ignored", extra={"year": year})
                continue
            official = _official(found, year)
            if official is None:
                continue
            try:
                await self._keep(year, official, found)
            except IntegrityError:
                # Another worker replica stored the year first: write over it, as a later fetch.
                await self._keep(year, official, found)
            kept.append(year)
        return kept

    async def _keep(self, year: int, official: workdays.OfficialYear, found: _Year) -> None:
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(OfficialCalendarYear, year)
            if row is None:
                row = OfficialCalendarYear(year=year)
                session.add(row)
            row.closed_weekdays = sorted(d.isoformat() for d in official.closed_weekdays)
            row.working_weekends = sorted(d.isoformat() for d in official.working_weekends)
            row.notice = found.notice
            row.source = found.source
            row.loaded_at = found.updated_at
            row.fetched_at = datetime.now(UTC)

    async def reload(self) -> list[int]:
        """Adopt every official schedule the database holds; the years adopted."""
        async with self._sessionmaker() as session:
            rows = (await session.scalars(select(OfficialCalendarYear))).all()
        workdays.adopt(
            {
                row.year: workdays.OfficialYear(
                    closed_weekdays=frozenset(date.fromisoformat(d) for d in row.closed_weekdays),
                    working_weekends=frozenset(date.fromisoformat(d) for d in row.working_weekends),
                )
                for row in rows
            }
        )
        return sorted(row.year for row in rows)

    async def _pass(self) -> bool:
        if self._fetch and time.monotonic() - self._fetched_at >= self._refresh_seconds:
            try:
                await self.fetch_once(self._today())
                self._fetched_at = time.monotonic()
            except httpx.HTTPError as exc:
                logger.warning(
                    "approval's calendar unreachable: the schedules kept stay in force",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
        await self.reload()
        return False

    async def run(self) -> None:
        """Fetch and re-read at once, then as above, until stopped."""
        await self._loop.run()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._loop.stop()
