"""Calendar API (``/api/v1/calendar``): public reads and calculator, admin writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.errors import (
    ClosureNotFound,
    DateRangeTooLong,
    ExtensionAlreadyGranted,
    ExtensionNotAllowed,
    ExtensionTooLong,
    InvalidHolidaySchedule,
    InvalidJurisdiction,
    InvalidPause,
    PauseReasonNotAllowed,
    YearOutOfRange,
)
from approval.calendar.schemas import (
    PROVISIONAL_NOTICE,
    CalendarYearOut,
    ClockIn,
    ClockOut,
    ClosureOut,
    ClosuresAdded,
    ClosuresIn,
    DayOut,
    DaysOut,
    OfficialScheduleIn,
    WorkingDaysAddOut,
    WorkingDaysCountOut,
    YearLoadOut,
)
from approval.calendar.service import CalendarService, check_year
from approval.calendar.workdays import DaySource, years_of
from approval.clocks.calendar_cache import CALENDAR_CACHE
from approval.clocks.calendar_change import CalendarChange
from approval.clocks.service import ClockKeeper
from approval.clocks.timers import announce_moved_deadlines
from approval.context import ApprovalContext, Context
from govshared.auth import Principal, Role, require_roles
from govshared.chinatime import china_today
from govshared.db import AutoCommitRoute, get_session, mark_read_only
from govshared.problems import Forbidden, Unauthenticated, ValidationFailed, problem_responses

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"], route_class=AutoCommitRoute)

AUTH_ERRORS = (Unauthenticated, Forbidden)
JURISDICTION_PATTERN = r"^\d{6}(\d{3}|\d{6})?$"
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Jurisdiction = Annotated[
    str | None,
    Query(pattern=JURISDICTION_PATTERN, description="行政区划代码：计入该地区（及上级）停止办公日"),
]
Year = Annotated[int, Path(ge=1900, le=2200, description="公历年份")]


async def get_calendar_service(
    session: Annotated[AsyncSession, Depends(get_session)],
) -> CalendarService:
    """The calendar service bound to this request's session."""
    return CalendarService(session)


Calendar = Annotated[CalendarService, Depends(get_calendar_service)]


async def get_reading_calendar_service(
    session: Annotated[AsyncSession, Depends(get_session)],
) -> CalendarService:
    """For a POST that only computes: read without taking SQLite's write lock."""
    if not session.in_transaction():
        await mark_read_only(session)
    return CalendarService(session)


ReadingCalendar = Annotated[CalendarService, Depends(get_reading_calendar_service)]


@router.get(
    "/years/{year}",
    summary="某年工作日历 (public)",
    response_model=CalendarYearOut,
    responses=problem_responses(YearOutOfRange, ValidationFailed),
)
async def get_year(year: Year, calendar: Calendar) -> CalendarYearOut:
    """Every date of a year with its kind, source and provisional flag.

    A year without the State Council's schedule (source ``provisional``) is not "weekends only":
    it has the holidays the 全国年节及纪念日放假办法 fixes (Art. 2 as revised by Decree No. 795, in
    force 2025-01-01: 元旦 1 day, 春节 除夕 to 初三, 清明 the solar-term day, 劳动节 1–2 May, 端午,
    中秋, 国庆节 1–3 October) and, for each of those days falling on a Saturday or Sunday (or on
    another festival's day), a working day of 补假 (Art. 6), given on the first working day after
    the festival. Only the 调休 waits for the notice; the admin load below replaces the year.
    """
    record, days = await calendar.year(year)
    return CalendarYearOut(
        year=year,
        loaded=record is not None,
        source=DaySource(record.source) if record else DaySource.PROVISIONAL,
        provisional=record.provisional if record else True,
        notice=record.notice if record else None,
        updated_at=record.updated_at if record else None,
        working_days=sum(d.is_working for d in days),
        days=[DayOut.of(d) for d in days],
    )


