"""Statutory clocks: a budget in working days plus a ledger of pauses and one extension.

Nothing here stores a deadline: the due date is derived from the ledger and the calendar every time,
so that loading an official holiday schedule, ending a pause or granting an extension moves it
without any recomputation job getting out of step (docs/architecture.md).

Pause arithmetic: a pause started on S and ended on E (the day the procedure's result arrived) takes
the working days in ``(S, E]`` off the clock. The day a pause starts still counts (the authority
worked on the case that day) and the day it ends does not, mirroring "the start day is not counted"
for the restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from approval.calendar.errors import (
    ExtensionAlreadyGranted,
    ExtensionNotAllowed,
    ExtensionTooLong,
    InvalidPause,
    PauseReasonNotAllowed,
)
from approval.calendar.workdays import (
    CalendarSnapshot,
    add_working_days,
    count_working_days,
    provisional_dates,
    years_of,
)

MAX_EXTENSION_DAYS = 10  # Art. 42(1): one extension of at most ten working days
JOINT_MAX_EXTENSION_DAYS = 15  # Art. 42(2): jointly handled items, by the government's head
DEFAULT_WARN_DAYS = 3


class ClockKind(StrEnum):
    """Which statutory limit a clock measures."""

    ACCEPTANCE = "acceptance"  # Art. 32: accept, refuse or ask for 补正 within 5 working days
    DECISION = "decision"  # Art. 42: decide within 20 (or the item's limit), extendable once
    DELIVERY = "delivery"  # Art. 44: issue the licence within 10 working days of approval


class PauseReason(StrEnum):
    """The procedures of Art. 45 whose time is not counted; nothing else stops a clock."""

    HEARING = "hearing"
    TENDERING = "tendering"
    AUCTION = "auction"
    INSPECTION = "inspection"
    TESTING = "testing"
    QUARANTINE = "quarantine"
    APPRAISAL = "appraisal"
    EXPERT_REVIEW = "expert_review"


PAUSE_REASON_LABELS = {
    PauseReason.HEARING: "听证",
    PauseReason.TENDERING: "招标",
    PauseReason.AUCTION: "拍卖",
    PauseReason.INSPECTION: "检验",
    PauseReason.TESTING: "检测",
    PauseReason.QUARANTINE: "检疫",
    PauseReason.APPRAISAL: "鉴定",
    PauseReason.EXPERT_REVIEW: "专家评审",
}


class ClockState(StrEnum):
    """What staff see: on track, near the due date, overdue."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


def pause_reason(value: str) -> PauseReason:
    """Parse a pause reason, refusing anything Art. 45 does not list."""
    try:
        return PauseReason(value)
    except ValueError:
        allowed = "、".join(f"{r.value}（{label}）" for r, label in PAUSE_REASON_LABELS.items())
        raise PauseReasonNotAllowed(
            f"“{value}”不是法定的不计时事由；允许的事由：{allowed}",
            allowed_reasons=[r.value for r in PauseReason],
        ) from None


@dataclass(frozen=True, slots=True)
class Pause:
    """One Art. 45 procedure: its reason, the days it ran, the expected time told in writing."""

    reason: PauseReason
    started_on: date
    ended_on: date | None = None
    expected_days: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Extension:
    """The single Art. 42 extension, approved by the head, with its reason told to the applicant."""

    days: int
    granted_on: date
    reason: str
    approved_by: str


@dataclass(frozen=True, slots=True)
class ClockView:
    """Everything derived from a clock on a given day."""

    kind: ClockKind
    started_on: date
    as_of: date
    budget_days: int
    extension_days: int
    paused_days: int
    used_days: int
    remaining_days: int
    due_on: date
    committed_days: int | None
    committed_due_on: date | None
    state: ClockState
    is_paused: bool
    pause_reason: PauseReason | None
    provisional_years: tuple[int, ...]

    @property
    def depends_on_provisional(self) -> bool:
        """True when the due date may move once an official schedule is loaded."""
        return bool(self.provisional_years)


