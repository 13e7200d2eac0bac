"""Calendar use cases: seeding, official schedules, local closures, the working-day calculator, clocks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import (
    DEFAULT_WARN_DAYS,
    Clock,
    ClockKind,
    ClockView,
    Extension,
    PauseEntry,
    replay,
)
from approval.calendar.errors import (
    ClosureNotFound,
    DateRangeTooLong,
    InvalidJurisdiction,
    YearOutOfRange,
)
from approval.calendar.models import CalendarYearRow, LocalClosureRow
from approval.calendar.repository import CalendarRepository
from approval.calendar.sources import (
    ScheduledHoliday,
    ScheduledWorkday,
    library_knows,
    official_year,
    provisional_year,
    seed_year,
)
from approval.calendar.workdays import (
    FIRST_YEAR,
    LAST_YEAR,
    CalendarDay,
    CalendarSnapshot,
    DaySource,
    OutsideSnapshot,
    WorkingDaysAnswer,
    answer_add,
    count_working_days,
    provisional_dates,
    provisional_day,
)
from govshared import jurisdictions
from govshared.chinatime import china_today

T = TypeVar("T")
MAX_RANGE_DAYS = 366
MAX_COUNT_DAYS = 3660  # ten years: far beyond any statutory limit


def default_seed_years(today: date | None = None) -> range:
    """The library's first year up to two years ahead (those beyond the library are provisional)."""
    return range(FIRST_YEAR, (today or china_today()).year + 3)


