"""Tables of 双随机、一公开 inspections: plans, draws, the hash-chained record, inspections,
evidence, conflicts (回避) and proposed licence acts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from govshared.db import UTCDateTime
from licensing.models import Base


class PlanStatus(StrEnum):
    """Where a plan stands: one draw per plan."""

    DRAFT = "draft"
    DRAWN = "drawn"


class InspectionKind(StrEnum):
    """A drawn inspection, or the re-inspection after a 限期整改 deadline."""

    INSPECTION = "inspection"
    REINSPECTION = "reinspection"


class InspectionStatus(StrEnum):
    """Whether the result has been recorded."""

    OPEN = "open"
    RECORDED = "recorded"


class Outcome(StrEnum):
    """The result of an inspection (抽查结果), as published."""

    COMPLIANT = "compliant"  # 合格（未发现问题）
    NON_COMPLIANT = "non_compliant"  # 不合格（发现问题）
    NOT_FOUND = "not_found"  # 未发现开展本次抽查涉及的经营活动
    UNREACHABLE = "unreachable"  # 通过登记的住所或者经营场所无法联系


OUTCOME_LABELS = {
    Outcome.COMPLIANT: "合格",
    Outcome.NON_COMPLIANT: "不合格",
    Outcome.NOT_FOUND: "未发现开展本次抽查涉及的经营活动",
    Outcome.UNREACHABLE: "通过登记的住所或者经营场所无法联系",
}


class Severity(StrEnum):
    """How serious a non-compliant finding is; it decides the consequences."""

    MINOR = "minor"  # 轻微: 限期整改 and re-inspection
    SERIOUS = "serious"  # 较重: 限期整改, re-inspection and a bad-credit record
    GRAVE = "grave"  # 严重: a serious bad-credit record and a proposed licence act


class CorrectionStatus(StrEnum):
    """Where a 限期整改 order stands."""

    OPEN = "open"
    CLOSED_ON_TIME = "closed_on_time"  # the re-inspection found it put right
    # the re-inspection after the deadline found it still not right, or none found it put right
    # by the re-inspection's due date (the worker's timer)
    MISSED = "missed"


class ProposedAct(StrEnum):
    """The licence act proposed to staff, carried out through the licence act endpoints."""

    SUSPENSION = "suspension"  # 暂扣许可证件 (行政处罚法 Art. 9)
    PENALTY_REVOCATION = "penalty_revocation"  # 吊销许可证件 (行政处罚法 Art. 9)
    REVOCATION = "revocation"  # 撤销 (行政许可法 Art. 69)


class InspectionPlan(Base):
    """A 双随机 inspection plan: items, jurisdiction, period, ratios per risk class, inspectors."""

    __tablename__ = "inspection_plans"
    __table_args__ = (Index("ix_inspection_plans_jurisdiction", "jurisdiction", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    item_codes: Mapped[list[str]] = mapped_column(JSON)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    ratios: Mapped[dict[str, float]] = mapped_column(JSON)
    inspectors: Mapped[list[str]] = mapped_column(JSON)
    due_working_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InspectionDraw(Base):
    """The one draw of a plan: its seed, every input and the result, for anyone to replay."""

    __tablename__ = "inspection_draws"

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection_plans.id", ondelete="RESTRICT"), primary_key=True
    )
    algorithm: Mapped[str] = mapped_column(String(32))
    seed: Mapped[str] = mapped_column(String(64))
    candidates: Mapped[list[list[str]]] = mapped_column(JSON)  # [[USCC, class], …] by USCC
    conflicts: Mapped[list[list[str]]] = mapped_column(JSON)  # [[inspector, USCC], …]
    targets: Mapped[list[list[Any]]] = mapped_column(JSON)  # draw.targets_json
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    targets_sha256: Mapped[str] = mapped_column(String(64))
    drawn_by: Mapped[str] = mapped_column(String(200))
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InspectionRecord(Base):
    """An append-only, hash-chained entry of a plan's record (creation, draw, results, acts)."""

    __tablename__ = "inspection_records"
    __table_args__ = (UniqueConstraint("plan_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection_plans.id", ondelete="RESTRICT")
    )
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class InspectorConflict(Base):
    """A declared conflict of interest (回避) between an inspector and a holder."""

    __tablename__ = "inspector_conflicts"
    __table_args__ = (UniqueConstraint("inspector", "holder_uscc"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    inspector: Mapped[str] = mapped_column(String(200))
    holder_uscc: Mapped[str] = mapped_column(String(18))
    reason: Mapped[str] = mapped_column(Text)
    declared_by: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Inspection(Base):
    """An inspection task of a drawn holder (or a re-inspection), and its result."""

    __tablename__ = "inspections"
    __table_args__ = (
        Index("ix_inspections_plan", "plan_id", "due_on", "id"),
        Index("ix_inspections_published", "published_on", "id"),
        Index("ix_inspections_holder", "holder_uscc"),
        # The timer's search: open correction orders by deadline, and their re-inspections.
        Index("ix_inspections_correction", "correction_status", "rectify_by"),
        Index("ix_inspections_reinspection_of", "reinspection_of"),
        # The staff list: a jurisdiction range (under_prefix), by due date.
        Index("ix_inspections_jurisdiction", "jurisdiction", "due_on", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection_plans.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(16))
    reinspection_of: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    holder_uscc: Mapped[str] = mapped_column(String(18))
    holder_name: Mapped[str] = mapped_column(String(200))
    licence_no: Mapped[str] = mapped_column(String(40))
    licence_nos: Mapped[list[str]] = mapped_column(JSON)
    item_code: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    risk_class: Mapped[str] = mapped_column(String(1))
    inspectors: Mapped[list[str]] = mapped_column(JSON)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    severity: Mapped[str | None] = mapped_column(String(16))
    findings: Mapped[str | None] = mapped_column(Text)
    inspected_on: Mapped[date | None] = mapped_column(Date)
    recorded_by: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    publish_by: Mapped[date | None] = mapped_column(Date)
    published_on: Mapped[date | None] = mapped_column(Date)
    rectify_by: Mapped[date | None] = mapped_column(Date)
    correction_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InspectionEvidence(Base):
    """An evidence file of an inspection (checked by content, stored with its SHA-256)."""

    __tablename__ = "inspection_evidence"
    __table_args__ = (Index("ix_inspection_evidence_inspection", "inspection_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspections.id", ondelete="RESTRICT")
    )
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InspectionProposal(Base):
    """A licence act proposed by an inspection; staff carry it out through the act endpoints."""

    __tablename__ = "inspection_proposals"
    __table_args__ = (Index("ix_inspection_proposals_licence", "licence_no"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspections.id", ondelete="RESTRICT")
    )
    licence_no: Mapped[str] = mapped_column(String(40))
    act: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
