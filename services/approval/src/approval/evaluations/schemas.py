"""好差评 schemas: five levels and the standard online indicators."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Rating(IntEnum):
    """The five levels of the national 好差评 system."""

    VERY_DISSATISFIED = 1  # 非常不满意
    DISSATISFIED = 2  # 不满意
    NEUTRAL = 3  # 基本满意
    SATISFIED = 4  # 满意
    VERY_SATISFIED = 5  # 非常满意


RATING_LABELS = {
    Rating.VERY_DISSATISFIED: "非常不满意",
    Rating.DISSATISFIED: "不满意",
    Rating.NEUTRAL: "基本满意",
    Rating.SATISFIED: "满意",
    Rating.VERY_SATISFIED: "非常满意",
}


class Indicator(StrEnum):
    """The standard indicators of an online rating (网上评价指标)."""

    GUIDE_CLARITY = "guide_clarity"  # 办事指南清晰准确
    EASE_OF_USE = "ease_of_use"  # 网上办理便捷
    TIMELINESS = "timeliness"  # 办理时限符合承诺
    ONE_TIME_NOTICE = "one_time_notice"  # 一次性告知到位
    FEWER_VISITS = "fewer_visits"  # 少跑腿、不跑腿
    ATTITUDE = "attitude"  # 服务态度
    RESULT = "result"  # 办理结果满意


class EvaluationCreate(BaseModel):
    """The applicant's rating of a closed case."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating = Field(description="5 非常满意 … 1 非常不满意")
    indicators: dict[Indicator, Rating] = Field(default_factory=dict)
    comment: str | None = Field(default=None, max_length=500)


class EvaluationOut(BaseModel):
    """A rating as stored."""

    model_config = ConfigDict(from_attributes=True)

    application_id: uuid.UUID
    rating: Rating
    rating_label: str
    indicators: dict[str, int]
    comment: str | None
    created_at: datetime
    remediation_due_on: date | None = Field(description="整改期限 (ratings of 2 or less)")


class RemediationTaskOut(BaseModel):
    """A poor rating to follow up."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    application_id: uuid.UUID
    jurisdiction: str
    status: str
    due_on: date
    resolution: str | None
    created_at: datetime
    resolved_at: datetime | None


class RemediationResolve(BaseModel):
    """How a remediation task was resolved."""

    model_config = ConfigDict(extra="forbid")

    resolution: str = Field(min_length=2, max_length=2000)


class EvaluationStatistics(BaseModel):
    """Ratings of closed cases, computed."""

    evaluations: int
    average_rating: float | None
    by_rating: dict[str, int]
    poor_ratings: int
    open_remediation_tasks: int
