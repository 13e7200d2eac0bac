"""REST schemas of inspection plans, draws, inspections, results and their publication."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govshared.jurisdictions import AreaCode
from govshared.uscc import USCC
from licensing.inspections.draw import RISK_CLASSES, RiskClass
from licensing.inspections.models import (
    CorrectionStatus,
    InspectionKind,
    InspectionStatus,
    Outcome,
    PlanStatus,
    ProposedAct,
    Severity,
)

# No control characters (PostgreSQL's text refuses NUL; none belongs in a name or a finding).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ITEM_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Text = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"^[^\x00]+$")]


def check_ratios(ratios: dict[RiskClass, float]) -> None:
    """Every class has a ratio in [0, 1], and a higher risk class never a lower one."""
    missing = [c for c in RISK_CLASSES if c not in ratios]
    if missing:
        raise ValueError(f"缺少风险类别 {', '.join(missing)} 的抽查比例")
    values = [ratios[c] for c in RISK_CLASSES]
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError("抽查比例应当在 0 到 1 之间")
    if any(lower > higher for lower, higher in itertools.pairwise(values)):
        raise ValueError("风险越高抽查比例越高：高风险类别的比例不得低于低风险类别")


class PlanCreate(BaseModel):
    """A new inspection plan."""

    name: Name
    item_codes: list[Annotated[str, Field(pattern=ITEM_CODE_PATTERN)]] = Field(
        min_length=1, max_length=50, description="The items (licence types) covered"
    )
    jurisdiction: AreaCode = Field(
        description="The area covered: its licences and those of the areas below it (a "
        "delegating city authority covers the district it delegated to)",
    )
    period_from: date
    period_to: date
    ratios: dict[RiskClass, float] | None = Field(
        default=None, description="Sampling ratio per 信用风险分类; default: the settings"
    )
    inspectors: list[Name] = Field(min_length=2, max_length=500, description="执法检查人员名录")
    due_working_days: int | None = Field(default=None, ge=1, le=120)

    @model_validator(mode="after")
    def _check(self) -> PlanCreate:
        if self.period_to < self.period_from:
            raise ValueError("计划期间的结束日期不得早于开始日期")
        if len(set(self.inspectors)) != len(self.inspectors):
            raise ValueError("执法检查人员名录有重复")
        if self.ratios is not None:
            check_ratios(self.ratios)
        return self


class DrawOut(BaseModel):
    """A plan's draw, with everything needed to replay it."""

    algorithm: str
    seed: str = Field(description="64 hex digits, generated at draw time")
    candidates_count: int
    inputs_sha256: str
    targets_sha256: str
    targets: list[list[Any]] = Field(description="[USCC, risk class, [inspector, inspector]]")
    drawn_by: str
    drawn_at: datetime


class PlanOut(BaseModel):
    """An inspection plan, and its draw once made."""

    id: uuid.UUID
    name: str
    item_codes: list[str]
    jurisdiction: str
    period_from: date
    period_to: date
    ratios: dict[str, float]
    inspectors: list[str]
    due_working_days: int
    status: PlanStatus
    created_by: str
    created_at: datetime
    draw: DrawOut | None = None


class DrawInputs(BaseModel):
    """The recorded inputs of a draw (for replay with ``licensing.inspections.draw.draw``)."""

    algorithm: str
    seed: str
    candidates: list[list[str]] = Field(description="[USCC, risk class] sorted by USCC")
    ratios: dict[str, float]
    inspectors: list[str]
    conflicts: list[list[str]] = Field(description="[inspector, USCC] declared 回避")
    inputs_sha256: str
    targets: list[list[Any]]
    targets_sha256: str


class ReplayOut(BaseModel):
    """The draw recomputed from its recorded inputs, compared with the recorded draw."""

    matches: bool
    inputs_sha256: str
    recorded_targets_sha256: str
    replayed_targets_sha256: str


class RecordEntryOut(BaseModel):
    """An entry of a plan's hash-chained record."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    kind: str
    payload: dict[str, Any]
    actor: str
    recorded_at: datetime
    prev_hash: str
    hash: str


class PlanRecordOut(BaseModel):
    """A plan's record and whether its chain is intact."""

    intact: bool
    entries: list[RecordEntryOut]


