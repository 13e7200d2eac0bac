"""REST schemas of the clocks view and the timeliness statistics."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from approval.calendar.clock import ClockKind, ClockState, PauseReason

CLOCK_KIND_LABELS = {
    ClockKind.ACCEPTANCE: "受理期限（5个工作日，第三十二条）",
    ClockKind.DECISION: "审批决定期限（第四十二条；补正后自收到全部补正材料之日起算）",
    ClockKind.DELIVERY: "证照送达期限（10个工作日，第四十四条）",
}


class ApplicationClockOut(BaseModel):
    """One statutory clock of an application, derived on ``as_of`` (the same for staff and applicant)."""

    kind: ClockKind
    label: str
    started_on: date = Field(description="起算日（不计入）")
    as_of: date
    running: bool = Field(description="仍在计时（未办结、未撤回）")
    stopped_on: date | None
    stop_reason: str | None
    budget_days: int = Field(description="法定期限（工作日）")
    extension_days: int
    paused_days: int = Field(description="第四十五条不计入期限的工作日")
    used_days: int
    remaining_days: int
    due_on: date = Field(description="法定到期日")
    committed_days: int | None = Field(description="承诺时限（工作日）")
    committed_due_on: date | None
    state: ClockState = Field(description="green 正常 / yellow 临近到期 / red 已超期")
    is_paused: bool
    pause_reason: PauseReason | None
    depends_on_provisional: bool = Field(description="到期日依赖尚未公布的放假安排，可能变动")
    provisional_years: list[int]
    extension_limit_days: int | None = Field(
        default=None,
        description="可延长的上限（审批决定期限：10个工作日；统一、联合、集中办理的15个工作日）",
    )
    pause_expected_days: int | None = Field(
        default=None, description="进行中的第四十五条程序书面告知的预计所需时间（工作日）"
    )


class ApplicationClocksOut(BaseModel):
    """Every clock of an application."""

    application_id: str
    clocks: list[ApplicationClockOut]
    accepted_on: date | None = Field(
        default=None,
        description="受理日（审批决定期限起算日）：受理之日；补正后为收到全部补正材料之日；"
        "视为受理的为收到申请材料之日（第三十二条）",
    )
    deemed_accepted: bool = Field(
        default=False, description="受理期限届满，依法视为受理（第三十二条）"
    )


class TimelinessOut(BaseModel):
    """Timeliness of one item or one authority."""

    key: str = Field(description="事项编码或实施机关")
    name: str
    decided: int = Field(description="已作出决定的办件（含即办件）")
    on_time: int
    on_time_rate: float | None
    average_used_days: float | None = Field(description="平均用时（工作日，不含即办件）")
    average_committed_days: float | None = Field(description="平均承诺时限（工作日）")
    overdue: int = Field(description="超期办件：超期办结的和在办已超期的")
    instant: int = Field(description="即办件数")
    instant_share: float | None = Field(description="即办件占比")


class TimelinessReport(BaseModel):
    """Timeliness statistics per item and per authority."""

    as_of: date
    items: list[TimelinessOut]
    authorities: list[TimelinessOut]


class EventIntake(BaseModel):
    """What the consumer did with a delivery of events."""

    received: int
    processed: int
    duplicates: int
    ignored: int
    invalid: int
