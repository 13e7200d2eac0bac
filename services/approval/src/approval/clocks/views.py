"""Read models of the clocks: an application's clocks and the timeliness statistics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import MAX_EXTENSION_DAYS, ClockKind, ClockView
from approval.clocks.derivation import decision_terms
from approval.clocks.models import ClockLedgerEntry, LedgerEntryKind, StopReason
from approval.clocks.repository import ClockRepository
from approval.clocks.schemas import (
    CLOCK_KIND_LABELS,
    ApplicationClockOut,
    ApplicationClocksOut,
    TimelinessOut,
    TimelinessReport,
)
from approval.clocks.service import ClockKeeper
from approval.models import Application


class ClockViews:
    """Derives what staff and applicants see; the same numbers for both."""

    def __init__(self, session: AsyncSession, *, warn_days: int) -> None:
        self.keeper = ClockKeeper(session, warn_days=warn_days)
        self.repository = ClockRepository(session)

    async def for_application(
        self, application: Application, *, as_of: date
    ) -> ApplicationClocksOut:
        """Every clock of the application, derived from its ledger on ``as_of``.

        A stopped clock is shown as it stood on the day it stopped. An acceptance clock whose period
        has run out by ``as_of`` is shown as Art. 32 has it, deemed accepted as of the day the
        materials arrived, with the decision clock running from that day, whether or not the timer
        has recorded it yet.
        """
        entries = await self.repository.ledger(application.id)
        clocks = await self.repository.for_application(application.id)
        result: list[ApplicationClockOut] = []
        deemed = False
        for clock in clocks:
            day = min(as_of, clock.stopped_on) if clock.stopped_on else as_of
            derived = await self.keeper.derive_stored(clock, entries, as_of=day)
            view = derived.view
            stopped_on, stop_reason = clock.stopped_on, clock.stop_reason
            if clock.kind == ClockKind.ACCEPTANCE and stopped_on is None and as_of > view.due_on:
                deemed = True
                stopped_on = view.due_on + timedelta(days=1)  # as the timer records it
                view = (await self.keeper.derive_stored(clock, entries, as_of=stopped_on)).view
                stop_reason = StopReason.DEEMED_ACCEPTED.value
            deemed = deemed or stop_reason == StopReason.DEEMED_ACCEPTED
            result.append(
                _out(
                    view,
                    day=view.as_of,
                    stopped_on=stopped_on,
                    stop_reason=stop_reason,
                    extension_limit=clock.extension_limit_days,
                    pause_days=_open_pause_days(entries, clock.kind),
                )
            )
        kinds = {c.kind for c in result}
        accepted_on = None
        acceptance = next((c for c in result if c.kind == ClockKind.ACCEPTANCE), None)
        if deemed and acceptance is not None and ClockKind.DECISION not in kinds:
            terms = await decision_terms(
                self.keeper.session, application.item_code, application.item_version
            )
            spec, derived = await self.keeper.decision_from(
                jurisdiction=application.jurisdiction,
                terms=terms,
                started_on=acceptance.started_on,
                as_of=as_of,
            )
            result.append(
                _out(
                    derived.view,
                    day=as_of,
                    stopped_on=None,
                    stop_reason=None,
                    extension_limit=spec.extension_limit_days,
                    pause_days=None,
                )
            )
        decision = next((c for c in result if c.kind == ClockKind.DECISION), None)
        if decision is not None:
            accepted_on = decision.started_on
        return ApplicationClocksOut(
            application_id=str(application.id),
            clocks=result,
            accepted_on=accepted_on,
            deemed_accepted=deemed,
        )

    async def timeliness(
        self, *, jurisdiction_prefix: str | None, item_code: str | None, today: date
    ) -> TimelinessReport:
        """Statistics per item and per authority from the clocks' stored outcomes."""
        rows = await self.repository.timeliness_rows(
            jurisdiction_prefix=jurisdiction_prefix, item_code=item_code
        )
        by_item: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
        by_authority: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
        for row in rows:
            for tally in (
                by_item[(row.item_code, row.item_name)],
                by_authority[(row.authority, row.authority)],
            ):
                tally.add(row, today=today)
        return TimelinessReport(
            as_of=today, items=_report(by_item.items()), authorities=_report(by_authority.items())
        )


def _open_pause_days(entries: Iterable[ClockLedgerEntry], kind: str) -> int | None:
    """The expected days told for the pause still open on a clock (Art. 45), if any."""
    open_days = None
    for entry in entries:
        if entry.kind != kind:
            continue
        if entry.entry == LedgerEntryKind.PAUSE:
            open_days = entry.days
        elif entry.entry == LedgerEntryKind.RESUME:
            open_days = None
    return open_days


def _out(
    view: ClockView,
    *,
    day: date,
    stopped_on: date | None,
    stop_reason: str | None,
    extension_limit: int | None,
    pause_days: int | None,
) -> ApplicationClockOut:
    return ApplicationClockOut(
        kind=view.kind,
        label=CLOCK_KIND_LABELS[view.kind],
        started_on=view.started_on,
        as_of=day,
        running=stopped_on is None,
        stopped_on=stopped_on,
        stop_reason=stop_reason,
        budget_days=view.budget_days,
        extension_days=view.extension_days,
        paused_days=view.paused_days,
        used_days=view.used_days,
        remaining_days=view.remaining_days,
        due_on=view.due_on,
        committed_days=view.committed_days,
        committed_due_on=view.committed_due_on,
        state=view.state,
        is_paused=view.is_paused,
        pause_reason=view.pause_reason,
        depends_on_provisional=view.depends_on_provisional,
        provisional_years=list(view.provisional_years),
        extension_limit_days=(
            (extension_limit or MAX_EXTENSION_DAYS) if view.kind == ClockKind.DECISION else None
        ),
        pause_expected_days=pause_days if view.is_paused else None,
    )


@dataclass(slots=True)
class _Tally:
    decided: int = 0
    on_time: int = 0
    used: int = 0
    committed: int = 0
    overdue: int = 0
    instant: int = 0

    def add(self, row: Any, *, today: date) -> None:
        """Count one clock row."""
        if row.kind == ClockKind.ACCEPTANCE:
            if row.stop_reason == StopReason.INSTANT_DECISION:
                self.instant += 1
            return
        if row.stop_reason == StopReason.DECIDED:
            self.decided += 1
            late = row.stopped_on > row.due_on
            self.on_time += not late
            self.overdue += late
            self.used += row.used_days or 0
            self.committed += row.committed_days or row.budget_days
        elif row.stopped_on is None and not row.is_paused and row.due_on < today:
            # A paused clock's cached due date leaves out the pause still running (Art. 45): it
            # is not overdue while the pause lasts.
            self.overdue += 1


def _report(groups: Iterable[tuple[tuple[str, str], _Tally]]) -> list[TimelinessOut]:
    result = []
    for (key, name), t in sorted(groups):
        closed = t.decided + t.instant
        result.append(
            TimelinessOut(
                key=key,
                name=name,
                decided=closed,
                on_time=t.on_time + t.instant,
                on_time_rate=round((t.on_time + t.instant) / closed, 4) if closed else None,
                average_used_days=round(t.used / t.decided, 2) if t.decided else None,
                average_committed_days=round(t.committed / t.decided, 2) if t.decided else None,
                overdue=t.overdue,
                instant=t.instant,
                instant_share=round(t.instant / closed, 4) if closed else None,
            )
        )
    return result
