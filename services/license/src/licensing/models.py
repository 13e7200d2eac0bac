"""License's ORM models (typed SQLAlchemy 2); hot paths use their ``__table__`` with Core."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govshared.db import UTCDateTime
from licensing.db import metadata

CITY_WIDE = "310000"


class Base(DeclarativeBase):
    """Declarative base bound to license's metadata."""

    metadata = metadata


class LicenceStatus(StrEnum):
    """Where a licence version stands: each legal act that ends or suspends it is its own status."""

    VALID = "valid"  # 有效
    SUSPENDED = "suspended"  # 暂扣许可证件: a penalty (行政处罚法 Art. 9)
    REVOKED = "revoked"  # 撤销: the grant was unlawful (行政许可法 Art. 69)
    WITHDRAWN = "withdrawn"  # 撤回: law or circumstances changed (Art. 8)
    PENALTY_REVOKED = "penalty_revoked"  # 吊销许可证件: a penalty (行政处罚法 Art. 9)
    CANCELLED = "cancelled"  # 注销 (Art. 70) on its own ground (application, termination, …)
    EXPIRED = "expired"  # 有效期届满未延续 (then 注销, Art. 70(1))
    SUPERSEDED = "superseded"  # 已被新版本替代


LICENCE_STATUS_LABELS: dict[LicenceStatus, str] = {
    LicenceStatus.VALID: "有效",
    LicenceStatus.SUSPENDED: "暂扣",
    LicenceStatus.REVOKED: "已撤销",
    LicenceStatus.WITHDRAWN: "已撤回",
    LicenceStatus.PENALTY_REVOKED: "已吊销",
    LicenceStatus.CANCELLED: "已注销",
    LicenceStatus.EXPIRED: "已过期",
    LicenceStatus.SUPERSEDED: "已被新版本替代",
}


class CancellationGround(StrEnum):
    """Why a licence is 注销 (行政许可法 Art. 70, item by item)."""

    EXPIRED = "expired"  # (一) 有效期届满未延续
    HOLDER_DECEASED = "holder_deceased"  # (二) 公民死亡或者丧失行为能力
    HOLDER_TERMINATED = "holder_terminated"  # (三) 法人或者其他组织依法终止
    REVOKED = "revoked"  # (四) 被撤销
    WITHDRAWN = "withdrawn"  # (四) 被撤回
    PENALTY_REVOKED = "penalty_revoked"  # (四) 许可证件被吊销
    FORCE_MAJEURE = "force_majeure"  # (五) 不可抗力导致无法实施
    HOLDER_APPLICATION = "holder_application"  # 依申请注销 (the item's guide, Art. 70(六))
    OTHER_STATUTORY = "other_statutory"  # (六) 法律、法规规定的其他情形


CANCELLATION_GROUND_LABELS: dict[CancellationGround, str] = {
    CancellationGround.EXPIRED: "行政许可有效期届满未延续（《行政许可法》第七十条第一项）",
    CancellationGround.HOLDER_DECEASED: "被许可人死亡或者丧失行为能力（第七十条第二项）",
    CancellationGround.HOLDER_TERMINATED: "被许可的法人或者其他组织依法终止（第七十条第三项）",
    CancellationGround.REVOKED: "行政许可依法被撤销（第七十条第四项）",
    CancellationGround.WITHDRAWN: "行政许可依法被撤回（第七十条第四项）",
    CancellationGround.PENALTY_REVOKED: "行政许可证件依法被吊销（第七十条第四项）",
    CancellationGround.FORCE_MAJEURE: "因不可抗力导致行政许可事项无法实施（第七十条第五项）",
    CancellationGround.HOLDER_APPLICATION: "被许可人申请注销（依事项办事指南，第七十条第六项）",
    CancellationGround.OTHER_STATUTORY: "法律、法规规定的应当注销的其他情形（第七十条第六项）",
}


class LicenceAction(StrEnum):
    """What happened to a licence (its history)."""

    ISSUED = "issued"
    CHANGED = "changed"
    SUPERSEDED = "superseded"
    RENEWAL_REQUESTED = "renewal_requested"
    RENEWAL_CLOSED = "renewal_closed"  # an application for renewal withdrawn or not accepted
    RENEWED = "renewed"
    DEEMED_RENEWED = "deemed_renewed"
    RENEWAL_REFUSED = "renewal_refused"
    SUSPENDED = "suspended"
    REINSTATED = "reinstated"
    REVOKED = "revoked"
    WITHDRAWN = "withdrawn"
    PENALTY_REVOKED = "penalty_revoked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RECTIFICATION_ORDERED = "rectification_ordered"
    PENALTY_NOTIFIED = "penalty_notified"  # 行政处罚事先告知 served
    NOTICE_SERVED = (
        "notice_served"  # notify's proof that a notice of this licence reached the holder
    )


