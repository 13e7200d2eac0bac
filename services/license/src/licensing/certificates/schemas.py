"""REST schemas of sealed licence certificates."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from licensing.models import CertificateStatus


class CertificateOut(BaseModel):
    """The sealed certificate (PDF) of one licence version."""

    id: uuid.UUID
    licence_no: str
    version: int
    title: str = Field(description="The licence type's name, as printed")
    status: CertificateStatus = Field(description="pending (being sealed) | sealed")
    issued_on: date
    content_digest: str | None = Field(
        description="SM3 digest of the signed canonical content (once sealed)"
    )
    seal_id: str | None
    pdf_sha256: str | None = Field(description="SHA-256 of the PDF as issued (once sealed)")
    pdf_size: int | None
    sealed_at: datetime | None
    download_path: str = Field(description="Where the holder, staff and services download it")
    qr_url: str = Field(description="The verification URL its QR code opens")
