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
    """Where a licence version stands."""

    VALID = "valid"  # 有效
    SUSPENDED = "suspended"  # 暂扣/中止
    REVOKED = "revoked"  # 撤销/吊销
    EXPIRED = "expired"  # 已过期
    SUPERSEDED = "superseded"  # 已被新版本替代


LICENCE_STATUS_LABELS: dict[LicenceStatus, str] = {
    LicenceStatus.VALID: "有效",
    LicenceStatus.SUSPENDED: "暂停",
    LicenceStatus.REVOKED: "已撤销",
    LicenceStatus.EXPIRED: "已过期",
    LicenceStatus.SUPERSEDED: "已被新版本替代",
}


class LicenceAction(StrEnum):
    """What happened to a licence (its history)."""

    ISSUED = "issued"
    CHANGED = "changed"
    SUPERSEDED = "superseded"
    RENEWAL_REQUESTED = "renewal_requested"
    RENEWED = "renewed"
    DEEMED_RENEWED = "deemed_renewed"
    RENEWAL_REFUSED = "renewal_refused"
    SUSPENDED = "suspended"
    REINSTATED = "reinstated"
    REVOKED = "revoked"
    EXPIRED = "expired"


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
    PASSED = "passed"
    FAILED = "failed"


class CreditKind(StrEnum):
    """Why an enterprise has a credit record."""

    FALSE_COMMITMENT = "false_commitment"  # 虚假承诺
    SERIOUS_DISHONESTY = "serious_dishonesty"  # 严重失信


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
    renewal_reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
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
