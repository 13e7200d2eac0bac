"""The clock timers: deemed acceptance, yellow warning, red overdue, each fired exactly once.

A timer run claims the running clocks whose cached ``warn_on``/``due_on`` say something may be due,
re-derives each from the database (calendar and closures as they are now), fires what is really due
and sets the fired marker in the same transaction as the audit entry and the outbox event. Claims are
row locks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite), so that several
replicas never fire one timer twice, and nothing lives in memory, so that a restart loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import ClockKind, ClockState
from approval.clocks.calendar_change import CalendarChange
from approval.clocks.derivation import DeemedAcceptance, Derived
from approval.clocks.models import ApplicationClock, StopReason
from approval.clocks.service import ClockKeeper
from approval.models import Application, Tolerance
from approval.repository import ApplicationRepository, tolerances
from approval.transitions import SOURCE, SYSTEM_ACTOR, event_party, record_deemed_acceptance
from govshared.applications import ENDED_UNGRANTED, ApplicationState
from govshared.events import ApplicationEventData, EventType, ReformMode, make_event
from govshared.outbox import OutboxWriter
from govshared.sql import dialect_name


@dataclass(slots=True)
class TimerRun:
    """What one run fired."""

    deemed_accepted: int = 0
    warned: int = 0
    overdue: int = 0
    examined: int = 0
    tolerances_overdue: int = 0
    opinions_escalated: int = 0  # approval/tasks/timers.py
    opinions_deemed: int = 0


class ClockTimers:
    """Fires the timers of the clocks that are due, in the caller's transaction."""

    def __init__(self, session: AsyncSession, *, outbox: OutboxWriter, warn_days: int) -> None:
        self.session = session
        self.outbox = outbox
        self.keeper = ClockKeeper(session, warn_days=warn_days)
        self.applications = ApplicationRepository(session)

    async def fire(self, *, today: date, now: datetime, limit: int) -> TimerRun:
        """Claim up to ``limit`` clocks and fire what is due on ``today``."""
        run = TimerRun()
        for clock in await self.keeper.repository.claim_due(today=today, limit=limit):
            run.examined += 1
            application = await self.applications.get(clock.application_id)
            if application is None:
                continue
            entries = await self.keeper.repository.ledger(clock.application_id)
            derived = await self.keeper.derive_stored(clock, entries, as_of=today)
            state = derived.view.state
            markers: dict[str, Any] = {}
            if clock.kind == ClockKind.ACCEPTANCE and state is ClockState.RED:
                await self._deem_accepted(application, clock, derived, today=today, now=now)
                run.deemed_accepted += 1
                continue
            if clock.warned_at is None and state is not ClockState.GREEN:
                markers["warned_at"] = now
                # Straight to red (e.g. after a restart of the workers): the red event says it all.
                if state is ClockState.YELLOW:
                    await self._emit(
                        application, clock, derived, EventType.APPLICATION_CLOCK_WARNING, now
                    )
                    run.warned += 1
            if (
                clock.kind != ClockKind.ACCEPTANCE
                and clock.overdue_at is None
                and state is ClockState.RED
            ):
                markers["overdue_at"] = now
                await self._emit(
                    application, clock, derived, EventType.APPLICATION_CLOCK_OVERDUE, now
                )
                run.overdue += 1
            await self.keeper.repository.update(
                clock.application_id, clock.kind, {**derived.cache(), **markers, "updated_at": now}
            )
            if derived.view.due_on != clock.due_on:
                # The cache was early (a local closure): the work queue's order follows the truth.
                running = await self.keeper.repository.for_application(clock.application_id)
                dues = [c.due_on for c in running if c.stopped_on is None]
                await self.keeper.repository.set_application_due(
                    clock.application_id, min(dues) if dues else None
                )
        await self._tolerances_overdue(run, today=today, now=now, limit=limit)
        return run

    async def _tolerances_overdue(
        self, run: TimerRun, *, today: date, now: datetime, limit: int
    ) -> None:
        """容缺受理 follow-up: a material not delivered by its date raises one event for staff."""
        t = tolerances.c
        query = (
            select(Tolerance)
            .join(Application, Application.id == t.application_id)
            .where(
                t.delivered_at.is_(None),
                t.overdue_at.is_(None),
                t.deliver_by < today,
                # A case withdrawn, refused or denied owes no material any more.
                Application.state.not_in(ENDED_UNGRANTED),
            )
            .order_by(t.deliver_by, t.application_id, t.name)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Tolerance)
        for tolerance in (await self.session.scalars(query)).all():
            run.examined += 1
            application = await self.applications.get(tolerance.application_id)
            if application is None:
                continue
            await self.session.execute(
                update(tolerances)
                .where(t.application_id == tolerance.application_id, t.name == tolerance.name)
                .values(overdue_at=now)
            )
            await self.outbox.add(
                self.session,
                make_event(
                    type=EventType.APPLICATION_CLOCK_OVERDUE,
                    source=SOURCE,
                    subject=str(application.id),
                    data=ApplicationEventData(
                        **event_party(application),
                        state=application.state,
                        reform_mode=ReformMode(application.reform_mode)
                        if application.reform_mode
                        else None,
                        occurred_at=now,
                        actor_role=SYSTEM_ACTOR[1],
                        due_on=tolerance.deliver_by,
                        details={
                            "clock": "tolerated_material",
                            "material": tolerance.name,
                            "deliver_by": tolerance.deliver_by.isoformat(),
                            "state": "red",
                        },
                    ),
                ),
            )
            run.tolerances_overdue += 1

    async def _deem_accepted(
        self,
        application: Application,
        clock: ApplicationClock,
        derived: Derived,
        *,
        today: date,
        now: datetime,
    ) -> None:
        """Art. 32: accepted as of the day the (complete) materials arrived."""
        deemed = DeemedAcceptance(
            received_on=clock.started_on,
            acceptance_due_on=derived.view.due_on,
            clock=clock,
            derived=derived,
        )
        if application.state != ApplicationState.SUBMITTED:
            # The lifecycle moved on without stopping the clock; nothing to deem, only stop it.
            await self.keeper.repository.update(
                clock.application_id,
                clock.kind,
                {
                    **derived.cache(),
                    "stopped_on": deemed.effective_on,
                    "stop_reason": StopReason.DEEMED_ACCEPTED.value,
                    "used_days": derived.view.used_days,
                    "deemed_at": now,
                    "updated_at": now,
                },
            )
            return
        if not await record_deemed_acceptance(
            self.session,
            outbox=self.outbox,
            keeper=self.keeper,
            application=application,
            deemed=deemed,
            today=today,
            now=now,
        ):
            # Someone acted in between: roll this claim back with the transaction.
            raise RuntimeError(f"application {application.id} changed while deeming it accepted")

    async def _emit(
        self,
        application: Application,
        clock: ApplicationClock,
        derived: Derived,
        event_type: EventType,
        at: datetime,
    ) -> None:
        await emit_clock_event(
            self.session,
            outbox=self.outbox,
            application=application,
            kind=clock.kind,
            derived=derived,
            event_type=event_type,
            at=at,
        )


