"""All SQL of the calendar, in SQLAlchemy Core (seeding writes thousands of rows at once)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.models import (
    CalendarYearRow,
    LocalClosureRow,
    calendar_closures,
    calendar_days,
    calendar_years,
)
from approval.calendar.workdays import CalendarDay, DayKind, DaySource
from govshared.sql import DriverStatement, insert_ignore

# Every lifecycle action reads its jurisdiction's closures: the statement is built once and run
# on the driver (govshared.sql.DriverStatement). A jurisdiction has at most four levels above and
# including it (jurisdiction_chain), so four parameters, the last repeated, hold any chain.
CHAIN_LEVELS = 4
_CLOSURE_DAYS = DriverStatement(
    select(calendar_closures.c.day)
    .where(
        calendar_closures.c.jurisdiction.in_([bindparam(f"j{n}") for n in range(CHAIN_LEVELS)]),
        calendar_closures.c.day.between(bindparam("start"), bindparam("end")),
    )
    .distinct()
)


def _day_from_row(row: Any) -> CalendarDay:
    return CalendarDay(
        day=row.day,
        kind=DayKind(row.kind),
        source=DaySource(row.source),
        provisional=bool(row.provisional),
        name=row.name,
    )


class CalendarRepository:
    """Reads and writes the calendar tables in the caller's transaction (never commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing_years(self, years: Iterable[int]) -> set[int]:
        """Which of the given years the calendar already holds."""
        wanted = list(years)
        if not wanted:
            return set()
        result = await self.session.execute(
            select(calendar_years.c.year).where(calendar_years.c.year.in_(wanted))
        )
        return set(result.scalars())

    async def get_year(self, year: int) -> CalendarYearRow | None:
        """The loaded year's record, if any."""
        return await self.session.get(CalendarYearRow, year)

    async def insert_years(
        self, days: Sequence[CalendarDay], years: Sequence[dict[str, Any]], *, now: datetime
    ) -> None:
        """Bulk insert new years and their days (rows already present are left alone)."""
        # Two replicas may seed at the same start-up; the loser's rows are simply already there.
        if days:
            await self.session.execute(
                insert_ignore(self.session, calendar_days),
                [
                    {
                        "day": d.day,
                        "kind": d.kind.value,
                        "source": d.source.value,
                        "provisional": d.provisional,
                        "name": d.name,
                        "updated_at": now,
                    }
                    for d in days
                ],
            )
        if years:
            await self.session.execute(insert_ignore(self.session, calendar_years), years)

    async def replace_year(
        self,
        year: int,
        days: Sequence[CalendarDay],
        *,
        source: DaySource,
        notice: str | None,
        actor: str,
        now: datetime,
    ) -> None:
        """Replace every date of a year and its record (one transaction, so readers never see half)."""
        first, last = date(year, 1, 1), date(year, 12, 31)
        await self.session.execute(
            delete(calendar_days).where(calendar_days.c.day.between(first, last))
        )
        await self.session.execute(delete(calendar_years).where(calendar_years.c.year == year))
        await self.session.execute(
            insert(calendar_days),
            [
                {
                    "day": d.day,
                    "kind": d.kind.value,
                    "source": d.source.value,
                    "provisional": d.provisional,
                    "name": d.name,
                    "updated_at": now,
                }
                for d in days
            ],
        )
        await self.session.execute(
            insert(calendar_years).values(
                year=year,
                source=source.value,
                provisional=False,
                notice=notice,
                updated_by=actor,
                updated_at=now,
            )
        )

    async def provisional_years(self) -> list[int]:
        """The stored years still computed provisionally (no official schedule loaded)."""
        result = await self.session.execute(
            select(calendar_years.c.year)
            .where(calendar_years.c.source == DaySource.PROVISIONAL.value)
            .order_by(calendar_years.c.year)
        )
        return list(result.scalars())

    async def rewrite_days(self, year: int, days: Sequence[CalendarDay], *, now: datetime) -> None:
        """Rewrite some dates of a stored year in place and stamp the year (readers reload it)."""
        if days:
            await self.session.execute(
                update(calendar_days)
                .where(calendar_days.c.day == bindparam("the_day"))
                .values(
                    kind=bindparam("kind"),
                    source=bindparam("source"),
                    provisional=bindparam("provisional"),
                    name=bindparam("name"),
                    updated_at=bindparam("updated_at"),
                ),
                [
                    {
                        "the_day": d.day,
                        "kind": d.kind.value,
                        "source": d.source.value,
                        "provisional": d.provisional,
                        "name": d.name,
                        "updated_at": now,
                    }
                    for d in days
                ],
            )
        await self.session.execute(
            update(calendar_years).where(calendar_years.c.year == year).values(updated_at=now)
        )

    async def days_between(self, start: date, end: date) -> list[CalendarDay]:
        """The stored dates in ``[start, end]``, in order."""
        result = await self.session.execute(
            select(calendar_days)
            .where(calendar_days.c.day.between(start, end))
            .order_by(calendar_days.c.day)
        )
        return [_day_from_row(row) for row in result]

    async def closure_days(
        self, jurisdictions: Iterable[str], start: date, end: date
    ) -> list[date]:
        """Dates in ``[start, end]`` closed for any of the jurisdictions."""
        chain = list(jurisdictions)
        if not 0 < len(chain) <= CHAIN_LEVELS:
            raise ValueError(f"a jurisdiction chain has 1 to {CHAIN_LEVELS} levels: {chain}")
        levels = {f"j{n}": chain[min(n, len(chain) - 1)] for n in range(CHAIN_LEVELS)}
        rows = await _CLOSURE_DAYS.rows(self.session, {**levels, "start": start, "end": end})
        return [row["day"] for row in rows]

    async def closures(
        self, jurisdiction: str | None, start: date, end: date
    ) -> list[LocalClosureRow]:
        """Closure records in ``[start, end]``, of one jurisdiction or of all."""
        statement = select(LocalClosureRow).where(LocalClosureRow.day.between(start, end))
        if jurisdiction is not None:
            statement = statement.where(LocalClosureRow.jurisdiction == jurisdiction)
        statement = statement.order_by(LocalClosureRow.day, LocalClosureRow.jurisdiction)
        return list((await self.session.execute(statement)).scalars())

    async def add_closures(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert closure days (duplicates are ignored)."""
        if rows:
            await self.session.execute(insert_ignore(self.session, calendar_closures), rows)

    async def delete_closure(self, jurisdiction: str, day: date) -> bool:
        """Remove one closure day; False when there was none."""
        result = await self.session.execute(
            delete(calendar_closures).where(
                calendar_closures.c.jurisdiction == jurisdiction, calendar_closures.c.day == day
            )
        )
        return bool(getattr(result, "rowcount", 0))
