"""Read models of the clocks: an application's clocks and the timeliness statistics."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import ClockKind
from approval.clocks.models import StopReason
from approval.clocks.repository import ClockRepository
from approval.clocks.schemas import (
    CLOCK_KIND_LABELS,
    ApplicationClockOut,
    TimelinessOut,
    TimelinessReport,
)
from approval.clocks.service import ClockKeeper


class ClockViews:
    """Derives what staff and applicants see; the same numbers for both."""

    def __init__(self, session: AsyncSession, *, warn_days: int) -> None:
        self.keeper = ClockKeeper(session, warn_days=warn_days)
        self.repository = ClockRepository(session)

    async def for_application(
        self, application_id: uuid.UUID, *, as_of: date
    ) -> list[ApplicationClockOut]:
        """Every clock of the application, derived from its ledger on ``as_of``.

        A stopped clock is shown as it stood on the day it stopped.
        """
        entries = await self.repository.ledger(application_id)
        result = []
        for clock in await self.repository.for_application(application_id):
            day = min(as_of, clock.stopped_on) if clock.stopped_on else as_of
            view = (await self.keeper.derive_stored(clock, entries, as_of=day)).view
            result.append(
                ApplicationClockOut(
                    kind=view.kind,
                    label=CLOCK_KIND_LABELS[view.kind],
                    started_on=view.started_on,
                    as_of=day,
                    running=clock.stopped_on is None,
                    stopped_on=clock.stopped_on,
                    stop_reason=clock.stop_reason,
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
                )
            )
        return result

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
        elif row.stopped_on is None and row.due_on < today:
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
