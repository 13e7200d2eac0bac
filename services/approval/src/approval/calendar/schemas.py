"""Wire shapes of the calendar API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from approval.calendar.clock import (
    DEFAULT_WARN_DAYS,
    JOINT_MAX_EXTENSION_DAYS,
    PAUSE_REASON_LABELS,
    ClockKind,
    ClockState,
    ClockView,
    Extension,
    PauseEntry,
    PauseReason,
)
from approval.calendar.service import DayChange, DayInfo, YearLoad
from approval.calendar.sources import ScheduledHoliday, ScheduledWorkday
from approval.calendar.workdays import DAY_KIND_LABELS, CalendarDay, DayKind, DaySource

PROVISIONAL_NOTICE = (
    "所涉年份的官方放假安排尚未公布，结果按《全国年节及纪念日放假办法》规定的节假日及补假推算，"
    "未含调休，公布后可能变化"
)

JurisdictionCode = Field(
    pattern=r"^\d{6}(\d{3}|\d{6})?$", description="行政区划代码（6、9 或 12 位），如 310115"
)


class DayOut(BaseModel):
    """One date of the calendar."""

    date: date
    kind: DayKind
    kind_label: str = Field(description="中文类别：工作日、周末、法定节假日、调休上班、调休放假")
    name: str | None = Field(default=None, description="节日名称，如 国庆节")
    source: DaySource
    provisional: bool = Field(description="放假安排尚未正式公布，可能变化")
    closed_locally: bool = Field(default=False, description="该地区当日停止办公")
    is_working: bool = Field(description="是否计入工作日（已考虑地区停止办公）")

    @classmethod
    def of(cls, info: DayInfo) -> DayOut:
        """From a service result."""
        return cls.from_day(info.day, closed=info.closed)

    @classmethod
    def from_day(cls, day: CalendarDay, *, closed: bool = False) -> DayOut:
        """From a calendar day."""
        return cls(
            date=day.day,
            kind=day.kind,
            kind_label=DAY_KIND_LABELS[day.kind],
            name=day.name,
            source=day.source,
            provisional=day.provisional,
            closed_locally=closed,
            is_working=day.is_working and not closed,
        )


class DaysOut(BaseModel):
    """The dates of a range."""

    start: date
    end: date
    jurisdiction: str | None
    provisional: bool = Field(description="范围内有尚未正式公布的日期")
    days: list[DayOut]


class CalendarYearOut(BaseModel):
    """A year of the calendar."""

    year: int
    loaded: bool = Field(
        description="该年份已写入日历（否则整年按《全国年节及纪念日放假办法》的节假日及补假临时推算）"
    )
    source: DaySource
    provisional: bool
    notice: str | None = Field(default=None, description="放假安排的文号")
    updated_at: datetime | None = None
    working_days: int
    days: list[DayOut]


class HolidayIn(BaseModel):
    """A day off in the official schedule."""

    model_config = ConfigDict(extra="forbid")

    date: date
    name: str | None = Field(default=None, max_length=100, examples=["国庆节"])
    in_lieu: bool = Field(default=False, description="周一至周五因调休放假（而非法定假日本身）")


class WorkdayIn(BaseModel):
    """A weekend day declared a working day (调休上班)."""

    model_config = ConfigDict(extra="forbid")

    date: date
    name: str | None = Field(default=None, max_length=100, examples=["国庆节调休"])


class OfficialScheduleIn(BaseModel):
    """A year's official schedule (国务院办公厅关于某年部分节假日安排的通知)."""

    model_config = ConfigDict(extra="forbid")

    notice: str | None = Field(
        default=None, max_length=200, examples=["国办发明电〔2026〕7号"], description="通知文号"
    )
    source: DaySource = Field(
        default=DaySource.OFFICIAL_NOTICE, description="official_notice 或 admin（人工更正）"
    )
    holidays: list[HolidayIn] = Field(description="全部放假日期（含其中的周末）")
    adjusted_workdays: list[WorkdayIn] = Field(description="调休上班的周末日期")

    def scheduled_holidays(self) -> list[ScheduledHoliday]:
        """As domain values."""
        return [ScheduledHoliday(h.date, h.name, h.in_lieu) for h in self.holidays]

    def scheduled_workdays(self) -> list[ScheduledWorkday]:
        """As domain values."""
        return [ScheduledWorkday(w.date, w.name) for w in self.adjusted_workdays]


class DayChangeOut(BaseModel):
    """A date the schedule changed."""

    date: date
    before: DayKind
    after: DayKind
    working_changed: bool = Field(description="工作日与休息日之间的变化：会移动期限")

    @classmethod
    def of(cls, change: DayChange) -> DayChangeOut:
        """From a service result."""
        return cls(
            date=change.after.day,
            before=change.before.kind,
            after=change.after.kind,
            working_changed=change.working_changed,
        )


class YearLoadOut(BaseModel):
    """What loading a year's schedule changed."""

    year: int
    source: DaySource
    notice: str | None
    provisional: bool = False
    provisional_cleared: int = Field(description="取消临时标记的日期数")
    changed: list[DayChangeOut]
    moved_deadlines: int = Field(default=0, description="到期日因此变动的在办期限数（已通知）")

    @classmethod
    def of(cls, load: YearLoad) -> YearLoadOut:
        """From a service result."""
        return cls(
            year=load.year,
            source=load.source,
            notice=load.notice,
            provisional_cleared=load.provisional_cleared,
            changed=[DayChangeOut.of(c) for c in load.changes],
        )


