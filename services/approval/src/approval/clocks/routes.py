"""Clocks API: an application's clocks, and timeliness statistics for staff."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from approval.calendar.errors import DateRangeTooLong, YearOutOfRange
from approval.calendar.service import check_span
from approval.clocks.consumer import EventConsumer
from approval.clocks.schemas import ApplicationClocksOut, EventIntake, TimelinessReport
from approval.clocks.service import ClockKeeper
from approval.clocks.views import ClockViews
from approval.context import Context
from approval.dependencies import ApplicationById, Session
from approval.errors import ApplicationNotFound
from govshared import jurisdictions
from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.chinatime import CHINA
from govshared.consumer import EVENT_ERRORS, EVENTS_OPENAPI, read_events
from govshared.db import AutoCommitRoute
from govshared.events import CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON
from govshared.problems import (
    Forbidden,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)


async def get_clock_views(context: Context, session: Session) -> ClockViews:
    """The clock views bound to this request's session."""
    return ClockViews(session, warn_days=context.settings.clock_warn_days)


Views = Annotated[ClockViews, Depends(get_clock_views)]


@router.get(
    "/applications/{application_id}/clocks",
    tags=["applications"],
    summary="办件期限（受理、审批、送达）",
    response_model=ApplicationClocksOut,
    responses=problem_responses(
        *AUTH_ERRORS, ApplicationNotFound, YearOutOfRange, DateRangeTooLong, ValidationFailed
    ),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))],
)
async def application_clocks(
    context: Context,
    application: ApplicationById,
    views: Views,
    as_of: Annotated[date | None, Query(description="计算日，默认今天（北京时间）")] = None,
) -> ApplicationClocksOut:
    """Budget, used, remaining, paused days, extension, due and committed due of every clock.

    ``as_of`` must lie in a year the working-day calendar covers, within ``MAX_COUNT_DAYS`` of the
    submission (422 problem otherwise: the clocks are derived day by day up to it).
    """
    day = as_of or context.today()
    check_span([day, application.submitted_at.astimezone(CHINA).date()])
    return await views.for_application(application, as_of=day)


@router.get(
    "/statistics/timeliness",
    tags=["staff"],
    summary="办理时效统计（按事项、实施机关）(staff)",
    response_model=TimelinessReport,
    responses=problem_responses(*AUTH_ERRORS, ValidationFailed),
)
async def timeliness(
    context: Context,
    views: Views,
    principal: Annotated[Principal, Depends(require_roles(*STAFF_ROLES))],
    item_code: Annotated[str | None, Query(max_length=64)] = None,
) -> TimelinessReport:
    """On-time rate, average working days used against the committed limit, overdue, 即办件 share."""
    prefix = None
    if principal.role is not Role.ADMIN:
        prefix = jurisdictions.scope_prefix(principal.jurisdiction or "")
    return await views.timeliness(
        jurisdiction_prefix=prefix, item_code=item_code, today=context.today()
    )


EVENT_MEDIA_TYPES = (CLOUDEVENTS_JSON, CLOUDEVENTS_BATCH_JSON, "application/json")


async def get_event_consumer(context: Context, session: Session) -> EventConsumer:
    """The consumer bound to this request's session."""
    keeper = ClockKeeper(session, warn_days=context.settings.clock_warn_days)
    return EventConsumer(session, keeper=keeper)


@router.post(
    "/events",
    tags=["events"],
    summary="CloudEvents consumer: licence issued (service)",
    response_model=EventIntake,
    responses=problem_responses(*AUTH_ERRORS, *EVENT_ERRORS),
    dependencies=[Depends(require_roles(Role.SERVICE))],
    openapi_extra=EVENTS_OPENAPI,
)
async def receive_events(
    request: Request, consumer: Annotated[EventConsumer, Depends(get_event_consumer)]
) -> EventIntake:
    """Apply license's events exactly once each: ``licence.issued`` stops the delivery clock."""
    return await consumer.consume(await read_events(request))
