"""What a clock is and how it is derived: the item's terms, the spec, the ledger, the derivation.

Pure values and functions (the catalogue read in ``decision_terms`` apart): the keeper
(``approval.clocks.service``), the timers and the views derive every clock through ``derive``
from its spec (``spec_of``) and its ledger (``ledger_of``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import (
    JOINT_MAX_EXTENSION_DAYS,
    MAX_EXTENSION_DAYS,
    ClockKind,
    ClockView,
    Extension,
    PauseEntry,
    replay,
)
from approval.calendar.workdays import CalendarSnapshot
from approval.catalogue.repository import ITEM_VERSIONS, ItemRepository
from approval.catalogue.schemas import JOINT_HANDLING_LABELS, JointHandling
from approval.clocks.models import ApplicationClock, ClockLedgerEntry, LedgerEntryKind

ACCEPTANCE_DAYS = 5  # Art. 32
DECISION_DAYS = 20  # Art. 42, when the item sets no limit of its own
DELIVERY_DAYS = 10  # Art. 44
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DecisionTerms:
    """The decision clock an item gets: its limits, and whether it is handled jointly."""

    statutory_days: int
    committed_days: int
    joint: JointHandling | None = None

    @property
    def extension_limit_days(self) -> int | None:
        """Art. 42(2): up to 15 working days for a jointly handled item; None: Art. 42(1)'s 10."""
        return JOINT_MAX_EXTENSION_DAYS if self.joint is not None else None

    def notice(self) -> dict[str, Any]:
        """What the audit entry and the 受理通知书 say about the decision limit."""
        return {
            "decision_limit_days": self.statutory_days,
            **({"joint_handling": self.joint.value} if self.joint else {}),
        }


async def decision_terms(session: AsyncSession, item_code: str, item_version: int) -> DecisionTerms:
    """The decision limits (Art. 42) of the guide the application was submitted under: its
    statutory and committed days, and whether it is handled jointly (which sets the extension's
    ceiling and who grants it, Art. 42(2)). A later revision of the guide changes neither for an
    application already filed: the applicant relied on the guide published when it applied."""
    version = await ITEM_VERSIONS.get(ItemRepository(session), item_code, item_version)
    if version is None:
        return DecisionTerms(DECISION_DAYS, DECISION_DAYS)
    joint = version.guide.get("joint_handling")
    return DecisionTerms(
        version.statutory_limit_days,
        version.committed_limit_days,
        JointHandling(joint) if joint else None,
    )


def joint_label(joint: str | None) -> str | None:
    """统一办理/联合办理/集中办理 for a stored mark."""
    return JOINT_HANDLING_LABELS[JointHandling(joint)] if joint else None


@dataclass(frozen=True, slots=True)
class ClockSpec:
    """What a clock is apart from its ledger."""

    kind: ClockKind
    started_on: date
    budget_days: int
    committed_days: int | None = None
    extension_limit_days: int | None = None  # None: Art. 42(1)'s ten working days


@dataclass(frozen=True, slots=True)
class DeemedAcceptance:
    """Art. 32: the acceptance period ran out; the application IS accepted as of ``received_on``."""

    received_on: date  # the day the (complete) materials arrived: accepted as of this day
    acceptance_due_on: date  # the last day of the authority's acceptance period
    clock: ApplicationClock
    derived: Derived

    @property
    def effective_on(self) -> date:
        """The first day the deemed acceptance holds (the day after the period ran out)."""
        return self.acceptance_due_on + ONE_DAY


@dataclass(frozen=True, slots=True)
class Derived:
    """A clock's view on a day plus the day it turns yellow (the index cache)."""

    view: ClockView
    warn_on: date

    def cache(self) -> dict[str, Any]:
        """The index-cache columns of the clock row."""
        return {
            "due_on": self.view.due_on,
            "warn_on": self.warn_on,
            "is_paused": self.view.is_paused,
            "provisional": self.view.depends_on_provisional,
        }


def ledger_of(
    entries: Sequence[ClockLedgerEntry], kind: ClockKind
) -> tuple[tuple[PauseEntry, ...], Extension | None]:
    """The pauses and the extension of one clock, from its ledger entries in recorded order."""
    pauses: list[PauseEntry] = []
    extension = None
    for entry in entries:
        if entry.kind != kind.value:
            continue
        if entry.entry == LedgerEntryKind.PAUSE:
            pauses.append(
                PauseEntry(
                    reason=entry.reason or "", started_on=entry.on_date, expected_days=entry.days
                )
            )
        elif entry.entry == LedgerEntryKind.RESUME and pauses and pauses[-1].ended_on is None:
            last = pauses[-1]
            pauses[-1] = PauseEntry(
                reason=last.reason,
                started_on=last.started_on,
                ended_on=entry.on_date,
                expected_days=last.expected_days,
            )
        elif entry.entry == LedgerEntryKind.EXTENSION:
            extension = Extension(
                days=entry.days or 0,
                granted_on=entry.on_date,
                reason=entry.reason or "",
                approved_by=entry.actor,
            )
    return tuple(pauses), extension


def warn_on(calendar: CalendarSnapshot, *, started_on: date, due_on: date, warn_days: int) -> date:
    """The first day the clock is yellow: ``warn_days`` working days before the due date."""
    seen = 0
    current = due_on
    while current > started_on:
        if calendar.is_working_day(current):
            seen += 1
            if seen > warn_days:
                return current
        current -= ONE_DAY
    return started_on


def derive(
    calendar: CalendarSnapshot,
    spec: ClockSpec,
    *,
    pauses: tuple[PauseEntry, ...] = (),
    extension: Extension | None = None,
    as_of: date,
    warn_days: int,
) -> Derived:
    """Replay the ledger (every rule checked again) and derive the clock on ``as_of``."""
    clock = replay(
        calendar,
        kind=spec.kind,
        started_on=spec.started_on,
        budget_days=spec.budget_days,
        committed_days=spec.committed_days,
        pauses=pauses,
        extension=extension,
        max_extension_days=spec.extension_limit_days or MAX_EXTENSION_DAYS,
    )
    view = clock.view(calendar, as_of=as_of, warn_days=warn_days)
    return Derived(
        view=view,
        warn_on=warn_on(
            calendar, started_on=spec.started_on, due_on=view.due_on, warn_days=warn_days
        ),
    )


def spec_of(clock: ApplicationClock) -> ClockSpec:
    """The spec of a stored clock."""
    return ClockSpec(
        kind=ClockKind(clock.kind),
        started_on=clock.started_on,
        budget_days=clock.budget_days,
        committed_days=clock.committed_days,
        extension_limit_days=clock.extension_limit_days,
    )


def window(spec: ClockSpec, pauses: Sequence[PauseEntry], as_of: date) -> tuple[date, date]:
    """A calendar window that covers a clock's derivation in the ordinary case."""
    ledger_end = max([as_of, spec.started_on, *(p.ended_on or p.started_on for p in pauses)])
    return min(spec.started_on, as_of), ledger_end + timedelta(days=2 * spec.budget_days + 60)