class CertificateStatus(StrEnum):
    """Where a licence version's sealed certificate (PDF) stands."""

    PENDING = "pending"  # registered with the licence version, waiting for the sealer (worker)
    SEALED = "sealed"  # signed, laid out and stored


PENDING_CERTIFICATES = text("status = 'pending'")


class VerificationMethod(StrEnum):
    """How a commitment is verified (核查方式)."""

    DOCUMENT = "document"  # 书面核查
    ON_SITE = "on_site"  # 现场核查 (drawn at random, 双随机)


class VerificationStatus(StrEnum):
    """Where a verification task stands."""

    OPEN = "open"
    RECTIFYING = "rectifying"  # 责令限期整改: verified again once the deadline has come
    PASSED = "passed"
    FAILED = "failed"  # the licence was revoked (撤销)


class CreditKind(StrEnum):
    """Why an enterprise has a credit record."""

    FALSE_COMMITMENT = "false_commitment"  # 虚假承诺
    COMMITMENT_UNFULFILLED = "commitment_unfulfilled"  # 整改期满仍不符合承诺的条件
    SERIOUS_DISHONESTY = "serious_dishonesty"  # 严重失信
    INSPECTION_NON_COMPLIANT = "inspection_non_compliant"  # 双随机抽查发现问题（较重、严重）
    RECTIFICATION_MISSED = "rectification_missed"  # 责令限期整改逾期未改正


