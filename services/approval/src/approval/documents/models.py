"""The document register: every notice and decision issued, with its signed content and file."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from approval.models import Base
from govshared.db import UTCDateTime


class DocumentKind(StrEnum):
    """The written instruments of the Administrative Licensing Law."""

    ACCEPTANCE = "acceptance"  # 受理通知书 (Art. 32)
    REJECTION = "rejection"  # 不予受理通知书 (Art. 32)
    SUPPLEMENT = "supplement"  # 补正告知书 (Art. 32)
    APPROVAL = "approval"  # 准予行政许可决定书 (Art. 38)
    DENIAL = "denial"  # 不予行政许可决定书 (Art. 38)
    PAUSE = "pause"  # 特别程序告知书 (Art. 45: the time needed, told in writing)
    # Signed by the applicant on its phone, not sealed by the authority (approval.documents.signed):
    COMMITMENT = "commitment"  # 告知承诺书 (the applicant's written commitment)
    RECEIPT = "receipt"  # 送达回证 (the applicant's receipt of a decision)


# Documents the applicant signed (its SM2 seal, certificate included), rendered by the sealer.
SIGNED_KINDS = frozenset({DocumentKind.COMMITMENT.value, DocumentKind.RECEIPT.value})


class DocumentStatus(StrEnum):
    """Where a document is: decided and numbered, sealed and in effect, or revoked."""

    PENDING = "pending"  # registered by the transition, waiting for the sealer (worker)
    VALID = "valid"
    REVOKED = "revoked"


PENDING_SQL = text("status = 'pending'")


class Document(Base):
    """One issued document: its number, the signed content, the seal's signature and the PDF.

    The transition that decides a document registers it here (number, content, content digest)
    in its own transaction, status ``pending``; the sealer signs, renders and stores it and fills
    in the rest. A pending row is the sealer's job queue, so a decision is never without its
    document: a crash before sealing leaves the row for the next run.
    """

    __tablename__ = "application_documents"
    __table_args__ = (
        Index("ix_application_documents_application", "application_id", "issued_at"),
        Index("ix_application_documents_pdf_sha256", "pdf_sha256"),
        Index(
            "ix_application_documents_pending",
            "next_attempt_at",
            postgresql_where=PENDING_SQL,
            sqlite_where=PENDING_SQL,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(64))
    issued_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_digest: Mapped[str] = mapped_column(String(64))  # SM3 of the canonical content
    # Filled in by the sealer:
    # govshared.seal.SealSignature, or for SIGNED_KINDS the applicant's signature record
    # (approval.documents.signed.signature_record), filled in when the document is registered.
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    seal_id: Mapped[str | None] = mapped_column(String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_size: Mapped[int | None]
    storage_key: Mapped[str | None] = mapped_column(String(300))
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.PENDING.value)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The sealer's retries: a failed attempt (seal service down, seal expired) waits and retries.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