async def emit_clock_event(
    session: AsyncSession,
    *,
    outbox: OutboxWriter,
    application: Application,
    kind: str,
    derived: Derived,
    event_type: EventType,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Put a clock event (warning, overdue, calendar change) in the outbox."""
    view = derived.view
    await outbox.add(
        session,
        make_event(
            type=event_type,
            source=SOURCE,
            subject=str(application.id),
            data=ApplicationEventData(
                **event_party(application),
                state=application.state,
                reform_mode=ReformMode(application.reform_mode)
                if application.reform_mode
                else None,
                occurred_at=at,
                actor_role=SYSTEM_ACTOR[1],
                due_on=view.due_on,
                details={
                    "clock": kind,
                    "due_on": view.due_on.isoformat(),
                    "committed_due_on": (
                        view.committed_due_on.isoformat() if view.committed_due_on else None
                    ),
                    "remaining_days": view.remaining_days,
                    "state": view.state.value,
                    "depends_on_provisional": view.depends_on_provisional,
                    **(extra or {}),
                },
            ),
        ),
    )


async def announce_moved_deadlines(
    session: AsyncSession, *, change: CalendarChange, outbox: OutboxWriter, now: datetime
) -> int:
    """Refresh the clocks a calendar change touched and tell those concerned; how many moved."""
    moved = await change.moved(now=now)
    for item in moved:
        application = await session.get(Application, item.clock.application_id)
        if application is None:
            continue
        await emit_clock_event(
            session,
            outbox=outbox,
            application=application,
            kind=item.clock.kind,
            derived=item.derived,
            event_type=EventType.APPLICATION_CLOCK_WARNING,
            at=now,
            extra={
                "reason": "calendar_changed",
                "old_due_on": item.old_due_on.isoformat(),
                "new_due_on": item.derived.view.due_on.isoformat(),
            },
        )
    return len(moved)
