"""REST schemas of the reform catalogue."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govshared.events import ReformMode
from govshared.jurisdictions import AreaCode

JURISDICTION_PATTERN = r"^\d{6}$"


class ReformVersionOut(BaseModel):
    """One version of an item's reform mode."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    jurisdiction: str
    effective_from: date
    mode: ReformMode
    mode_label: str
    batch: str | None
    reform_measures: str = Field(description="改革举措")
    supervision_measures: str = Field(description="事中事后监管措施")
    supervising_department: str = Field(description="监管部门")
    commitment_text: str | None
    created_at: datetime
    created_by: str


class ReformItemOut(BaseModel):
    """A catalogue row: the item and the version in force for the asked jurisdiction and date."""

    code: str
    name: str
    item_type: str
    department: str
    in_force: ReformVersionOut


class ReformItemDetail(BaseModel):
    """An item with its whole version history, oldest first."""

    code: str
    name: str
    item_type: str
    department: str
    versions: list[ReformVersionOut]


class ReformVersionCreate(BaseModel):
    """A new version of an item's mode (history is never edited: this appends)."""

    model_config = ConfigDict(extra="forbid")

    jurisdiction: AreaCode
    effective_from: date
    mode: ReformMode
    batch: str | None = Field(default=None, max_length=200)
    reform_measures: str = Field(min_length=2, max_length=5000)
    supervision_measures: str = Field(min_length=2, max_length=5000)
    supervising_department: str = Field(min_length=2, max_length=200)
    commitment_text: str | None = Field(default=None, max_length=10000)

    @model_validator(mode="after")
    def _no_text_outside_commitment(self) -> ReformVersionCreate:
        if self.mode is not ReformMode.COMMITMENT:
            self.commitment_text = None
        return self


class ReformItemCreate(BaseModel):
    """A new item of the reform catalogue with its first version."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,63}$", examples=["JXW-XK-014"])
    name: str = Field(min_length=2, max_length=200)
    item_type: str = Field(default="行政许可", min_length=2, max_length=32)
    department: str = Field(min_length=2, max_length=200)
    first_version: ReformVersionCreate


class ModeCount(BaseModel):
    """How many items are under one mode."""

    mode: ReformMode
    label: str
    count: int


class ModeBreakdown(BaseModel):
    """Items in force and their modes."""

    total: int
    by_mode: list[ModeCount]


class JurisdictionStatistics(ModeBreakdown):
    """The breakdown as seen from one jurisdiction (inherited city-wide modes included)."""

    jurisdiction: str
    jurisdiction_name: str | None
    own_versions: int = Field(description="Items whose mode in force is the jurisdiction's own")


class TimelinePoint(ModeBreakdown):
    """The breakdown on a date when some version took effect."""

    on: date


class ReformStatistics(ModeBreakdown):
    """Catalogue statistics, computed from the versions (never stored)."""

    on: date
    jurisdiction: str
    jurisdiction_name: str | None
    summary: str = Field(description="e.g. 7项事项纳入“一网通办”：直接取消审批1项，优化审批服务6项")
    by_jurisdiction: list[JurisdictionStatistics]
    timeline: list[TimelinePoint]