@dataclass(frozen=True, slots=True)
class Clock:
    """A statutory time limit: budget, pauses, extension. Immutable: every change returns a new one."""

    kind: ClockKind
    started_on: date
    budget_days: int
    committed_days: int | None = None
    pauses: tuple[Pause, ...] = field(default=())
    extension: Extension | None = None
    max_extension_days: int = MAX_EXTENSION_DAYS

    def __post_init__(self) -> None:
        if self.budget_days < 0:
            raise ValueError("budget_days must not be negative")
        if self.committed_days is not None and self.committed_days < 0:
            raise ValueError("committed_days must not be negative")

    @property
    def open_pause(self) -> Pause | None:
        """The pause still running, if any."""
        return self.pauses[-1] if self.pauses and self.pauses[-1].ended_on is None else None

    @property
    def extension_days(self) -> int:
        """Working days granted by the extension (0 without one)."""
        return self.extension.days if self.extension else 0

    def paused_days(self, calendar: CalendarSnapshot, *, as_of: date) -> int:
        """Working days taken off the clock by pauses, as known on ``as_of``."""
        total = 0
        for pause in self.pauses:
            if pause.started_on >= as_of:
                continue
            end = as_of if pause.ended_on is None else min(pause.ended_on, as_of)
            total += count_working_days(calendar, pause.started_on, end)
        return total

    def due_on(self, calendar: CalendarSnapshot, *, as_of: date) -> date:
        """The statutory due date (extension and pauses included) as known on ``as_of``."""
        days = self.budget_days + self.extension_days + self.paused_days(calendar, as_of=as_of)
        return add_working_days(calendar, self.started_on, days)

    def pause(
        self,
        calendar: CalendarSnapshot,
        *,
        reason: PauseReason | str,
        on: date,
        expected_days: int | None = None,
        note: str | None = None,
    ) -> Clock:
        """Stop the clock for an Art. 45 procedure starting on ``on``."""
        checked = reason if isinstance(reason, PauseReason) else pause_reason(reason)
        if self.open_pause is not None:
            raise InvalidPause("计时已中止，需先恢复计时")
        if on < self.started_on:
            raise InvalidPause("中止日期早于期限起算日")
        if self.pauses and on < (self.pauses[-1].ended_on or on):
            raise InvalidPause("中止日期早于上一次恢复计时的日期")
        if on > self.due_on(calendar, as_of=on):
            raise InvalidPause("期限已届满，不能再中止计时")
        if expected_days is not None and expected_days < 1:
            raise InvalidPause("预计所需时间应为正数")
        pause = Pause(reason=checked, started_on=on, expected_days=expected_days, note=note)
        return replace(self, pauses=(*self.pauses, pause))

    def resume(self, *, on: date) -> Clock:
        """Restart the clock: the procedure's result arrived on ``on``."""
        current = self.open_pause
        if current is None:
            raise InvalidPause("计时未中止，无需恢复")
        if on < current.started_on:
            raise InvalidPause("恢复日期早于中止日期")
        return replace(self, pauses=(*self.pauses[:-1], replace(current, ended_on=on)))

    def extend(
        self,
        calendar: CalendarSnapshot,
        *,
        days: int,
        on: date,
        reason: str,
        approved_by: str,
    ) -> Clock:
        """Grant the one Art. 42 extension (at most 10 working days, 15 for an item handled jointly
        under Art. 42(2)), before the limit runs out."""
        if self.kind is not ClockKind.DECISION:
            raise ExtensionNotAllowed("只有作出许可决定的期限可以延长")
        if self.extension is not None:
            raise ExtensionAlreadyGranted()
        if not 1 <= days <= self.max_extension_days:
            raise ExtensionTooLong(
                f"申请延长 {days} 个工作日；法定上限为 {self.max_extension_days} 个",
                max_extension_days=self.max_extension_days,
            )
        if not reason.strip():
            raise ExtensionNotAllowed("延长期限须说明理由并告知申请人")
        if on > self.due_on(calendar, as_of=on):
            raise ExtensionNotAllowed("期限已届满，不能再延长")
        extension = Extension(days=days, granted_on=on, reason=reason, approved_by=approved_by)
        return replace(self, extension=extension)

    def view(
        self, calendar: CalendarSnapshot, *, as_of: date, warn_days: int = DEFAULT_WARN_DAYS
    ) -> ClockView:
        """Derive the clock's state on ``as_of``; yellow from ``warn_days`` working days before due."""
        paused = self.paused_days(calendar, as_of=as_of)
        due = add_working_days(
            calendar, self.started_on, self.budget_days + self.extension_days + paused
        )
        committed_due = None
        if self.committed_days is not None:
            # The commitment (承诺时限) is a promise below the statutory limit: pauses stop it too,
            # an Art. 42 extension does not stretch it.
            committed = min(self.committed_days, self.budget_days)
            committed_due = add_working_days(calendar, self.started_on, committed + paused)
        elapsed = max(0, count_working_days(calendar, self.started_on, as_of))
        remaining = count_working_days(calendar, as_of, due)
        if as_of > due:
            state = ClockState.RED
        elif remaining <= warn_days:
            state = ClockState.YELLOW
        else:
            state = ClockState.GREEN
        open_pause = (
            self.open_pause if self.open_pause and self.open_pause.started_on <= as_of else None
        )
        horizon = max(due, as_of)
        return ClockView(
            kind=self.kind,
            started_on=self.started_on,
            as_of=as_of,
            budget_days=self.budget_days,
            extension_days=self.extension_days,
            paused_days=paused,
            used_days=max(0, elapsed - paused),
            remaining_days=remaining,
            due_on=due,
            committed_days=self.committed_days,
            committed_due_on=committed_due,
            state=state,
            is_paused=open_pause is not None,
            pause_reason=open_pause.reason if open_pause else None,
            provisional_years=tuple(
                years_of(provisional_dates(calendar, self.started_on, horizon))
            ),
        )