def check_year(year: int) -> None:
    """Refuse years the calendar does not cover."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise YearOutOfRange(f"年份 {year} 不在 {FIRST_YEAR}–{LAST_YEAR} 之间")


def check_span(days: Sequence[date]) -> None:
    """Refuse dates the calendar does not cover, or further apart than ``MAX_COUNT_DAYS``: what is
    derived between them is counted day by day (a span of decades cost half a second a request,
    and a date near 9999 overflowed the window's arithmetic)."""
    for day in days:
        check_year(day.year)
    if days and (max(days) - min(days)).days > MAX_COUNT_DAYS:
        raise DateRangeTooLong(f"日期相距不得超过 {MAX_COUNT_DAYS} 天")


def _ledger_dates(
    *,
    started_on: date,
    as_of: date,
    pauses: Iterable[PauseEntry] = (),
    extension: Extension | None = None,
) -> list[date]:
    """Every date a clock's ledger names: start, as-of, each pause's start and end, the grant."""
    days = [started_on, as_of]
    for pause in pauses:
        days += [pause.started_on] + ([pause.ended_on] if pause.ended_on else [])
    if extension is not None:
        days.append(extension.granted_on)
    return days


def jurisdiction_chain(code: str) -> list[str]:
    """A jurisdiction with the ones above it: a province's closure also closes its districts."""
    if not jurisdictions.is_valid(code):
        raise InvalidJurisdiction(f"“{code}”不是 6、9 或 12 位的有效行政区划代码")
    return sorted(jurisdictions.ancestors(code))


async def seed_calendar(
    session: AsyncSession, *, years: Iterable[int] | None = None, today: date | None = None
) -> list[int]:
    """Insert the years the calendar lacks (library data, else provisional); returns those added.

    Idempotent and cheap when nothing is missing (one indexed query), so it can run at every start.
    """
    wanted = sorted(set(years if years is not None else default_seed_years(today)))
    for year in wanted:
        check_year(year)
    repository = CalendarRepository(session)
    missing = [y for y in wanted if y not in await repository.existing_years(wanted)]
    if not missing:
        return []
    now = datetime.now(UTC)
    # A year at a time: the 25 years of a first start in one statement (9,000 rows, their
    # parameters and the driver's copies at once) left about 6 MB of heap behind for good.
    for year in missing:
        record = {
            "year": year,
            "source": (
                DaySource.CHINESECALENDAR if library_knows(year) else DaySource.PROVISIONAL
            ).value,
            "provisional": not library_knows(year),
            "notice": None,
            "updated_by": "seed",
            "updated_at": now,
        }
        await repository.insert_years(seed_year(year), [record], now=now)
    return missing


@dataclass(frozen=True, slots=True)
class DayChange:
    """A date whose kind an official schedule changed."""

    before: CalendarDay
    after: CalendarDay

    @property
    def working_changed(self) -> bool:
        """True when the change moves deadlines (a working day became a day off or back)."""
        return self.before.is_working != self.after.is_working


@dataclass(frozen=True, slots=True)
class YearLoad:
    """The outcome of loading a year's official schedule."""

    year: int
    source: DaySource
    notice: str | None
    changes: tuple[DayChange, ...]
    provisional_cleared: int

    def touches(self, start: date, end: date) -> bool:
        """True when a working day changed in ``(start, end]``: a clock over it must be re-derived."""
        return any(c.working_changed and start < c.after.day <= end for c in self.changes)


@dataclass(frozen=True, slots=True)
class DayInfo:
    """A date with whether a jurisdiction closed that day."""

    day: CalendarDay
    closed: bool

    @property
    def is_working(self) -> bool:
        """True when the day counts towards a time limit in the jurisdiction."""
        return self.day.is_working and not self.closed


@dataclass(frozen=True, slots=True)
class WorkingDaysCount:
    """Working days between two dates with the provisional dates the count depends on."""

    start: date
    end: date
    working_days: int
    provisional_dates: tuple[date, ...]


class CalendarService:
    """The calendar use cases, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = CalendarRepository(session)

    async def snapshot(
        self, start: date, end: date, *, jurisdiction: str | None = None
    ) -> CalendarSnapshot:
        """The calendar of ``[start, end]``, with the jurisdiction's closures when given."""
        days = await self.repository.days_between(start, end)
        closures: list[date] = []
        if jurisdiction is not None:
            chain = jurisdiction_chain(jurisdiction)
            closures = await self.repository.closure_days(chain, start, end)
        return CalendarSnapshot(days, window=(start, end), closures=closures)

    async def compute(
        self,
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str | None = None,
    ) -> T:
        """Run a pure rule on a snapshot from ``first``, widening the window until it suffices.

        The rule's end date is not known in advance (a due date depends on the holidays it crosses);
        ``last`` is a guess that covers ordinary cases in one query.
        """
        if jurisdiction is not None:
            jurisdiction_chain(jurisdiction)
        end = last
        while True:
            snapshot = await self.snapshot(first, end, jurisdiction=jurisdiction)
            try:
                return rule(snapshot)
            except OutsideSnapshot as exc:
                if exc.day < first:
                    raise
                end = max(exc.day, end + (end - first) + timedelta(days=31))
                if end.year > LAST_YEAR:
                    raise YearOutOfRange(f"期限超出 {LAST_YEAR} 年，无法计算") from exc

    async def add_working_days(
        self, start: date, days: int, *, jurisdiction: str | None = None
    ) -> WorkingDaysAnswer:
        """The due date ``days`` working days after ``start`` (start day not counted)."""
        check_year(start.year)
        return await self.compute(
            lambda calendar: answer_add(calendar, start, days),
            first=start,
            last=start + timedelta(days=2 * days + 40),
            jurisdiction=jurisdiction,
        )

    async def count_working_days(
        self, start: date, end: date, *, jurisdiction: str | None = None
    ) -> WorkingDaysCount:
        """Working days in ``(start, end]``."""
        check_span([start, end])
        first, last = min(start, end), max(start, end)

        def rule(calendar: CalendarSnapshot) -> WorkingDaysCount:
            return WorkingDaysCount(
                start=start,
                end=end,
                working_days=count_working_days(calendar, start, end),
                provisional_dates=tuple(provisional_dates(calendar, first, last)),
            )

        return await self.compute(rule, first=first, last=last, jurisdiction=jurisdiction)

    async def clock_view(
        self,
        clock: Clock,
        *,
        as_of: date,
        jurisdiction: str | None = None,
        warn_days: int = DEFAULT_WARN_DAYS,
    ) -> ClockView:
        """Derive a clock's state on ``as_of`` from the stored calendar."""
        first = min(clock.started_on, as_of)
        span = 2 * (clock.budget_days + clock.extension_days) + 40
        return await self.compute(
            lambda calendar: clock.view(calendar, as_of=as_of, warn_days=warn_days),
            first=first,
            last=max(as_of, clock.started_on + timedelta(days=span)),
            jurisdiction=jurisdiction,
        )

    async def replay_clock_view(
        self,
        *,
        kind: ClockKind,
        started_on: date,
        budget_days: int,
        committed_days: int | None = None,
        pauses: tuple[PauseEntry, ...] = (),
        extension: Extension | None = None,
        as_of: date,
        jurisdiction: str | None = None,
        warn_days: int = DEFAULT_WARN_DAYS,
    ) -> ClockView:
        """Rebuild a clock from its stored ledger (checking every rule) and derive its state.

        Every date of the ledger is checked against the calendar's years, and their span against
        ``MAX_COUNT_DAYS``, before anything is computed (``check_span``).
        """
        check_span(
            _ledger_dates(started_on=started_on, as_of=as_of, pauses=pauses, extension=extension)
        )

        def rule(calendar: CalendarSnapshot) -> ClockView:
            clock = replay(
                calendar,
                kind=kind,
                started_on=started_on,
                budget_days=budget_days,
                committed_days=committed_days,
                pauses=pauses,
                extension=extension,
            )
            return clock.view(calendar, as_of=as_of, warn_days=warn_days)

        ledger_end = max([as_of, started_on, *(p.ended_on or p.started_on for p in pauses)])
        span = 2 * (budget_days + (extension.days if extension else 0)) + 40
        return await self.compute(
            rule,
            first=min(started_on, as_of),
            last=ledger_end + timedelta(days=span),
            jurisdiction=jurisdiction,
        )

    async def days(
        self, start: date, end: date, *, jurisdiction: str | None = None
    ) -> list[DayInfo]:
        """Every date of ``[start, end]`` (at most a year) with its kind, source and flag."""
        if end < start or (end - start).days >= MAX_RANGE_DAYS:
            raise DateRangeTooLong(f"起止日期应按先后排列且跨度不超过 {MAX_RANGE_DAYS} 天")
        check_year(start.year)
        check_year(end.year)
        snapshot = await self.snapshot(start, end, jurisdiction=jurisdiction)
        result: list[DayInfo] = []
        current = start
        while current <= end:
            result.append(DayInfo(snapshot.day(current), snapshot.is_closed(current)))
            current += timedelta(days=1)
        return result

    async def year(self, year: int) -> tuple[CalendarYearRow | None, list[DayInfo]]:
        """A year's record (None when never loaded) and its dates."""
        check_year(year)
        record = await self.repository.get_year(year)
        return record, await self.days(date(year, 1, 1), date(year, 12, 31))

    async def load_official_year(
        self,
        year: int,
        *,
        holidays: Sequence[ScheduledHoliday],
        adjusted_workdays: Sequence[ScheduledWorkday],
        notice: str | None,
        actor: str,
        source: DaySource = DaySource.OFFICIAL_NOTICE,
    ) -> YearLoad:
        """Replace a year with its official schedule; the provisional flag goes, changes are reported.

        Callers holding open clocks use ``YearLoad.changes`` to find the deadlines that moved.
        """
        check_year(year)
        new_days = official_year(
            year, holidays=holidays, adjusted_workdays=adjusted_workdays, source=source
        )
        first, last = date(year, 1, 1), date(year, 12, 31)
        old = {d.day: d for d in await self.repository.days_between(first, last)}
        changes: list[DayChange] = []
        cleared = 0
        for day in new_days:
            before = old.get(day.day) or provisional_day(day.day)
            cleared += before.provisional
            if before.kind is not day.kind:
                changes.append(DayChange(before=before, after=day))
        await self.repository.replace_year(
            year, new_days, source=source, notice=notice, actor=actor, now=datetime.now(UTC)
        )
        return YearLoad(
            year=year,
            source=source,
            notice=notice,
            changes=tuple(changes),
            provisional_cleared=cleared,
        )

    async def provisional_changes(self, year: int) -> list[DayChange]:
        """How a stored provisional year differs from the 放假办法's holidays (read only).

        Empty for a year in step, a year not stored, and a year with an official schedule.
        """
        check_year(year)
        record = await self.repository.get_year(year)
        if record is None or record.source != DaySource.PROVISIONAL.value:
            return []
        stored = {
            d.day: d
            for d in await self.repository.days_between(date(year, 1, 1), date(year, 12, 31))
        }
        return [
            DayChange(before=stored.get(day.day) or day, after=day)
            for day in provisional_year(year)
            if stored.get(day.day) != day
        ]

    async def recompute_provisional_year(self, year: int) -> YearLoad | None:
        """Rewrite a stored provisional year by the 放假办法 (Arts. 2, 6); None when in step.

        Years seeded when provisional meant "weekends only" get the statutory holidays and their
        补假 in place; a year with an official schedule is never touched. Callers re-derive clocks.
        """
        changes = await self.provisional_changes(year)
        if not changes:
            return None
        await self.repository.rewrite_days(year, [c.after for c in changes], now=datetime.now(UTC))
        return YearLoad(
            year=year,
            source=DaySource.PROVISIONAL,
            notice=None,
            changes=tuple(changes),
            provisional_cleared=0,
        )

    async def add_closures(
        self, jurisdiction: str, days: Sequence[date], *, reason: str, actor: str
    ) -> tuple[list[date], list[date]]:
        """Close a jurisdiction's offices on some dates; returns (added, already closed)."""
        jurisdiction_chain(jurisdiction)
        for day in days:
            check_year(day.year)
        wanted = sorted(set(days))
        if not wanted:
            return [], []
        existing = {
            row.day for row in await self.repository.closures(jurisdiction, wanted[0], wanted[-1])
        }
        added = [d for d in wanted if d not in existing]
        now = datetime.now(UTC)
        await self.repository.add_closures(
            [
                {
                    "jurisdiction": jurisdiction,
                    "day": d,
                    "reason": reason,
                    "created_by": actor,
                    "created_at": now,
                }
                for d in added
            ]
        )
        return added, [d for d in wanted if d in existing]

    async def remove_closure(self, jurisdiction: str, day: date) -> None:
        """Reopen a jurisdiction's offices on a date (404 problem when it was not closed)."""
        jurisdiction_chain(jurisdiction)
        check_year(day.year)
        if not await self.repository.delete_closure(jurisdiction, day):
            raise ClosureNotFound(f"{jurisdiction} 在 {day.isoformat()} 没有停止办公安排")

    async def closures(
        self, *, jurisdiction: str | None, start: date, end: date
    ) -> list[LocalClosureRow]:
        """Closure records in a range."""
        if jurisdiction is not None:
            jurisdiction_chain(jurisdiction)
        if end < start or (end - start).days >= MAX_RANGE_DAYS:
            raise DateRangeTooLong(f"起止日期应按先后排列且跨度不超过 {MAX_RANGE_DAYS} 天")
        return await self.repository.closures(jurisdiction, start, end)