@router.put(
    "/years/{year}",
    summary="载入某年官方放假安排 (admin)",
    response_model=YearLoadOut,
    responses=problem_responses(
        *AUTH_ERRORS, YearOutOfRange, InvalidHolidaySchedule, ValidationFailed
    ),
)
async def load_year(
    context: Context,
    year: Year,
    body: OfficialScheduleIn,
    calendar: Calendar,
    principal: Admin,
    session: Annotated[AsyncSession, Depends(get_session)],
) -> YearLoadOut:
    """Replace a year with its official schedule, clear its provisional flag, report what changed.

    The schedule lists every day off (the statutory days, their 补假 and the 调休 days off, those
    marked ``in_lieu``) and the 调休 working weekends; unlisted dates follow the weekend rule.

    Every running clock whose period crosses the year is re-derived; those whose due date moved get
    a ``clock_warning`` event with ``reason: calendar_changed`` and the old and new due dates.
    """
    if body.source is DaySource.PROVISIONAL or body.source is DaySource.CHINESECALENDAR:
        raise InvalidHolidaySchedule("来源只能是 official_notice 或 admin")
    check_year(year)
    change = CalendarChange(
        ClockKeeper(session, warn_days=context.settings.clock_warn_days),
        year=year,
        today=context.today(),
    )
    await change.capture()
    load = await calendar.load_official_year(
        year,
        holidays=body.scheduled_holidays(),
        adjusted_workdays=body.scheduled_workdays(),
        notice=body.notice,
        actor=principal.subject,
        source=body.source,
    )
    moved = await announce_moved_deadlines(
        session, change=change, outbox=context.outbox, now=datetime.now(UTC)
    )
    CALENDAR_CACHE.invalidate(year)
    return YearLoadOut.of(load).model_copy(update={"moved_deadlines": moved})


@router.get(
    "/days",
    summary="日期范围内的工作日历 (public)",
    response_model=DaysOut,
    responses=problem_responses(YearOutOfRange, DateRangeTooLong, ValidationFailed),
)
async def get_days(
    calendar: Calendar,
    start: Annotated[date, Query(description="起始日期（含）")],
    end: Annotated[date, Query(description="结束日期（含），跨度不超过 366 天")],
    jurisdiction: Jurisdiction = None,
) -> DaysOut:
    """The dates of a range, with a jurisdiction's closures when given."""
    days = await calendar.days(start, end, jurisdiction=jurisdiction)
    return DaysOut(
        start=start,
        end=end,
        jurisdiction=jurisdiction,
        provisional=any(d.day.provisional for d in days),
        days=[DayOut.of(d) for d in days],
    )


@asynccontextmanager
async def deadlines_around(
    context: ApprovalContext, session: AsyncSession, years: set[int]
) -> AsyncIterator[list[int]]:
    """Re-derive the running clocks around a calendar change made inside the block.

    Yields a one-element list that holds, after the block, how many deadlines moved; each moved
    one gets its ``clock_warning`` event with ``reason: calendar_changed``.
    """
    keeper = ClockKeeper(session, warn_days=context.settings.clock_warn_days)
    changes = [CalendarChange(keeper, year=year, today=context.today()) for year in sorted(years)]
    for change in changes:
        await change.capture()
    moved = [0]
    yield moved
    announced: set[tuple[object, str]] = set()
    for change in changes:
        # A clock spanning two changed years is captured twice: announce it once.
        change.clocks = [c for c in change.clocks if (c.application_id, c.kind) not in announced]
        announced |= {(c.application_id, c.kind) for c in change.clocks}
        moved[0] += await announce_moved_deadlines(
            session, change=change, outbox=context.outbox, now=datetime.now(UTC)
        )


@router.get(
    "/closures",
    summary="地区停止办公日 (public)",
    response_model=list[ClosureOut],
    responses=problem_responses(DateRangeTooLong, InvalidJurisdiction, ValidationFailed),
)
async def list_closures(
    calendar: Calendar,
    start: Annotated[date, Query()],
    end: Annotated[date, Query()],
    jurisdiction: Jurisdiction = None,
) -> list[ClosureOut]:
    """Local closure days in a range, of one jurisdiction or all."""
    rows = await calendar.closures(jurisdiction=jurisdiction, start=start, end=end)
    return [ClosureOut.model_validate(r) for r in rows]


