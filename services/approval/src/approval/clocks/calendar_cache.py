"""The national calendar kept in the process (``CalendarCache``) for the lifecycle actions.

The submission hot path opens a clock on it with one small query; ``CachedCalendar`` lays a
jurisdiction's closures (read live) over it for the other actions. The timers derive from the
database (``approval.calendar.service.CalendarService``) before they fire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.errors import YearOutOfRange
from approval.calendar.repository import CalendarRepository
from approval.calendar.service import jurisdiction_chain
from approval.calendar.workdays import LAST_YEAR, CalendarDay, CalendarSnapshot, OutsideSnapshot
from approval.clocks.repository import ClockRepository
from govshared.sql import database_key

T = TypeVar("T")


class CalendarCache:
    """The national calendar per year, kept in the process for the submission hot path.

    The years' ``updated_at`` stamps are checked at most every ``recheck_seconds`` (one small query);
    a year loaded by any replica changes its stamp, so a stale year is reloaded here, and the replica
    that loaded it forgets it at once. Until then an index cache may lag; the year load itself
    re-derives every open clock it touches. Local closures are left out: they only ever move a due
    date later, so the cached ``due_on`` is never later than the truth, and the timers re-derive from
    the database (closures included) before they fire.
    """

    def __init__(self, recheck_seconds: float = 5.0) -> None:
        self._years: dict[tuple[str, int], tuple[Any, list[CalendarDay]]] = {}
        self._snapshots: dict[tuple[str, int, int], tuple[float, CalendarSnapshot]] = {}
        self._recheck = recheck_seconds
        # Results of ``compute_keyed``, each with the snapshot it was derived on.
        self._memo: dict[tuple[Any, ...], tuple[CalendarSnapshot, Any]] = {}

    async def snapshot(self, session: AsyncSession, first: int, last: int) -> CalendarSnapshot:
        """The national calendar of the years ``first..last``."""
        database = database_key(session)
        key = (database, first, last)
        recent = self._snapshots.get(key)
        if recent is not None and time.monotonic() - recent[0] < self._recheck:
            return recent[1]
        years = list(range(first, last + 1))
        stamps = await ClockRepository(session).calendar_stamps(years)
        days: list[CalendarDay] = []
        for year in years:
            cached = self._years.get((database, year))
            if cached is None or cached[0] != stamps.get(year):
                loaded = (
                    await CalendarRepository(session).days_between(
                        date(year, 1, 1), date(year, 12, 31)
                    )
                    if year in stamps
                    else []
                )
                cached = (stamps.get(year), loaded)
                self._years[(database, year)] = cached
            days.extend(cached[1])
        snapshot = CalendarSnapshot(days, window=(date(first, 1, 1), date(last, 12, 31)))
        self._snapshots[key] = (time.monotonic(), snapshot)
        return snapshot

    async def compute(
        self,
        session: AsyncSession,
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str | None = None,
        closures: dict[tuple[str, int, int], list[date]] | None = None,
    ) -> T:
        """Run a pure rule on the cached years, adding years until the rule has what it needs.

        With a ``jurisdiction``, its closures (and its parents') are read from the database (one
        small indexed query, usually empty; ``closures`` memoises them for the caller's
        transaction) and laid over the cached national calendar.
        """
        low, high = first.year, last.year
        memo = closures if closures is not None else {}
        while True:
            snapshot = await self.snapshot(session, low, high)
            if jurisdiction is not None:
                snapshot = snapshot.with_closures(
                    await closures_of(session, memo, jurisdiction, low, high)
                )
            try:
                return rule(snapshot)
            except OutsideSnapshot as exc:
                if exc.day.year < low:
                    low = exc.day.year
                else:
                    high = exc.day.year
                if high > LAST_YEAR:
                    raise YearOutOfRange(f"期限超出 {LAST_YEAR} 年，无法计算") from exc

    async def compute_keyed(
        self,
        session: AsyncSession,
        key: tuple[Any, ...],
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str | None = None,
        closures: dict[tuple[str, int, int], list[date]] | None = None,
    ) -> T:
        """``compute`` for a rule that depends on nothing but ``key``, the national calendar and,
        with a ``jurisdiction``, its closures (read as ``compute`` reads them, and part of the key):
        a result is reused for as long as the national snapshot of ``first..last`` is the same one
        (at most until the next recheck). Every case submitted on a day has the same acceptance
        clock, every case accepted on a day the same decision clock: derived once, not at each
        action or submission."""
        low, high = first.year, last.year
        snapshot = await self.snapshot(session, low, high)
        memo = closures if closures is not None else {}
        days = (
            []
            if jurisdiction is None
            else await closures_of(session, memo, jurisdiction, low, high)
        )
        memo_key = (database_key(session), jurisdiction, low, high, tuple(sorted(days)), *key)
        known = self._memo.get(memo_key)
        if known is not None and known[0] is snapshot:
            return cast(T, known[1])
        try:
            result = rule(snapshot if jurisdiction is None else snapshot.with_closures(days))
        except OutsideSnapshot:  # the rule needs more years: not remembered
            return await self.compute(
                session, rule, first=first, last=last, jurisdiction=jurisdiction, closures=memo
            )
        if len(self._memo) > 1000:
            self._memo.clear()
        self._memo[memo_key] = (snapshot, result)
        return result

    def invalidate(self, year: int) -> None:
        """Forget a year (this process loaded it; other processes notice its new stamp)."""
        self._memo.clear()
        for key in [k for k in self._years if k[1] == year]:
            del self._years[key]
        for snapshot_key in [k for k in self._snapshots if k[1] <= year <= k[2]]:
            del self._snapshots[snapshot_key]


CALENDAR_CACHE = CalendarCache()


async def closures_of(
    session: AsyncSession,
    memo: dict[tuple[str, int, int], list[date]],
    jurisdiction: str,
    low: int,
    high: int,
) -> list[date]:
    """A jurisdiction's closures (and its parents') in the years ``low..high``: from the
    request's memo (``CachedCalendar.know_closures`` fills it from the clocks' statement), else
    read now."""
    key = (jurisdiction, low, high)
    found = memo.get(key)
    if found is None:
        found = memo[key] = await CalendarRepository(session).closure_days(
            jurisdiction_chain(jurisdiction), date(low, 1, 1), date(high, 12, 31)
        )
    return found


class CachedCalendar:
    """``CalendarService.compute`` on the process's calendar cache (closures still read live).

    The lifecycle actions derive clocks with it: the national calendar of a year changes once a
    year, and a process sees another replica's load within the cache's recheck interval; the
    timers, which act on a due date, derive from the database (``CalendarService``) before firing.
    """

    def __init__(self, session: AsyncSession, cache: CalendarCache) -> None:
        self.session = session
        self.cache = cache
        # One request stops one clock and opens the next: their closures are read once.
        self._closures: dict[tuple[str, int, int], list[date]] = {}

    def know_closures(
        self, jurisdiction: str, first_year: int, last_year: int, days: list[date]
    ) -> None:
        """The jurisdiction's closures in ``first_year..last_year``, read with the case's clocks
        in the same statement (``ClockRepository.locked_with_ledger``): every window of years
        inside it is then known to this request without a query of its own."""
        for low in range(first_year, last_year + 1):
            for high in range(low, last_year + 1):
                start, end = date(low, 1, 1), date(high, 12, 31)
                self._closures[(jurisdiction, low, high)] = sorted(
                    day for day in days if start <= day <= end
                )

    async def compute_keyed(
        self,
        key: tuple[Any, ...],
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str,
    ) -> T:
        """``compute`` remembered by ``key`` (``CalendarCache.compute_keyed``)."""
        return await self.cache.compute_keyed(
            self.session,
            key,
            rule,
            first=first,
            last=last,
            jurisdiction=jurisdiction,
            closures=self._closures,
        )

    async def compute(
        self,
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str | None = None,
    ) -> T:
        """Run a pure rule on the cached calendar with the jurisdiction's closures."""
        return await self.cache.compute(
            self.session,
            rule,
            first=first,
            last=last,
            jurisdiction=jurisdiction,
            closures=self._closures,
        )