class ConflictCreate(BaseModel):
    """A declared conflict (回避) between an inspector and a holder."""

    inspector: Name
    holder_uscc: USCC
    reason: Text


class ConflictOut(BaseModel):
    """A declared conflict."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    inspector: str
    holder_uscc: str
    reason: str
    declared_by: str
    declared_at: datetime


class EvidenceOut(BaseModel):
    """An evidence file of an inspection."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str | None
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime


class ProposalOut(BaseModel):
    """A licence act proposed by an inspection, carried out at ``act_endpoint``."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    inspection_id: uuid.UUID
    licence_no: str
    act: ProposedAct
    reason: str
    proposed_by: str
    proposed_at: datetime
    act_endpoint: str = Field(description="The licence act endpoint that carries it out")
    licence_status: str | None = Field(description="The licence's status now")


class InspectionOut(BaseModel):
    """An inspection task and its result."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    plan_id: uuid.UUID
    kind: InspectionKind
    reinspection_of: uuid.UUID | None
    holder_uscc: str
    holder_name: str
    licence_no: str
    licence_nos: list[str]
    item_code: str
    jurisdiction: str
    risk_class: RiskClass
    inspectors: list[str]
    due_on: date
    status: InspectionStatus
    outcome: Outcome | None
    severity: Severity | None
    findings: str | None
    inspected_on: date | None
    recorded_by: str | None
    publish_by: date | None
    published_on: date | None
    rectify_by: date | None
    correction_status: CorrectionStatus | None


class InspectionDetail(InspectionOut):
    """An inspection with its evidence and proposals."""

    evidence: list[EvidenceOut]
    proposals: list[ProposalOut]


class ResultCreate(BaseModel):
    """The result of an inspection."""

    outcome: Outcome
    inspected_on: date
    findings: Text | None = None
    severity: Severity | None = None
    rectify_by: date | None = Field(
        default=None, description="限期整改 deadline (minor and serious findings)"
    )
    proposed_act: ProposedAct | None = Field(
        default=None,
        description="The licence act proposed (grave findings, or a re-inspection after a "
        "missed deadline); default 暂扣",
    )

    @model_validator(mode="after")
    def _check(self) -> ResultCreate:
        if self.outcome is Outcome.NON_COMPLIANT:
            if not self.findings:
                raise ValueError("不合格的抽查结果应当写明发现的问题")
            if self.severity is None:
                raise ValueError("不合格的抽查结果应当写明问题的严重程度")
        elif self.severity or self.rectify_by or self.proposed_act:
            raise ValueError("只有不合格的抽查结果才有严重程度、整改期限和处理建议")
        return self


class PublicResult(BaseModel):
    """A published result (一公开): no personal data of individuals."""

    holder_name: str
    holder_uscc: str
    item_code: str
    item_name: str | None
    inspected_on: date
    outcome: Outcome
    outcome_label: str
    kind: InspectionKind
    published_on: date


class PublicPlan(BaseModel):
    """A drawn plan as published (一公开 of the 抽查计划 and its draw): what it covers, its ratios and
    the draw's seed and digests, so that the draw cannot be made again unseen and anyone given its
    inputs can replay it and compare. Neither the holders' risk classes (信用风险分类, kept for
    supervision), nor the targets before they are inspected, nor the inspectors are published."""

    id: uuid.UUID
    name: str
    item_codes: list[str]
    jurisdiction: str
    period_from: date
    period_to: date
    ratios: dict[str, float]
    algorithm: str
    seed: str = Field(description="64 hex digits, generated at draw time")
    candidates_count: int
    targets_count: int
    inputs_sha256: str
    targets_sha256: str
    drawn_at: datetime
    record_hash: str = Field(description="The hash of the draw's entry in the plan's record")


class ItemStatistics(BaseModel):
    """Figures of one item in a plan."""

    item_code: str
    drawn: int
    inspected: int
    compliant: int
    compliant_share: float | None = Field(description="compliant / inspected")
    corrections_ordered: int
    corrections_closed_on_time: int
    corrections_missed: int
    published_late: int = Field(
        description="Results (re-inspections included) published after their limit, 20 working "
        "days after the inspection: recorded late, as a result is published when recorded"
    )


class PlanStatistics(BaseModel):
    """A plan's figures, per item and in total."""

    plan_id: uuid.UUID
    total: ItemStatistics
    items: list[ItemStatistics]