class ClosuresIn(BaseModel):
    """Local closure days of a jurisdiction (e.g. 台风红色预警停止办公)."""

    model_config = ConfigDict(extra="forbid")

    jurisdiction: str = JurisdictionCode
    dates: list[date] = Field(min_length=1, max_length=366)
    reason: str = Field(min_length=1, max_length=200, examples=["台风红色预警，停止对外办公"])


class ClosuresAdded(BaseModel):
    """Which closure days were new."""

    jurisdiction: str
    added: list[date]
    already_closed: list[date]
    moved_deadlines: int = Field(default=0, description="Running deadlines the change moved")


class ClosureOut(BaseModel):
    """One local closure day."""

    model_config = ConfigDict(from_attributes=True)

    jurisdiction: str
    day: date
    reason: str
    created_by: str
    created_at: datetime


class WorkingDaysAddOut(BaseModel):
    """A due date computed in working days."""

    start: date
    days: int
    due: date
    jurisdiction: str | None
    depends_on_provisional: bool = Field(description="结果取决于尚未正式公布的放假安排")
    provisional_years: list[int]
    notice: str | None = Field(default=None, description="结果可能变化时的中文提示")


class WorkingDaysCountOut(BaseModel):
    """Working days between two dates."""

    start: date
    end: date
    working_days: int = Field(description="(start, end] 内的工作日数；end 早于 start 时为负")
    jurisdiction: str | None
    depends_on_provisional: bool
    provisional_years: list[int]
    notice: str | None = None


class PauseIn(BaseModel):
    """An Art. 45 pause of the ledger."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        description="hearing 听证 · tendering 招标 · auction 拍卖 · inspection 检验 · testing 检测 · "
        "quarantine 检疫 · appraisal 鉴定 · expert_review 专家评审",
        examples=["expert_review"],
    )
    started_on: date
    ended_on: date | None = Field(
        default=None, description="结果送达、恢复计时之日；空表示仍在中止"
    )
    expected_days: int | None = Field(default=None, ge=1, description="书面告知的预计所需时间")
    note: str | None = Field(default=None, max_length=500)

    def entry(self) -> PauseEntry:
        """As a ledger entry."""
        return PauseEntry(
            reason=self.reason,
            started_on=self.started_on,
            ended_on=self.ended_on,
            expected_days=self.expected_days,
            note=self.note,
        )


class ExtensionIn(BaseModel):
    """The Art. 42 extension of the ledger."""

    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        ge=1,
        le=JOINT_MAX_EXTENSION_DAYS,
        description="延长的工作日数：不超过 10 个工作日（第四十二条第一款）；统一、联合、集中办理的"
        "不超过 15 个（第四十二条第二款，预览按 10 个计）",
    )
    granted_on: date
    reason: str = Field(min_length=1, max_length=500)
    approved_by: str = Field(min_length=1, max_length=200, description="批准延期的负责人")

    def extension(self) -> Extension:
        """As a domain value."""
        return Extension(
            days=self.days,
            granted_on=self.granted_on,
            reason=self.reason,
            approved_by=self.approved_by,
        )


class ClockIn(BaseModel):
    """A clock's ledger to derive (the preview calculator; applications store the same shape)."""

    model_config = ConfigDict(extra="forbid")

    kind: ClockKind = ClockKind.DECISION
    started_on: date = Field(description="起算日（受理日等，不计入）")
    budget_days: int = Field(ge=0, le=365, description="法定期限（工作日）")
    committed_days: int | None = Field(default=None, ge=0, le=365, description="承诺时限（工作日）")
    pauses: list[PauseIn] = Field(default_factory=list, max_length=50)
    extension: ExtensionIn | None = None
    as_of: date | None = Field(default=None, description="计算日，默认今天（北京时间）")
    warn_days: int = Field(
        default=DEFAULT_WARN_DAYS, ge=0, le=30, description="到期前几个工作日亮黄灯"
    )
    jurisdiction: str | None = Field(default=None, pattern=r"^\d{6}(\d{3}|\d{6})?$")


CLOCK_STATE_LABELS = {
    ClockState.GREEN: "正常",
    ClockState.YELLOW: "临近到期",
    ClockState.RED: "已超期",
}


class ClockOut(BaseModel):
    """A clock's derived state: what staff and the applicant both see."""

    kind: ClockKind
    started_on: date
    as_of: date
    budget_days: int
    extension_days: int
    paused_days: int = Field(description="不计入期限的工作日数（法定特别程序）")
    used_days: int
    remaining_days: int = Field(description="剩余工作日；超期为负")
    due_on: date = Field(description="法定期限届满日（含延期与中止）")
    committed_days: int | None
    committed_due_on: date | None = Field(description="承诺期限届满日")
    state: ClockState
    state_label: str
    is_paused: bool
    pause_reason: PauseReason | None
    pause_reason_label: str | None
    depends_on_provisional: bool
    provisional_years: list[int]
    notice: str | None = None

    @classmethod
    def of(cls, view: ClockView) -> ClockOut:
        """From the derived view."""
        return cls(
            kind=view.kind,
            started_on=view.started_on,
            as_of=view.as_of,
            budget_days=view.budget_days,
            extension_days=view.extension_days,
            paused_days=view.paused_days,
            used_days=view.used_days,
            remaining_days=view.remaining_days,
            due_on=view.due_on,
            committed_days=view.committed_days,
            committed_due_on=view.committed_due_on,
            state=view.state,
            state_label=CLOCK_STATE_LABELS[view.state],
            is_paused=view.is_paused,
            pause_reason=view.pause_reason,
            pause_reason_label=PAUSE_REASON_LABELS[view.pause_reason]
            if view.pause_reason
            else None,
            depends_on_provisional=view.depends_on_provisional,
            provisional_years=list(view.provisional_years),
            notice=PROVISIONAL_NOTICE if view.provisional_years else None,
        )
