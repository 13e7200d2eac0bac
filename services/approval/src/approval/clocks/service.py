"""Per-application clocks: opened, stopped, paused, extended and restarted with the lifecycle.

Every change is a ledger entry or a stop written in the transaction of the lifecycle event that
causes it; the due date is then re-derived from the ledger and the calendar and kept only as an
index cache (``due_on``, ``warn_on``) for the timers and the work queue.

Clock behaviour during 补正 (Art. 32), as the 补正告知书 says it:

* The acceptance clock (5 working days from receipt) **stops** when the authority sends the 补正
  notice: the authority acted within its limit, and nothing is due from it while the applicant
  gathers the missing materials, so no timer runs and no deemed acceptance can happen.
* The notice promises acceptance "自收到全部补正材料之日起" (Art. 32(1)(5): an authority shall accept
  once the applicant has handed in all the materials it asked for). So when the complete supplement
  arrives, that day is the day the application is accepted as of: the acceptance clock **restarts
  from it** (a ``restart`` ledger entry; 5 working days for staff to confirm in a 受理通知书, or to ask
  again for what the supplement still lacks), and whether staff accept within those days or the
  period runs out (deemed acceptance), the decision clock **starts on the day the complete
  supplement arrived**, not on the day the notice is signed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import DEFAULT_WARN_DAYS, ClockKind, Extension, PauseEntry
from approval.calendar.service import CalendarService
from approval.calendar.workdays import CalendarSnapshot, add_working_days
from approval.clocks.calendar_cache import CALENDAR_CACHE, CachedCalendar, CalendarCache
from approval.clocks.derivation import (
    ACCEPTANCE_DAYS,
    DECISION_DAYS,
    DELIVERY_DAYS,
    ClockSpec,
    DecisionTerms,
    DeemedAcceptance,
    Derived,
    derive,
    ledger_of,
    spec_of,
    window,
)
from approval.clocks.models import (
    ApplicationClock,
    ClockLedgerEntry,
    LedgerEntryKind,
    StopReason,
)
from approval.clocks.repository import ClockRepository, ClocksRead
from approval.lifecycle import Action
from approval.models import Application
from govshared.applications import ApplicationState, BusinessType


def clock_years(today: date) -> tuple[int, int]:
    """The years whose closure days a lifecycle action's derivations look at (a clock's start to
    its due date and a margin), read with the clocks."""
    return (today.year - 1, today.year + 2)


def issues_a_certificate(application: Application) -> bool:
    """Whether approving it issues a licence certificate, which Art. 44 gives ten working days to
    deliver: a new licence, a changed one, a renewed one; a 注销 (Art. 70) ends a licence and issues
    none, so no delivery clock runs for it (it would only ever turn overdue)."""
    return application.business_type != BusinessType.CANCEL


class ClockKeeper:
    """Writes the clocks of an application alongside its lifecycle events (never commits)."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        warn_days: int = DEFAULT_WARN_DAYS,
        cache: CalendarCache = CALENDAR_CACHE,
        cached_calendar: bool = False,
    ) -> None:
        self.session = session
        self.repository = ClockRepository(session)
        # Lifecycle actions use the cached national calendar; timers and views the database.
        self.calendar: CalendarService | CachedCalendar = (
            CachedCalendar(session, cache) if cached_calendar else CalendarService(session)
        )
        self.warn_days = warn_days
        self.cache = cache

    async def derive_stored(
        self,
        clock: ApplicationClock,
        entries: Sequence[ClockLedgerEntry],
        *,
        as_of: date,
        extra: tuple[PauseEntry, ...] | None = None,
        extension: Extension | None = None,
    ) -> Derived:
        """Derive a stored clock from the database calendar, the jurisdiction's closures included.

        ``extra``/``extension`` replace the stored pauses/extension (to check a new entry first).
        """
        spec = spec_of(clock)
        pauses, stored_extension = ledger_of(entries, spec.kind)
        if extra is not None:
            pauses = extra
        return await self._derive(
            spec,
            pauses=pauses,
            extension=extension or stored_extension,
            as_of=as_of,
            jurisdiction=clock.jurisdiction,
        )

    async def _derive(
        self,
        spec: ClockSpec,
        *,
        pauses: tuple[PauseEntry, ...] = (),
        extension: Extension | None = None,
        as_of: date,
        jurisdiction: str,
    ) -> Derived:
        """A clock derived on ``as_of`` with the jurisdiction's closures: on the cached calendar
        a derivation is remembered (``CachedCalendar.compute_keyed``: what it depends on is the
        key), on the database calendar it is made each time."""
        first, last = window(spec, pauses, as_of)

        def rule(calendar: CalendarSnapshot) -> Derived:
            return derive(
                calendar,
                spec,
                pauses=pauses,
                extension=extension,
                as_of=as_of,
                warn_days=self.warn_days,
            )

        if isinstance(self.calendar, CachedCalendar):
            return await self.calendar.compute_keyed(
                (spec, pauses, extension, as_of, self.warn_days),
                rule,
                first=first,
                last=last,
                jurisdiction=jurisdiction,
            )
        return await self.calendar.compute(rule, first=first, last=last, jurisdiction=jurisdiction)

    async def opening(self, *, kind: ClockKind, budget_days: int, today: date) -> Derived:
        """A new clock derived from the cached calendar (the submission hot path: one small query)."""
        spec = ClockSpec(kind, today, budget_days)
        first, last = window(spec, (), today)
        return await self.cache.compute_keyed(
            self.session,
            (spec, self.warn_days),
            lambda calendar: derive(calendar, spec, as_of=today, warn_days=self.warn_days),
            first=first,
            last=last,
        )

    async def insert_opening(
        self, *, application_id: uuid.UUID, jurisdiction: str, derived: Derived, now: datetime
    ) -> None:
        """Store a clock made by ``opening``."""
        view = derived.view
        spec = ClockSpec(view.kind, view.started_on, view.budget_days)
        await self._insert(application_id, jurisdiction, spec, derived, now)

    async def _insert(
        self,
        application_id: uuid.UUID,
        jurisdiction: str,
        spec: ClockSpec,
        derived: Derived,
        now: datetime,
    ) -> None:
        await self.repository.insert(
            {
                "application_id": application_id,
                "kind": spec.kind.value,
                "jurisdiction": jurisdiction,
                "started_on": spec.started_on,
                "budget_days": spec.budget_days,
                "committed_days": spec.committed_days,
                "extension_limit_days": spec.extension_limit_days,
                "stopped_on": None,
                "stop_reason": None,
                "used_days": None,
                "updated_at": now,
                **derived.cache(),
            }
        )

    async def open(
        self,
        *,
        application: Application,
        spec: ClockSpec,
        today: date,
        now: datetime,
    ) -> Derived:
        """Open a clock from the database calendar (closures included)."""
        derived = await self._derive(spec, as_of=today, jurisdiction=application.jurisdiction)
        await self._insert(application.id, application.jurisdiction, spec, derived, now)
        return derived

    async def stop(
        self,
        clock: ApplicationClock,
        entries: Sequence[ClockLedgerEntry],
        *,
        reason: StopReason,
        on: date,
        now: datetime,
    ) -> None:
        """Stop a running clock; its final due date and working days used are kept for statistics."""
        derived = await self.derive_stored(clock, entries, as_of=max(on, clock.started_on))
        await self.repository.update(
            clock.application_id,
            clock.kind,
            {
                **derived.cache(),
                "is_paused": False,
                "stopped_on": on,
                "stop_reason": reason.value,
                "used_days": derived.view.used_days,
                "updated_at": now,
            },
        )

    @staticmethod
    def reads_clocks(action: Action) -> bool:
        """Whether ``apply`` reads the clocks for ``action`` (it does for all but review)."""
        return action is not Action.REVIEW

    async def apply(
        self,
        *,
        application: Application,
        action: Action,
        details: dict[str, Any],
        reason: str | None,
        actor: str,
        today: date,
        now: datetime,
        terms: DecisionTerms | None = None,
        read: ClocksRead | None = None,
    ) -> date | None:
        """Record what a lifecycle action does to the clocks; the application's new due-date cache.

        ``read``: the clocks (locked), ledger and closures of the years below, read already with
        the application (``approval.action_read``); read here otherwise.

        What the clocks derive and the notice must state is added to ``details`` (the day accepted
        as of and the decision limit for ``accept``; the expected end of an Art. 45 pause), so that
        the audit entry, the event and the sealed notice say what the clocks do.
        """
        if not self.reads_clocks(action):
            return application.due_on
        years = clock_years(today)
        locked, entries, closures = read or await self.repository.locked_with_ledger(
            application.id, jurisdiction=application.jurisdiction, years=years
        )
        if closures is not None and isinstance(self.calendar, CachedCalendar):
            self.calendar.know_closures(application.jurisdiction, *years, closures)
        clocks = {c.kind: c for c in locked}
        running = {k: c for k, c in clocks.items() if c.stopped_on is None}
        acceptance = running.get(ClockKind.ACCEPTANCE.value)
        decision = running.get(ClockKind.DECISION.value)
        dues: dict[str, date] = {k: c.due_on for k, c in running.items()}

        async def stop(clock: ApplicationClock | None, why: StopReason) -> None:
            if clock is not None:
                await self.stop(clock, entries, reason=why, on=today, now=now)
                dues.pop(clock.kind, None)

        async def open_clock(spec: ClockSpec) -> None:
            if spec.kind.value in clocks:  # a clock is opened once per application
                return
            dues[spec.kind.value] = (
                await self.open(application=application, spec=spec, today=today, now=now)
            ).view.due_on

        if action is Action.ACCEPT:
            await stop(acceptance, StopReason.ACCEPTED)
            terms = terms or DecisionTerms(DECISION_DAYS, DECISION_DAYS)
            # Art. 32(1)(5) and the 补正告知书: after a complete 补正 the application is accepted as
            # of the day the supplement arrived (the restarted acceptance clock's start).
            supplemented = acceptance is not None and any(
                e.kind == acceptance.kind and e.entry == LedgerEntryKind.RESTART for e in entries
            )
            accepted_on = acceptance.started_on if acceptance and supplemented else today
            details |= {
                "accepted_on": accepted_on.isoformat(),
                "after_supplement": supplemented,
                **terms.notice(),
            }
            await open_clock(
                ClockSpec(
                    ClockKind.DECISION,
                    accepted_on,
                    terms.statutory_days,
                    terms.committed_days,
                    terms.extension_limit_days,
                )
            )
            if ClockKind.DECISION.value in dues:
                details["decision_due_on"] = dues[ClockKind.DECISION.value].isoformat()
        elif action is Action.REJECT:
            await stop(acceptance, StopReason.REJECTED)
        elif action is Action.REQUEST_SUPPLEMENT:
            await stop(acceptance, StopReason.SUPPLEMENT_REQUESTED)
        elif action is Action.SUPPLEMENT:
            stored = clocks.get(ClockKind.ACCEPTANCE.value)
            if stored is not None:
                dues[stored.kind] = await self._restart(stored, actor=actor, on=today, now=now)
        elif action in (Action.PAUSE, Action.RESUME, Action.EXTEND) and decision is not None:
            dues[decision.kind] = await self._ledger_change(
                decision,
                entries,
                action=action,
                details=details,
                reason=reason,
                actor=actor,
                on=today,
                now=now,
            )
        elif action in (Action.APPROVE, Action.DENY):
            await stop(decision, StopReason.DECIDED)
            if action is Action.APPROVE and issues_a_certificate(application):
                await open_clock(ClockSpec(ClockKind.DELIVERY, today, DELIVERY_DAYS))
        elif action is Action.INSTANT_DECISION:
            await stop(acceptance, StopReason.INSTANT_DECISION)
            if issues_a_certificate(application):
                await open_clock(ClockSpec(ClockKind.DELIVERY, today, DELIVERY_DAYS))
        elif action is Action.WITHDRAW:
            for clock in running.values():
                await stop(clock, StopReason.WITHDRAWN)
        return min(dues.values()) if dues else None

    async def deemed_acceptance(
        self, application: Application, *, today: date
    ) -> DeemedAcceptance | None:
        """Art. 32: the deemed acceptance in force on ``today`` that the timer has not recorded yet.

        A legal fact, not the timer's doing: once the acceptance period has run out the application
        is accepted as of the day its (complete) materials arrived. The application's cached due
        date is never later than the truth (closures only move it later), so a case not yet past it
        costs nothing; one past it is derived from the database calendar, closures included.
        """
        if (
            application.state != ApplicationState.SUBMITTED
            or application.due_on is None
            or application.due_on >= today
        ):
            return None
        clocks = await self.repository.for_application(application.id)
        acceptance = next(
            (c for c in clocks if c.kind == ClockKind.ACCEPTANCE and c.stopped_on is None), None
        )
        if acceptance is None:
            return None
        entries = await self.repository.ledger(application.id)
        derived = await self.derive_stored(acceptance, entries, as_of=today)
        if derived.view.due_on >= today:
            return None
        return DeemedAcceptance(
            received_on=acceptance.started_on,
            acceptance_due_on=derived.view.due_on,
            clock=acceptance,
            derived=derived,
        )

    async def decision_from(
        self, *, jurisdiction: str, terms: DecisionTerms, started_on: date, as_of: date
    ) -> tuple[ClockSpec, Derived]:
        """The decision clock that starts on ``started_on`` under the item's terms, derived."""
        spec = ClockSpec(
            ClockKind.DECISION,
            started_on,
            terms.statutory_days,
            terms.committed_days,
            terms.extension_limit_days,
        )
        return spec, await self._derive(spec, as_of=as_of, jurisdiction=jurisdiction)

    async def record_deemed(
        self,
        application: Application,
        deemed: DeemedAcceptance,
        *,
        terms: DecisionTerms,
        today: date,
        now: datetime,
    ) -> Derived:
        """Write a deemed acceptance: the acceptance clock stops, the decision clock runs from the
        day the materials arrived; the decision clock as derived on ``today``."""
        await self.repository.update(
            application.id,
            deemed.clock.kind,
            {
                **deemed.derived.cache(),
                "stopped_on": deemed.effective_on,
                "stop_reason": StopReason.DEEMED_ACCEPTED.value,
                "used_days": deemed.clock.budget_days,
                "deemed_at": now,
                "updated_at": now,
            },
        )
        spec, derived = await self.decision_from(
            jurisdiction=application.jurisdiction,
            terms=terms,
            started_on=deemed.received_on,
            as_of=today,
        )
        await self._insert(application.id, application.jurisdiction, spec, derived, now)
        return derived

    async def delivered(self, application_id: uuid.UUID, *, on: date, now: datetime) -> None:
        """Art. 44: the licence was issued on ``on``; its delivery clock stops."""
        clocks = await self.repository.for_application(application_id, lock=True)
        delivery = next(
            (c for c in clocks if c.kind == ClockKind.DELIVERY and c.stopped_on is None), None
        )
        if delivery is None:
            return
        await self.stop(delivery, (), reason=StopReason.DELIVERED, on=on, now=now)
        dues = [c.due_on for c in clocks if c.stopped_on is None and c is not delivery]
        await self.repository.set_application_due(application_id, min(dues) if dues else None)

    async def _restart(
        self, clock: ApplicationClock, *, actor: str, on: date, now: datetime
    ) -> date:
        """Art. 32 after 补正: the acceptance period runs again from the day the supplement arrived."""
        await self.repository.append(
            {
                "id": uuid.uuid4(),
                "application_id": clock.application_id,
                "kind": clock.kind,
                "entry": LedgerEntryKind.RESTART.value,
                "on_date": on,
                "days": ACCEPTANCE_DAYS,
                "reason": "申请人提交全部补正材料，受理期限重新起算",
                "actor": actor,
                "recorded_at": now,
            }
        )
        spec = ClockSpec(ClockKind.ACCEPTANCE, on, ACCEPTANCE_DAYS)
        derived = await self._derive(spec, as_of=on, jurisdiction=clock.jurisdiction)
        await self.repository.update(
            clock.application_id,
            clock.kind,
            {
                **derived.cache(),
                "started_on": on,
                "budget_days": ACCEPTANCE_DAYS,
                "stopped_on": None,
                "stop_reason": None,
                "used_days": None,
                "warned_at": None,
                "overdue_at": None,
                "deemed_at": None,
                "updated_at": now,
            },
        )
        return derived.view.due_on

    async def _ledger_change(
        self,
        clock: ApplicationClock,
        entries: Sequence[ClockLedgerEntry],
        *,
        action: Action,
        details: dict[str, Any],
        reason: str | None,
        actor: str,
        on: date,
        now: datetime,
    ) -> date:
        """Pause, resume or extend the decision clock, checking the rules on the new ledger first.

        The new entry is read back with the stored ones through ``ledger_of``, the one reading of
        a ledger, before it is written.
        """
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "application_id": clock.application_id,
            "kind": clock.kind,
            "on_date": on,
            "actor": actor,
            "recorded_at": now,
        }
        if action is Action.PAUSE:
            row |= {
                "entry": LedgerEntryKind.PAUSE.value,
                "reason": details["pause_reason"],
                "days": details.get("expected_days"),
            }
            # Art. 45: the applicant is told in writing the time the procedure needs, in working
            # days from the pause, and the day that ends.
            expected = int(details["expected_days"])
            details["expected_end_on"] = (
                await self.calendar.compute(
                    lambda calendar: add_working_days(calendar, on, expected),
                    first=on,
                    last=on + timedelta(days=2 * expected + 60),
                    jurisdiction=clock.jurisdiction,
                )
            ).isoformat()
        elif action is Action.RESUME:
            row |= {"entry": LedgerEntryKind.RESUME.value, "reason": reason, "days": None}
        else:
            days = int(details["extension_days"])
            row |= {"entry": LedgerEntryKind.EXTENSION.value, "reason": reason, "days": days}
        # A transient row (never added to the session): the repository inserts ``row`` itself.
        pauses, extension = ledger_of([*entries, ClockLedgerEntry(**row)], ClockKind(clock.kind))
        derived = await self.derive_stored(
            clock, entries, as_of=on, extra=pauses, extension=extension
        )
        await self.repository.append(row)
        values: dict[str, Any] = {**derived.cache(), "updated_at": now}
        if derived.warn_on > on and (clock.warned_at is not None or clock.overdue_at is not None):
            # An extension or an Art. 45 pause moved the limit out of reach of the warning already
            # given (or of an overdue already told): warn again when the new limit nears, as a
            # calendar change does.
            values |= {"warned_at": None, "overdue_at": None}
        await self.repository.update(clock.application_id, clock.kind, values)
        return derived.view.due_on
