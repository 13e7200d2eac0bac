"""Approval's ORM models (typed SQLAlchemy 2); hot paths use their ``__table__`` with Core."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from govshared.db import UTCDateTime
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from approval.db import metadata


class Base(DeclarativeBase):
    """Declarative base bound to approval's metadata."""

    metadata = metadata


class ApplicationState(StrEnum):
    """Where an application stands."""

    SUBMITTED = "submitted"  # 已提交，待受理
    ACCEPTED = "accepted"  # 已受理
    REJECTED = "rejected"  # 不予受理
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 待补正
    IN_REVIEW = "in_review"  # 审查中
    PAUSED = "paused"  # 特别程序（不计时）
    APPROVED = "approved"  # 准予许可
    DENIED = "denied"  # 不予许可
    WITHDRAWN = "withdrawn"  # 已撤回
    FILED = "filed"  # 已备案


class Item(Base):
    """An approval item (事项) with its current service guide."""

    __tablename__ = "items"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    item_type: Mapped[str] = mapped_column(String(32))
    authority: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    is_instant: Mapped[bool] = mapped_column(default=False)
    statutory_limit_days: Mapped[int] = mapped_column(Integer)
    committed_limit_days: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    guide: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Application(Base):
    """A permit application (办件)."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_applicant", "applicant_uscc", "submitted_at", "id"),
        Index("ix_applications_queue", "jurisdiction", "state", "submitted_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_no: Mapped[str] = mapped_column(String(32), unique=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("items.code"))
    item_version: Mapped[int] = mapped_column(Integer)
    item_name: Mapped[str] = mapped_column(String(200))
    applicant_uscc: Mapped[str] = mapped_column(String(18))
    applicant_name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    business_type: Mapped[str] = mapped_column(String(16))
    reform_mode: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    form: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    row_version: Mapped[int] = mapped_column(Integer, default=1)


class ApplicationEvent(Base):
    """One entry of an application's append-only, hash-chained audit trail."""

    __tablename__ = "application_events"

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(48))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