@dataclass(frozen=True, slots=True)
class PauseEntry:
    """A stored pause, as a ledger row (reason still unchecked text)."""

    reason: str
    started_on: date
    ended_on: date | None = None
    expected_days: int | None = None
    note: str | None = None


def replay(
    calendar: CalendarSnapshot,
    *,
    kind: ClockKind,
    started_on: date,
    budget_days: int,
    committed_days: int | None = None,
    pauses: tuple[PauseEntry, ...] = (),
    extension: Extension | None = None,
    max_extension_days: int = MAX_EXTENSION_DAYS,
) -> Clock:
    """Rebuild a clock from its stored ledger, in date order, so that every rule is checked again."""
    clock = Clock(
        kind=kind,
        started_on=started_on,
        budget_days=budget_days,
        committed_days=committed_days,
        max_extension_days=max_extension_days,
    )
    # Same-day order: a pause ends before the next begins; an extension granted on the day a
    # pause starts was decided first (it is what kept the pause within the limit).
    # A pause ending the day it began begins first, and ends before a later pause of that day
    # begins (the ledger's order breaks the tie).
    events: list[tuple[date, int, int, PauseEntry | Extension | date]] = []
    for index, pause in enumerate(pauses):
        events.append((pause.started_on, 2, 2 * index, pause))
        if pause.ended_on is not None:
            same_day = pause.ended_on == pause.started_on
            order, tie = (2, 2 * index + 1) if same_day else (0, 0)
            events.append((pause.ended_on, order, tie, pause.ended_on))
    if extension is not None:
        events.append((extension.granted_on, 1, 0, extension))
    for _, _, _, entry in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        if isinstance(entry, Extension):
            clock = clock.extend(
                calendar,
                days=entry.days,
                on=entry.granted_on,
                reason=entry.reason,
                approved_by=entry.approved_by,
            )
        elif isinstance(entry, PauseEntry):
            clock = clock.pause(
                calendar,
                reason=entry.reason,
                on=entry.started_on,
                expected_days=entry.expected_days,
                note=entry.note,
            )
        else:
            clock = clock.resume(on=entry)
    return clock
