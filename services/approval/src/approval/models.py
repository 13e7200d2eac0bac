"""Approval's ORM models (typed SQLAlchemy 2); hot paths use their ``__table__`` with Core."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from approval.db import metadata
from govshared.db import UTCDateTime


class Base(DeclarativeBase):
    """Declarative base bound to approval's metadata."""

    metadata = metadata


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
    reform_mode: Mapped[str | None] = mapped_column(String(32), default=None)


class ItemVersionStatus(StrEnum):
    """Where a version of a service guide stands."""

    DRAFT = "draft"
    PUBLISHED = "published"  # the version in force
    SUPERSEDED = "superseded"


class ItemVersion(Base):
    """Every version of an item's service guide; the ``items`` row mirrors the one in force."""

    __tablename__ = "item_versions"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    item_type: Mapped[str] = mapped_column(String(32))
    authority: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    is_instant: Mapped[bool] = mapped_column(default=False)
    statutory_limit_days: Mapped[int] = mapped_column(Integer)
    committed_limit_days: Mapped[int] = mapped_column(Integer)
    reform_mode: Mapped[str | None] = mapped_column(String(32))
    guide: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    change_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# The work queue's sort key: the due date, undated (closed) cases last. Spelled once, here, because
# the index and the query must use the identical expression.
QUEUE_DUE_SQL = "coalesce(due_on, '9999-12-31')"


class Application(Base):
    """A permit application (办件)."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_applicant", "applicant_uscc", "submitted_at", "id"),
        Index("ix_applications_queue", "jurisdiction", "state", "submitted_at", "id"),
        Index("ix_applications_due", text(QUEUE_DUE_SQL), "submitted_at", "id"),
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
    intake_route: Mapped[str] = mapped_column(String(16), default="review")
    receipt_no: Mapped[str | None] = mapped_column(String(40), default=None)
    state: Mapped[str] = mapped_column(String(32))
    form: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    # Index cache of the earliest due date of its running clocks (the work queue's order).
    due_on: Mapped[date | None] = mapped_column(Date, default=None)


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


class Material(Base):
    """A material of an application: an uploaded file, or an e-licence we already hold (减证便民)."""

    __tablename__ = "application_materials"
    __table_args__ = (Index("ix_application_materials_application", "application_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"))
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # upload | e_licence
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(300))
    licence_no: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Tolerance(Base):
    """容缺受理: a required material accepted as missing, with the date promised for it."""

    __tablename__ = "application_tolerances"
    __table_args__ = (
        Index("ix_application_tolerances_follow_up", "jurisdiction", "delivered_at", "deliver_by"),
    )

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    deliver_by: Mapped[date] = mapped_column(Date)
    accepted_by: Mapped[str] = mapped_column(String(200))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    material_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    # fired marker of the overdue follow-up event (emitted once, with it)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Evaluation(Base):
    """好差评: the applicant's rating of a closed case (one per case)."""

    __tablename__ = "evaluations"

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id"), primary_key=True
    )
    rating: Mapped[int] = mapped_column(Integer)
    indicators: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    item_code: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RemediationTask(Base):
    """A 差评 (rating 2 or less) to be followed up by staff within the SLA."""

    __tablename__ = "remediation_tasks"
    __table_args__ = (Index("ix_remediation_tasks_queue", "jurisdiction", "status", "due_on"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(16))  # open | resolved
    due_on: Mapped[date] = mapped_column(Date)
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
