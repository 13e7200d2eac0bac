"""Tables of the review chains: each case's tasks, and staff delegations (委托)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from approval.models import Base
from govshared.db import UTCDateTime


class ReviewTask(Base):
    """A step of a case's review chain, or a consulted department's opinion (会签)."""

    __tablename__ = "review_tasks"
    __table_args__ = (
        Index("ix_review_tasks_application", "application_id", "created_at"),
        Index("ix_review_tasks_queue", "status", "role", "jurisdiction", "due_on"),
        Index("ix_review_tasks_assignee", "assignee", "status"),
        Index("ix_review_tasks_overdue", "kind", "status", "due_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT")
    )
    jurisdiction: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(16))  # step | opinion
    step_index: Mapped[int] = mapped_column(Integer)  # the step's place; an opinion's: -1
    step_key: Mapped[str] = mapped_column(String(64))  # the step's key; an opinion's department
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # open | done | returned | cancelled
    assignee: Mapped[str | None] = mapped_column(String(200))
    due_on: Mapped[date | None] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(String(32))
    reasons: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(200))
    # The government head's documented decision over a dissent or a missing opinion.
    overridden_by: Mapped[str | None] = mapped_column(String(200))
    override_reason: Mapped[str | None] = mapped_column(Text)
    overridden_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the opinion timer escalated this overdue opinion to the government head (once).
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Delegation(Base):
    """委托: a member of staff's tasks handled by a colleague for a period (leave)."""

    __tablename__ = "delegations"
    __table_args__ = (
        Index("ix_delegations_delegate", "delegate", "starts_on"),
        Index("ix_delegations_delegator", "delegator", "starts_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    delegator: Mapped[str] = mapped_column(String(200))
    delegate: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    department: Mapped[str | None] = mapped_column(String(32))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class StaffMember(Base):
    """The staff directory: who may be given a task (转办) or a colleague's tasks (委托).

    Maintained by ``admin`` through ``PUT /api/v1/staff/members/{subject}`` (in a deployment, the sync
    from the unified identity platform's organisation directory does it); the demo seeds it."""

    __tablename__ = "staff_members"
    __table_args__ = (Index("ix_staff_members_role", "jurisdiction", "role", "department"),)

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)  # the tokens' sub
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    department: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))
