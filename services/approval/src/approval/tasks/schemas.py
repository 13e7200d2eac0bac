"""REST schemas of the review chains, opinions and delegations."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from approval.tasks.chain import OpinionOutcome
from approval.tasks.models import ReviewTask

Subject = Field(min_length=1, max_length=200, description="工作人员的用户标识（令牌的 sub）")


class TaskOut(BaseModel):
    """A step of the case's review chain, or a consulted department's opinion."""

    id: uuid.UUID
    application_id: uuid.UUID
    kind: str = Field(description="step 审查环节 | opinion 征求意见")
    step: str = Field(description="环节 key；征求意见：部门代码")
    name: str
    role: str
    department: str | None
    status: str = Field(description="open 待办 | done 办结 | returned 已退回 | cancelled 已取消")
    assignee: str | None = Field(description="签收或转办给的工作人员；空：本角色均可签收")
    due_on: date | None = Field(description="征求意见的答复期限（审查环节见办件的决定期限）")
    outcome: str | None
    reasons: str | None
    conditions: str | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    override_reason: str | None = Field(description="本级人民政府负责人的决定理由")
    escalated_at: datetime | None = Field(
        default=None, description="逾期未答复、已报请本级人民政府负责人决定的时间"
    )

    @classmethod
    def of(cls, task: ReviewTask) -> TaskOut:
        return cls(
            id=task.id,
            application_id=task.application_id,
            kind=task.kind,
            step=task.step_key,
            name=task.name,
            role=task.role,
            department=task.department,
            status=task.status,
            assignee=task.assignee,
            due_on=task.due_on,
            outcome=task.outcome,
            reasons=task.reasons,
            conditions=task.conditions,
            created_at=task.created_at,
            completed_at=task.completed_at,
            completed_by=task.completed_by,
            override_reason=task.override_reason,
            escalated_at=task.escalated_at,
        )


class TaskList(BaseModel):
    """A case's tasks, oldest first, with where it stands in its chain."""

    items: list[TaskOut]
    current_step: str | None = Field(description="当前审查环节的 key（无：未进入或已办结）")
    next_cursor: str | None = None


class QueuedTask(TaskOut):
    """A task in a member of staff's queue, with its case."""

    application_no: str
    item_code: str
    item_name: str
    applicant_name: str
    statutory_due_on: date | None = Field(
        description="排序依据：审查环节为办件决定期限，征求意见为答复期限"
    )


class TaskQueue(BaseModel):
    items: list[QueuedTask]
    next_cursor: str | None = None


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class CompleteRequest(BaseModel):
    """Complete the current step: a review records its opinion; the decision step decides."""

    model_config = ConfigDict(extra="forbid")

    opinion: str = Field(min_length=1, max_length=4000, description="审查/审批意见")
    decision: Decision | None = Field(default=None, description="审批环节：approve 或 deny")
    reason: str | None = Field(default=None, max_length=2000, description="不予许可的理由")


class ReturnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_step: str = Field(min_length=1, max_length=64, description="退回至的审查环节 key")
    reason: str = Field(min_length=2, max_length=2000, description="退回理由")


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Subject
    reason: str | None = Field(default=None, max_length=2000)


class OpinionRequest(BaseModel):
    """A consulted department's opinion; the department is the token's ``department`` claim."""

    model_config = ConfigDict(extra="forbid")

    opinion: OpinionOutcome
    reasons: str | None = Field(default=None, max_length=4000, description="不同意的理由")
    conditions: str | None = Field(default=None, max_length=4000, description="同意所附条件")


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=2000, description="本级人民政府负责人的决定理由")


class DelegationCreate(BaseModel):
    """委托: the caller's tasks of its role handled by a colleague from ``starts_on`` to ``ends_on``."""

    model_config = ConfigDict(extra="forbid")

    delegate: str = Subject
    starts_on: date
    ends_on: date
    reason: str = Field(min_length=2, max_length=500, examples=["年休假"])


class DelegationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    delegator: str
    delegate: str
    role: str
    jurisdiction: str
    department: str | None
    starts_on: date
    ends_on: date
    reason: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class DelegationList(BaseModel):
    items: list[DelegationOut]
    next_cursor: str | None = None
