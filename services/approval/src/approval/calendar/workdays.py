"""Working days on an in-memory calendar snapshot: pure functions, no I/O.

Art. 82 of the Administrative Licensing Law and arts. 201/203 of the Civil Code: limits count working
days, the start day is not counted, and a limit ending on a non-working day moves to the next working
day. Counting only working days after the start makes the second rule hold by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from govshared.holidays import statutory_days

ONE_DAY = timedelta(days=1)
# Years the calendar accepts: chinesecalendar starts in 2004; later years can be loaded by admins.
FIRST_YEAR = 2004
LAST_YEAR = 2100


class DayKind(StrEnum):
    """What kind of day a date is."""

    WEEKDAY = "weekday"  # 工作日（周一至周五）
    WEEKEND = "weekend"  # 周末休息日
    HOLIDAY = "holiday"  # 法定节假日
    ADJUSTED_WORKDAY = "adjusted_workday"  # 调休上班（周末上班）
    ADJUSTED_HOLIDAY = "adjusted_holiday"  # 调休放假（工作日放假）


WORKING_KINDS = frozenset({DayKind.WEEKDAY, DayKind.ADJUSTED_WORKDAY})

DAY_KIND_LABELS = {
    DayKind.WEEKDAY: "工作日",
    DayKind.WEEKEND: "周末",
    DayKind.HOLIDAY: "法定节假日",
    DayKind.ADJUSTED_WORKDAY: "调休上班",
    DayKind.ADJUSTED_HOLIDAY: "调休放假",
}


class DaySource(StrEnum):
    """Where a day's kind comes from."""

    CHINESECALENDAR = "chinesecalendar"  # the maintained library, for the years it knows
    OFFICIAL_NOTICE = "official_notice"  # 国务院办公厅关于部分节假日安排的通知, loaded by an admin
    ADMIN = "admin"  # an admin's correction
    # The year's schedule is not published: the statutory holidays of the 全国年节及纪念日放假办法
    # (Art. 2, with Art. 6's 补假) and weekends; 调休 is unknown until the State Council's notice.
    PROVISIONAL = "provisional"


def default_kind(day: date) -> DayKind:
    """The kind of a day by the weekend rule alone."""
    return DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WEEKDAY


@dataclass(frozen=True, slots=True)
class CalendarDay:
    """One date of the calendar."""

    day: date
    kind: DayKind
    source: DaySource
    provisional: bool
    name: str | None = None

    @property
    def is_working(self) -> bool:
        """True when offices work that day (before any local closure)."""
        return self.kind in WORKING_KINDS


def provisional_day(day: date) -> CalendarDay:
    """A day the calendar does not know: statutory holiday or weekend rule, flagged provisional."""
    statutory = statutory_days(day.year).get(day)
    if statutory is not None:
        return CalendarDay(
            day, DayKind.HOLIDAY, DaySource.PROVISIONAL, provisional=True, name=statutory.name
        )
    return CalendarDay(day, default_kind(day), DaySource.PROVISIONAL, provisional=True)


class OutsideSnapshot(LookupError):
    """A computation needed a date the snapshot was not loaded for; load a larger window."""

    def __init__(self, day: date) -> None:
        super().__init__(f"{day.isoformat()} is outside the calendar snapshot")
        self.day = day


class CalendarSnapshot:
    """The calendar of a window of dates, with a jurisdiction's local closures.

    ``window`` is the range the snapshot was loaded for: within it a date missing from ``days`` is
    genuinely unknown (provisional), outside it the snapshot refuses to guess. Without a window every
    missing date is provisional (handy for tests of the rules).
    """

    __slots__ = ("_closures", "_days", "_window")

    def __init__(
        self,
        days: Iterable[CalendarDay],
        *,
        window: tuple[date, date] | None = None,
        closures: Iterable[date] = (),
    ) -> None:
        self._days = {d.day: d for d in days}
        self._window = window
        self._closures = frozenset(closures)

    def with_closures(self, closures: Iterable[date]) -> CalendarSnapshot:
        """The same national calendar with a jurisdiction's closures (shares the days, no copy)."""
        snapshot = CalendarSnapshot.__new__(CalendarSnapshot)
        snapshot._days = self._days
        snapshot._window = self._window
        snapshot._closures = frozenset(closures)
        return snapshot

    def day(self, day: date) -> CalendarDay:
        """The calendar entry of a date (provisional when the calendar does not know it)."""
        if self._window is not None and not (self._window[0] <= day <= self._window[1]):
            raise OutsideSnapshot(day)
        known = self._days.get(day)
        return known if known is not None else provisional_day(day)

    def is_closed(self, day: date) -> bool:
        """True when the jurisdiction closed its offices that day."""
        return day in self._closures

    def is_working_day(self, day: date) -> bool:
        """True when the day counts towards a time limit."""
        return self.day(day).is_working and day not in self._closures

    def is_provisional(self, day: date) -> bool:
        """True when the day's kind may still change with an official schedule."""
        return self.day(day).provisional


def add_working_days(calendar: CalendarSnapshot, start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (start day not counted).

    With ``days == 0`` the answer is the start itself when it is a working day, else the next one.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    if days == 0:
        while not calendar.is_working_day(current):
            current += ONE_DAY
        return current
    remaining = days
    while remaining:
        current += ONE_DAY
        if calendar.is_working_day(current):
            remaining -= 1
    return current


def count_working_days(calendar: CalendarSnapshot, start: date, end: date) -> int:
    """Working days in ``(start, end]``; negative (``-count(end, start)``) when ``end < start``."""
    if end < start:
        return -count_working_days(calendar, end, start)
    count = 0
    current = start
    while current < end:
        current += ONE_DAY
        if calendar.is_working_day(current):
            count += 1
    return count


def provisional_dates(calendar: CalendarSnapshot, start: date, end: date) -> list[date]:
    """Dates in ``(start, end]`` whose kind is provisional: the answer may move with them."""
    found: list[date] = []
    current = start
    while current < end:
        current += ONE_DAY
        if calendar.is_provisional(current):
            found.append(current)
    return found


def years_of(dates: Iterable[date]) -> list[int]:
    """The distinct years of some dates, in order."""
    return sorted({d.year for d in dates})


@dataclass(frozen=True, slots=True)
class WorkingDaysAnswer:
    """A due date with the provisional days it depends on."""

    start: date
    days: int
    due: date
    provisional_dates: tuple[date, ...]

    @property
    def depends_on_provisional(self) -> bool:
        """True when an official schedule not yet loaded could move the due date."""
        return bool(self.provisional_dates)


def answer_add(calendar: CalendarSnapshot, start: date, days: int) -> WorkingDaysAnswer:
    """``add_working_days`` with the provisional dates it depended on."""
    due = add_working_days(calendar, start, days)
    return WorkingDaysAnswer(
        start=start,
        days=days,
        due=due,
        provisional_dates=tuple(provisional_dates(calendar, start, due)),
    )
