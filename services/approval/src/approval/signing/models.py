"""Signing sessions: content handed to a phone to sign, and the signature that came back."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from approval.models import Base
from govshared.db import UTCDateTime


class SigningPurpose(StrEnum):
    """What is signed (电子签名法 第十四条: a reliable signature has the force of a handwritten one)."""

    COMMITMENT = "commitment"  # 告知承诺书 (the applicant's commitment letter)
    WITHDRAWAL = "withdrawal"  # 撤回申请
    RECEIPT = "receipt"  # 送达回证 (receipt of a decision)
    APPLICATION = "application"  # 申请书, when the guide asks for the legal representative's seal


class SessionStatus(StrEnum):
    """Open until signed (or past its expiry); consumed once the act it signs is done."""

    OPEN = "open"
    SIGNED = "signed"
    CONSUMED = "consumed"


class SigningSession(Base):
    """One request for a signature: the canonical content, its SM3 digest, and the answer."""

    __tablename__ = "signing_sessions"
    __table_args__ = (
        Index("ix_signing_sessions_open", "subject_uscc", "purpose", "target", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    # What the signature is for: an application id, or for a commitment the item code and version.
    target: Mapped[str] = mapped_column(String(100))
    application_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    subject_uscc: Mapped[str] = mapped_column(String(18))
    requested_by: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly the bytes digested
    digest: Mapped[str] = mapped_column(String(64))  # SM3 of content, hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10))
    signature: Mapped[str | None] = mapped_column(String(128), nullable=True)
    certificate: Mapped[str | None] = mapped_column(Text, nullable=True)  # PEM
    certificate_serial: Mapped[str | None] = mapped_column(String(40), nullable=True)
    signer: Mapped[str | None] = mapped_column(String(300), nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consumed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # govshared.signing.RevocationRecord: the CRL that said the certificate was good at signing.
    revocation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