class ReformItem(Base):
    """An operating permit in the 证照分离 reform catalogue."""

    __tablename__ = "reform_items"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    item_type: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReformItemVersion(Base):
    """One version of an item's reform mode in a jurisdiction from a date; never edited."""

    __tablename__ = "reform_item_versions"
    __table_args__ = (
        UniqueConstraint("item_code", "version"),
        UniqueConstraint("item_code", "jurisdiction", "effective_from"),
        Index("ix_reform_item_versions_lookup", "item_code", "jurisdiction", "effective_from"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    item_code: Mapped[str] = mapped_column(ForeignKey("reform_items.code", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    jurisdiction: Mapped[str] = mapped_column(String(12))
    effective_from: Mapped[date] = mapped_column(Date)
    mode: Mapped[str] = mapped_column(String(32))
    batch: Mapped[str | None] = mapped_column(String(200))
    reform_measures: Mapped[str] = mapped_column(Text)
    supervision_measures: Mapped[str] = mapped_column(Text)
    supervising_department: Mapped[str] = mapped_column(String(200))
    commitment_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class LicenceType(Base):
    """An entry of the licence type catalogue (GB/T 36901-36906 电子证照目录)."""

    __tablename__ = "licence_types"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    item_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    issuing_authority: Mapped[str] = mapped_column(String(200))
    validity_months: Mapped[int | None] = mapped_column(Integer)
    number_prefix: Mapped[str] = mapped_column(String(16))


class Licence(Base):
    """One version of an electronic licence; a change adds a version and supersedes this one."""

    __tablename__ = "licences"
    __table_args__ = (
        UniqueConstraint("licence_no", "version"),
        Index(
            "uq_licences_current",
            "licence_no",
            unique=True,
            postgresql_where=text("is_current"),
            sqlite_where=text("is_current"),
        ),
        Index("ix_licences_holder", "holder_uscc", "licence_no"),
        Index("ix_licences_expiry", "is_current", "status", "valid_until"),
        Index("ix_licences_register", "jurisdiction", "licence_no"),
        Index("ix_licences_source_application", "source_application_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    licence_no: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean)
    licence_type: Mapped[str] = mapped_column(ForeignKey("licence_types.code"))
    item_code: Mapped[str | None] = mapped_column(String(64))
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_uscc: Mapped[str] = mapped_column(String(18))
    issuing_authority: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    issued_on: Mapped[date] = mapped_column(Date)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    particulars: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    granted_on_commitment: Mapped[bool] = mapped_column(Boolean, default=False)
    source_application_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    source_application_no: Mapped[str | None] = mapped_column(String(40))
    source_event_id: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    renewal_requested_on: Mapped[date | None] = mapped_column(Date)
    # Art. 50: applied for no later than 30 days before expiry; only then deemed renewed.
    renewal_timely: Mapped[bool | None] = mapped_column(Boolean)
    renewal_application_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    renewal_application_no: Mapped[str | None] = mapped_column(String(40))
    renewal_reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    # The act behind the status (撤销/撤回/吊销/暂扣/注销): its date, legal basis and the fields
    # the law requires of it (compensation, the penalty decision, the notice of rights, …).
    act_on: Mapped[date | None] = mapped_column(Date)
    act_basis: Mapped[str | None] = mapped_column(Text)
    act_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The 注销 that ends the licence's record (Art. 70), on its own or after another act.
    cancelled_on: Mapped[date | None] = mapped_column(Date)
    cancellation_ground: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LicenceCertificate(Base):
    """The sealed certificate of one licence version: signed content, seal signature and PDF.

    The transaction that creates a licence version registers its certificate here (``pending``),
    with the licence event that waits for it; the sealer signs, lays out and stores the PDF, fills
    in the rest and emits that event with a reference to the file. The pending row is the sealer's
    queue, so a licence version is never without its certificate.
    """

    __tablename__ = "licence_certificates"
    __table_args__ = (
        UniqueConstraint("licence_id"),
        UniqueConstraint("licence_no", "version"),
        Index(
            "ix_licence_certificates_pending",
            "next_attempt_at",
            postgresql_where=PENDING_CERTIFICATES,
            sqlite_where=PENDING_CERTIFICATES,
        ),
        Index("ix_licence_certificates_pdf_sha256", "pdf_sha256"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licences.id", ondelete="RESTRICT"))
    licence_no: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))  # the licence type's name
    issued_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.PENDING.value)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The licence event (type and data, without the document) that goes out once sealed.
    event_type: Mapped[str | None] = mapped_column(String(200))
    event_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Filled in by the sealer:
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what was signed
    content_digest: Mapped[str | None] = mapped_column(String(64))  # SM3 of its canonical form
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # govshared.seal.SealSignature
    seal_id: Mapped[str | None] = mapped_column(String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_size: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str | None] = mapped_column(String(300))
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The sealer's retries: a failed attempt (seal service down, seal expired) waits and retries.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))


class LicenceHistory(Base):
    """An append-only entry of a licence's history (every version, every status change)."""

    __tablename__ = "licence_history"
    __table_args__ = (Index("ix_licence_history_licence", "licence_no", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licences.id", ondelete="RESTRICT"))
    licence_no: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the act's own fields
    actor: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LicenceCounter(Base):
    """The last sequence number used for a licence number prefix and year."""

    __tablename__ = "licence_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class VerificationTask(Base):
    """A 告知承诺 verification (核查) of a licence granted on commitment."""

    __tablename__ = "verification_tasks"
    __table_args__ = (
        Index("ix_verification_tasks_queue", "jurisdiction", "status", "due_on", "id"),
        Index("ix_verification_tasks_licence", "licence_no"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    licence_no: Mapped[str] = mapped_column(String(40))
    holder_uscc: Mapped[str] = mapped_column(String(18))
    holder_name: Mapped[str] = mapped_column(String(200))
    item_code: Mapped[str | None] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    due_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))
    drawn: Mapped[bool] = mapped_column(Boolean)
    inspectors: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    findings: Mapped[str | None] = mapped_column(Text)
    # 责令限期整改: the conditions found unmet, and the day by which to put them right.
    rectify_by: Mapped[date | None] = mapped_column(Date)
    rectification_findings: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CreditRecord(Base):
    """A bad-credit record against an enterprise's USCC."""

    __tablename__ = "credit_records"
    __table_args__ = (Index("ix_credit_records_holder", "holder_uscc", "recorded_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    holder_uscc: Mapped[str] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(32))
    serious: Mapped[bool] = mapped_column(Boolean)
    bars_commitment: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    licence_no: Mapped[str | None] = mapped_column(String(40))
    item_code: Mapped[str | None] = mapped_column(String(64))
    verification_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    inspection_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # 双随机 inspection behind it
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EnterpriseApplication(Base):
    """What approval's events told us of an enterprise's application (for its reform status)."""

    __tablename__ = "enterprise_applications"
    __table_args__ = (Index("ix_enterprise_applications_holder", "holder_uscc", "item_code"),)

    application_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_no: Mapped[str] = mapped_column(String(40))
    holder_uscc: Mapped[str] = mapped_column(String(18))
    item_code: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(32))
    business_type: Mapped[str | None] = mapped_column(String(16))
    reform_mode: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OfficialCalendarYear(Base):
    """A year's official holiday schedule (放假安排, 调休 included) as approval's admins loaded it:
    the weekdays offices close and the weekends they work. license's own limits count working
    days with it (``licensing.calendar``), as approval's clocks do."""

    __tablename__ = "official_calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    closed_weekdays: Mapped[list[str]] = mapped_column(JSON)  # ISO dates
    working_weekends: Mapped[list[str]] = mapped_column(JSON)  # ISO dates
    notice: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # approval's updated_at
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
