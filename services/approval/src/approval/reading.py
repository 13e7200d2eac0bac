"""Reading applications: who may see one, the application as the law has it today, the
enterprise's list, the staff's queue and follow-ups, and the audit trail with its hash check.

Nothing here writes. Services never commit: the route's unit of work does (STYLE.md §1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import DEFAULT_WARN_DAYS
from approval.clocks.derivation import decision_terms
from approval.clocks.service import ClockKeeper
from approval.documents import is_delivering_service
from approval.errors import ApplicationNotFound
from approval.models import Application, ApplicationEvent, Tolerance
from approval.repository import ApplicationRepository
from approval.schemas import ChainVerification
from govshared import jurisdictions
from govshared.applications import ApplicationState
from govshared.auth import Principal, Role
from govshared.chinatime import china_today
from govshared.hashchain import GENESIS, entry_hash

AUDIT_FIELDS = (
    "application_id",
    "seq",
    "action",
    "from_state",
    "to_state",
    "actor",
    "actor_role",
    "reason",
    "details",
    "occurred_at",
)


def can_see(principal: Principal, application: Application) -> bool:
    """Enterprises see their own; staff their jurisdiction (a city-wide 310000 sees all of 31xxxx);
    of the services, notify only (the routes it uses admit no other)."""
    if principal.role is Role.ENTERPRISE:
        return application.applicant_uscc == principal.uscc
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.SERVICE:
        return is_delivering_service(principal.subject)
    return jurisdictions.covers(principal.jurisdiction, application.jurisdiction)


async def visible(
    applications: ApplicationRepository, *, principal: Principal, application_id: uuid.UUID
) -> Application:
    """An application the caller may see; 404 otherwise (never another enterprise's data)."""
    return seen_by(principal, await applications.get(application_id), application_id)


def seen_by(
    principal: Principal, application: Application | None, application_id: uuid.UUID
) -> Application:
    """``application`` (as read by ``application_id``) if the caller may see it; 404 otherwise."""
    if application is None or not can_see(principal, application):
        raise ApplicationNotFound(f"申请 {application_id} 不存在")
    return application


class ApplicationReader:
    """Reading of applications."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        today: Callable[[], date] = china_today,
        warn_days: int = DEFAULT_WARN_DAYS,
    ) -> None:
        self.session = session
        self.applications = ApplicationRepository(session)
        self.clocks = ClockKeeper(session, warn_days=warn_days, cached_calendar=True)
        self.today = today

    async def get_visible(self, *, principal: Principal, application_id: uuid.UUID) -> Application:
        """An application the caller may see; 404 otherwise (never another enterprise's data)."""
        return await visible(self.applications, principal=principal, application_id=application_id)

    async def effective(self, application: Application) -> Application:
        """The application as the law has it today: accepted once its acceptance period has run
        out (Art. 32), whether or not the timer has recorded it yet (a copy; nothing is written)."""
        deemed = await self.clocks.deemed_acceptance(application, today=self.today())
        if deemed is None:
            return application
        terms = await decision_terms(self.session, application.item_code, application.item_version)
        _, decision = await self.clocks.decision_from(
            jurisdiction=application.jurisdiction,
            terms=terms,
            started_on=deemed.received_on,
            as_of=self.today(),
        )
        fields = {c.key: getattr(application, c.key) for c in Application.__table__.columns}
        return Application(
            **{**fields, "state": ApplicationState.ACCEPTED.value, "due_on": decision.view.due_on}
        )

    async def list_own(
        self, *, principal: Principal, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Application]:
        """The enterprise's own applications."""
        assert principal.uscc is not None
        return await self.applications.list_for_applicant(principal.uscc, limit=limit, after=after)

    async def staff_queue(
        self,
        *,
        principal: Principal,
        states: list[ApplicationState],
        item_code: str | None,
        keyword: str | None,
        after: tuple[date, datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Application]:
        """The work queue of the caller's jurisdiction, earliest due first (admins see all)."""
        prefix = None
        if principal.role is not Role.ADMIN:
            prefix = jurisdictions.scope_prefix(principal.jurisdiction or "")
        return await self.applications.staff_queue(
            jurisdiction_prefix=prefix,
            states=[s.value for s in states],
            item_code=item_code,
            keyword=keyword,
            after=after,
            limit=limit,
            today=self.today(),
        )

    async def follow_ups(
        self, *, principal: Principal, overdue: bool, limit: int
    ) -> list[Tolerance]:
        """容缺受理 materials still awaited in the caller's jurisdiction (overdue ones only)."""
        prefix = None
        if principal.role is not Role.ADMIN:
            prefix = jurisdictions.scope_prefix(principal.jurisdiction or "")
        return await self.applications.follow_ups(
            jurisdiction_prefix=prefix, overdue_on=self.today() if overdue else None, limit=limit
        )

    async def events(self, *, application: Application) -> list[ApplicationEvent]:
        """The audit trail."""
        return await self.applications.events(application.id)

    async def verify_chain(self, *, application: Application) -> ChainVerification:
        """Re-hash the trail; report the first entry whose content or link no longer matches."""
        prev = GENESIS
        trail = await self.applications.events(application.id)
        for entry in trail:
            fields = {c: getattr(entry, c) for c in AUDIT_FIELDS}
            if entry.prev_hash != prev or entry_hash(prev, fields) != entry.hash:
                return ChainVerification(
                    valid=False, entries=len(trail), first_broken_seq=entry.seq
                )
            prev = entry.hash
        return ChainVerification(valid=True, entries=len(trail))