@router.post(
    "/closures",
    summary="登记地区停止办公日 (admin)",
    status_code=201,
    response_model=ClosuresAdded,
    responses=problem_responses(
        *AUTH_ERRORS, YearOutOfRange, InvalidJurisdiction, ValidationFailed
    ),
)
async def add_closures(
    context: Context,
    body: ClosuresIn,
    calendar: Calendar,
    principal: Admin,
    session: Annotated[AsyncSession, Depends(get_session)],
) -> ClosuresAdded:
    """Close a jurisdiction's offices on some dates; running deadlines they touch move and are told."""
    async with deadlines_around(context, session, {d.year for d in body.dates}) as moved:
        added, existing = await calendar.add_closures(
            body.jurisdiction, body.dates, reason=body.reason, actor=principal.subject
        )
    return ClosuresAdded(
        jurisdiction=body.jurisdiction,
        added=added,
        already_closed=existing,
        moved_deadlines=moved[0],
    )


@router.delete(
    "/closures/{jurisdiction}/{day}",
    summary="撤销地区停止办公日 (admin)",
    status_code=204,
    responses=problem_responses(*AUTH_ERRORS, ClosureNotFound, YearOutOfRange, ValidationFailed),
)
async def remove_closure(
    context: Context,
    jurisdiction: Annotated[str, Path(pattern=JURISDICTION_PATTERN)],
    day: date,
    calendar: Calendar,
    principal: Admin,
    session: Annotated[AsyncSession, Depends(get_session)],
) -> Response:
    """Reopen a jurisdiction's offices on a date; running deadlines it touched move back."""
    async with deadlines_around(context, session, {day.year}):
        await calendar.remove_closure(jurisdiction, day)
    return Response(status_code=204)


@router.get(
    "/working-days/add",
    summary="工作日期限计算器 (public)",
    response_model=WorkingDaysAddOut,
    responses=problem_responses(YearOutOfRange, ValidationFailed),
)
async def add_working_days(
    calendar: Calendar,
    start: Annotated[date, Query(description="起算日（不计入）")],
    days: Annotated[int, Query(ge=0, le=1000, description="工作日数")],
    jurisdiction: Jurisdiction = None,
) -> WorkingDaysAddOut:
    """The date ``days`` working days after ``start``: start day not counted, holidays skipped."""
    answer = await calendar.add_working_days(start, days, jurisdiction=jurisdiction)
    years = years_of(answer.provisional_dates)
    return WorkingDaysAddOut(
        start=start,
        days=days,
        due=answer.due,
        jurisdiction=jurisdiction,
        depends_on_provisional=answer.depends_on_provisional,
        provisional_years=years,
        notice=PROVISIONAL_NOTICE if years else None,
    )


@router.get(
    "/working-days/count",
    summary="两个日期之间的工作日数 (public)",
    response_model=WorkingDaysCountOut,
    responses=problem_responses(YearOutOfRange, ValidationFailed),
)
async def count_working_days(
    calendar: Calendar,
    start: Annotated[date, Query(description="起算日（不计入）")],
    end: Annotated[date, Query(description="截止日（计入）")],
    jurisdiction: Jurisdiction = None,
) -> WorkingDaysCountOut:
    """Working days in ``(start, end]``."""
    count = await calendar.count_working_days(start, end, jurisdiction=jurisdiction)
    years = years_of(count.provisional_dates)
    return WorkingDaysCountOut(
        start=start,
        end=end,
        working_days=count.working_days,
        jurisdiction=jurisdiction,
        depends_on_provisional=bool(years),
        provisional_years=years,
        notice=PROVISIONAL_NOTICE if years else None,
    )


@router.post(
    "/clocks/preview",
    summary="法定期限推算（预览，不保存）(public)",
    response_model=ClockOut,
    responses=problem_responses(
        PauseReasonNotAllowed,
        InvalidPause,
        ExtensionAlreadyGranted,
        ExtensionTooLong,
        ExtensionNotAllowed,
        YearOutOfRange,
        DateRangeTooLong,
        ValidationFailed,
    ),
)
async def preview_clock(body: ClockIn, calendar: ReadingCalendar) -> ClockOut:
    """Derive a clock from a ledger of pauses and an extension, checking every statutory rule."""
    view = await calendar.replay_clock_view(
        kind=body.kind,
        started_on=body.started_on,
        budget_days=body.budget_days,
        committed_days=body.committed_days,
        pauses=tuple(p.entry() for p in body.pauses),
        extension=body.extension.extension() if body.extension else None,
        as_of=body.as_of or china_today(),
        jurisdiction=body.jurisdiction,
        warn_days=body.warn_days,
    )
    return ClockOut.of(view)
