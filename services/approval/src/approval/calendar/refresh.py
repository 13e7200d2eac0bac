"""Keeping stored provisional years in step with the 全国年节及纪念日放假办法, deadlines included."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.service import CalendarService
from approval.clocks.calendar_cache import CALENDAR_CACHE
from approval.clocks.calendar_change import CalendarChange
from approval.clocks.service import ClockKeeper
from approval.clocks.timers import announce_moved_deadlines
from govshared.outbox import OutboxWriter


async def recompute_provisional_years(
    session: AsyncSession, *, outbox: OutboxWriter, today: date, warn_days: int
) -> dict[int, int]:
    """Recompute every stored provisional year by the 办法; per year rewritten, deadlines moved.

    A database seeded when provisional years were "weekends only" gets the statutory holidays and
    their 补假 (Arts. 2 and 6) at the next start; the running clocks over such a year are re-derived
    and those whose due date moved are told, as when an official schedule is loaded.
    """
    calendar = CalendarService(session)
    moved: dict[int, int] = {}
    for year in await calendar.repository.provisional_years():
        if not await calendar.provisional_changes(year):
            continue  # the usual start: nothing to rewrite, no clock to derive
        change = CalendarChange(ClockKeeper(session, warn_days=warn_days), year=year, today=today)
        await change.capture()
        await calendar.recompute_provisional_year(year)
        moved[year] = await announce_moved_deadlines(
            session, change=change, outbox=outbox, now=datetime.now(UTC)
        )
        CALENDAR_CACHE.invalidate(year)
    return moved
